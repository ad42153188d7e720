"""Digest nonces and nonce-count replay protection (RFC 7616 §3.3, §3.4, §5.5) — L0, pure.

`NonceIssuer` makes stateless nonces any holder of the secret can verify; `NonceCounts`
remembers which nonce counts were used. Both take `now` as an argument and read no clock.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import hmac
from collections import deque
from collections.abc import Callable
from typing import Final


class NonceStatus(enum.Enum):
    VALID = "valid"
    STALE = "stale"  # authentic but expired: answer 401 with stale=true (RFC 7616 §3.3)
    INVALID = "invalid"  # not issued with our secret, or not a nonce at all


_TIME_BYTES: Final = 8  # issue time in milliseconds, big-endian
_SALT_BYTES: Final = 8
_MAC_BYTES: Final = 20
_BODY_BYTES: Final = _TIME_BYTES + _SALT_BYTES
_NONCE_CHARS: Final = (_BODY_BYTES + _MAC_BYTES) * 4 // 3  # 36 bytes -> 48 base64, no padding


class NonceIssuer:
    """Stateless nonces: base64(issue time ms | salt | MAC(secret, time | salt)).

    Driven by the registrar: `issue(now)` for each challenge, `check(nonce, now)` for each answer.
    Any process holding `secret` verifies any other's nonces, so `now` must be wall-clock time
    when several processes share the secret. The MAC is keyed BLAKE2b (RFC 7693 §2.5 keyed
    mode), truncated to 160 bits. `salt(n)` supplies n random bytes (inject `os.urandom` or
    `IdGenerator.secret` in production); without it a per-issuer counter keeps nonces issued in
    the same millisecond distinct within this process. RFC 7616 §5.4/§5.12.

    `max_skew` tolerates nonces stamped slightly in the future by a peer process whose clock is
    ahead; beyond it an authentic nonce is STALE. `max_age` is how long an authentic nonce may be
    VALID at most, the retention `NonceCounts` needs.
    """

    __slots__ = ("_key", "_lifetime", "_max_skew", "_salt", "_counter")

    def __init__(
        self,
        secret: bytes,
        lifetime: float,
        *,
        max_skew: float = 2.0,
        salt: Callable[[int], bytes] | None = None,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("nonce secret must be at least 16 bytes")
        if lifetime <= 0:
            raise ValueError("nonce lifetime must be positive")
        # BLAKE2b keys are at most 64 bytes; longer secrets are condensed first.
        self._key = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()
        self._lifetime = lifetime
        self._max_skew = max_skew
        self._salt = salt
        self._counter = 0

    @property
    def lifetime(self) -> float:
        return self._lifetime

    @property
    def max_age(self) -> float:
        return self._lifetime + self._max_skew

    def _mac(self, body: bytes, bound: str) -> bytes:
        mac = hashlib.blake2b(body, key=self._key, digest_size=_MAC_BYTES)
        if bound:
            mac.update(bound.encode("utf-8", "surrogateescape"))
        return mac.digest()

    def issue(self, now: float, bound: str = "") -> str:
        """A fresh nonce stamped with `now` (seconds, non-negative).

        `bound` (the source address it is issued to) enters the MAC without being written into
        the nonce: `check` with another `bound` finds it INVALID. So a nonce fetched from one
        address cannot be presented from another — an off-path forger spoofing a phone's address
        cannot obtain a nonce that is valid there, and cannot make its wrong answers count
        against that address (a ban of the phone by proxy)."""
        millis = int(now * 1000)
        if millis < 0:
            raise ValueError("now must be non-negative")
        if self._salt is not None:
            salt = self._salt(_SALT_BYTES)[:_SALT_BYTES].ljust(_SALT_BYTES, b"\0")
        else:
            self._counter = (self._counter + 1) & 0xFFFFFFFFFFFFFFFF
            salt = self._counter.to_bytes(_SALT_BYTES, "big")
        body = millis.to_bytes(_TIME_BYTES, "big") + salt
        return binascii.b2a_base64(body + self._mac(body, bound), newline=False).decode("ascii")

    def check(self, nonce: str, now: float, bound: str = "") -> NonceStatus:
        """Whether `nonce` is one of ours, issued for `bound`, and still fresh at `now`. Never
        raises."""
        if len(nonce) != _NONCE_CHARS or not nonce.isascii():
            return NonceStatus.INVALID
        try:
            raw = binascii.a2b_base64(nonce, strict_mode=True)
        except binascii.Error:
            return NonceStatus.INVALID
        body = raw[:_BODY_BYTES]
        if not hmac.compare_digest(raw[_BODY_BYTES:], self._mac(body, bound)):
            return NonceStatus.INVALID
        age = now - int.from_bytes(body[:_TIME_BYTES], "big") / 1000.0
        if age > self._lifetime or age < -self._max_skew:
            return NonceStatus.STALE
        return NonceStatus.VALID


class NonceCounts:
    """Replay protection by nonce count (RFC 7616 §3.4, §5.5).

    `accept(nonce, nc, now)` is True when `nc` was not seen before for `nonce` and is either
    higher than every nc seen, or — only when `out_of_order > 0` — at most `out_of_order` below
    the highest and not yet seen (a sliding bitmap like IPsec's, RFC 4303 §3.4.3). The default
    0 is strict: only ever-increasing counts pass. SIP retransmissions never reach this table
    (the transaction layer absorbs them, RFC 3261 §17.2), so strictness only costs a fresh 401
    when a UA's concurrent requests overtake each other; set a small window if that shows up.

    Memory: a nonce is forgotten `retention` seconds after it was first accepted; pass
    `NonceIssuer.max_age` so a nonce is never forgotten while the issuer still calls it VALID.
    Entries sit in a FIFO by first use, so the purge in each call pops only expired entries:
    O(1) amortised. Past `max_nonces` the oldest entry is evicted early (counted in `evicted`);
    that weakens replay protection only for that nonce's remaining life, and only under a load
    of that many authenticated clients within one retention period.
    """

    __slots__ = ("_retention", "_width", "_mask", "_max", "_seen", "_order", "evicted")

    def __init__(
        self, retention: float, *, out_of_order: int = 0, max_nonces: int = 1_000_000
    ) -> None:
        if retention <= 0:
            raise ValueError("retention must be positive")
        if not 0 <= out_of_order <= 1024:
            raise ValueError("out_of_order must be between 0 and 1024")
        if max_nonces < 1:
            raise ValueError("max_nonces must be at least 1")
        self._retention = retention
        self._width = out_of_order + 1
        self._mask = (1 << self._width) - 1  # bit k set: (highest - k) was seen
        self._max = max_nonces
        self._seen: dict[str, tuple[int, int]] = {}  # nonce -> (highest nc, seen bitmap)
        self._order: deque[tuple[float, str]] = deque()  # (first use, nonce), oldest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._seen)

    def _purge(self, now: float) -> None:
        order = self._order
        cutoff = now - self._retention
        while order and order[0][0] <= cutoff:
            del self._seen[order.popleft()[1]]

    def accept(self, nonce: str, nc: int, now: float) -> bool:
        """Record `nc` for `nonce`; False when it is a replay (or nc < 1)."""
        self._purge(now)
        if nc < 1:
            return False
        entry = self._seen.get(nonce)
        if entry is None:
            if len(self._seen) >= self._max:
                del self._seen[self._order.popleft()[1]]
                self.evicted += 1
            self._seen[nonce] = (nc, 1)
            self._order.append((now, nonce))
            return True
        highest, bits = entry
        if nc > highest:
            shift = nc - highest
            # Shift only within the window: nc may jump by 2**32, too far for a big-int shift.
            bits = ((bits << shift) | 1) & self._mask if shift < self._width else 1
            self._seen[nonce] = (nc, bits)
            return True
        offset = highest - nc
        if offset >= self._width:
            return False
        flag = 1 << offset
        if bits & flag:
            return False
        self._seen[nonce] = (highest, bits | flag)
        return True


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------
