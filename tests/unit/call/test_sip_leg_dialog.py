"""What both legs do inside an established dialog: offers in re-INVITE and UPDATE, glare,
OPTIONS and 405, REFER and Replaces. Every test runs on both kinds of leg."""

from __future__ import annotations

import pytest

from pbx.call.events import Answered, Failed, HungUp
from pbx.call.refer import Replaces
from pbx.call.session_timer import SessionTerms
from pbx.call.sip_leg import (
    ALLOW,
    SUPPORTED,
    LegState,
    RemoteAnswer,
    RemoteOffer,
    TransferRequested,
)
from tests.unit.call.legs import (
    OURS,
    SDP2,
    Peer,
    answered,
    events,
    invite_response,
    new_inbound,
    new_outbound,
    reply,
    responses,
    sent,
    stateless,
    statuses,
)

KINDS = ("inbound", "outbound")


# ------------------------------------------------------------------ offers (RFC 3261 §14, 3311)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "body"), [
    ("INVITE", SDP2),  # hold, resume, codec change
    ("UPDATE", SDP2),  # RFC 3311 §5.2
    ("INVITE", b""),  # offer-less re-INVITE: our offer in the 2xx, the answer in the ACK
])
def test_offer_is_passed_up_and_answered(kind: str, method: str, body: bytes) -> None:
    leg, peer = answered(kind)
    actions, tx = peer.send(method, body)
    assert tx is not None
    assert actions == [RemoteOffer(leg.call, body, tx, method)]
    (ok,) = responses(leg.answer_reinvite(tx, OURS, now=10.0))
    assert ok.status == 200 and ok.body == OURS
    assert ok.headers.get("content-type") == "application/sdp"
    assert ok.headers.get("contact") == "<sip:pbx@127.0.0.1:5060>"
    assert (ok.headers.get("allow"), ok.headers.get("supported")) == (ALLOW, SUPPORTED)
    assert leg.local_sdp == OURS
    if method == "UPDATE":
        assert leg.next_deadline() is None  # no ACK, no retransmission
        return
    # §13.3.1.4: the 2xx to a re-INVITE is sent again until the ACK arrives.
    assert leg.next_deadline() == 10.5
    assert statuses(leg.handle_timer(10.5)) == [200]
    assert peer.ack(tx.request.cseq.number if tx.request else 0, OURS if not body else b"") \
        == ([RemoteAnswer(leg.call, OURS)] if not body else [])
    assert leg.next_deadline() is None


