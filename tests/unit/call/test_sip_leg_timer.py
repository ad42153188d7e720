"""RFC 4028 session timers on both legs: the terms each side sets, our refreshes, the BYE when
refreshes stop, and what the answers to our refreshes do."""

from __future__ import annotations

import pytest

from pbx.call.events import Answered, HungUp
from pbx.call.session_timer import SessionTerms
from pbx.call.sip_leg import ALLOW, SUPPORTED, Leg
from pbx.sip.message import Request
from tests.unit.call.legs import (
    OURS,
    SDP,
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
TIMER = "Supported: timer\r\n"


@pytest.mark.parametrize(("headers", "session_expires", "require"), [
    # §9: the refresher the caller asked for; unnamed, the caller (uac).
    (TIMER + "Session-Expires: 1800\r\n", "1800;refresher=uac", "timer"),
    (TIMER + "Session-Expires: 1800;refresher=uac\r\n", "1800;refresher=uac", "timer"),
    (TIMER + "Session-Expires: 1800;refresher=uas\r\n", "1800;refresher=uas", "timer"),
    (TIMER + "Min-SE: 600\r\nSession-Expires: 900\r\n", "900;refresher=uac", "timer"),
    # No timer support at the caller (a proxy added the header): we refresh, no Require.
    ("Session-Expires: 1800\r\n", "1800;refresher=uas", None),
    (TIMER, None, None),
    (TIMER + "Session-Expires: 60\r\n", None, None),
    ("", None, None),
])
def test_inbound_answer_sets_the_terms(headers: str, session_expires: str | None,
                                       require: str | None) -> None:
    leg = new_inbound(headers)
    (ok,) = responses(leg.answer(OURS, now=0.0))
    assert ok.headers.get("session-expires") == session_expires
    assert ok.headers.get("require") == require
    refresher = session_expires.rpartition("=")[2] if session_expires else None
    assert leg.timer.running is (session_expires is not None)
    assert leg.timer.terms.we_refresh is (refresher == "uas")


@pytest.mark.parametrize(("kind", "extra", "interval"), [
    ("inbound", (("Supported", "timer"), ("Session-Expires", "90")), 90),
    ("inbound", (("Supported", "timer"), ("Session-Expires", "1800")), 1800),
    ("outbound", (("Session-Expires", "90;refresher=uas"),), 90),
    ("outbound", (("Session-Expires", "1800;refresher=uas"),), 1800),
])
def test_peer_refreshes_or_we_bye_before_expiry(kind: str, extra: tuple[tuple[str, str], ...],
                                                interval: int) -> None:
    leg, peer = answered(kind, extra)
    # §10: the BYE goes min(32 s, interval/3) before the session would expire.
    bye_at = interval - min(32.0, interval / 3)
    assert leg.next_deadline() == bye_at and leg.handle_timer(bye_at - 1) == []
    peer.send("UPDATE", now=bye_at - 1)  # a refresh
    assert leg.next_deadline() == bye_at - 1 + bye_at
    actions = leg.handle_timer(2 * bye_at)
    assert [r.method for r in sent(actions)] == ["BYE"]
    assert HungUp(leg.call, by="local", cause="session timer expired") in actions
    assert leg.ended and leg.next_deadline() is None


def refresher_leg(kind: str, allow: str = "INVITE, ACK, CANCEL, BYE, UPDATE") -> Leg:
    """An established leg on which we refresh a 1800 s session, started at 0."""
    extra = ((("Supported", "timer"), ("Session-Expires", "1800;refresher=uas")) if
             kind == "inbound" else (("Session-Expires", "1800;refresher=uac"),))
    leg, _ = answered(kind, extra, allow=allow)
    assert leg.timer.terms.we_refresh and leg.next_deadline() == 900.0
    return leg


def refresh(leg: Leg, now: float = 900.0) -> Request:
    (request,) = sent(leg.handle_timer(now))
    return request


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("allow", "method", "body"), [
    ("INVITE, ACK, CANCEL, BYE, UPDATE", "UPDATE", b""),  # RFC 4028 §7.4: UPDATE if allowed
    ("INVITE, ACK, CANCEL, BYE", "INVITE", OURS),  # else a re-INVITE with our last SDP
])
def test_we_refresh_at_half_the_interval(kind: str, allow: str, method: str,
                                         body: bytes) -> None:
    leg = refresher_leg(kind, allow)
    assert leg.dialog is not None
    next_cseq = leg.dialog.local_cseq + 1
    request = refresh(leg)
    h = request.headers
    assert (request.method, request.body, request.cseq.number) == (method, body, next_cseq)
    assert h.get("session-expires") == "1800;refresher=uac"  # we are its UAC
    assert (h.get("supported"), h.get("allow")) == (SUPPORTED, ALLOW)
    assert h.get("contact") == "<sip:pbx@127.0.0.1:5060>"
    assert leg.next_deadline() == 1800 - 32  # nothing more until the answer
    ok = reply(request, 200, (("Session-Expires", "1800;refresher=uac"),),
               leg.remote_sdp if method == "INVITE" else b"")
    actions = leg.on_response(ok, 901.0)
    acks = [m.method for m in stateless(actions) if isinstance(m, Request)]
    assert acks == (["ACK"] if method == "INVITE" else [])
    assert events(actions) == []  # the same answer: nothing for the layer above
    assert leg.timer.expires_at == 901.0 + 1800 and leg.next_deadline() == 901.0 + 900


