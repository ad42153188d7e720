"""SIP call legs: one INVITE dialog each, translated into call-control events — L2, pure.

Theory of operation
-------------------
A B2BUA call is two independent legs. `InboundLeg` is the UAS side of an INVITE we received
(the carrier's or an agent's call); `OutboundLeg` the UAC side of an INVITE we send (ringing an
agent's phone, or a number through the trunk). Each leg takes the SIP events the endpoint
reports for its dialog (`on_request`, `on_response`, `on_timeout`) and the call-control layer's
orders (`ring`, `answer`, `reject`, `hangup`, `reinvite`, `answer_reinvite`), and returns a
list of actions: `SipAction`s for the endpoint (respond, send in a new client transaction, send
statelessly) and call events from `pbx.call.events` for the layer above. Time arrives as `now`;
the 2xx retransmission timer of §13.3.1.4 is the leg's one deadline (`next_deadline`).

States are an Enum with a transition table; `_set_state` refuses anything else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from pbx.call.events import Answered, DtmfReceived, Failed, HungUp, Ringing
from pbx.errors import LocalProtocolError
from pbx.sip import auth
from pbx.sip.dialog import Dialog
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response, make_response
from pbx.sip.transaction import ClientTransaction, ServerTransaction
from pbx.sip.uri import NameAddr, SipUri

SDP = "application/sdp"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"


class LegState(enum.Enum):
    OFFERED = "offered"  # inbound: INVITE received / outbound: INVITE sent
    RINGING = "ringing"  # a provisional response was sent / received
    ANSWERED = "answered"  # inbound: 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    CANCELLING = "cancelling"  # outbound: CANCEL sent, waiting for the final response
    TERMINATED = "terminated"


L = LegState
INBOUND_TABLE = frozenset({
    (L.OFFERED, L.RINGING), (L.OFFERED, L.ANSWERED), (L.RINGING, L.ANSWERED),
    (L.OFFERED, L.TERMINATED), (L.RINGING, L.TERMINATED), (L.ANSWERED, L.CONFIRMED),
    (L.ANSWERED, L.TERMINATED), (L.CONFIRMED, L.TERMINATED),
})
OUTBOUND_TABLE = frozenset({
    (L.OFFERED, L.RINGING), (L.OFFERED, L.CONFIRMED), (L.RINGING, L.CONFIRMED),
    (L.OFFERED, L.CANCELLING), (L.RINGING, L.CANCELLING), (L.OFFERED, L.TERMINATED),
    (L.RINGING, L.TERMINATED), (L.CANCELLING, L.TERMINATED), (L.CONFIRMED, L.TERMINATED),
})

# DTMF relay via SIP INFO (application/dtmf-relay "Signal=5", application/dtmf "5").
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class Respond:
    transaction: ServerTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Send `request` in a new client transaction; `leg` gets the responses."""

    request: Request
    destination: Address
    leg: str


@dataclass(frozen=True, slots=True)
class SendStateless:
    message: Request | Response
    destination: Address


@dataclass(frozen=True, slots=True)
class RemoteOffer:
    """The far end sent a re-INVITE (hold, resume, codec change): the layer above updates the
    media session and answers with `answer_reinvite`."""

    call: str
    sdp: bytes
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class RemoteAnswer:
    """The SDP answer of the far end (to our INVITE or re-INVITE)."""

    call: str
    sdp: bytes


SipAction = Respond | SendRequest | SendStateless
Action = object


class Network(Protocol):
    """What a leg needs to know about our side of the wire."""

    def new_branch(self) -> str: ...

    def new_tag(self) -> str: ...

    def local_contact(self, transport: str) -> str: ...

    def local_via(self, transport: str) -> tuple[str, int, str]: ...


