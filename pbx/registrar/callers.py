"""Who is placing a call: the check every dialog-creating INVITE passes first — L2, pure.

Theory of operation
-------------------
A call may come from two kinds of peer, and the PBX must know which before it spends anything
on the call (a leg, a media session, a trunk INVITE):

* **a carrier trunk**, recognised by its source address (`trunk_for(host)`, the trunk's
  `inbound_addresses`). A trunk configured with `inbound_auth` must also answer a digest
  challenge with the trunk's user name and password; otherwise the address is its credential.
* **an agent's phone**: a source from which a phone registered (`LocationTable.has_source`).
  The registration only says where the PBX *sends* calls and that this source is worth a
  challenge; it authorises nothing. The INVITE must answer a digest challenge with the
  credentials of the agent its From header names: 1001's password with From 1002 is refused
  (403), so one agent's phone cannot place calls, dial-plan rights or CDRs as another.

A phone's registered address wins over a trunk's (on one host, tests and small offices, phones
and the carrier share an address). A source that is neither gets a 403 without a challenge:
nobody there can have credentials we would accept, and a challenge would only tell a scanner
there is something to guess at.

The challenge is **407 Proxy-Authenticate** (RFC 3261 §22.3), not 401: for calls the PBX acts as
its phones' proxy into the telephone network, and 407 on INVITE is what Asterisk, FreeSWITCH
and Kamailio send, so it is what desk phones and softphones are tested against (PJSIP, SIPp and
every common UA answer both). REGISTER keeps its 401 (the registrar is the UAS, §10.3).

Everything this module answers is meant to go out **statelessly**, once per request received:
no transaction, no retransmission timer, no call, leg or media session. A lost 407 costs the
phone one INVITE retransmission, which gets a fresh challenge. The nonce itself is stateless
(`auth.NonceIssuer`); only a right answer stores its nonce count.

Digest failures (wrong password, unknown user, a user other than the From's) count against the
source in the same `AuthFailureGuard` as REGISTERs, through the shared `DigestAuthority`; a
banned source's INVITEs are dropped unanswered, like its REGISTERs (the endpoint already drops
them before any transaction, `SipEndpoint.admit`; the check here is the second line).

`CallerCheck.check(request, source, now)` returns a `CallerOutcome`; `now` is wall-clock
seconds (the nonces' clock).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pbx.errors import SipParseError
from pbx.registrar.bindings import LocationTable
from pbx.registrar.digest import DigestAuthority, DigestOutcome, Ha1Lookup
from pbx.registrar.registrar import SourceBanned
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response, make_response

__all__ = ["CallerCheck", "CallerOutcome", "CallerStats", "CallerVerdict", "TrunkSecret"]


@dataclass(frozen=True, slots=True)
class TrunkSecret:
    """What a trunk with `inbound_auth` must prove: its user name, and the HA1 of its password
    in our realm per base hash ("MD5", "SHA-256")."""

    username: str
    ha1: Mapping[str, str]

    def lookup(self, username: str, hash_name: str) -> str | None:
        return self.ha1.get(hash_name) if username == self.username else None


class CallerVerdict(enum.Enum):
    AGENT = "agent"  # an agent's phone that answered the challenge as its From user
    TRUNK = "trunk"  # a trunk, by address (and digest where it must)
    CHALLENGED = "challenged"  # 407: answer the challenge
    REFUSED = "refused"  # 403: a stranger, or a failed answer
    MALFORMED = "malformed"  # 400: a credential we cannot parse
    DROPPED = "dropped"  # a banned source: no answer at all


@dataclass(frozen=True, slots=True)
class CallerOutcome:
    """The verdict on one INVITE. `agent`/`trunk` name the caller when it is accepted;
    `response` (None when accepted or dropped) is to be sent statelessly; `reason` is for the
    log only (never told to the peer); `events` holds a `SourceBanned` when this INVITE's
    failure started a ban."""

    verdict: CallerVerdict
    agent: str | None = None
    trunk: str | None = None
    response: Response | None = None
    reason: str = ""
    events: tuple[object, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.verdict is CallerVerdict.AGENT or self.verdict is CallerVerdict.TRUNK


@dataclass(slots=True)
class CallerStats:
    """Counters since start, for /api/stats and benchmarks."""

    agents: int = 0  # INVITEs that proved to be their From agent's
    trunk_by_address: int = 0
    trunk_by_digest: int = 0
    challenges: int = 0
    stale_challenges: int = 0
    auth_failures: int = 0
    unknown_source: int = 0
    malformed: int = 0
    blocked: int = 0


@dataclass
class CallerCheck:
    """Decides, for each dialog-creating INVITE, who is calling. See the module docstring.

    `agent_ha1(user, hash_name)` is the registrar's credential lookup; `trunk_for(host)` the
    trunk whose inbound addresses hold `host`; `trunk_secrets` the trunks that must also answer
    a challenge, by name.
    """

    digest: DigestAuthority
    agent_ha1: Ha1Lookup
    table: LocationTable
    trunk_for: Callable[[str], str | None]
    trunk_secrets: Mapping[str, TrunkSecret] = field(default_factory=dict)
    stats: CallerStats = field(default_factory=CallerStats)

    def check(self, request: Request, source: Address, now: float) -> CallerOutcome:
        digest = self.digest
        if digest.is_banned(source.host, now):
            self.stats.blocked += 1
            return CallerOutcome(CallerVerdict.DROPPED, reason="source banned")
        if self.table.has_source(source.host, source.port):
            try:
                uri = request.from_addr.uri
            except (SipParseError, ValueError):
                uri = None
            claimed = (uri.user if uri is not None else None) or ""
            return self._prove(request, source, now, claimed, self.agent_ha1, trunk=None)
        trunk = self.trunk_for(source.host)
        if trunk is None:
            self.stats.unknown_source += 1
            return CallerOutcome(
                CallerVerdict.REFUSED,
                response=make_response(request, 403, "Forbidden", to_tag=stateless_tag(request)),
                reason="not from a trunk address or a registered agent phone",
            )
        secret = self.trunk_secrets.get(trunk)
        if secret is None:
            self.stats.trunk_by_address += 1
            return CallerOutcome(CallerVerdict.TRUNK, trunk=trunk)
        return self._prove(request, source, now, secret.username, secret.lookup, trunk=trunk)

    def _prove(
        self,
        request: Request,
        source: Address,
        now: float,
        user: str,
        ha1: Ha1Lookup,
        trunk: str | None,
    ) -> CallerOutcome:
        verdict = self.digest.check(
            request.headers.get_all("proxy-authorization"), request.method, user, source, now,
            ha1,
        )
        outcome = verdict.outcome
        if outcome is DigestOutcome.PASSED:
            if trunk is not None:
                self.stats.trunk_by_digest += 1
                return CallerOutcome(CallerVerdict.TRUNK, trunk=trunk)
            self.stats.agents += 1
            return CallerOutcome(CallerVerdict.AGENT, agent=verdict.username)
        tag = stateless_tag(request)
        if outcome is DigestOutcome.CHALLENGE:
            self.stats.challenges += 1
            self.stats.stale_challenges += verdict.stale
            response = make_response(request, 407, to_tag=tag)
            for value in self.digest.challenge_values(source, now, verdict.stale):
                response.headers.add("Proxy-Authenticate", value)
            return CallerOutcome(CallerVerdict.CHALLENGED, trunk=trunk, response=response,
                                 reason="stale nonce" if verdict.stale else "no credentials")
        if outcome is DigestOutcome.MALFORMED:
            self.stats.malformed += 1
            reason = f"bad Proxy-Authorization: {verdict.reason}"
            return CallerOutcome(CallerVerdict.MALFORMED, trunk=trunk, reason=reason,
                                 response=make_response(request, 400, reason[:120], to_tag=tag))
        self.stats.auth_failures += 1
        ban = verdict.ban
        events: tuple[object, ...] = ()
        if ban is not None:
            events = (SourceBanned(ban.host, ban.until, ban.failures),)
        return CallerOutcome(
            CallerVerdict.REFUSED, trunk=trunk, reason=verdict.reason, events=events,
            response=make_response(request, 403, "Forbidden", to_tag=tag),
        )


def stateless_tag(request: Request) -> str:
    """The To tag of a stateless answer: the same for a retransmission of the same request
    (RFC 3261 §8.2.6.2: stable per request), different per request."""
    key = (request.call_id, request.headers.get("from"), request.headers.get("cseq"))
    return format(hash(key) & 0xFFFFFFFF, "08x")
