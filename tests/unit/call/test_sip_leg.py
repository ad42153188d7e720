"""The sans-IO call legs driven by hand: what each SIP event and each order produces."""

from __future__ import annotations

from pbx.call.events import Answered, DtmfReceived, Failed, HungUp
from pbx.call.sip_leg import (
    InboundLeg,
    LegState,
    OutboundLeg,
    RemoteAnswer,
    Respond,
    SendRequest,
    SendStateless,
    offer_refusal,
)
from pbx.clock import CountingIds
from pbx.sip.endpoint import RequestReceived, SipEndpoint
from pbx.sip.message import Request, Response, make_response
from pbx.sip.parser import parse_message
from pbx.sip.uri import NameAddr, SipUri
from tests.unit.call.legs import PEER, SDP, Net


def invite(extra: str = "") -> tuple[Request, object]:
    raw = ("INVITE sip:+4930100@127.0.0.1 SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinv1\r\n"
           "From: <sip:+4917@carrier.test>;tag=c1\r\nTo: <sip:+4930100@127.0.0.1>\r\n"
           f"Call-ID: leg-test\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5070>\r\n{extra}"
           f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\n"
           f"Content-Length: {len(SDP)}\r\n\r\n").encode() + SDP
    endpoint = SipEndpoint(CountingIds("e"))
    endpoint.receive_datagram(raw, PEER, 0.0)
    event = endpoint.next_event()
    assert isinstance(event, RequestReceived) and event.transaction is not None
    return event.request, event.transaction


def in_dialog(leg: InboundLeg, method: str, cseq: int, body: bytes = b"",
              ctype: str = "") -> Request:
    assert leg.dialog is not None
    lines = [f"{method} sip:pbx@127.0.0.1:5060 SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{method}{cseq}",
             "From: <sip:+4917@carrier.test>;tag=c1",
             f"To: <sip:+4930100@127.0.0.1>;tag={leg.local_tag}",
             "Call-ID: leg-test", f"CSeq: {cseq} {method}", "Max-Forwards: 70"]
    if ctype:
        lines.append(f"Content-Type: {ctype}")
    msg = parse_message(("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n")
                        .encode() + body)
    assert isinstance(msg, Request)
    return msg


def statuses(actions: list[object]) -> list[int]:
    return [a.response.status for a in actions if isinstance(a, Respond)]


def test_inbound_ring_answer_ack_bye() -> None:
    request, tx = invite()
    leg = InboundLeg("c1", Net(), request, tx, PEER)  # type: ignore[arg-type]
    assert statuses(leg.ring()) == [180]
    assert statuses(leg.answer(SDP, now=1.0)) == [200]
    # The 2xx is retransmitted until the ACK arrives (RFC 3261 §13.3.1.4).
    assert leg.next_deadline() == 1.5
    assert statuses(leg.handle_timer(1.5)) == [200]
    ack = in_dialog(leg, "ACK", 1)
    assert leg.on_request(ack, None, 2.0) == [Answered("c1")]
    assert leg.next_deadline() is None and leg.state is LegState.CONFIRMED
    bye = in_dialog(leg, "BYE", 2)
    actions = leg.on_request(bye, tx, 3.0)  # type: ignore[arg-type]
    assert statuses(actions) == [200] and HungUp("c1", by="remote", cause="normal") in actions


def test_inbound_cancel_gives_487_and_no_ack_means_bye() -> None:
    request, tx = invite()
    leg = InboundLeg("c1", Net(), request, tx, PEER)  # type: ignore[arg-type]
    leg.ring()
    cancel = Request("CANCEL", request.uri)
    for name in ("via", "from", "to", "call-id"):
        cancel.headers.add(name, request.headers.get(name) or "")
    cancel.headers.add("CSeq", "1 CANCEL")
    actions = leg.on_request(cancel, tx, 1.0)  # type: ignore[arg-type]
    assert statuses(actions) == [200, 487]
    assert HungUp("c1", by="remote", cause="cancel") in actions

    request2, tx2 = invite()
    leg2 = InboundLeg("c2", Net(), request2, tx2, PEER)  # type: ignore[arg-type]
    leg2.answer(SDP, now=0.0)
    actions = leg2.handle_timer(32.0)  # 64*T1 without an ACK
    assert any(isinstance(a, SendRequest) and a.request.method == "BYE" for a in actions)
    assert HungUp("c2", by="local", cause="no ACK") in actions


