"""Queue-age shedding in the endpoint: late INVITEs refused from their raw bytes."""

from __future__ import annotations

import pytest

from pbx.clock import CountingIds
from pbx.sip.endpoint import Address, RequestReceived, SipEndpoint
from pbx.sip.parser import parse_message
from pbx.sip.shedding import QueueShedding, has_to_tag, scan_branch, scan_invite

SOURCE = Address("udp", "127.0.0.1", 5070)


def invite(branch: str = "z9hG4bK-one", to_tag: str = "", extra: str = "",
           method: str = "INVITE") -> bytes:
    to = "<sip:100@pbx.example>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:100@pbx.example SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.9:5070;branch={branch};rport\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-proxy\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Carrier" <sip:+4930123@carrier.example>;tag=abc\r\n'
        f"To: {to}\r\n"
        "Call-ID: call-1@carrier\r\n"
        f"CSeq: 7 {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Age:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


def endpoint(age: float, limit: float = 0.4) -> SipEndpoint:
    ep = SipEndpoint(CountingIds("pbx"))
    ep.shedding.limit_s = limit
    ep.queue_age = Age(age)
    return ep


def drain(ep: SipEndpoint) -> tuple[list[object], list[tuple[bytes, Address]]]:
    events = []
    while (event := ep.next_event()) is not None:
        events.append(event)
    return events, ep.datagrams_to_send()


def test_a_late_invite_gets_one_503_with_its_headers_and_leaves_no_state() -> None:
    ep = endpoint(age=0.6)
    ep.receive_datagram(invite(), SOURCE, 1.0)
    events, sent = drain(ep)
    assert events == [] and ep.transaction_count == 0
    [(data, destination)] = sent
    assert destination == SOURCE
    response = parse_message(data)
    assert response.status == 503  # type: ignore[union-attr]
    assert response.headers.get("retry-after") == "1"
    vias = response.headers.get_all("via")
    assert vias[0].startswith("SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK-one")
    assert "rport=5070" in vias[0] and "received=127.0.0.1" in vias[0]
    assert vias[1] == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-proxy"
    assert response.headers.get("call-id") == "call-1@carrier"
    assert response.headers.get("cseq") == "7 INVITE"
    assert response.headers.get("from").endswith(";tag=abc")
    assert response.to_addr.tag  # ours
    assert ep.shedding.shed == 1 and ep.shedding.queued_ms["more"] == 1
    # its ACK is absorbed without reaching the call layer
    ack = invite(method="ACK", to_tag=response.to_addr.tag or "")
    ep.receive_datagram(ack, SOURCE, 1.01)
    assert drain(ep) == ([], []) and ep.shedding.acks_absorbed == 1


def test_a_fresh_invite_goes_the_normal_way() -> None:
    ep = endpoint(age=0.1)
    ep.receive_datagram(invite(), SOURCE, 1.0)
    events, _ = drain(ep)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert ep.shedding.shed == 0 and ep.shedding.queued_ms["250"] == 1


def test_off_when_the_limit_is_zero() -> None:
    ep = endpoint(age=5.0, limit=0.0)
    ep.receive_datagram(invite(), SOURCE, 1.0)
    events, _ = drain(ep)
    assert isinstance(events[0], RequestReceived) and ep.shedding.shed == 0


@pytest.mark.parametrize("data", [
    invite(to_tag="ours1"),  # a re-INVITE of a call already talking
    invite(extra="Call-ID: twice@carrier\r\n"),  # the parser's 400, not our 503
    invite().replace(b"Via: SIP/2.0/UDP 10.0.0.9", b"Via: SIP/2.0/UDP\r\n 10.0.0.9"),  # folded
])
def test_what_the_scanner_does_not_plainly_understand_is_left_to_the_parser(
        data: bytes) -> None:
    ep = endpoint(age=0.6)
    ep.receive_datagram(data, SOURCE, 1.0)
    events, sent = drain(ep)
    assert ep.shedding.shed == 0
    assert events or any(b" 400 " in d.split(b"\r\n", 1)[0] for d, _ in sent)


def test_a_retransmission_of_an_invite_being_served_is_absorbed_not_refused() -> None:
    ep = endpoint(age=0.0)
    ep.receive_datagram(invite(), SOURCE, 1.0)
    assert isinstance(drain(ep)[0][0], RequestReceived)
    ep.queue_age = Age(0.9)
    ep.receive_datagram(invite(), SOURCE, 1.5)  # the same branch, late
    events, _ = drain(ep)
    assert events == [] and ep.shedding.shed == 0 and ep.stats.retransmissions_absorbed == 1


def test_a_banned_source_gets_nothing() -> None:
    ep = endpoint(age=0.6)
    ep.admit = lambda source: False
    ep.receive_datagram(invite(), SOURCE, 1.0)
    assert drain(ep) == ([], []) and ep.stats.refused_sources == 1


def test_scanners() -> None:
    head = scan_invite(invite())
    assert head is not None and head.top_via.branch == "z9hG4bK-one"
    assert scan_invite(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n") is None  # no end
    assert scan_branch(invite(method="ACK")) == b"z9hG4bK-one"
    compact = invite().replace(b"Via:", b"v:")
    assert scan_branch(compact) == b"z9hG4bK-one"
    assert has_to_tag(b"<sip:a@b>;tag=1") and not has_to_tag(b'"x;tag=1" <sip:a@b>')


def test_remembered_branches_expire_and_stay_bounded() -> None:
    shedding = QueueShedding(limit_s=0.4)
    shedding.remember("z9hG4bK-a", 0.0)
    shedding.remember("z9hG4bK-b", 40.0)  # pushes out the one older than 32 s
    assert not shedding.absorbs(b"z9hG4bK-a") and shedding.absorbs(b"z9hG4bK-b")
    for n in range(9000):
        shedding.remember(f"z9hG4bK-{n}", 41.0)
    assert not shedding.absorbs(b"z9hG4bK-0") and shedding.absorbs(b"z9hG4bK-8999")
