"""SIP timer values (RFC 3261 §17 and Table 4 of Appendix A) — L0.

`TimerSettings` carries T1, T2 and T4 (configurable per deployment: `sip.t1_ms` etc.) and derives
the lettered timers from them. All values are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

T1 = 0.5  # RTT estimate
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # maximum duration a message remains in the network


@dataclass(frozen=True, slots=True)
class TimerSettings:
    t1: float = T1
    t2: float = T2
    t4: float = T4

    @property
    def a(self) -> float:
        """INVITE request retransmit interval, for UDP only (doubles each time)."""
        return self.t1

    @property
    def b(self) -> float:
        """INVITE transaction timeout timer."""
        return 64 * self.t1

    def d(self, reliable: bool) -> float:
        """Wait time for response retransmits (client INVITE, Completed)."""
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    @property
    def e(self) -> float:
        """Non-INVITE request retransmit interval, UDP only (doubles up to T2)."""
        return self.t1

    @property
    def f(self) -> float:
        """Non-INVITE transaction timeout timer."""
        return 64 * self.t1

    @property
    def g(self) -> float:
        """INVITE response retransmit interval (doubles up to T2)."""
        return self.t1

    @property
    def h(self) -> float:
        """Wait time for ACK receipt."""
        return 64 * self.t1

    def i(self, reliable: bool) -> float:
        """Wait time for ACK retransmits."""
        return 0.0 if reliable else self.t4

    def j(self, reliable: bool) -> float:
        """Wait time for non-INVITE request retransmits."""
        return 0.0 if reliable else 64 * self.t1

    def k(self, reliable: bool) -> float:
        """Wait time for response retransmits (client non-INVITE, Completed)."""
        return 0.0 if reliable else self.t4

    @property
    def l(self) -> float:  # noqa: E743 - the RFC 6026 name
        """Wait time for accepted INVITE request retransmits (RFC 6026 §8.7)."""
        return 64 * self.t1

    @property
    def m(self) -> float:
        """Wait time for retransmission of 2xx to INVITE (RFC 6026 §8.4)."""
        return 64 * self.t1
