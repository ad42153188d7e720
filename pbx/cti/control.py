"""What the CTI asks of the rest of the PBX: call control, agent state, queue figures, metrics.

The CTI never drives calls or the ACD itself. It validates the request (who asks, for which
call, with which arguments) and hands it to one of these protocols, which the composition root
implements over the switchboard and the ACD service. Outcomes come back as events through the
`pbx.cti.desk.CtiDesk` ``on_*`` methods, never as return values the desk would have to trust:
e.g. `AgentControl.pause` returns once the request is accepted, and the desk shows the agent as
paused when the ACD reports the state change.

A refusal the caller can fix or should know about is raised as `ControlRefused` with an HTTP
status (404 unknown call, 403 not allowed — e.g. the dial plan forbids the number —, 409 wrong
state, 422 bad target); the API passes it on as a JSON 4xx answer. Any other exception is a
bug or an outage and becomes a 503.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pbx.acd.call_times import HistogramSnapshot


class ControlRefused(Exception):
    """A call-control or agent request was refused; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CallControl(Protocol):
    """Third-party call control for the agents' phones (TAPI's ``lineMakeCall`` & co).

    `agent` is the extension on whose behalf the request is made (the CTI has checked that it
    may act on `call_id`); `call_id` is the PBX-wide id the desk was given in
    ``on_call_presented`` / ``on_call_dialing``. Transfer targets are ``agent:EXT``,
    ``queue:NAME`` or ``number:DIGITS`` (checked against the dial plan by the implementation).
    """

    async def make_call(self, agent: str, number: str) -> str:
        """Ring the agent's phone, then dial `number` from it; returns the new call id (the
        implementation then reports it through ``CtiDesk.on_call_dialing``)."""
        ...

    async def hang_up(self, agent: str, call_id: str) -> None: ...

    async def hold(self, agent: str, call_id: str) -> None: ...

    async def resume(self, agent: str, call_id: str) -> None: ...

    async def transfer(self, agent: str, call_id: str, target: str, attended: bool) -> None:
        """Blind (`attended` False): hand the caller to `target` and drop the agent. Attended:
        hold the caller and connect the agent with `target` first; `complete_transfer` joins
        caller and target, `cancel_transfer` returns to the caller."""
        ...

    async def complete_transfer(self, agent: str, call_id: str) -> None: ...

    async def cancel_transfer(self, agent: str, call_id: str) -> None: ...

    async def move(self, supervisor: str, call_id: str, target: str) -> None:
        """Send a waiting caller to `target` (queue:NAME or agent:EXT); ControlRefused 409
        when the call no longer waits."""
        ...

    async def record(self, agent: str, call_id: str, on: bool) -> None:
        """Start (`on`) or stop recording an on-demand call (409 for calls recorded always or
        never, or already in that state); the outcome comes as ``on_call_recording``."""
        ...

    async def set_disposition(self, agent: str, call_id: str, disposition: str, note: str) -> None:
        """Record the call's outcome (one of ``cti.dispositions``) for the CDR and reports."""
        ...


class AgentControl(Protocol):
    """Agent state requests, carried to the ACD (``AgentLoggedIn``, ``AgentPaused`` …)."""

    async def login(self, agent: str, paused: bool, reason: str) -> None: ...

    async def logout(self, agent: str) -> None: ...

    async def pause(self, agent: str, reason: str) -> None: ...

    async def ready(self, agent: str) -> None:
        """Unpause, or end wrap-up early."""
        ...


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One queue's live figures for the wallboard. `service_level` is the share (0..1) of
    calls answered within the queue's service-level time, None before the first call."""

    name: str
    waiting: int
    longest_wait_s: float
    answered: int = 0
    abandoned: int = 0
    service_level: float | None = None
    agents_staffed: int = 0
    agents_available: int = 0
    offered: int = 0
    asa_s: float | None = None  # mean wait of the answered calls
    aht_s: float | None = None  # mean talk + wrap-up
    abandon_rate: float | None = None
    service_level_s: float = 20.0
    service_level_target: float = 0.8
    # when the wallboard colours the figures (pbx.acd.schema.WallboardThresholds)
    thresholds: Mapping[str, float] = field(default_factory=dict)


class QueueStatusSource(Protocol):
    """Queue figures from the ACD. Without one the desk derives them from its own events."""

    def queue_status(self) -> Sequence[QueueStatus]: ...


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Counters of the whole PBX for ``/metrics``. Totals are monotonic counters since start;
    the rest are gauges. Mapping keys become label values."""

    calls_active: int = 0
    calls_total: Mapping[str, int] = field(default_factory=dict)  # by outcome
    queue_waiting: Mapping[str, int] = field(default_factory=dict)  # by queue
    queue_longest_wait_s: Mapping[str, float] = field(default_factory=dict)
    agents_by_state: Mapping[str, int] = field(default_factory=dict)
    registrations: int = 0
    sip_transactions_active: int = 0
    sip_total: Mapping[str, int] = field(default_factory=dict)  # requests_received, timeouts …
    rtp_total: Mapping[str, int] = field(default_factory=dict)  # packets_sent, lost, dropped …
    media_sessions_active: int = 0
    # queue -> {offered, answered, abandoned, overflowed}: totals since start
    queue_calls: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    queue_service_level: Mapping[str, float] = field(default_factory=dict)  # ratio 0..1
    queue_service_level_s: Mapping[str, float] = field(default_factory=dict)  # its threshold
    # (wait | ring | talk, queue, outcome) -> histogram (pbx.acd.call_times)
    call_times: Mapping[tuple[str, str, str], HistogramSnapshot] = field(default_factory=dict)


class MetricsSource(Protocol):
    """Where ``/metrics`` reads the PBX's counters (implemented by the composition root)."""

    def metrics_snapshot(self) -> MetricsSnapshot: ...


class CampaignControl(Protocol):
    """The outbound campaigns (implemented over the switchboard's dialer)."""

    def campaign_status(self) -> list[dict[str, object]]: ...

    def campaign_control(self, name: str, action: str) -> None:
        """start | pause | stop; KeyError for an unknown campaign."""
        ...

    def preview_decided(self, agent: str, customer_no: str, dial: bool) -> None:
        """The agent's decision on a previewed customer; KeyError when none is reserved."""
        ...

    def dnc_changed(self, added: list[str], removed: list[str]) -> None:
        """Numbers put on or taken off the stored do-not-call list: the running campaigns
        skip them from now on (or may call them again)."""
        ...

    def customers_changed(self) -> None:
        """Customers were imported, created or edited: the campaigns take the ones their
        targets match now (in the background)."""
        ...
