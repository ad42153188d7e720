"""Registering the PBX to a carrier trunk (RFC 3261 §10.2, digest per RFC 7616) — L2, pure.

`TrunkRegistration` is a small state machine: it sends REGISTER, answers a 401/407 challenge
once per nonce, keeps the binding fresh (re-registering at 80 % of the granted lifetime), and
after a failure retries with exponential back-off (30 s doubling to 10 min), so a carrier outage
neither floods the carrier nor leaves the trunk unregistered for long. `stop()` unregisters
(Expires: 0) once: if that fails or times out the trunk goes idle, it never retries with a full
Expires. It returns `SendRequest` actions and reads no clock: `now` comes in, `next_deadline()`
goes out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pbx.call.leg_events import Network, SendRequest
from pbx.errors import LocalProtocolError, SipParseError
from pbx.sip import auth
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response
from pbx.sip.uri import NameAddr

BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 600.0
REFRESH_FRACTION = 0.8


class RegState(enum.Enum):
    IDLE = "idle"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


R = RegState
TABLE = frozenset({
    (R.IDLE, R.REGISTERING), (R.REGISTERING, R.REGISTERED), (R.REGISTERING, R.FAILED),
    (R.REGISTERED, R.REGISTERING), (R.FAILED, R.REGISTERING), (R.REGISTERING, R.REGISTERING),
    (R.REGISTERED, R.IDLE), (R.FAILED, R.IDLE), (R.REGISTERING, R.IDLE),
})


@dataclass(frozen=True, slots=True)
class TrunkStatus:
    trunk: str
    state: str
    expires_at: float | None
    last_status: int
    last_error: str
    failures: int


class TrunkRegistration:
    """See the module docstring. `leg` names it in `SendRequest` so responses find it."""

    def __init__(self, trunk: str, network: Network, destination: Address, domain: str,
                 username: str, password: str, expires: int, call_id: str) -> None:
        self.trunk = trunk
        self.leg = f"trunkreg:{trunk}"
        self.net = network
        self.destination = destination
        self.domain = domain
        self.username = username
        self.password = password
        self.expires = expires
        self.call_id = call_id
        self.state = R.IDLE
        self.cseq = 0
        self.tag = network.new_tag()
        self.deadline: float | None = None
        self.expires_at: float | None = None
        self.failures = 0
        self.last_status = 0
        self.last_error = ""
        self._answered_nonce: str | None = None
        self._unregistering = False
        self._contact = ""  # the Contact of our last REGISTER, to find our binding in the 200

    def _set_state(self, new: RegState) -> None:
        if (self.state, new) not in TABLE:
            raise LocalProtocolError(f"trunk {self.trunk}: illegal {self.state} -> {new}")
        self.state = new

    def start(self, now: float) -> list[object]:
        self._set_state(R.REGISTERING)
        self._answered_nonce = None
        self._unregistering = False  # a new start() cancels an earlier stop()
        return [self._register(None, now)]

    def stop(self, now: float) -> list[object]:
        """Unregister (Expires: 0) if registered; no further refreshes."""
        was_registered = self.state is R.REGISTERED
        self._unregistering = True
        self.deadline = None
        if was_registered:
            self._set_state(R.REGISTERING)
            return [self._register(None, now, expires=0)]
        if self.state is not R.IDLE:
            self._set_state(R.IDLE)
        return []

    def _register(self, authorization: str | None, now: float, expires: int | None = None,
                  auth_header: str = "Authorization") -> SendRequest:
        self.cseq += 1
        uri = f"sip:{self.domain}"
        request = Request("REGISTER", uri)
        h = request.headers
        host, port, proto = self.net.local_via(self.destination.transport)
        via_host = f"[{host}]" if ":" in host else host
        h.add("Via", f"SIP/2.0/{proto} {via_host}:{port};branch={self.net.new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:{self.username}@{self.domain}>;tag={self.tag}")
        h.add("To", f"<sip:{self.username}@{self.domain}>")
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self.cseq} REGISTER")
        self._contact = self.net.local_contact(self.destination.transport).replace(
            "sip:pbx@", f"sip:{self.username}@")
        h.add("Contact", self._contact)
        h.add("Expires", str(self.expires if expires is None else expires))
        if authorization:
            h.add(auth_header, authorization)
        # A response is expected well within Timer F; the transaction reports a timeout.
        self.deadline = None
        return SendRequest(request, self.destination, self.leg)

    def on_response(self, request: Request | None, response: Response,
                    now: float) -> list[object]:
        if self.state is not R.REGISTERING or response.status < 200:
            return []
        if response.cseq.number != self.cseq:
            return []  # a late answer to a REGISTER we have since replaced
        status = response.status
        self.last_status = status
        if status in (401, 407):
            # RFC 3261 §22.3: a proxy's 407 is answered with Proxy-Authorization, a 401 with
            # Authorization.
            header, answer = (("www-authenticate", "Authorization") if status == 401
                              else ("proxy-authenticate", "Proxy-Authorization"))
            challenge = auth.preferred_challenge(response.headers.get_all(header))
            if challenge is None or challenge.nonce == self._answered_nonce:
                # Our answer to this very nonce was refused: the credentials are wrong.
                return self._fail("authentication refused", now)
            self._answered_nonce = challenge.nonce
            value = auth.build_authorization(challenge, self.username, self.password,
                                             "REGISTER", f"sip:{self.domain}",
                                             self.net.new_tag(), 1)
            expires = 0 if self._unregistering else None
            return [self._register(value, now, expires, answer)]
        if 200 <= status < 300:
            if self._unregistering:
                self._set_state(R.IDLE)
                self.expires_at = None
                return []
            granted = _granted_expires(response, self._contact, self.expires)
            self._set_state(R.REGISTERED)
            self.failures = 0
            self.last_error = ""
            self.expires_at = now + granted
            self.deadline = now + granted * REFRESH_FRACTION
            return []
        if status == 423 and not self._unregistering:  # §10.2.8; Expires: 0 is never too brief
            min_expires = response.headers.get("min-expires") or ""
            if min_expires.strip().isdigit():
                self.expires = int(min_expires)
                self._answered_nonce = None
                return [self._register(None, now)]
        return self._fail(f"{status} {response.reason}", now)

    def on_timeout(self, now: float) -> list[object]:
        if self.state is R.REGISTERING:
            return self._fail("no response (timeout)", now)
        return []

    def _fail(self, error: str, now: float) -> list[object]:
        self.expires_at = None
        if self._unregistering:
            # stop() promised no further REGISTERs: a back-off retry would register again with
            # the full Expires. The carrier drops our binding when it expires.
            self.last_error = f"unregistration failed: {error}"
            self._set_state(R.IDLE)
            self.deadline = None
            return []
        self.failures += 1
        self.last_error = error
        self._set_state(R.FAILED)
        backoff = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self.failures - 1))
        self.deadline = now + backoff
        return []

    def next_deadline(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> list[object]:
        if self.deadline is None or now < self.deadline:
            return []
        self.deadline = None
        if self.state in (R.REGISTERED, R.FAILED):
            self._set_state(R.REGISTERING)
            self._answered_nonce = None
            return [self._register(None, now)]
        return []

    def status(self) -> TrunkStatus:
        return TrunkStatus(self.trunk, self.state.value, self.expires_at, self.last_status,
                           self.last_error, self.failures)


def _granted_expires(response: Response, ours: str, asked: int) -> int:
    """The lifetime the registrar granted: our Contact's expires, else Expires, else asked.

    RFC 3261 §10.2.4: the 200 lists every binding of the AoR, each with its expires, so only the
    Contact whose URI equals ours (§19.1.4) speaks for our binding.
    """
    try:
        mine = NameAddr.parse(ours).uri
        contacts = response.contacts()
    except SipParseError:
        mine, contacts = None, []  # a garbled Contact: fall back to the Expires header
    for contact in contacts:
        if mine is None or contact.uri is None or not contact.uri.equivalent(mine):
            continue
        value = contact.params.get("expires")
        if value and value.isdigit():
            return max(1, int(value))
    header = response.headers.get("expires")
    if header and header.strip().isdigit():
        return max(1, int(header))
    return asked