@pytest.mark.parametrize("kind", KINDS)
def test_unacknowledged_reinvite_2xx_ends_the_call(kind: str) -> None:
    leg, peer = answered(kind)
    _, tx = peer.send("INVITE", SDP2)
    assert tx is not None
    leg.answer_reinvite(tx, OURS, now=10.0)
    actions = leg.handle_timer(10.0 + 32.0)  # 64*T1 without an ACK
    assert [r.method for r in sent(actions)] == ["BYE"]
    assert HungUp(leg.call, by="local", cause="no ACK") in actions


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("extra", [(), (("Session-Expires", "1800"), ("Supported", "timer"))])
def test_bodyless_update_is_a_refresh_answered_at_once(
        kind: str, extra: tuple[tuple[str, str], ...]) -> None:
    leg, peer = answered(kind, extra)
    actions, _ = peer.send("UPDATE", now=500.0)
    (ok,) = responses(actions)
    assert events(actions) == [] and ok.status == 200
    assert ok.headers.get("contact") == "<sip:pbx@127.0.0.1:5060>"
    assert (ok.headers.get("allow"), ok.headers.get("supported")) == (ALLOW, SUPPORTED)
    if not extra:
        assert ok.headers.get("session-expires") is None
        return
    # The running timer is echoed; the session restarted at 500 (RFC 4028 §10).
    assert ok.headers.get("session-expires") in ("1800;refresher=uac", "1800;refresher=uas")
    assert leg.timer.expires_at == 500.0 + 1800


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("first", "second", "status"), [
    # RFC 3261 §14.2: a second re-INVITE before the first is answered gets 500 + Retry-After.
    (("INVITE", SDP2), ("INVITE", SDP2), 500),
    # RFC 3311 §5.2: an offer while the peer's previous offer is unanswered: 500 + Retry-After.
    (("UPDATE", SDP2), ("UPDATE", SDP2), 500),
    (("UPDATE", SDP2), ("INVITE", SDP2), 500),
    (("INVITE", b""), ("UPDATE", SDP2), 500),
    # A body-less UPDATE is no offer: it is answered even then.
    (("INVITE", SDP2), ("UPDATE", b""), 200),
])
def test_overlapping_offers_from_the_peer(kind: str, first: tuple[str, bytes],
                                          second: tuple[str, bytes], status: int) -> None:
    leg, peer = answered(kind)
    peer.send(*first)
    actions, _ = peer.send(*second)
    (response,) = responses(actions)
    assert response.status == status
    if status == 500:
        assert 0 <= int(response.headers.get("retry-after") or "-1") <= 10


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "body", "status"), [
    # RFC 3311 §5.2: an offer while an offer of ours (the 2xx to an offer-less re-INVITE)
    # waits for its answer gets 491; a body-less UPDATE is no offer.
    ("UPDATE", SDP2, 491),
    ("INVITE", SDP2, 491),
    ("UPDATE", b"", 200),
])
def test_offer_while_our_offer_waits_for_the_ack(kind: str, method: str, body: bytes,
                                                 status: int) -> None:
    leg, peer = answered(kind)
    _, tx = peer.send("INVITE")
    assert tx is not None
    leg.answer_reinvite(tx, OURS, now=10.0)
    assert statuses(peer.send(method, body)[0]) == [status]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("status", "retry_after"), [(488, False), (491, False), (500, True),
                                                     (606, False)])
def test_refuse_offer(kind: str, status: int, retry_after: bool) -> None:
    leg, peer = answered(kind)
    _, tx = peer.send("INVITE", SDP2)
    assert tx is not None
    (response,) = responses(leg.refuse_offer(tx, status))
    assert response.status == status
    assert ("retry-after" in response.headers) is retry_after
    assert statuses(peer.send("UPDATE", SDP2)[0]) == []  # the next offer is taken again
    assert leg.remote_sdp != SDP2


@pytest.mark.parametrize("kind", KINDS)
def test_cancelled_reinvite_gets_487_and_a_late_answer_is_dropped(kind: str) -> None:
    leg, peer = answered(kind)
    invite = peer.request("INVITE", SDP2)
    tx = peer.transaction(invite)
    peer.leg.on_request(invite, tx, 10.0)
    cancel = peer.request("CANCEL", cseq=invite.cseq.number)
    cancel.headers.set("via", invite.headers.get("via") or "")
    cancel_tx = peer.transaction(cancel)
    actions = leg.on_request(cancel, cancel_tx, 10.1)
    assert statuses(actions) == [200, 487]
    peer.deliver(actions)
    assert leg.answer_reinvite(tx, OURS, now=10.2) == []  # §9.2: already answered 487


@pytest.mark.parametrize("kind", KINDS)
def test_bye_answers_pending_requests_487(kind: str) -> None:
    leg, peer = answered(kind)
    peer.send("INVITE", SDP2)
    peer.send("REFER", headers=("Refer-To: <sip:1002@pbx>",))
    actions, _ = peer.send("BYE")
    assert statuses(actions) == [200, 487, 487]  # RFC 3261 §15.1.2
    assert HungUp(leg.call, by="remote", cause="normal") in actions
    assert statuses(peer.send("INFO")[0]) == [481]  # the dialog is over


