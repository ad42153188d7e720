"""Admission control for new calls: a concurrent-call cap, a calls-per-second rate and
overload shedding, pure (the caller passes the time and the measured event-loop lag).

Theory of operation
-------------------
Past its capacity a PBX that takes every INVITE falls behind on all of them: set-up times
grow, callers hang up, the calls already talking get late audio and retransmissions pile up.
Refusing the excess early with ``503 Service Unavailable`` and ``Retry-After`` (RFC 3261
§21.5.4) lets the carrier route those calls elsewhere or retry, and keeps the accepted ones
healthy — what Kamailio's ratelimit/pike and FreeSWITCH's ``max-sessions`` /
``sessions-per-second`` do. Three independent rules, each off unless configured:

* ``max_calls``: calls in progress (the switchboard's count) at or above it;
* ``max_calls_per_second``: a token bucket holding one second's worth of calls, refilled
  continuously, so a short burst up to the rate passes and a sustained excess does not;
* ``overload_lag_s``: how late the event loop runs its timers (measured by the application
  every few tens of milliseconds). Lag means the process is behind its work already; new calls
  would only add to it;
(Shedding by how long an INVITE waited unread in the socket queue is the SIP layer's, before
the INVITE is parsed: pbx/sip/shedding.py.)

The switchboard checks a source before admission (a junk INVITE must not use up a trunk's
rate) and then both the PBX's limits and the trunk's own (`TrunkConfig.max_calls` …).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_calls: int | None = None
    max_calls_per_second: float | None = None
    overload_lag_s: float = 0.0  # 0: no shedding on lag


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call was refused, and when the caller may retry (seconds, for Retry-After)."""

    reason: str
    retry_after_s: int


class Admission:
    """Decides for each new call whether the PBX takes it. See the module docstring."""

    def __init__(self, limits: AdmissionLimits, now: float) -> None:
        self.limits = limits
        rate = limits.max_calls_per_second
        self._capacity = max(1.0, rate) if rate else 0.0
        self._tokens = self._capacity
        self._refilled_at = now
        self.refused: dict[str, int] = {"max_calls": 0, "rate": 0, "overload": 0}

    def check(self, active_calls: int, now: float, loop_lag_s: float) -> Refusal | None:
        """None to take the call, else the refusal (counted in ``refused``)."""
        limits = self.limits
        if limits.max_calls is not None and active_calls >= limits.max_calls:
            return self._refuse("max_calls", f"{active_calls} calls in progress", 5)
        if limits.overload_lag_s and loop_lag_s > limits.overload_lag_s:
            return self._refuse("overload", f"overloaded ({loop_lag_s * 1000:.0f} ms behind)", 1)
        rate = limits.max_calls_per_second
        if rate:
            self._tokens = min(self._capacity, self._tokens + (now - self._refilled_at) * rate)
            self._refilled_at = now
            if self._tokens < 1.0:
                return self._refuse("rate", f"more than {rate:g} new calls per second", 1)
            self._tokens -= 1.0
        return None

    def _refuse(self, rule: str, reason: str, retry_after_s: int) -> Refusal:
        self.refused[rule] += 1
        return Refusal(reason, retry_after_s)


__all__ = ["Admission", "AdmissionLimits", "Refusal"]
