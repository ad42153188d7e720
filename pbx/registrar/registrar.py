"""The registrar (RFC 3261 §10.3) with digest authentication (RFC 7616, RFC 8760) — L2, pure.

`Registrar.handle_register(request, source, now)` returns a `RegisterOutcome`: the response to
send (None when the source is banned and the request is dropped), the AORs whose bindings
changed (for write-behind to storage) and events for higher layers (`RegistrationChanged`,
`SourceBanned`). `expire(now)` drops bindings past their expiry. `now` is wall-clock seconds.

Security: unknown users and wrong passwords get the same 403 after the same amount of work, so
extensions cannot be enumerated; every failed authentication counts against the source address
and too many within the window ban it (`AuthFailureGuard`). A nonce that is unknown to us (forged,
or issued before the nonce secret changed) is answered with a fresh challenge, not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pbx.registrar.bindings import LocationTable, same_contact
from pbx.registrar.digest import DigestAuthority, DigestOutcome, DigestVerdict, Ha1Lookup
from pbx.registrar.security import AuthFailureGuard
from pbx.repositories import Binding
from pbx.sip import auth
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import NameAddr, SipUri


@dataclass(frozen=True, slots=True)
class RegistrarSettings:
    domain: str
    min_expires: int = 60
    default_expires: int = 3600
    max_expires: int = 3600
    max_contacts: int = 10
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    extra_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """The bindings of `aor` changed. `reason`: registered, refreshed, unregistered, expired."""

    aor: str
    bindings: tuple[Binding, ...]
    reason: str
    source: Address | None = None


@dataclass(frozen=True, slots=True)
class SourceBanned:
    """Too many failed authentications from `host`; its requests are dropped until `until`."""

    host: str
    until: float
    failures: int


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    response: Response | None
    changes: dict[str, tuple[Binding, ...]] = field(default_factory=dict)
    events: tuple[object, ...] = ()


@dataclass(slots=True)
class RegistrarStats:
    registered: int = 0
    refreshed: int = 0
    unregistered: int = 0
    expired: int = 0
    challenges: int = 0
    stale_challenges: int = 0
    auth_failures: int = 0
    blocked: int = 0
    rejected: int = 0


class Registrar:
    """REGISTER processing. See the module docstring."""

    def __init__(
        self,
        settings: RegistrarSettings,
        ha1_lookup: Ha1Lookup,
        nonces: auth.NonceIssuer,
        guard: AuthFailureGuard,
        table: LocationTable | None = None,
    ) -> None:
        self.settings = settings
        self.ha1_lookup = ha1_lookup  # shared with the call side (pbx.registrar.callers)
        # Shared with the call side (INVITEs): one nonce key, one replay table, one ban list.
        self.digest = DigestAuthority(settings.domain, settings.algorithms, nonces, guard)
        self.table = table or LocationTable()
        self.stats = RegistrarStats()
        self._domains = {settings.domain.lower(), *(d.lower() for d in settings.extra_domains)}

    def is_banned(self, host: str, now: float) -> bool:
        """Whether requests from `host` (any method) are dropped unanswered at `now` (wall);
        each one dropped counts in `stats.blocked`."""
        if self.digest.is_banned(host, now):
            self.stats.blocked += 1
            return True
        return False

    # ------------------------------------------------------------------ REGISTER

    def handle_register(self, request: Request, source: Address, now: float) -> RegisterOutcome:
        if self.digest.is_banned(source.host, now):
            self.stats.blocked += 1
            return RegisterOutcome(None)
        try:
            aor_uri = request.to_addr.uri
        except ValueError:
            return self._reject(request, 400, "bad To header")
        if aor_uri is None or not aor_uri.user:
            return self._reject(request, 404, "To must be a sip: URI with a user part")
        if not self._serves(request):
            return self._reject(request, 404, "domain not served here")
        verdict = self.digest.check(
            request.headers.get_all("authorization"),
            request.method,
            aor_uri.user,
            source,
            now,
            self.ha1_lookup,
        )
        if verdict.outcome is DigestOutcome.CHALLENGE:
            if verdict.stale:
                self.stats.stale_challenges += 1
            return self._challenge(request, source, now, stale=verdict.stale)
        if verdict.outcome is DigestOutcome.MALFORMED:
            return self._reject(request, 400, f"bad Authorization: {verdict.reason}")
        if verdict.outcome is DigestOutcome.FAILED:
            return self._auth_failed(request, verdict)
        return self._save(request, aor_uri.user, source, now)

    def _serves(self, request: Request) -> bool:
        try:
            host = request.parsed_uri.host.lower()
        except ValueError:
            return False
        return host in self._domains or _is_ip_literal(host)

    def _challenge(
        self, request: Request, source: Address, now: float, stale: bool
    ) -> RegisterOutcome:
        self.stats.challenges += 1
        response = make_response(request, 401, to_tag=_to_tag(request))
        for value in self.digest.challenge_values(source, now, stale):
            response.headers.add("WWW-Authenticate", value)
        return RegisterOutcome(response)

    def _auth_failed(self, request: Request, verdict: DigestVerdict) -> RegisterOutcome:
        self.stats.auth_failures += 1
        events: tuple[object, ...] = ()
        if verdict.ban is not None:
            ban = verdict.ban
            events = (SourceBanned(ban.host, ban.until, ban.failures),)
        response = make_response(request, 403, "Forbidden", to_tag=_to_tag(request))
        return RegisterOutcome(response, events=events)

    def _reject(self, request: Request, status: int, reason: str) -> RegisterOutcome:
        self.stats.rejected += 1
        return RegisterOutcome(make_response(request, status, reason, to_tag=_to_tag(request)))

    # ------------------------------------------------------------------ bindings (§10.3 6–8)

    def _save(self, request: Request, aor: str, source: Address, now: float) -> RegisterOutcome:
        contact_values = request.headers.get_all("contact")
        current = self.table.current(aor, now)
        if not contact_values:
            return RegisterOutcome(self._ok(request, current, now))  # a query (§10.2.3)
        header_expires = _int_or_none(request.headers.get("expires"))
        if any(v.strip() == "*" for v in contact_values):
            # §10.3 step 6: "*" only alone and only with Expires: 0.
            if len(contact_values) != 1 or header_expires != 0:
                return self._reject(request, 400, "Contact * needs Expires: 0 and no other")
            return self._store(request, aor, [], current, source, now, "unregistered")
        try:
            contacts = [NameAddr.parse(v) for v in contact_values]
        except ValueError as exc:
            return self._reject(request, 400, f"bad Contact: {exc}")
        call_id = request.call_id
        cseq = request.cseq.number
        updated = list(current)
        for contact in contacts:
            if contact.uri is None:
                return self._reject(request, 400, "Contact must be a sip: URI")
            expires = _int_or_none(contact.params.get("expires"))
            if expires is None:
                expires = header_expires
            if expires is None:
                expires = self.settings.default_expires
            if 0 < expires < self.settings.min_expires:
                return self._interval_too_brief(request)
            expires = min(expires, self.settings.max_expires)
            instance = (contact.params.get("+sip.instance") or "").strip('"')
            reg_id = _int_or_none(contact.params.get("reg-id")) or 0
            match = next(
                (b for b in updated if same_contact(b, contact.uri, instance, reg_id)), None
            )
            if match is not None:
                if match.call_id == call_id and match.cseq >= cseq:
                    return self._reject(request, 500, "CSeq out of order for this binding")
                updated.remove(match)
            if expires == 0:
                continue
            updated.append(
                Binding(
                    aor=aor,
                    contact=str(contact.uri),
                    expires_at=now + expires,
                    call_id=call_id,
                    cseq=cseq,
                    q=_q_value(contact.params.get("q")),
                    source_transport=source.transport,
                    source_host=source.host,
                    source_port=source.port,
                    user_agent=request.headers.get("user-agent") or "",
                    instance_id=instance,
                    reg_id=reg_id,
                    path=",".join(request.headers.get_all("path")),
                )
            )
        if len(updated) > self.settings.max_contacts:
            # Keep the newest: a phone that rebooted must not be locked out by its old contacts.
            updated.sort(key=lambda b: b.expires_at)
            updated = updated[-self.settings.max_contacts :]
        reason = _reason(current, updated)
        return self._store(request, aor, updated, current, source, now, reason)

    def _store(
        self,
        request: Request,
        aor: str,
        updated: list[Binding],
        current: Sequence[Binding],
        source: Address,
        now: float,
        reason: str,
    ) -> RegisterOutcome:
        self.table.replace(aor, updated)
        if reason == "registered":
            self.stats.registered += 1
        elif reason == "refreshed":
            self.stats.refreshed += 1
        else:
            self.stats.unregistered += 1
        bindings = tuple(updated)
        event = RegistrationChanged(aor, bindings, reason, source)
        return RegisterOutcome(self._ok(request, updated, now), {aor: bindings}, (event,))

    def _ok(self, request: Request, bindings: Sequence[Binding], now: float) -> Response:
        response = make_response(request, 200, to_tag=_to_tag(request))
        for b in bindings:
            remaining = max(0, int(b.expires_at - now + 0.5))
            response.headers.add("Contact", f"<{b.contact}>;expires={remaining}")
        return response

    def _interval_too_brief(self, request: Request) -> RegisterOutcome:
        self.stats.rejected += 1
        response = make_response(request, 423, to_tag=_to_tag(request))
        response.headers.add("Min-Expires", str(self.settings.min_expires))
        return RegisterOutcome(response)

    # ------------------------------------------------------------------ housekeeping

    def expire(self, now: float) -> tuple[dict[str, tuple[Binding, ...]], list[object]]:
        changes = self.table.expire(now)
        self.stats.expired += len(changes)
        events: list[object] = [RegistrationChanged(a, b, "expired") for a, b in changes.items()]
        self.digest.guard.expire(now)
        return changes, events

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Current bindings of `aor`, highest q first (RFC 3261 §16.6)."""
        return sorted(self.table.current(aor, now), key=lambda b: -b.q)


def _to_tag(request: Request) -> str:
    # A registrar's To tag only needs to be stable per request; derive it from the Call-ID and
    # CSeq so a retransmitted REGISTER answered statelessly gets the same tag.
    return format(hash((request.call_id, request.cseq.number)) & 0xFFFFFFFF, "08x")


def _reason(before: Sequence[Binding], after: Sequence[Binding]) -> str:
    if not after:
        return "unregistered"
    known = {b.contact for b in before}
    return "refreshed" if all(b.contact in known for b in after) and before else "registered"


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def _q_value(value: str | None) -> float:
    try:
        q = float(value) if value else 1.0
    except ValueError:
        return 1.0
    return min(1.0, max(0.0, q))


def _is_ip_literal(host: str) -> bool:
    if ":" in host:
        return True
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


__all__ = [
    "RegisterOutcome",
    "Registrar",
    "RegistrarSettings",
    "RegistrarStats",
    "RegistrationChanged",
    "SipUri",
    "SourceBanned",
]
