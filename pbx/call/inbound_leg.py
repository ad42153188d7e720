"""The inbound SIP call leg: the UAS side of an INVITE we received — L2, pure.

Theory of operation: `pbx.call.leg`.
"""

from __future__ import annotations

from pbx.call.events import Answered, HungUp
from pbx.call.leg import Leg, LegState, _advertise, _allowed
from pbx.call.leg_events import SDP, Action, Network, RemoteAnswer, Respond
from pbx.call.refer import parse_replaces
from pbx.call.session_timer import SessionTerms, terms_as_uas
from pbx.sip.dialog import Dialog
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response, make_response
from pbx.sip.transaction import ServerTransaction

L = LegState
INBOUND_TABLE = frozenset({
    (L.OFFERED, L.RINGING), (L.OFFERED, L.ANSWERED), (L.RINGING, L.ANSWERED),
    (L.OFFERED, L.TERMINATED), (L.RINGING, L.TERMINATED), (L.ANSWERED, L.CONFIRMED),
    (L.ANSWERED, L.TERMINATED), (L.CONFIRMED, L.TERMINATED),
})


def offer_refusal(invite: Request) -> tuple[int, str, str] | None:
    """What an INVITE's body or Accept asks that the PBX cannot give, as (status, the header
    that says what we can, its value), else None. RFC 3261 §21.4.13 / §8.2.3: a body of a type
    or encoding we do not understand gets 415 with Accept (or Accept-Encoding); §21.4.7: an
    Accept that rules out SDP, the only answer we can give, gets 406 with Accept (RFC 4475
    §3.3.6 and §3.3.15)."""
    headers = invite.headers
    if invite.body:
        content_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if content_type != SDP:
            return 415, "Accept", SDP
        encodings = {e.strip().lower() for v in headers.get_all("content-encoding")
                     for e in v.split(",") if e.strip()}
        if encodings - {"identity"}:
            return 415, "Accept-Encoding", "identity"
    accepted = [t.split(";", 1)[0].strip().lower() for v in headers.get_all("accept")
                for t in v.split(",") if t.strip()]
    if accepted and not any(t in (SDP, "application/*", "*/*") for t in accepted):
        return 406, "Accept", SDP
    return None


class InboundLeg(Leg):
    """The UAS side of a received INVITE. See `pbx.call.leg`.

    Before routing the call, `check_invite()` gives the refusals the leg owes on its own (a bad
    Replaces, a session interval too small); `replaces` is the INVITE's parsed Replaces header
    (attended transfer: the switchboard finds the leg it names and asks `check_replaces`)."""

    TABLE = INBOUND_TABLE

    def __init__(self, call: str, network: Network, invite: Request, tx: ServerTransaction,
                 source: Address, t1: float = 0.5, t2: float = 4.0) -> None:
        super().__init__(call, network, t1, t2)
        self.invite = invite
        self.tx = tx
        self.peer = source
        self.local_tag = network.new_tag()
        self.remote_sdp = invite.body
        self.peer_allow = _allowed(invite)
        values = invite.headers.get_all("replaces")
        self.replaces = parse_replaces(values[0]) if len(values) == 1 else None
        # RFC 4028 §9: the terms our 2xx will set (None: the caller must get a 422).
        self._terms = terms_as_uas(invite, None)
        self.session_interval = self._terms.interval if self._terms else 0

    def _response(self, status: int, reason: str = "", sdp: bytes = b"") -> Response:
        response = make_response(self.invite, status, reason, to_tag=self.local_tag)
        if 100 < status < 300:
            response.headers.add("Contact", self.net.local_contact(self._transport))
            _advertise(response)
        if sdp:
            response.headers.add("Content-Type", SDP)
            response.body = sdp
        return response

    @property
    def _transport(self) -> str:
        assert self.peer is not None
        return self.peer.transport

    def _dialog_tags(self) -> tuple[str, str, str | None]:
        return (self.invite.call_id, self.local_tag, self.invite.from_addr.tag)

    # --------------------------------------------------------------- orders from above

    def check_invite(self) -> list[Action]:
        """The refusals the leg owes before the call is routed: 400 for a repeated or malformed
        Replaces (RFC 3891 §3), 422 with Min-SE when the caller requires a session timer under
        90 s (RFC 4028 §9). [] when the INVITE is acceptable; after a refusal the leg has
        ended. `ring` and `answer` check too (and then also report `HungUp`)."""
        if self.state is not L.OFFERED:
            return []
        if self.invite.headers.get_all("replaces") and self.replaces is None:
            response = self._response(400, "Bad Replaces header")
        elif self._terms is None:
            response = self._too_small(self.invite, self.local_tag)
        else:
            return []
        self._set_state(L.TERMINATED)
        self.end_cause = f"rejected {response.status}"
        return [Respond(self.tx, response)]

    def _refused(self) -> list[Action]:
        actions = self.check_invite()
        return [*actions, HungUp(self.call, by="local", cause=self.end_cause)] if actions else []

    def ring(self, sdp: bytes = b"") -> list[Action]:
        """180 Ringing, or 183 Session Progress with early media when `sdp` is given."""
        refused = self._refused()
        if refused or self.state is not L.OFFERED:
            return refused
        self._set_state(L.RINGING)
        status = 183 if sdp else 180
        self.local_sdp = sdp or self.local_sdp
        return [Respond(self.tx, self._response(status, sdp=sdp))]

    def answer(self, sdp: bytes, now: float) -> list[Action]:
        refused = self._refused()
        if refused or self.state not in (L.OFFERED, L.RINGING):
            return refused
        self._set_state(L.ANSWERED)
        ok = self._response(200, sdp=sdp)
        self.local_sdp = sdp
        self._confirm_terms(ok, self._terms or SessionTerms(), now)
        self.dialog = Dialog.for_uas(self.invite, self.local_tag,
                                     self.net.local_contact(self._transport),
                                     self.net.local_via(self._transport))
        self._unacked = self._unacked_2xx(self.tx, ok, self.invite.cseq.number, now)
        return [Respond(self.tx, ok)]

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
            self._unacked = None
            return self._bye(cause)
        return []

    # --------------------------------------------------------------- SIP from the far end

    def on_request(self, request: Request, tx: ServerTransaction | None,
                   now: float) -> list[Action]:
        method = request.method
        if method == "ACK" and self.state is L.ANSWERED:
            self._set_state(L.CONFIRMED)
            self._unacked = None
            if self.invite.body or not request.body:
                return [Answered(self.call)]
            # The INVITE had no offer: ours went in the 2xx, the answer is here (§13.2.1).
            self.remote_sdp = request.body
            return [RemoteAnswer(self.call, request.body), Answered(self.call)]
        if method == "CANCEL" and tx is not None and self.state in (L.OFFERED, L.RINGING):
            self._set_state(L.TERMINATED)
            self.end_cause = "cancel"
            return [Respond(tx, self._reply(request, 200)),
                    Respond(self.tx, self._response(487)),
                    HungUp(self.call, by="remote", cause="cancel")]
        if self.dialog is None:
            if tx is not None:
                status = 200 if method == "CANCEL" else 481
                return [Respond(tx, self._reply(request, status))]
            return []
        if method == "BYE" and self.state is L.ANSWERED:
            self._unacked = None  # a BYE before the ACK also confirms
        return self._in_dialog(request, tx, now)
