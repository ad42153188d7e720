"""SIP call legs: one INVITE dialog each, translated into call-control events — L2, pure.

Theory of operation
-------------------
A B2BUA call is two independent legs. `InboundLeg` is the UAS side of an INVITE we received
(the carrier's or an agent's call); `OutboundLeg` the UAC side of an INVITE we send (ringing an
agent's phone, or a number through the trunk). Each leg takes the SIP events the endpoint
reports for its dialog (`on_request`, `on_response`, `on_timeout`) and the call-control layer's
orders (`check_invite`, `ring`, `answer`, `reject`, `hangup`, `answer_reinvite`,
`refuse_offer`, `accept_refer`, `notify_refer`, `reject_refer`), and returns a list of actions:
`SipAction`s for the endpoint (respond, send in a new client transaction, send statelessly) and
call events for the layer above (`pbx.call.events`, plus `RemoteOffer`, `RemoteAnswer` and
`TransferRequested`, which carry SIP transactions and so live in `pbx.call.leg_events`).
Time arrives as `now`.

Inside an established dialog both legs do the same (`Leg._in_dialog`, a method -> handler
table). A re-INVITE or an UPDATE with a body is an offer: `RemoteOffer`, answered with
`answer_reinvite` or refused with `refuse_offer`. An offer-less re-INVITE is a `RemoteOffer`
with an empty sdp: the layer above puts its offer in the 2xx and the answer arrives in the ACK
as `RemoteAnswer` (RFC 3261 §14.2). A body-less UPDATE is a session refresh, answered at once.
Glare follows RFC 3261 §14.2 and RFC 3311 §5.2: 491 while an offer of ours is outstanding, 500
with Retry-After while the peer's previous one is unanswered. A REFER becomes
`TransferRequested` (RFC 3515, `pbx.call.refer`). 2xx, 405 and OPTIONS answers advertise
`ALLOW` and `SUPPORTED`.

RFC 4028 session timers run on both legs (`pbx.call.session_timer`). When we refresh, the leg
sends a body-less UPDATE (a re-INVITE with our last SDP when the peer does not allow UPDATE)
at half the interval; when refreshes stop, it ends the call with a BYE. Responses to the leg's
own in-dialog requests come back through `on_response`, their time-outs through
`on_timeout(request)`. The leg's deadlines — 2xx retransmission (§13.3.1.4) and the session
timer — are merged in `next_deadline`; `handle_timer(now)` acts on them.

States are an Enum with a transition table; `_set_state` refuses anything else.

Where things are
----------------
This module holds the `Leg` base: the states, the requests inside the dialog (offers and
answers, glare, BYE, CANCEL, INFO, OPTIONS, REFER), our session refreshes and the 2xx
retransmission. `pbx.call.inbound_leg` has `InboundLeg` (`check_invite`, `ring`, `answer`,
`reject`); `pbx.call.outbound_leg` has `OutboundLeg` (the INVITE, CANCEL, digest
authentication, the 422 retry). `pbx.call.leg_events` has the actions and events the legs
return, the `Network` protocol and what the legs advertise (`ALLOW`, `SUPPORTED`, `ACCEPT`).
`pbx.call.sip_leg` re-exports all of these public names.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from pbx.call.events import DtmfReceived, HungUp
from pbx.call.leg_events import (
    ACCEPT,
    ALLOW,
    SDP,
    SUPPORTED,
    Action,
    Network,
    RemoteAnswer,
    RemoteOffer,
    Respond,
    SendRequest,
    SendStateless,
    TransferRequested,
)
from pbx.call.refer import TRANSFER_PENDING, ReferUsage, Replaces
from pbx.call.session_timer import MIN_SE, SessionTerms, SessionTimer, terms_as_uas, tokens
from pbx.errors import LocalProtocolError, SipParseError
from pbx.sip.dialog import Dialog
from pbx.sip.endpoint import Address
from pbx.sip.message import Message, Request, Response, make_response
from pbx.sip.transaction import ServerTransaction

REFRESH_RETRY_S = 1.0  # a refresh that must wait (an INVITE transaction in progress) retries


class LegState(enum.Enum):
    OFFERED = "offered"  # inbound: INVITE received / outbound: INVITE sent
    RINGING = "ringing"  # a provisional response was sent / received
    ANSWERED = "answered"  # inbound: 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    CANCELLING = "cancelling"  # outbound: CANCEL sent, waiting for the final response
    TERMINATED = "terminated"


L = LegState

# DTMF relay via SIP INFO (application/dtmf-relay "Signal=5", application/dtmf "5").
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(slots=True)
class _OfferIn:
    """A re-INVITE or UPDATE offer of the peer waiting for our answer; `terms` are the session
    timer terms its 2xx confirms."""

    transaction: ServerTransaction
    request: Request
    received: float
    terms: SessionTerms


@dataclass(slots=True)
class _Unacked:
    """A 2xx to an INVITE, sent again until its ACK arrives (§13.3.1.4)."""

    transaction: ServerTransaction
    response: Response
    cseq: int
    interval: float
    next_at: float | None  # None over reliable transports: no retransmission
    give_up: float


def _advertise(response: Response) -> Response:
    response.headers.add("Allow", ALLOW)
    response.headers.add("Supported", SUPPORTED)
    return response


def _allowed(message: Message) -> frozenset[str]:
    return frozenset(m.upper() for m in tokens(message, "allow"))


class Leg:
    """What both kinds of legs share: the in-dialog requests, responses to our in-dialog
    requests, the session timer and the 2xx retransmission."""

    TABLE: frozenset[tuple[LegState, LegState]] = frozenset()
    OWNS_CALL_ID = False  # we sent the dialog's INVITE (RFC 3261 §14.1, RFC 3891 §3)

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
        self.local_sdp = b""  # the last SDP we sent: a refresh re-INVITE carries it again
        self.peer_allow: frozenset[str] = frozenset()
        self.timer = SessionTimer()
        self._offer_in: _OfferIn | None = None
        self._answer_in_ack: int | None = None  # CSeq of an offer-less re-INVITE we answered
        self._reinvite_ack: tuple[int, Request] | None = None  # for retransmitted 2xx
        self._unacked: _Unacked | None = None
        self._refers = ReferUsage()

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

    def _dialog_tags(self) -> tuple[str, str, str | None]:
        """(Call-ID, local tag, remote tag) of the leg's dialog, early or confirmed."""
        raise NotImplementedError

    # --------------------------------------------------------------- deadlines

    def next_deadline(self) -> float | None:
        if self.ended:
            return None
        times = [self.timer.next_deadline()]
        if self._unacked is not None:
            times += [self._unacked.next_at, self._unacked.give_up]
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def handle_timer(self, now: float) -> list[Action]:
        if self.ended:
            return []
        actions: list[Action] = []
        unacked = self._unacked
        if unacked is not None and now >= unacked.give_up:
            # §13.3.1.4: no ACK within 64*T1: confirm and end the session with a BYE.
            self._unacked = None
            if self.state is L.ANSWERED:
                self._set_state(L.CONFIRMED)
            return self._bye("no ACK")
        if unacked is not None and unacked.next_at is not None and now >= unacked.next_at:
            unacked.interval = min(unacked.interval * 2, self.t2)
            unacked.next_at = now + unacked.interval
            actions.append(Respond(unacked.transaction, unacked.response))
        due = self.timer.due(now) if self.dialog is not None else None
        if due == "expire":
            # RFC 4028 §10: no refresh before the session expired: end it with a BYE.
            self.timer.stop()
            return actions + self._bye("session timer expired")
        if due == "refresh":
            actions += self._refresh(now)
        return actions

    # --------------------------------------------------------------- helpers

    def _bye(self, cause: str, by: str = "local") -> list[Action]:
        assert self.dialog is not None and self.peer is not None
        bye = self.dialog.make_request("BYE", self.net.new_branch())
        bye.headers.add("Reason", f'SIP;cause=200;text="{cause}"')
        self._set_state(L.TERMINATED)
        self.end_cause = cause
        self.timer.stop()
        self._refers.current = None
        return [SendRequest(bye, self._route(), self.call),
                HungUp(self.call, by=by, cause=cause)]

    def _route(self) -> Address:
        """Where in-dialog requests go: the remote target (our peers set no route sets that
        would change the next hop for a UA directly attached to us)."""
        assert self.dialog is not None and self.peer is not None
        target = self.dialog.remote_target
        transport = self.peer.transport
        if transport == "udp":
            return Address("udp", target.host, target.port or 5060)
        return self.peer  # reuse the connection for TCP

    def _reply(self, request: Request, status: int, reason: str = "") -> Response:
        response = make_response(request, status, reason)
        if 200 <= status < 300 or status == 405:
            _advertise(response)
        return response

    def _random(self, low: float, high: float, step: float = 1.0) -> float:
        """A value in [low, high] in units of `step`, drawn from the injected id generator
        (tags are random in production, counted in tests)."""
        steps = round((high - low) / step)
        return low + (zlib.crc32(self.net.new_tag().encode()) % (steps + 1)) * step

    def _retry_later(self, request: Request, reason: str = "") -> Response:
        # RFC 3261 §14.2, RFC 3311 §5.2: "a randomly chosen value of between 0 and 10 seconds".
        response = self._reply(request, 500, reason or "Previous request pending")
        response.headers.add("Retry-After", str(int(self._random(0, 10))))
        return response

    def _too_small(self, request: Request, to_tag: str | None = None) -> Response:
        response = make_response(request, 422, to_tag=to_tag)
        response.headers.add("Min-SE", str(MIN_SE))  # RFC 4028 §6
        return response

    def _unacked_2xx(self, tx: ServerTransaction, response: Response, cseq: int,
                     now: float) -> _Unacked:
        reliable = self.peer is not None and self.peer.transport != "udp"
        # §13.3.1.4: the UAS core sends its 2xx again (T1, doubling to T2) until the ACK.
        return _Unacked(tx, response, cseq, self.t1, None if reliable else now + self.t1,
                        now + 64 * self.t1)

    def _confirm_terms(self, response: Response, terms: SessionTerms, now: float) -> None:
        for name, value in terms.response_headers():  # RFC 4028 §9
            response.headers.add(name, value)
        self.timer.apply(terms, now)

    # --------------------------------------------------------------- requests in the dialog

    def _in_dialog(self, request: Request, tx: ServerTransaction | None,
                   now: float) -> list[Action]:
        """A request inside the established dialog: the CSeq check (§12.2.2), then the
        method's handler (`_IN_DIALOG`); an unknown method gets 405 with Allow."""
        assert self.dialog is not None
        if request.method == "ACK":
            return self._on_ack(request)
        if tx is None:
            return []
        if not self.dialog.accepts(request):
            return [Respond(tx, make_response(request, 500, "CSeq out of order"))]
        if self.ended and request.method not in ("BYE", "CANCEL"):
            return [Respond(tx, self._reply(request, 481))]  # our BYE ended the dialog
        handler = _IN_DIALOG.get(request.method)
        if handler is None:
            return [Respond(tx, self._reply(request, 405))]
        return handler(self, request, tx, now)

    def _on_ack(self, ack: Request) -> list[Action]:
        """The ACK for our 2xx to a re-INVITE; after an offer-less one it holds the answer."""
        number = ack.cseq.number
        if self._unacked is not None and self._unacked.cseq == number:
            self._unacked = None
        if self._answer_in_ack != number:
            return []
        self._answer_in_ack = None
        if not ack.body:
            return []  # no answer: the session stays as it was
        self.remote_sdp = ack.body
        return [RemoteAnswer(self.call, ack.body)]

    def _on_bye(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        actions: list[Action] = [Respond(tx, self._reply(request, 200))]
        # §15.1.2: a 487 for every request of the dialog still waiting for our answer.
        pending: list[tuple[ServerTransaction, Request]] = []
        if self._offer_in is not None:
            pending.append((self._offer_in.transaction, self._offer_in.request))
        refer = self._refers.unanswered()
        if refer is not None:
            pending.append((refer.transaction, refer.request))
        for waiting, waiting_request in pending:
            if not waiting.answered:
                actions.append(Respond(waiting, make_response(waiting_request, 487)))
        self._offer_in = None
        self._refers.current = None
        self._answer_in_ack = None
        self._unacked = None
        self.timer.stop()
        if self.state is not L.TERMINATED:
            self._set_state(L.TERMINATED)
            self.end_cause = "normal"
            actions.append(HungUp(self.call, by="remote", cause="normal"))
        return actions

    def _on_cancel(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        """CANCEL of the peer's pending re-INVITE (§9.2): 200 to it, 487 to the re-INVITE."""
        actions: list[Action] = [Respond(tx, self._reply(request, 200))]
        offer = self._offer_in
        if (offer is not None and offer.request.method == "INVITE"
                and offer.request.cseq.number == request.cseq.number
                and not offer.transaction.answered):
            self._offer_in = None
            actions.append(Respond(offer.transaction, make_response(offer.request, 487)))
        return actions

    def _glare(self, request: Request) -> Response | None:
        """The answer to an offer (or a re-INVITE) that collides with another one, or None."""
        ours = self.timer.outstanding  # our refresh: an UPDATE has no offer, a re-INVITE has
        if self._answer_in_ack is not None or (ours is not None and ours.method == "INVITE"):
            # RFC 3261 §14.2, RFC 3311 §5.2: our own offer (or re-INVITE) is outstanding.
            return self._reply(request, 491)
        if self._offer_in is not None:
            # RFC 3261 §14.2, RFC 3311 §5.2: the peer's previous offer is still unanswered.
            return self._retry_later(request)
        return None

    def _on_offer(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        """A re-INVITE (with or without an offer, §14.2) or an UPDATE with an offer (RFC 3311
        §5.2): passed up as `RemoteOffer`."""
        assert self.dialog is not None
        if request.method == "UPDATE" and not request.body:
            return self._on_refresh(request, tx, now)
        refusal = self._glare(request)
        if refusal is not None:
            return [Respond(tx, refusal)]
        terms = terms_as_uas(request, self.timer.terms)
        if terms is None:
            return [Respond(tx, self._too_small(request))]
        self.dialog.update_target(request)  # both are target refreshes (§12.2, RFC 3311 §5.2)
        self._offer_in = _OfferIn(tx, request, now, terms)
        return [RemoteOffer(self.call, request.body, tx, request.method)]

    def _on_refresh(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        """A body-less UPDATE: a session refresh (RFC 4028 §10), answered at once."""
        assert self.dialog is not None
        terms = terms_as_uas(request, self.timer.terms)
        if terms is None:
            return [Respond(tx, self._too_small(request))]
        self.dialog.update_target(request)
        response = self._reply(request, 200)
        response.headers.add("Contact", self.dialog.contact)  # RFC 3311 §5.2: target refresh
        self._confirm_terms(response, terms, now)
        return [Respond(tx, response)]

    def _on_info(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        digit = _dtmf_from_info(request)
        actions: list[Action] = [Respond(tx, self._reply(request, 200))]
        if digit is not None:
            actions.append(DtmfReceived(self.call, digit, source="info"))
        return actions

    def _on_options(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        response = self._reply(request, 200)  # §11.2: Allow, Accept and Supported
        response.headers.add("Accept", ACCEPT)
        return [Respond(tx, response)]

    def _on_prack(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        # Tolerated: we never ask for reliable provisionals (RFC 3262).
        return [Respond(tx, self._reply(request, 200))]

    def _on_notify(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        # We subscribe to nothing (RFC 6665 §4.1.3: a NOTIFY matching no subscription gets 481;
        # RFC 5057 §5.1: that ends only the NOTIFY's usage, not the call).
        return [Respond(tx, self._reply(request, 481, "No such subscription"))]

    def _on_refer(self, request: Request, tx: ServerTransaction, now: float) -> list[Action]:
        """REFER (RFC 3515 §2.4.2) becomes `TransferRequested`."""
        try:
            target = self._refers.receive(request, tx)
        except SipParseError as exc:
            refusal = (self._retry_later(request) if exc.status == TRANSFER_PENDING
                       else self._reply(request, exc.status, exc.reason))
            return [Respond(tx, refusal)]
        referred_by = request.headers.get("referred-by") or ""
        return [TransferRequested(self.call, target.uri, target.replaces, referred_by, tx)]

    # --------------------------------------------------------------- orders from above

    def answer_reinvite(self, tx: ServerTransaction, sdp: bytes,
                        now: float | None = None) -> list[Action]:
        """The 2xx to the peer's re-INVITE or UPDATE offer (`RemoteOffer`) with our answer —
        or, for an offer-less re-INVITE, our offer (its answer comes in the ACK, §14.2). It
        carries Contact, Allow, Supported and, when a session timer runs, Session-Expires.
        `now` (default: when the offer arrived) times the 2xx retransmissions."""
        assert self.dialog is not None
        request = tx.request
        if self.ended or tx.answered or request is None:
            return []
        offer = self._offer_in if self._offer_in and self._offer_in.transaction is tx else None
        response = self._reply(request, 200)
        response.headers.add("Contact", self.dialog.contact)
        response.headers.add("Content-Type", SDP)
        response.body = sdp
        self.local_sdp = sdp
        at = now if now is not None else offer.received if offer is not None else None
        if offer is not None:
            self._offer_in = None
            self._confirm_terms(response, offer.terms, at if at is not None else offer.received)
        if request.method == "INVITE" and at is not None:
            if not request.body:
                self._answer_in_ack = request.cseq.number
            self._unacked = self._unacked_2xx(tx, response, request.cseq.number, at)
        return [Respond(tx, response)]

    def refuse_offer(self, tx: ServerTransaction, status: int = 488,
                     reason: str = "") -> list[Action]:
        """Refuse the peer's re-INVITE or UPDATE: 488 Not Acceptable Here (RFC 3261 §14.2),
        491 Request Pending (glare), 500 (sent with Retry-After). The session stays as it was."""
        request = tx.request
        if tx.answered or request is None:
            return []
        if self._offer_in is not None and self._offer_in.transaction is tx:
            self._offer_in = None
        if status == 500:
            return [Respond(tx, self._retry_later(request, reason))]
        return [Respond(tx, self._reply(request, status, reason))]

    def accept_refer(self, tx: ServerTransaction) -> list[Action]:
        """202 Accepted, then the subscription's first NOTIFY, `SIP/2.0 100 Trying`
        (RFC 3515 §2.4.4, §2.4.5)."""
        if self.dialog is None or self.ended or tx.answered:
            return []
        refer = self._refers.accept(tx)
        if refer is None:
            return []
        return [Respond(tx, self._reply(refer.request, 202)),
                *self.notify_refer(100, "Trying", final=False)]

    def notify_refer(self, status: int, reason: str, final: bool) -> list[Action]:
        """A NOTIFY with the referred call's progress (`SIP/2.0 <status> <reason>`); `final`
        ends the subscription (RFC 3515 §2.4.5, `terminated;reason=noresource`)."""
        if self.dialog is None or self.ended:
            return []
        notify = self._refers.notify(self.dialog, self.net.new_branch(), status, reason, final)
        return [] if notify is None else [SendRequest(notify, self._route(), self.call)]

    def reject_refer(self, tx: ServerTransaction, status: int = 603,
                     reason: str = "") -> list[Action]:
        """Refuse a REFER (403 Forbidden, 488, 501, 603 Decline…) (RFC 3515 §2.4.2)."""
        if not self._refers.reject(tx) or tx.answered or tx.request is None:
            return []
        return [Respond(tx, self._reply(tx.request, status, reason))]

    def check_replaces(self, replaces: Replaces) -> int | None:
        """May an INVITE with `replaces` replace this leg's dialog (RFC 3891 §3)? None if yes,
        else the status to refuse that INVITE with: 481 (not this dialog, or an early dialog
        we did not initiate), 603 (ended), 486 (confirmed, but `early-only`)."""
        if self._dialog_tags() != (replaces.call_id, replaces.to_tag, replaces.from_tag):
            return 481  # §3: to-tag is compared to the local tag, from-tag to the remote tag
        if self.state in (L.TERMINATED, L.CANCELLING):
            return 603
        if self.state in (L.OFFERED, L.RINGING):
            return None if self.OWNS_CALL_ID else 481  # an early dialog must be ours
        return 486 if replaces.early_only else None

    # --------------------------------------------------------------- our in-dialog requests

    def _refresh(self, now: float) -> list[Action]:
        """Our session refresh (RFC 4028 §10): a body-less UPDATE if the peer allows it, else
        a re-INVITE with our last SDP — not while another INVITE is in progress (§14.1)."""
        assert self.dialog is not None
        sdp = b"" if "UPDATE" in self.peer_allow else self.local_sdp
        invite_busy = (self._offer_in is not None or self._answer_in_ack is not None
                       or self._unacked is not None)
        if self.timer.outstanding is not None or (sdp and invite_busy):
            self.timer.retry(now + REFRESH_RETRY_S)
            return []
        request = self.timer.make_refresh(self.dialog, self.net.new_branch(), sdp,
                                          [("Supported", SUPPORTED), ("Allow", ALLOW)])
        return [SendRequest(request, self._route(), self.call)]

    def on_response(self, response: Response, now: float) -> list[Action]:
        """A response to one of the leg's in-dialog requests: a refresh (re-INVITE/UPDATE), a
        NOTIFY (a failure ends the REFER subscription quietly, RFC 6665 §4.2.2), a BYE or an
        INFO (nothing to do)."""
        method, status = response.cseq.method, response.status
        if method == "NOTIFY" and status >= 300:
            self._refers.notify_failed(response.cseq.number)
        if method not in ("INVITE", "UPDATE") or status < 200:
            return []
        if response.cseq != self.timer.outstanding:
            acked = self._reinvite_ack
            if acked is not None and acked[0] == response.cseq.number and status < 300:
                return [SendStateless(acked[1], self._route())]  # §13.2.2.4: ACK it again
            return []
        if self.ended:  # a 2xx is still acknowledged (§13.2.2.4)
            self.timer.outstanding = None
            return self._refresh_done(response) if status < 300 else []
        glare_wait = 0.0
        if status == 491:  # RFC 3261 §14.1: wait a random while, longer if the Call-ID is ours
            glare_wait = self._random(*((2.1, 4.0) if self.OWNS_CALL_ID else (0.0, 2.0)), 0.01)
        outcome = self.timer.answered(response, now, glare_wait)
        if outcome == "no-update":
            self.peer_allow = self.peer_allow - {"UPDATE"}
        if outcome == "lost":
            return self._refresh_lost()
        return self._refresh_done(response) if outcome == "done" else []

    def _refresh_done(self, response: Response) -> list[Action]:
        """A 2xx to our refresh: ACK a re-INVITE's (§13.2.2.4), note a changed answer."""
        assert self.dialog is not None
        actions: list[Action] = []
        if response.cseq.method == "INVITE":
            ack = self.dialog.make_ack(response.cseq.number, self.net.new_branch())
            self._reinvite_ack = (response.cseq.number, ack)
            actions.append(SendStateless(ack, self._route()))
        if self.ended:
            return actions
        if response.body and response.body != self.remote_sdp:
            self.remote_sdp = response.body
            actions.append(RemoteAnswer(self.call, response.body))
        self.dialog.update_target(response)
        if "allow" in response.headers:
            self.peer_allow = _allowed(response)
        return actions

    def _refresh_lost(self) -> list[Action]:
        # RFC 4028 §10: a 408 or 481 to the refresh, or no answer: "the UAC sends a BYE".
        if self.ended or self.dialog is None:
            return []
        return self._bye("session refresh failed", by="remote")

    def on_timeout(self, request: Request | None = None) -> list[Action]:
        """A client transaction of this leg timed out (Timer B/F) with `request` unanswered.
        A refresh ends the call as a 408 would (RFC 4028 §10); a NOTIFY ends the REFER
        subscription (RFC 6665 §4.2.2)."""
        if request is None:
            return []
        if request.method == "NOTIFY":
            self._refers.notify_failed(request.cseq.number)
        elif request.cseq == self.timer.outstanding:
            self.timer.outstanding = None
            return self._refresh_lost()
        return []


# The in-dialog request handlers (after the CSeq check); other methods get 405.
_IN_DIALOG: dict[str, Callable[[Leg, Request, ServerTransaction, float], list[Action]]] = {
    "BYE": Leg._on_bye,
    "CANCEL": Leg._on_cancel,
    "INVITE": Leg._on_offer,
    "UPDATE": Leg._on_offer,
    "INFO": Leg._on_info,
    "OPTIONS": Leg._on_options,
    "PRACK": Leg._on_prack,
    "NOTIFY": Leg._on_notify,
    "REFER": Leg._on_refer,
}


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