class Leg:
    """What both kinds of legs share."""

    TABLE: frozenset[tuple[LegState, LegState]] = frozenset()

    def __init__(self, call: str, network: Network, t1: float, t2: float) -> None:
        self.call = call
        self.net = network
        self.state = L.OFFERED
        self.dialog: Dialog | None = None
        self.peer: Address | None = None
        self.t1 = t1
        self.t2 = t2
        self.end_cause = ""
        self.remote_sdp = b""

    def _set_state(self, new: LegState) -> None:
        if (self.state, new) not in self.TABLE:
            raise LocalProtocolError(f"{type(self).__name__} {self.call}: "
                                     f"illegal {self.state.value} -> {new.value}")
        self.state = new

    @property
    def ended(self) -> bool:
        return self.state is L.TERMINATED

    def on_request(self, request: Request, tx: ServerTransaction | None,
                   now: float) -> list[Action]:
        raise NotImplementedError

    def hangup(self, cause: str = "normal") -> list[Action]:
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def _bye(self, cause: str) -> list[Action]:
        assert self.dialog is not None and self.peer is not None
        bye = self.dialog.make_request("BYE", self.net.new_branch())
        bye.headers.add("Reason", f'SIP;cause=200;text="{cause}"')
        self._set_state(L.TERMINATED)
        self.end_cause = cause
        return [SendRequest(bye, self._route(), self.call),
                HungUp(self.call, by="local", cause=cause)]

    def _route(self) -> Address:
        """Where in-dialog requests go: the remote target (our peers set no route sets that
        would change the next hop for a UA directly attached to us)."""
        assert self.dialog is not None and self.peer is not None
        target = self.dialog.remote_target
        transport = self.peer.transport
        if transport == "udp":
            return Address("udp", target.host, target.port or 5060)
        return self.peer  # reuse the connection for TCP

    def _in_dialog(self, request: Request, tx: ServerTransaction | None) -> list[Action]:
        """BYE, re-INVITE, INFO, OPTIONS and UPDATE inside an established dialog."""
        assert self.dialog is not None
        method = request.method
        if tx is None:
            return []
        if not self.dialog.accepts(request):
            return [Respond(tx, make_response(request, 500, "CSeq out of order"))]
        if method == "BYE":
            actions: list[Action] = [Respond(tx, make_response(request, 200))]
            if self.state is not L.TERMINATED:
                self._set_state(L.TERMINATED)
                self.end_cause = "normal"
                actions.append(HungUp(self.call, by="remote", cause="normal"))
            return actions
        if method == "INVITE":
            self.dialog.update_target(request)
            return [RemoteOffer(self.call, request.body, tx)]
        if method == "INFO":
            return self._info(request, tx)
        if method in ("OPTIONS", "UPDATE", "PRACK"):
            # PRACK is tolerated (we never ask for reliable provisionals, RFC 3262).
            response = make_response(request, 200)
            response.headers.add("Allow", ALLOW)
            return [Respond(tx, response)]
        return [Respond(tx, make_response(request, 405))]

    def _info(self, request: Request, tx: ServerTransaction) -> list[Action]:
        digit = _dtmf_from_info(request)
        actions: list[Action] = [Respond(tx, make_response(request, 200))]
        if digit is not None:
            actions.append(DtmfReceived(self.call, digit, source="info"))
        return actions

    def answer_reinvite(self, tx: ServerTransaction, sdp: bytes) -> list[Action]:
        assert self.dialog is not None
        response = make_response(tx.request or Request("INVITE", ""), 200,
                                 to_tag=self.dialog.local_tag)
        response.headers.add("Contact", self.dialog.contact)
        response.headers.add("Content-Type", SDP)
        response.body = sdp
        return [Respond(tx, response)]