@pytest.mark.parametrize("kind", KINDS)
def test_refresh_answer_may_hand_the_refresher_role_over(kind: str) -> None:
    leg = refresher_leg(kind)
    request = refresh(leg)
    leg.on_response(reply(request, 200, (("Session-Expires", "1200;refresher=uas"),)), 901.0)
    assert leg.timer.terms == SessionTerms(1200, we_refresh=False, peer_supports=True)
    assert leg.next_deadline() == 901.0 + 1200 - 32


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("failure", [481, 408, "timeout"])
def test_failed_refresh_ends_the_call(kind: str, failure: int | str) -> None:
    leg = refresher_leg(kind)
    request = refresh(leg)
    if failure == "timeout":
        actions = leg.on_timeout(request)
    else:
        assert isinstance(failure, int)
        actions = leg.on_response(reply(request, failure), 901.0)
    # RFC 4028 §10: "the UAC sends a BYE"; the leg reports the far end as gone.
    assert [r.method for r in sent(actions)] == ["BYE"]
    assert HungUp(leg.call, by="remote", cause="session refresh failed") in actions
    assert leg.ended


@pytest.mark.parametrize(("kind", "low", "high"), [
    ("inbound", 0.0, 2.0),  # RFC 3261 §14.1: 0–2 s when the Call-ID is not ours
    ("outbound", 2.1, 4.0),  # 2.1–4 s when it is
])
def test_glare_on_our_refresh_retries_after_a_random_while(kind: str, low: float,
                                                           high: float) -> None:
    leg = refresher_leg(kind, allow="INVITE, ACK, BYE")
    request = refresh(leg)
    assert leg.on_response(reply(request, 491), 901.0) == []
    deadline = leg.next_deadline()
    assert deadline is not None and 901.0 + low <= deadline <= 901.0 + high
    retry = refresh(leg, deadline)
    assert retry.method == "INVITE" and retry.cseq.number == request.cseq.number + 1


@pytest.mark.parametrize("kind", KINDS)
def test_update_refused_falls_back_to_reinvite(kind: str) -> None:
    leg = refresher_leg(kind)
    request = refresh(leg)
    assert leg.on_response(reply(request, 501), 901.0) == []
    assert "UPDATE" not in leg.peer_allow and leg.next_deadline() == 901.0
    assert refresh(leg, 901.0).method == "INVITE"


@pytest.mark.parametrize("kind", KINDS)
def test_422_to_our_refresh_raises_the_interval(kind: str) -> None:
    leg = refresher_leg(kind)
    request = refresh(leg)
    leg.on_response(reply(request, 422, (("Min-SE", "3600"),)), 901.0)
    assert leg.timer.interval == 3600
    assert refresh(leg, 901.0).headers.get("session-expires") == "3600;refresher=uac"


