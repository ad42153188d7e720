"""The outbound SIP call leg: the UAC side of an INVITE we send — L2, pure.

Theory of operation: `pbx.call.leg`.
"""

from __future__ import annotations

from pbx.call.events import Answered, Failed, HungUp, Ringing
from pbx.call.leg import Leg, LegState, _allowed
from pbx.call.leg_events import (
    ALLOW,
    SDP,
    SUPPORTED,
    Action,
    Network,
    RemoteAnswer,
    Respond,
    SendRequest,
    SendStateless,
)
from pbx.call.session_timer import MIN_SE, SessionExpires, min_se, terms_as_uac
from pbx.sip import auth
from pbx.sip.dialog import Dialog
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response, make_response
from pbx.sip.transaction import ClientTransaction, ServerTransaction
from pbx.sip.uri import NameAddr, SipUri

L = LegState
OUTBOUND_TABLE = frozenset({
    (L.OFFERED, L.RINGING), (L.OFFERED, L.CONFIRMED), (L.RINGING, L.CONFIRMED),
    (L.OFFERED, L.CANCELLING), (L.RINGING, L.CANCELLING), (L.OFFERED, L.TERMINATED),
    (L.RINGING, L.TERMINATED), (L.CANCELLING, L.TERMINATED), (L.CONFIRMED, L.TERMINATED),
})


class OutboundLeg(Leg):
    """The UAC side of an INVITE we send to `target` (an agent's contact or the trunk).
    `session_expires` (seconds, 0: none) asks for an RFC 4028 session timer in the INVITE;
    the timer runs whenever the 2xx carries Session-Expires."""

    TABLE = OUTBOUND_TABLE
    OWNS_CALL_ID = True

    def __init__(self, call: str, network: Network, target: SipUri, destination: Address,
                 from_addr: NameAddr, to_addr: NameAddr, sdp: bytes, now: float,
                 extra_headers: tuple[tuple[str, str], ...] = (), t1: float = 0.5,
                 t2: float = 4.0, call_id: str | None = None,
                 credentials: tuple[str, str] | None = None, session_expires: int = 0) -> None:
        super().__init__(call, network, t1, t2)
        self.credentials = credentials
        self._answered_nonces: set[str] = set()
        self.peer = destination
        self.target = target
        transport = destination.transport
        self.local_tag = network.new_tag()
        self._early_tag: str | None = None  # the To tag of a provisional response
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
        h.add("Supported", SUPPORTED)
        if session_expires:
            h.add("Session-Expires", str(max(session_expires, MIN_SE)))  # RFC 4028 §7.1
        for name, value in extra_headers:
            h.add(name, value)
        h.add("Content-Type", SDP)
        self.invite = invite
        self.local_sdp = sdp
        self.tx: ClientTransaction | None = None
        self.provisional_seen = False
        self.cancel_pending = False
        self.status = 0

    def _dialog_tags(self) -> tuple[str, str, str | None]:
        remote = self.dialog.remote_tag if self.dialog is not None else self._early_tag
        return (self.invite.call_id, self.local_tag, remote)

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
        cseq = response.cseq
        if cseq.method != "INVITE" or (self.dialog is not None
                                       and cseq.number > self.invite.cseq.number):
            return super().on_response(response, now)  # our in-dialog requests
        status = response.status
        actions: list[Action] = []
        if status < 200:
            if status > 100:
                self.provisional_seen = True
                self._early_tag = response.to_addr.tag or self._early_tag
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
            return self._on_2xx(response, now)
        if self.state in (L.OFFERED, L.RINGING):
            retry = (self._authenticate(response) if status in (401, 407)
                     else self._longer_session(response) if status == 422 else None)
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
        value = auth.build_authorization(challenge, username, password, "INVITE",
                                         self.invite.uri, self.net.new_tag(), 1)
        name = "Authorization" if response.status == 401 else "Proxy-Authorization"
        return self._reissue({"authorization", "proxy-authorization"}, [(name, value)])

    def _longer_session(self, response: Response) -> SendRequest | None:
        """A 422 to our INVITE: ask again with its Min-SE as interval (RFC 4028 §7.4)."""
        asked = SessionExpires.parse(self.invite.headers.get("session-expires"))
        floor = min_se(response)
        if asked is None or floor <= asked.interval:
            return None
        return self._reissue({"session-expires", "min-se"},
                             [("Session-Expires", str(floor)), ("Min-SE", str(floor))])

    def _reissue(self, drop: set[str], add: list[tuple[str, str]]) -> SendRequest:
        """The INVITE again in a new transaction: a new branch, the next CSeq, the `drop`ped
        headers replaced by `add` (§8.1.3.5)."""
        assert self.peer is not None
        invite = Request("INVITE", self.invite.uri, body=self.invite.body)
        cseq = self.invite.cseq.number + 1
        for key, name, value in self.invite.headers._items:
            if key == "via":
                host, port, proto = self.net.local_via(self.peer.transport)
                via_host = f"[{host}]" if ":" in host else host
                value = f"SIP/2.0/{proto} {via_host}:{port};branch={self.net.new_branch()};rport"
            elif key == "cseq":
                value = f"{cseq} INVITE"
            elif key in drop:
                continue
            invite.headers._items.append((key, name, value))
        for name, value in add:
            invite.headers.add(name, value)
        self.invite = invite
        self.provisional_seen = False
        return SendRequest(invite, self.peer, self.call)

    def _on_2xx(self, response: Response, now: float) -> list[Action]:
        assert self.peer is not None
        if self.dialog is None:
            self.dialog = Dialog.for_uac(self.invite, response,
                                         self.net.local_contact(self.peer.transport),
                                         self.net.local_via(self.peer.transport))
            self.peer_allow = _allowed(response)
        ack = self.dialog.make_ack(self.invite.cseq.number, self.net.new_branch())
        actions: list[Action] = [SendStateless(ack, self._route())]
        if self.state in (L.OFFERED, L.RINGING):
            self._set_state(L.CONFIRMED)
            self.status = response.status
            self.remote_sdp = response.body
            self.timer.apply(terms_as_uac(response, None), now)  # RFC 4028 §7.2
            actions += [RemoteAnswer(self.call, response.body), Answered(self.call)]
        elif self.state is L.CANCELLING:
            # The 200 crossed our CANCEL (§9.1): acknowledge it and end the call at once.
            self.state = L.CONFIRMED
            actions += self._bye(self.end_cause or "cancel")[:1]
            actions.append(HungUp(self.call, by="local", cause=self.end_cause or "cancel"))
        return actions

    def on_timeout(self, request: Request | None = None) -> list[Action]:
        """Timer B/F of one of our requests; no `request` (or our INVITE): the call failed."""
        initial = request is None or (request.method == "INVITE"
                                      and request.cseq.number <= self.invite.cseq.number)
        if not initial:
            return super().on_timeout(request)
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
        return self._in_dialog(request, tx, now)