class InboundLeg(Leg):
    """The UAS side of a received INVITE. See the module docstring."""

    TABLE = INBOUND_TABLE

    def __init__(self, call: str, network: Network, invite: Request, tx: ServerTransaction,
                 source: Address, t1: float = 0.5, t2: float = 4.0) -> None:
        super().__init__(call, network, t1, t2)
        self.invite = invite
        self.tx = tx
        self.peer = source
        self.local_tag = network.new_tag()
        self.remote_sdp = invite.body
        self._ok: Response | None = None
        self._ok_interval = t1
        self._ok_next: float | None = None
        self._ok_give_up: float | None = None
        # RFC 4028: when the caller asks for a session timer and supports it, it refreshes and
        # we end the call if the refreshes stop (a dead carrier leg must not stay up forever).
        self.session_interval = _session_interval(invite)
        self._session_deadline: float | None = None

    def _response(self, status: int, reason: str = "", sdp: bytes = b"") -> Response:
        response = make_response(self.invite, status, reason, to_tag=self.local_tag)
        if 100 < status < 300:
            response.headers.add("Contact", self.net.local_contact(self._transport))
            response.headers.add("Allow", ALLOW)
        if sdp:
            response.headers.add("Content-Type", SDP)
            response.body = sdp
        return response

    @property
    def _transport(self) -> str:
        assert self.peer is not None
        return self.peer.transport

    # --------------------------------------------------------------- orders from above

    def ring(self, sdp: bytes = b"") -> list[Action]:
        """180 Ringing, or 183 Session Progress with early media when `sdp` is given."""
        if self.state is not L.OFFERED:
            return []
        self._set_state(L.RINGING)
        status = 183 if sdp else 180
        return [Respond(self.tx, self._response(status, sdp=sdp))]

    def answer(self, sdp: bytes, now: float) -> list[Action]:
        if self.state not in (L.OFFERED, L.RINGING):
            return []
        self._set_state(L.ANSWERED)
        self._ok = self._response(200, sdp=sdp)
        if self.session_interval:
            self._ok.headers.add("Session-Expires", f"{self.session_interval};refresher=uac")
            self._ok.headers.add("Require", "timer")
            self._session_deadline = now + self.session_interval
        self.dialog = Dialog.for_uas(self.invite, self.local_tag,
                                     self.net.local_contact(self._transport),
                                     self.net.local_via(self._transport))
        if self._transport == "udp":
            # §13.3.1.4: the UAS core retransmits its 2xx until the ACK arrives.
            self._ok_next = now + self._ok_interval
        self._ok_give_up = now + 64 * self.t1
        return [Respond(self.tx, self._ok)]

    def reject(self, status: int = 486, reason: str = "") -> list[Action]:
        if self.state not in (L.OFFERED, L.RINGING):
            return []
        self._set_state(L.TERMINATED)
        self.end_cause = f"rejected {status}"
        return [Respond(self.tx, self._response(status, reason))]

    def hangup(self, cause: str = "normal", status: int = 480) -> list[Action]:
        """End the leg from our side: reject if unanswered, BYE if answered."""
        if self.state in (L.OFFERED, L.RINGING):
            actions = self.reject(status, cause)
            return [*actions, HungUp(self.call, by="local", cause=cause)]
        if self.state in (L.ANSWERED, L.CONFIRMED):
            self._ok_next = self._ok_give_up = None
            return self._bye(cause)
        return []

    # --------------------------------------------------------------- SIP from the far end

    def on_request(self, request: Request, tx: ServerTransaction | None,
                   now: float) -> list[Action]:
        method = request.method
        if method == "ACK":
            if self.state is L.ANSWERED:
                self._set_state(L.CONFIRMED)
                self._ok_next = self._ok_give_up = None
                return [Answered(self.call)]
            return []
        if method == "CANCEL" and tx is not None:
            actions: list[Action] = [Respond(tx, make_response(request, 200))]
            if self.state in (L.OFFERED, L.RINGING):
                self._set_state(L.TERMINATED)
                self.end_cause = "cancel"
                actions.append(Respond(self.tx, self._response(487)))
                actions.append(HungUp(self.call, by="remote", cause="cancel"))
            return actions
        if self.dialog is None:
            if tx is not None:
                return [Respond(tx, make_response(request, 481))]
            return []
        if method == "BYE" and self.state is L.ANSWERED:
            self._ok_next = self._ok_give_up = None  # a BYE before the ACK also confirms
        if method in ("INVITE", "UPDATE") and self._session_deadline is not None:
            self._session_deadline = now + self.session_interval  # §10: a refresh
        return self._in_dialog(request, tx)

    def next_deadline(self) -> float | None:
        times = [t for t in (self._ok_next, self._ok_give_up, self._session_deadline)
                 if t is not None and not self.ended]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[Action]:
        if (self._session_deadline is not None and now >= self._session_deadline
                and self.state is L.CONFIRMED):
            # RFC 4028 §10: no refresh before the session expired: end it with a BYE.
            self._session_deadline = None
            return self._bye("session timer expired")
        if self.state is not L.ANSWERED:
            return []
        if self._ok_give_up is not None and now >= self._ok_give_up:
            # §13.3.1.4: no ACK within 64*T1: confirm and end the session with a BYE.
            self._ok_next = self._ok_give_up = None
            self._set_state(L.CONFIRMED)
            return self._bye("no ACK")
        if self._ok_next is not None and now >= self._ok_next and self._ok is not None:
            self._ok_interval = min(self._ok_interval * 2, self.t2)
            self._ok_next = now + self._ok_interval
            return [Respond(self.tx, self._ok)]
        return []