@pytest.mark.parametrize("kind", KINDS)
def test_reinvite_refresh_waits_while_an_invite_is_in_progress(kind: str) -> None:
    leg = refresher_leg(kind, allow="INVITE, ACK, BYE")
    peer = Peer(leg)
    peer.send("INVITE", SDP2, now=899.0)  # the peer's re-INVITE, not yet answered
    assert leg.handle_timer(900.0) == []  # §14.1: one INVITE transaction at a time
    assert leg.next_deadline() == 901.0
    assert statuses(peer.send("INVITE", SDP2, now=900.5)[0]) == [500]


@pytest.mark.parametrize("kind", KINDS)
def test_peer_reinvite_during_our_reinvite_refresh_gets_491(kind: str) -> None:
    leg = refresher_leg(kind, allow="INVITE, ACK, BYE")
    peer = Peer(leg)
    assert refresh(leg).method == "INVITE"
    assert statuses(peer.send("INVITE", SDP2, now=900.1)[0]) == [491]  # §14.2
    assert statuses(peer.send("UPDATE", SDP2, now=900.2)[0]) == [491]  # RFC 3311 §5.2
    assert statuses(peer.send("UPDATE", b"", now=900.3)[0]) == [200]  # no offer: fine


@pytest.mark.parametrize("kind", KINDS)
def test_peer_refresh_renegotiates_the_refresher(kind: str) -> None:
    leg = refresher_leg(kind)
    peer = Peer(leg)
    # The peer refreshes and, as UAC of its UPDATE, takes the refresher role (§9).
    actions, _ = peer.send("UPDATE", headers=("Supported: timer",
                                               "Session-Expires: 600;refresher=uac"), now=100.0)
    (ok,) = responses(actions)
    assert ok.headers.get("session-expires") == "600;refresher=uac"
    assert ok.headers.get("require") == "timer"
    assert not leg.timer.terms.we_refresh and leg.next_deadline() == 100.0 + 600 - 32
    # A re-INVITE offer confirms its terms with our answer's 2xx.
    actions, tx = peer.send("INVITE", SDP2, headers=("Supported: timer",
                                                     "Session-Expires: 900;refresher=uas"),
                            now=200.0)
    assert tx is not None
    (ok,) = responses(leg.answer_reinvite(tx, OURS, now=200.5))
    assert ok.headers.get("session-expires") == "900;refresher=uas"
    assert leg.timer.terms.we_refresh and leg.timer.refresh_at == 200.5 + 450


def test_outbound_invite_offers_timers_and_runs_what_the_2xx_says() -> None:
    leg = new_outbound(session_expires=1800)
    h = leg.invite.headers
    assert (h.get("supported"), h.get("session-expires")) == (SUPPORTED, "1800")
    # RFC 4028 §7.4: a 422 makes us ask again with its Min-SE, in a new CSeq.
    (retry,) = sent(leg.on_response(invite_response(leg, 422, (("Min-SE", "3600"),)), 0.1))
    assert retry.cseq.number == 2
    assert (retry.headers.get("session-expires"), retry.headers.get("min-se")) == (
        "3600", "3600")
    assert retry.headers.get("supported") == SUPPORTED
    assert leg.on_response(invite_response(leg, 422, (("Min-SE", "3600"),)), 0.2) != []
    assert leg.ended  # the same Min-SE again: the call fails

    leg = new_outbound()
    assert leg.invite.headers.get("session-expires") is None
    leg.start()
    actions = leg.on_response(invite_response(leg, 200, (("Session-Expires", "1800"),), SDP), 1.0)
    assert Answered(leg.call) in actions
    assert leg.timer.terms.we_refresh and leg.next_deadline() == 901.0  # unnamed: we (§7.2)


def test_existing_2xx_without_timer_runs_none() -> None:
    leg, _ = answered("outbound")
    assert not leg.timer.running and leg.next_deadline() is None
    leg, _ = answered("inbound")
    assert not leg.timer.running and leg.next_deadline() is None
    assert leg.remote_sdp == SDP