# ------------------------------------------------------------------ what we advertise


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "status", "headers"), [
    ("OPTIONS", 200, {"allow": ALLOW, "supported": SUPPORTED, "accept": "application/sdp"}),
    ("MESSAGE", 405, {"allow": ALLOW, "supported": SUPPORTED}),
    ("SUBSCRIBE", 405, {"allow": ALLOW}),
    ("INFO", 200, {"allow": ALLOW, "supported": SUPPORTED}),
    ("PRACK", 200, {"allow": ALLOW}),
    ("NOTIFY", 481, {"allow": None}),  # we subscribe to nothing (RFC 6665 §4.1.3)
    ("BYE", 200, {"allow": ALLOW, "supported": SUPPORTED}),
])
def test_in_dialog_answers_and_capabilities(kind: str, method: str, status: int,
                                            headers: dict[str, str | None]) -> None:
    leg, peer = answered(kind)
    (response,) = responses(peer.send(method)[0])
    assert response.status == status
    for name, value in headers.items():
        assert response.headers.get(name) == value


def test_allow_lists_every_method_we_handle_and_invites_advertise_it() -> None:
    assert {m.strip() for m in ALLOW.split(",")} == {
        "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "PRACK", "REFER",
        "NOTIFY"}
    assert SUPPORTED == "replaces, timer"
    leg = new_outbound()
    assert (leg.invite.headers.get("allow"), leg.invite.headers.get("supported")) == (
        ALLOW, SUPPORTED)
    inbound = new_inbound()
    for response in responses(inbound.ring()) + responses(inbound.answer(OURS, 0.0)):
        assert (response.headers.get("allow"), response.headers.get("supported")) == (
            ALLOW, SUPPORTED)


# ------------------------------------------------------------------ REFER (RFC 3515)

ATTENDED_REFER_TO = ("Refer-To: <sip:1002@pbx.example?Replaces=cons-1%40pbx%3Bto-tag%3Dt1"
                     "%3Bfrom-tag%3Df1>")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("headers", "status", "event"), [
    ((), 400, None),  # RFC 3515 §2.4.1: exactly one Refer-To
    (("Refer-To: <sip:1002@pbx>", "Refer-To: <sip:1003@pbx>"), 400, None),
    (("Refer-To: <sip:1002@pbx?Replaces=nonsense>",), 400, None),
    (("Refer-To: no uri",), 400, None),
    (("Refer-To: <sip:1002@pbx.example>", "Referred-By: <sip:1001@pbx.example>"), None,
     ("sip:1002@pbx.example", None, "<sip:1001@pbx.example>")),
    (("r: <sip:1002@pbx.example>",), None, ("sip:1002@pbx.example", None, "")),
    ((ATTENDED_REFER_TO,), None,
     ("sip:1002@pbx.example", Replaces("cons-1@pbx", "t1", "f1"), "")),
])
def test_refer_becomes_transfer_requested(
        kind: str, headers: tuple[str, ...], status: int | None,
        event: tuple[str, Replaces | None, str] | None) -> None:
    leg, peer = answered(kind)
    actions, tx = peer.send("REFER", headers=headers)
    assert tx is not None
    if status is not None:
        assert statuses(actions) == [status] and events(actions) == []
        return
    assert event is not None
    assert actions == [TransferRequested(leg.call, *event, transaction=tx)]


@pytest.mark.parametrize("kind", KINDS)
def test_accepted_refer_reports_progress_in_notifies(kind: str) -> None:
    leg, peer = answered(kind)
    _, tx = peer.send("REFER", headers=("Refer-To: <sip:1002@pbx>",))
    assert tx is not None
    actions = leg.accept_refer(tx)
    assert statuses(actions) == [202]
    (notify,) = sent(actions)
    h = notify.headers
    assert (notify.method, h.get("event"), h.get("subscription-state")) == (
        "NOTIFY", "refer", "active;expires=60")
    assert h.get("content-type") == "message/sipfrag;version=2.0"
    assert notify.body == b"SIP/2.0 100 Trying\r\n"
    assert leg.dialog is not None and notify.cseq.number == leg.dialog.local_cseq
    assert h.get("contact") == "<sip:pbx@127.0.0.1:5060>"
    # A second REFER meanwhile: one transfer at a time (500 + Retry-After, see pbx.call.refer).
    (busy,) = responses(peer.send("REFER", headers=("Refer-To: <sip:1003@pbx>",))[0])
    assert busy.status == 500 and "retry-after" in busy.headers
    (ringing,) = sent(leg.notify_refer(180, "Ringing", final=False))
    assert ringing.body == b"SIP/2.0 180 Ringing\r\n"
    assert ringing.cseq.number == notify.cseq.number + 1
    (done,) = sent(leg.notify_refer(200, "OK", final=True))
    assert done.headers.get("subscription-state") == "terminated;reason=noresource"
    assert leg.notify_refer(200, "OK", final=True) == []  # the subscription is over
    assert leg.on_response(reply(done, 200), 11.0) == []
    # The next REFER of the dialog is taken; its NOTIFYs carry id=<CSeq> (RFC 3515 §2.4.6).
    actions, tx2 = peer.send("REFER", headers=("Refer-To: <sip:1004@pbx>",))
    assert tx2 is not None and tx2.request is not None and len(events(actions)) == 1
    (notify2,) = sent(leg.accept_refer(tx2))
    assert notify2.headers.get("event") == f"refer;id={tx2.request.cseq.number}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("failure", ["481", "timeout"])
