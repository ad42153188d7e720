"""Brute-force protection for the registrar (L2, sans-IO).

Theory of operation
-------------------
The registrar reports every failed authentication (`record_failure`) and every success
(`record_success`) by source address, and asks `is_banned` before it does any work for a request
(before parsing credentials, looking up users or hashing). A source that fails `max_failures`
times within `window` seconds is banned for `ban_seconds`; `record_failure` returns the
`BanEvent` that started the ban so the caller can log it or hand it to a firewall adapter.

The window is *sliding*: a ban fires when the last `max_failures` failures all fall within
`window` seconds of each other, wherever they sit on the clock. A fixed window (counting per
`window`-long slot) would let an attacker spend up to 2·max_failures − 2 guesses across a slot
boundary; the sliding one costs only `max_failures` timestamps per tracked source.

What is banned is a *scope*: the IPv4 address (IPv4-mapped IPv6 addresses count as IPv4), or
the IPv6 address's `/ipv6_prefix` network (default /64, since one IPv6 host usually owns a whole
/64 and rotating addresses inside it is free). Sources inside a `trusted` network (the office
NAT, the SBC, monitoring) are never counted nor banned, even when their /64 is.

A success clears the scope's failures: a phone whose user mistyped the password a few times
then got it right starts afresh. The price is that an attacker holding one valid account can
interleave successes to avoid bans; the per-account view belongs to the registrar, not here.

Memory is bounded: failure histories are kept in order of last failure and bans in order of
their end (ban_seconds is constant), so `expire(now)` — also run on every `record_failure` —
pops only what has expired, O(1) amortised, and at most `max_tracked` scopes are remembered in
each table (the least recently failing are forgotten first).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

__all__ = ["AuthFailureGuard", "BanEvent", "GuardStats"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_IPV6_PREFIX: Final = 64


@dataclass(frozen=True, slots=True)
class BanEvent:
    """A ban has just started: `scope` is refused until `until` (same clock as `now`)."""

    host: str  # the source whose failure tipped the balance
    scope: str  # what is banned: "192.0.2.7" or "2001:db8:1:2::/64"
    until: float
    failures: int  # failures counted in the window that triggered the ban


@dataclass(frozen=True, slots=True)
class GuardStats:
    """Counters since start (failures, bans, blocked) and current sizes (banned, tracked)."""

    failures: int  # failed authentications reported, trusted sources included
    bans: int  # bans started
    blocked: int  # is_banned() answers that were True
    banned: int  # scopes under a ban now (lazily expired ones included until expire())
    tracked: int  # scopes with a failure history


@lru_cache(maxsize=8192)
def _classify(host: str, ipv6_prefix: int) -> tuple[str, _Address | None]:
    # The scope key a source is counted under, and its parsed address (None: not an IP literal).
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address: _Address = ipaddress.ip_address(text)
    except ValueError:
        return text.lower(), None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped), mapped
        if ipv6_prefix < 128:
            shift = 128 - ipv6_prefix
            network = ipaddress.IPv6Address((int(address) >> shift) << shift)
            return f"{network}/{ipv6_prefix}", address
        return str(ipaddress.IPv6Address(int(address))), address  # drops a %zone
    return str(address), address


class AuthFailureGuard:
    """Bans sources that fail authentication too often (see the module docstring).

    Driven by the registrar with the request's source address and `now`; returns `BanEvent`s
    from `record_failure`. Raises ValueError for a bad configuration (naming the bad entry).
    """

    __slots__ = (
        "_max_failures",
        "_window",
        "_ban_seconds",
        "_trusted",
        "_ipv6_prefix",
        "_max_tracked",
        "_failures",
        "_bans",
        "_failure_count",
        "_ban_count",
        "_blocked_count",
    )

    def __init__(
        self,
        max_failures: int,
        window: float,
        ban_seconds: float,
        trusted: Sequence[str] = (),
        *,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
        max_tracked: int = 100_000,
    ) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        if ban_seconds <= 0:
            raise ValueError(f"ban_seconds must be positive, got {ban_seconds}")
        if not 1 <= ipv6_prefix <= 128:
            raise ValueError(f"ipv6_prefix must be between 1 and 128, got {ipv6_prefix}")
        if max_tracked < 1:
            raise ValueError(f"max_tracked must be at least 1, got {max_tracked}")
        networks: list[_Network] = []
        for entry in trusted:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"trusted entry {entry!r} is not an IP address or CIDR") from None
        self._max_failures = max_failures
        self._window = window
        self._ban_seconds = ban_seconds
        self._trusted: tuple[_Network, ...] = tuple(networks)
        self._ipv6_prefix = ipv6_prefix
        self._max_tracked = max_tracked
        # scope -> recent failure times (at most max_failures), least recently failing first
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        # scope -> ban end, earliest end first
        self._bans: OrderedDict[str, float] = OrderedDict()
        self._failure_count = 0
        self._ban_count = 0
        self._blocked_count = 0

    @property
    def stats(self) -> GuardStats:
        return GuardStats(
            failures=self._failure_count,
            bans=self._ban_count,
            blocked=self._blocked_count,
            banned=len(self._bans),
            tracked=len(self._failures),
        )

    def _is_trusted(self, address: _Address | None) -> bool:
        if address is None:
            return False
        return any(address in network for network in self._trusted)

    def is_banned(self, host: str, now: float) -> bool:
        """Whether requests from `host` are to be refused at `now` (counted as blocked)."""
        if not self._bans:  # the common case costs one check
            return False
        scope, address = _classify(host, self._ipv6_prefix)
        until = self._bans.get(scope)
        if until is None:
            return False
        if until <= now:
            del self._bans[scope]
            return False
        if self._is_trusted(address):  # a trusted host inside a banned IPv6 network
            return False
        self._blocked_count += 1
        return True

    def record_failure(self, host: str, now: float) -> BanEvent | None:
        """Count a failed authentication from `host`; the `BanEvent` if it started a ban."""
        self._failure_count += 1
        self.expire(now)
        scope, address = _classify(host, self._ipv6_prefix)
        if self._is_trusted(address):
            return None
        until = self._bans.get(scope)
        if until is not None and until > now:
            return None  # already banned; the registrar should not have got this far
        history = self._failures.get(scope)
        if history is None:
            if len(self._failures) >= self._max_tracked:
                self._failures.popitem(last=False)
            history = self._failures[scope] = deque(maxlen=self._max_failures)
        else:
            self._failures.move_to_end(scope)
        history.append(now)
        if len(history) < self._max_failures or now - history[0] > self._window:
            return None
        del self._failures[scope]
        until = now + self._ban_seconds
        self._bans.pop(scope, None)  # re-insert at the end to keep the table ordered by end
        if len(self._bans) >= self._max_tracked:
            self._bans.popitem(last=False)
        self._bans[scope] = until
        self._ban_count += 1
        return BanEvent(host=host, scope=scope, until=until, failures=len(history))

    def record_success(self, host: str, now: float) -> None:
        """Forget the failures of `host`'s scope (a ban in force stays)."""
        scope, _ = _classify(host, self._ipv6_prefix)
        self._failures.pop(scope, None)

    def expire(self, now: float) -> None:
        """Drop failure histories older than the window and bans that have ended."""
        failures = self._failures
        cutoff = now - self._window
        while failures:
            scope, history = next(iter(failures.items()))
            if history[-1] >= cutoff:
                break
            failures.popitem(last=False)
        bans = self._bans
        while bans:
            scope, until = next(iter(bans.items()))
            if until > now:
                break
            bans.popitem(last=False)