class OutboundLeg(Leg):
    """The UAC side of an INVITE we send to `target` (an agent's contact or the trunk)."""

    TABLE = OUTBOUND_TABLE

    def __init__(self, call: str, network: Network, target: SipUri, destination: Address,
                 from_addr: NameAddr, to_addr: NameAddr, sdp: bytes, now: float,
                 extra_headers: tuple[tuple[str, str], ...] = (), t1: float = 0.5,
                 t2: float = 4.0, call_id: str | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        super().__init__(call, network, t1, t2)
        self.credentials = credentials
        self._answered_nonces: set[str] = set()
        self.peer = destination
        self.target = target
        transport = destination.transport
        self.local_tag = network.new_tag()
        invite = Request("INVITE", str(target), body=sdp)
        h = invite.headers
        host, port, proto = network.local_via(transport)
        via_host = f"[{host}]" if ":" in host else host
        h.add("Via", f"SIP/2.0/{proto} {via_host}:{port};branch={network.new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", str(from_addr.with_tag(self.local_tag)))
        h.add("To", str(to_addr))
        h.add("Call-ID", call_id or f"{network.new_tag()}{network.new_tag()}")
        h.add("CSeq", "1 INVITE")
        h.add("Contact", network.local_contact(transport))
        h.add("Allow", ALLOW)
        for name, value in extra_headers:
            h.add(name, value)
        h.add("Content-Type", SDP)
        self.invite = invite
        self.tx: ClientTransaction | None = None
        self.provisional_seen = False
        self.cancel_pending = False
        self.status = 0

    def start(self) -> list[Action]:
        assert self.peer is not None
        return [SendRequest(self.invite, self.peer, self.call)]

    def cancel(self, cause: str = "cancel") -> list[Action]:
        """Stop ringing: CANCEL (§9.1) once a provisional response has arrived."""
        if self.state not in (L.OFFERED, L.RINGING):
            return self.hangup(cause) if self.state is L.CONFIRMED else []
        self._set_state(L.CANCELLING)
        self.end_cause = cause
        if not self.provisional_seen:
            self.cancel_pending = True
            return []
        return [self._cancel_request()]

    def _cancel_request(self) -> SendRequest:
        assert self.peer is not None
        cancel = Request("CANCEL", self.invite.uri)
        src = self.invite.headers
        for name in ("via", "max-forwards", "from", "to", "call-id"):
            value = src.get(name)
            if value is not None:
                cancel.headers.add(name, value)
        cancel.headers.add("CSeq", f"{self.invite.cseq.number} CANCEL")
        cancel.headers.add("Reason", 'SIP;cause=200;text="Call completed elsewhere"')
        return SendRequest(cancel, self.peer, self.call)

    def hangup(self, cause: str = "normal") -> list[Action]:
        if self.state in (L.OFFERED, L.RINGING):
            return self.cancel(cause)
        if self.state is L.CONFIRMED:
            return self._bye(cause)
        return []

    def on_response(self, response: Response, now: float) -> list[Action]:
        if response.cseq.method != "INVITE":
            return []  # responses to our BYE/CANCEL/INFO need nothing more
        status = response.status
        actions: list[Action] = []
        if status < 200:
            if status > 100:
                self.provisional_seen = True
            if self.state is L.CANCELLING and self.cancel_pending and status > 100:
                self.cancel_pending = False
                return [self._cancel_request()]
            if self.state is L.OFFERED and status > 100:
                self._set_state(L.RINGING)
                early = bool(response.body)
                if early:
                    actions.append(RemoteAnswer(self.call, response.body))
                actions.append(Ringing(self.call, early_media=early))
            return actions
        if status < 300:
            return self._on_2xx(response)
        if status in (401, 407) and self.state in (L.OFFERED, L.RINGING):
            retry = self._authenticate(response)
            if retry is not None:
                return [retry]
        if self.state in (L.OFFERED, L.RINGING, L.CANCELLING):
            was_cancelled = self.state is L.CANCELLING
            self._set_state(L.TERMINATED)
            self.status = status
            if was_cancelled:
                return [HungUp(self.call, by="local", cause=self.end_cause or "cancel")]
            return [Failed(self.call, status, response.reason)]
        return []

    def _authenticate(self, response: Response) -> SendRequest | None:
        """Answer a carrier's 401/407 to our INVITE once per nonce (RFC 3261 §22.2)."""
        if self.credentials is None or self.peer is None:
            return None
        header = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        challenge = auth.preferred_challenge(response.headers.get_all(header))
        if challenge is None or challenge.nonce in self._answered_nonces:
            return None
        self._answered_nonces.add(challenge.nonce)
        username, password = self.credentials
        invite = Request("INVITE", self.invite.uri, body=self.invite.body)
        cseq = self.invite.cseq.number + 1
        for key, name, value in self.invite.headers._items:
            if key == "via":
                host, port, proto = self.net.local_via(self.peer.transport)
                via_host = f"[{host}]" if ":" in host else host
                value = f"SIP/2.0/{proto} {via_host}:{port};branch={self.net.new_branch()};rport"
            elif key == "cseq":
                value = f"{cseq} INVITE"
            elif key in ("authorization", "proxy-authorization"):
                continue
            invite.headers._items.append((key, name, value))
        value = auth.build_authorization(challenge, username, password, "INVITE",
                                         self.invite.uri, self.net.new_tag(), 1)
        invite.headers.add("Authorization" if response.status == 401 else "Proxy-Authorization",
                           value)
        self.invite = invite
        self.provisional_seen = False
        return SendRequest(invite, self.peer, self.call)

    def _on_2xx(self, response: Response) -> list[Action]:
        assert self.peer is not None
        if self.dialog is None:
            self.dialog = Dialog.for_uac(self.invite, response,
                                         self.net.local_contact(self.peer.transport),
                                         self.net.local_via(self.peer.transport))
        ack = self.dialog.make_ack(self.invite.cseq.number, self.net.new_branch())
        actions: list[Action] = [SendStateless(ack, self._route())]
        if self.state in (L.OFFERED, L.RINGING):
            self._set_state(L.CONFIRMED)
            self.status = response.status
            self.remote_sdp = response.body
            actions += [RemoteAnswer(self.call, response.body), Answered(self.call)]
        elif self.state is L.CANCELLING:
            # The 200 crossed our CANCEL (§9.1): acknowledge it and end the call at once.
            self.state = L.CONFIRMED
            actions += self._bye(self.end_cause or "cancel")[:1]
            actions.append(HungUp(self.call, by="local", cause=self.end_cause or "cancel"))
        return actions

    def on_timeout(self) -> list[Action]:
        if self.state in (L.OFFERED, L.RINGING, L.CANCELLING):
            self._set_state(L.TERMINATED)
            return [Failed(self.call, 408, "Request Timeout")]
        return []

    def on_request(self, request: Request, tx: ServerTransaction | None,
                   now: float) -> list[Action]:
        if self.dialog is None:
            if tx is not None:
                return [Respond(tx, make_response(request, 481))]
            return []
        if request.method == "ACK":
            return []
        return self._in_dialog(request, tx)


def _session_interval(invite: Request) -> int:
    """The session interval to run (RFC 4028 §9): the caller's Session-Expires when it supports
    timers and asks for at least the 90 s minimum, else none."""
    value = invite.headers.get("session-expires")
    supported = ",".join(invite.headers.get_all("supported")).lower()
    if value is None or "timer" not in supported:
        return 0
    seconds = value.split(";", 1)[0].strip()
    return int(seconds) if seconds.isdigit() and int(seconds) >= 90 else 0


def _dtmf_from_info(request: Request) -> str | None:
    content_type = (request.headers.get("content-type") or "").lower()
    text = request.body.decode("utf-8", "replace").strip()
    if content_type.startswith("application/dtmf-relay"):
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                digit = value.strip().upper()
                return digit if digit in _DTMF_DIGITS else None
        return None
    if content_type.startswith("application/dtmf"):
        digit = text.upper()
        return digit if digit in _DTMF_DIGITS else None
    return None