def test_failed_notify_ends_the_subscription_quietly(kind: str, failure: str) -> None:
    leg, peer = answered(kind)
    _, tx = peer.send("REFER", headers=("Refer-To: <sip:1002@pbx>",))
    assert tx is not None
    (notify,) = sent(leg.accept_refer(tx))
    if failure == "481":
        assert leg.on_response(reply(notify, 481), 11.0) == []
    else:
        assert leg.on_timeout(notify) == []
    assert leg.notify_refer(200, "OK", final=True) == []
    assert leg.state is LegState.CONFIRMED  # only the subscription ended (RFC 5057)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("status", "reason"), [(403, "Forbidden"), (488, ""), (501, ""),
                                                (603, "Decline")])
def test_reject_refer(kind: str, status: int, reason: str) -> None:
    leg, peer = answered(kind)
    _, tx = peer.send("REFER", headers=("Refer-To: <sip:1002@pbx>",))
    assert tx is not None
    (response,) = responses(leg.reject_refer(tx, status, reason))
    assert response.status == status
    assert leg.accept_refer(tx) == []
    _, tx2 = peer.send("REFER", headers=("Refer-To: <sip:1002@pbx>",))
    assert tx2 is not None and statuses(leg.accept_refer(tx2)) == [202]
    assert leg.reject_refer(tx2, 603) == []  # accepted: too late to refuse


# ------------------------------------------------------------------ Replaces (RFC 3891 §3)


def test_check_replaces() -> None:
    leg, _ = answered("inbound")
    assert leg.dialog is not None
    call_id, local, remote = leg.dialog.call_id, leg.dialog.local_tag, leg.dialog.remote_tag
    cases: list[tuple[Replaces, int | None]] = [
        (Replaces(call_id, local, remote), None),
        (Replaces(call_id, local, remote, early_only=True), 486),
        (Replaces(call_id, remote, local), 481),  # the tags seen from the other side
        (Replaces("other", local, remote), 481),
    ]
    for replaces, expected in cases:
        assert leg.check_replaces(replaces) == expected, replaces
    leg.hangup()
    assert leg.check_replaces(Replaces(call_id, local, remote)) == 603
    # An early dialog can be replaced only if we initiated it: not an inbound one ringing...
    ringing = new_inbound()
    ringing.ring()
    assert ringing.check_replaces(Replaces("leg-test", ringing.local_tag, "c1")) == 481
    # ...but an outbound one ringing (by the To tag of its 180).
    outbound = new_outbound()
    outbound.start()
    outbound.on_response(invite_response(outbound, 180, tag="early"), 0.1)
    early = Replaces(outbound.invite.call_id, outbound.local_tag, "early")
    assert outbound.check_replaces(early) is None
    assert outbound.check_replaces(Replaces(early.call_id, early.to_tag, "x")) == 481


