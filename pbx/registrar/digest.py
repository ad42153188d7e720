"""Digest challenges and their answers for one realm, shared by REGISTER and INVITE — L2, pure.

Theory of operation
-------------------
`DigestAuthority` owns what both kinds of request need: the stateless nonces
(`auth.NonceIssuer`), the nonce-count table that stops replays (`auth.NonceCounts`) and the
per-source brute-force guard (`AuthFailureGuard`). The registrar asks it about REGISTERs (answered
401 with WWW-Authenticate, RFC 3261 §22.2); the call side asks it about dialog-creating INVITEs
(answered 407 with Proxy-Authenticate, §22.3). Sharing one authority means one nonce key, one
replay table (a phone may answer an INVITE challenge with a nonce first seen on a REGISTER) and
one failure count: wrong passwords on INVITEs and on REGISTERs ban the same source.

`check(credentials_values, method, expected_user, source, now, ha1_lookup)` does the work in the
order the registrar always did, and returns a `DigestVerdict`:

* no credentials for our realm, a nonce we never issued (or issued to another host: nonces
  are bound to the address they were sent to), a replayed nonce count → CHALLENGE (not
  counted: a forged or confused request is not a guess at a password, and an off-path forger
  spoofing a phone's address never sees a nonce valid there, so it cannot get the phone
  banned);
* an expired nonce with an otherwise right answer → CHALLENGE with stale=true (RFC 7616 §3.3);
* an unparseable credential → MALFORMED (the caller answers 400);
* a wrong answer, an unknown user, or a right answer for another user than `expected_user` →
  FAILED, counted against the source (the verdict carries the `BanEvent` when that started a
  ban); unknown users cost what wrong passwords cost, so extensions cannot be enumerated;
* otherwise PASSED with the user name, and the source's failures are forgotten.

Asking `is_banned(host, now)` first is the caller's job, before any parsing. Nothing here reads
a clock: `now` is wall-clock seconds (nonces outlive a restart, so they carry wall time).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pbx.registrar.security import AuthFailureGuard, BanEvent
from pbx.sip import auth
from pbx.sip.endpoint import Address

Ha1Lookup = Callable[[str, str], "str | None"]

__all__ = ["DigestAuthority", "DigestOutcome", "DigestVerdict", "Ha1Lookup"]


class DigestOutcome(enum.Enum):
    PASSED = "passed"
    CHALLENGE = "challenge"
    MALFORMED = "malformed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DigestVerdict:
    """What `DigestAuthority.check` concluded (see the module docstring).

    `username` is set when PASSED (and, for FAILED, when the credentials named one); `stale`
    only with CHALLENGE; `reason` says what was wrong for MALFORMED (for a 400's reason phrase)
    and for FAILED (for the log, never for the peer); `ban` when this failure started a ban.
    """

    outcome: DigestOutcome
    username: str | None = None
    stale: bool = False
    reason: str = ""
    ban: BanEvent | None = None


_CHALLENGE = DigestVerdict(DigestOutcome.CHALLENGE)
_STALE = DigestVerdict(DigestOutcome.CHALLENGE, stale=True)


class DigestAuthority:
    """Challenges and verifies digest answers in `realm`. See the module docstring.

    Driven by the registrar and the call side with the request's credential header values, its
    source and `now`; returns `DigestVerdict`s and challenge header values. Never raises for
    anything a peer can send.
    """

    def __init__(
        self,
        realm: str,
        algorithms: Iterable[str],
        nonces: auth.NonceIssuer,
        guard: AuthFailureGuard,
    ) -> None:
        self.realm = realm
        self.algorithms = tuple(algorithms)
        self.nonces = nonces
        self.counts = auth.NonceCounts(nonces.max_age)
        self.guard = guard

    def is_banned(self, host: str, now: float) -> bool:
        """Whether requests from `host` are to be dropped unanswered (counted as blocked)."""
        return self.guard.is_banned(host, now)

    def challenge_values(self, source: Address, now: float, stale: bool = False) -> list[str]:
        """Header values for a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate): one fresh
        nonce, offered once per configured algorithm, the preferred first (RFC 8760 §2.4).
        The nonce is bound to the source's host: answered from another host it is unknown."""
        nonce = self.nonces.issue(now, source.host)
        return [
            auth.DigestChallenge(
                realm=self.realm, nonce=nonce, algorithm=algorithm, qop=("auth",), stale=stale
            ).header_value()
            for algorithm in self.algorithms
        ]

    def check(
        self,
        credentials_values: list[str],
        method: str,
        expected_user: str | None,
        source: Address,
        now: float,
        ha1_lookup: Ha1Lookup,
    ) -> DigestVerdict:
        """Verify the Authorization (or Proxy-Authorization) values of a request.

        Only a value for our realm counts: a request may carry credentials for other realms
        on its way (RFC 3261 §22.3). `expected_user` is the user the credentials must name
        (the REGISTER's To user, the INVITE's From user, a trunk's user name); None accepts
        whichever user `ha1_lookup` knows.
        """
        credentials: auth.DigestCredentials | None = None
        parse_error = ""
        for value in credentials_values:
            try:
                parsed = auth.parse_credentials(value)
            except auth.AuthParseError as exc:
                parse_error = parse_error or exc.reason
                continue
            if parsed.realm == self.realm:
                credentials = parsed
                break
        if credentials is None:
            if parse_error:
                return DigestVerdict(DigestOutcome.MALFORMED, reason=parse_error)
            return _CHALLENGE
        nonce_state = self.nonces.check(credentials.nonce, now, source.host)
        if nonce_state is auth.NonceStatus.INVALID:
            return _CHALLENGE
        if nonce_state is auth.NonceStatus.STALE:
            return _STALE
        result = auth.verify(
            credentials, method, ha1_lookup, self.nonces, self.counts, now, self.realm,
            bound=source.host,
        )
        if result is auth.AuthResult.STALE:
            return _STALE
        if result is auth.AuthResult.REPLAY:
            # A reused nonce count: the right password, but this exact answer was seen. Ask
            # again instead of counting it as a failure (a confused UA is not an attacker).
            return _CHALLENGE
        if result is not auth.AuthResult.OK:
            return self._failed(credentials.username, "wrong credentials", source, now)
        if expected_user is not None and credentials.username != expected_user:
            return self._failed(
                credentials.username, f"authenticated as {credentials.username!r}, "
                f"not {expected_user!r}", source, now)
        self.guard.record_success(source.host, now)
        return DigestVerdict(DigestOutcome.PASSED, username=credentials.username)

    def _failed(self, username: str, reason: str, source: Address, now: float) -> DigestVerdict:
        ban = self.guard.record_failure(source.host, now)
        return DigestVerdict(DigestOutcome.FAILED, username=username, reason=reason, ban=ban)