def test_info_dtmf_and_prack_and_session_timer() -> None:
    request, tx = invite("Supported: timer\r\nSession-Expires: 120\r\n")
    leg = InboundLeg("c1", Net(), request, tx, PEER)  # type: ignore[arg-type]
    (ok,) = leg.answer(SDP, now=0.0)
    assert isinstance(ok, Respond)
    assert ok.response.headers.get("session-expires") == "120;refresher=uac"
    leg.on_request(in_dialog(leg, "ACK", 1), None, 0.1)
    info = in_dialog(leg, "INFO", 2, b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay")
    actions = leg.on_request(info, tx, 1.0)  # type: ignore[arg-type]
    assert DtmfReceived("c1", "5", source="info") in actions
    assert statuses(leg.on_request(in_dialog(leg, "PRACK", 3), tx, 1.0)) == [200]  # type: ignore[arg-type]
    # A refresh (UPDATE) moves the deadline; without one the session ends with a BYE.
    leg.on_request(in_dialog(leg, "UPDATE", 4), tx, 100.0)  # type: ignore[arg-type]
    assert leg.handle_timer(130.0) == []
    actions = leg.handle_timer(220.0)
    assert HungUp("c1", by="local", cause="session timer expired") in actions


def outbound(credentials: tuple[str, str] | None = None) -> OutboundLeg:
    return OutboundLeg("a1", Net(), SipUri("127.0.0.1", user="1001", port=5072), PEER,
                       NameAddr(SipUri("hotline.example", user="+4917")),
                       NameAddr(SipUri("hotline.example", user="1001")), SDP, 0.0,
                       credentials=credentials)


def response_to(leg: OutboundLeg, status: int, tag: str = "agent", body: bytes = b"",
                extra: tuple[tuple[str, str], ...] = ()) -> Response:
    response = make_response(leg.invite, status, to_tag=tag)
    response.headers.add("Contact", "<sip:1001@127.0.0.1:5072>")
    for name, value in extra:
        response.headers.add(name, value)
    response.body = body
    return response


def test_outbound_200_overtaking_its_180_is_fine() -> None:
    leg = outbound()
    leg.start()
    actions = leg.on_response(response_to(leg, 200, body=SDP), 0.1)
    assert any(isinstance(a, SendStateless) and a.message.method == "ACK"  # type: ignore[union-attr]
               for a in actions)
    assert Answered("a1") in actions and RemoteAnswer("a1", SDP) in actions
    assert leg.on_response(response_to(leg, 180), 0.2) == []  # the late 180 changes nothing
    assert leg.state is LegState.CONFIRMED


def test_outbound_cancel_waits_for_a_provisional_and_a_crossing_200_is_ended() -> None:
    leg = outbound()
    leg.start()
    assert leg.cancel("ring timeout") == []  # no provisional yet: CANCEL must wait (§9.1)
    (cancel,) = leg.on_response(response_to(leg, 180), 0.1)
    assert isinstance(cancel, SendRequest) and cancel.request.method == "CANCEL"
    actions = leg.on_response(response_to(leg, 200, body=SDP), 0.2)  # crossed the CANCEL
    methods = [a.message.method if isinstance(a, SendStateless) else  # type: ignore[union-attr]
               a.request.method for a in actions if isinstance(a, SendStateless | SendRequest)]
    assert methods == ["ACK", "BYE"]
    assert leg.state is LegState.TERMINATED


def test_outbound_failures_and_digest_retry() -> None:
    leg = outbound()
    leg.start()
    leg.on_response(response_to(leg, 180), 0.1)
    assert leg.on_response(response_to(leg, 486), 0.2) == [Failed("a1", 486, "Busy Here")]
    leg = outbound(("hotline", "secret"))
    leg.start()
    challenge = 'Digest realm="carrier.test", nonce="n1", algorithm=MD5, qop="auth"'
    (retry,) = leg.on_response(response_to(leg, 407, extra=(("Proxy-Authenticate",
                                                               challenge),)), 0.1)
    assert isinstance(retry, SendRequest)
    assert retry.request.cseq.number == 2
    assert "Digest" in (retry.request.headers.get("proxy-authorization") or "")
    # The same nonce refused again means wrong credentials: the call fails.
    failed = leg.on_response(response_to(leg, 407, extra=(("Proxy-Authenticate",
                                                            challenge),)), 0.2)
    assert failed == [Failed("a1", 407, "Proxy Authentication Required")]


def test_offer_refusal_by_body_type_encoding_and_accept() -> None:
    def check(extra: str, body: str = "") -> tuple[int, str, str] | None:
        text = (
            "INVITE sip:100@pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKo1\r\n"
            "From: <sip:a@x>;tag=1\r\nTo: <sip:100@pbx>\r\nCall-ID: o1\r\nCSeq: 1 INVITE\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n{body}"
        )
        request = parse_message(text.encode())
        assert isinstance(request, Request)
        return offer_refusal(request)

    assert check("Content-Type: application/sdp\r\n", "v=0\r\n") is None
    assert check("Content-Type: Application/SDP; charset=utf-8\r\n", "v=0\r\n") is None
    assert check("") is None  # no body: a late offer
    assert check("Content-Type: text/plain\r\n", "hi") == (415, "Accept", "application/sdp")
    assert check("Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n", "x") == (
        415, "Accept-Encoding", "identity")
    assert check("Accept: text/nobodyKnowsThis\r\n") == (406, "Accept", "application/sdp")
    assert check("Accept: text/html, application/sdp;level=1\r\n") is None
    assert check("Accept: application/*\r\n") is None and check("Accept: */*\r\n") is None