@pytest.mark.parametrize(("headers", "replaces", "status"), [
    ("Replaces: abc@h;to-tag=1;from-tag=2\r\n", Replaces("abc@h", "1", "2"), None),
    ("Replaces: abc@h;to-tag=1;from-tag=2;early-only\r\nRequire: replaces\r\n",
     Replaces("abc@h", "1", "2", True), None),
    ("Replaces: abc@h;to-tag=1\r\n", None, 400),
    ("Replaces: a;to-tag=1;from-tag=2\r\nReplaces: b;to-tag=1;from-tag=2\r\n", None, 400),
    ("Supported: timer\r\nRequire: timer\r\nSession-Expires: 60\r\n", None, 422),
    ("Supported: timer\r\nSession-Expires: 60\r\n", None, None),  # not required: no timer
])
def test_inbound_invite_checks(headers: str, replaces: Replaces | None,
                               status: int | None) -> None:
    leg = new_inbound(headers)
    assert leg.replaces == replaces
    refusal = leg.check_invite()
    if status is None:
        assert refusal == [] and leg.state is LegState.OFFERED
        return
    (response,) = responses(refusal)
    assert response.status == status and leg.ended
    if status == 422:
        assert response.headers.get("min-se") == "90"  # RFC 4028 §6
    # Had nobody asked, answering gives the refusal and reports the leg ended.
    leg = new_inbound(headers)
    actions = leg.answer(OURS, 0.0)
    assert statuses(actions) == [status]
    assert HungUp(leg.call, by="local", cause=f"rejected {status}") in actions


@pytest.mark.parametrize("kind", KINDS)
def test_retransmitted_2xx_to_our_reinvite_is_acked_again(kind: str) -> None:
    leg, peer = answered(kind, allow="INVITE, ACK, BYE")  # no UPDATE: refresh by re-INVITE
    leg.timer.apply(SessionTerms(120, we_refresh=True), 0.0)
    (reinvite,) = sent(leg.handle_timer(60.0))
    assert reinvite.method == "INVITE" and reinvite.body == leg.local_sdp
    ok = reply(reinvite, 200, (("Contact", "<sip:peer@127.0.0.1:5070>"),), SDP2)
    first = leg.on_response(ok, 60.1)
    (ack,) = stateless(first)
    assert isinstance(ack, type(reinvite)) and ack.method == "ACK"
    assert ack.cseq.number == reinvite.cseq.number
    assert RemoteAnswer(leg.call, SDP2) in first  # the answer changed
    assert stateless(leg.on_response(ok, 60.6)) == [ack]  # the same ACK again (§13.2.2.4)


def test_inbound_offerless_invite_gets_its_answer_in_the_ack() -> None:
    leg = new_inbound()
    leg.invite.body = b""  # a delayed offer: ours goes in the 2xx (RFC 3261 §13.2.1)
    leg.answer(OURS, 0.0)
    peer = Peer(leg)
    assert peer.ack(1, SDP2) == [RemoteAnswer(leg.call, SDP2), Answered(leg.call)]
    assert leg.remote_sdp == SDP2


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_with_nothing_pending_and_requests_before_the_dialog(kind: str) -> None:
    leg, peer = answered(kind)
    invite = peer.request("INVITE", SDP2)
    tx = peer.transaction(invite)
    leg.on_request(invite, tx, 10.0)
    leg.answer_reinvite(tx, OURS, now=10.0)
    cancel = peer.request("CANCEL", cseq=invite.cseq.number)
    cancel.headers.set("via", invite.headers.get("via") or "")
    # §9.2: a CANCEL after the final response changes nothing; it still gets its 200.
    assert statuses(leg.on_request(cancel, peer.transaction(cancel), 10.1)) == [200]
    early = new_inbound() if kind == "inbound" else new_outbound()
    refer = peer.request("REFER", headers=("Refer-To: <sip:1002@pbx>",))
    assert statuses(early.on_request(refer, peer.transaction(refer), 1.0)) == [481]


def test_outbound_timeouts() -> None:
    for request in (None, "invite"):
        leg = new_outbound()
        leg.start()
        actions = leg.on_timeout(leg.invite if request else None)
        assert actions == [Failed(leg.call, 408, "Request Timeout")]
    established, _ = answered("outbound")
    bye = sent(established.hangup())[0]
    assert established.on_timeout(bye) == []
    assert established.on_response(reply(bye, 200), 1.0) == []
