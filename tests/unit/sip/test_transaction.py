"""The four transaction machines, driven through two `SipEndpoint`s, a fake network and a fake
clock (RFC 3261 §17 timers A–K, RFC 6026 L and M)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pbx.clock import CountingIds
from pbx.sip.endpoint import Address, RequestReceived, SipEndpoint
from pbx.sip.message import Request, Response, make_response
from pbx.sip.parser import parse_message
from pbx.sip.transaction import ResponseReceived, TransactionTimedOut, TxState

UAC = Address("udp", "127.0.0.1", 5070)
UAS = Address("udp", "127.0.0.1", 5060)


@dataclass
class Net:
    """Two endpoints, a clock and a record of every datagram, with loss on demand."""

    now: float = 0.0
    a: SipEndpoint = field(default_factory=lambda: SipEndpoint(CountingIds("a")))
    b: SipEndpoint = field(default_factory=lambda: SipEndpoint(CountingIds("b")))
    sent_by_a: list[bytes] = field(default_factory=list)
    sent_by_b: list[bytes] = field(default_factory=list)
    drop_a: bool = False  # lose what a sends
    drop_b: bool = False

    def transfer(self) -> None:
        """Deliver until both outboxes are empty."""
        while True:
            moved = False
            for data, _dest in self.a.datagrams_to_send():
                moved = True
                self.sent_by_a.append(data)
                if not self.drop_a:
                    self.b.receive_datagram(data, UAC, self.now)
            for data, _dest in self.b.datagrams_to_send():
                moved = True
                self.sent_by_b.append(data)
                if not self.drop_b:
                    self.a.receive_datagram(data, UAS, self.now)
            if not moved:
                return

    def advance(self, seconds: float, step: float = 1 / 64) -> None:
        # A power-of-two step keeps the fake clock exact, so timers fire on their deadline.
        end = self.now + seconds
        while self.now < end:
            self.now = end if end - self.now < step + 1e-9 else self.now + step
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.transfer()


def events(ep: SipEndpoint) -> list[object]:
    out = []
    while (ev := ep.next_event()) is not None:
        out.append(ev)
    return out


def request(method: str, branch: str, transport: str = "UDP") -> Request:
    raw = (
        f"{method} sip:1001@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5070;branch={branch};rport\r\n"
        "From: <sip:1002@hotline.example>;tag=f1\r\n"
        "To: <sip:1001@hotline.example>\r\n"
        f"Call-ID: call-{branch}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


def server_request(net: Net) -> RequestReceived:
    (ev,) = [e for e in events(net.b) if isinstance(e, RequestReceived)]
    return ev


def test_non_invite_retransmits_with_timer_e_and_times_out_with_f() -> None:
    net = Net(drop_a=True)
    tx = net.a.send_request(request("OPTIONS", "z9hG4bK1"), UAS, net.now)
    net.transfer()
    net.advance(40)
    # Sent at 0, then E fires at 0.5, 1.5, 3.5, 7.5 and every T2 = 4 s until F at 32 s.
    assert len(net.sent_by_a) == 11
    assert tx.state is TxState.TERMINATED
    assert [type(e) for e in events(net.a)] == [TransactionTimedOut]
    assert net.a.transaction_count == 0


def test_non_invite_server_absorbs_and_resends_then_timer_j() -> None:
    net = Net()
    net.a.send_request(request("OPTIONS", "z9hG4bK2"), UAS, net.now)
    net.transfer()
    ev = server_request(net)
    assert ev.transaction is not None
    # A retransmission while Trying is absorbed silently.
    net.advance(0.5)
    assert net.sent_by_b == []
    assert net.b.stats.retransmissions_absorbed == 1
    net.b.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), net.now)
    net.transfer()
    (resp,) = [e for e in events(net.a) if isinstance(e, ResponseReceived)]
    assert resp.response.status == 200
    # A late retransmission of the request gets the 200 again (Completed).
    net.b.receive_datagram(net.sent_by_a[0], UAC, net.now)
    assert len(net.b.datagrams_to_send()) == 1
    net.advance(31.0)
    assert ev.transaction.state is TxState.COMPLETED
    net.advance(2.0)
    assert ev.transaction.state is TxState.TERMINATED
    assert net.b.transaction_count == 0


def test_reliable_transport_has_no_retransmissions_and_no_wait() -> None:
    net = Net()
    tcp_uas = Address("tcp", "127.0.0.1", 5060)
    tx = net.a.send_request(request("OPTIONS", "z9hG4bK3", "TCP"), tcp_uas, net.now)
    net.b.receive_datagram(net.a.datagrams_to_send()[0][0], Address("tcp", "127.0.0.1", 5070),
                           net.now)
    ev = server_request(net)
    assert ev.transaction is not None and ev.transaction.reliable
    net.b.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), net.now)
    assert ev.transaction.state is TxState.TERMINATED  # Timer J is zero on TCP
    (data, dest), = net.b.datagrams_to_send()
    assert dest == Address("tcp", "127.0.0.1", 5070)
    net.a.receive_datagram(data, tcp_uas, net.now)
    assert tx.state is TxState.TERMINATED  # Timer K is zero on TCP
    net.advance(5)
    assert net.a.datagrams_to_send() == []


def test_invite_server_sends_100_then_retransmits_error_until_ack() -> None:
    net = Net()
    client = net.a.send_request(request("INVITE", "z9hG4bK4"), UAS, net.now)
    net.transfer()
    ev = server_request(net)
    assert ev.transaction is not None
    (trying,) = net.sent_by_b
    assert trying.startswith(b"SIP/2.0 100 Trying")
    assert client.state is TxState.PROCEEDING  # the 100 stopped Timer A
    net.drop_a = True  # lose the ACK so Timer G keeps retransmitting
    net.b.respond(ev.transaction, make_response(ev.request, 486, to_tag="t"), net.now)
    net.transfer()
    assert client.state is TxState.COMPLETED
    net.advance(0.5 + 1.0 + 0.01)  # G fires at 0.5 and 1.5
    busy = [d for d in net.sent_by_b if d.startswith(b"SIP/2.0 486")]
    assert len(busy) == 3
    acks = [d for d in net.sent_by_a if d.startswith(b"ACK ")]
    assert len(acks) == 3  # the client ACKs every retransmission (§17.1.1.2)
    net.drop_a = False
    net.advance(2.5)  # next G at 3.5 s
    assert ev.transaction.state is TxState.CONFIRMED
    net.advance(5.1)  # Timer I = T4
    assert ev.transaction.state is TxState.TERMINATED
    net.advance(32)
    assert client.state is TxState.TERMINATED  # Timer D
    ack = parse_message(acks[0])
    assert isinstance(ack, Request)
    assert ack.top_via.branch == "z9hG4bK4"
    assert ack.to_addr.tag == "t" and ack.cseq.method == "ACK"


def test_invite_server_timer_h_when_no_ack_arrives() -> None:
    net = Net()
    net.a.send_request(request("INVITE", "z9hG4bK5"), UAS, net.now)
    net.transfer()
    ev = server_request(net)
    assert ev.transaction is not None
    net.drop_b = True
    net.b.respond(ev.transaction, make_response(ev.request, 603, to_tag="t"), net.now)
    net.advance(33)
    assert ev.transaction.state is TxState.TERMINATED
    assert any(isinstance(e, TransactionTimedOut) for e in events(net.b))


def test_invite_client_timer_a_doubles_and_b_times_out() -> None:
    net = Net(drop_a=True)
    tx = net.a.send_request(request("INVITE", "z9hG4bK6"), UAS, net.now)
    net.transfer()
    net.advance(33)
    # 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 -> 7 sends before Timer B at 32 s.
    assert len(net.sent_by_a) == 7
    assert tx.state is TxState.TERMINATED
    assert [type(e) for e in events(net.a)] == [TransactionTimedOut]


def test_invite_2xx_goes_through_accepted_and_retransmissions_reach_the_tu() -> None:
    net = Net()
    tx = net.a.send_request(request("INVITE", "z9hG4bK7"), UAS, net.now)
    net.transfer()
    ev = server_request(net)
    assert ev.transaction is not None
    ok = make_response(ev.request, 200, to_tag="t")
    net.b.respond(ev.transaction, ok, net.now)
    net.transfer()
    assert tx.state is TxState.ACCEPTED and ev.transaction.state is TxState.ACCEPTED
    # The server TU retransmits its 2xx (§13.3.1.4); the client passes each one up.
    net.b.respond(ev.transaction, ok, net.now)
    net.transfer()
    got = [e for e in events(net.a) if isinstance(e, ResponseReceived)]
    assert [e.response.status for e in got] == [100, 200, 200]
    assert [e.response.status for e in got if e.transaction is tx] == [100, 200, 200]
    net.advance(32.1)  # Timers L and M
    assert tx.state is TxState.TERMINATED and ev.transaction.state is TxState.TERMINATED


def test_ack_for_2xx_and_stray_response_pass_up_without_transaction() -> None:
    net = Net()
    ack = request("ACK", "z9hG4bKack")
    net.b.receive_datagram(ack.to_bytes(), UAC, net.now)
    (ev,) = events(net.b)
    assert isinstance(ev, RequestReceived) and ev.transaction is None
    stray = make_response(request("INVITE", "z9hG4bKgone"), 200, to_tag="x")
    net.a.receive_datagram(stray.to_bytes(), UAS, net.now)
    (rev,) = events(net.a)
    assert isinstance(rev, ResponseReceived) and rev.transaction is None


def test_cancel_without_invite_is_answered_481() -> None:
    net = Net()
    net.b.receive_datagram(request("CANCEL", "z9hG4bKc").to_bytes(), UAC, net.now)
    assert events(net.b) == []
    ((data, _),) = net.b.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 481 ")


def test_received_and_rport_are_added_and_used() -> None:
    net = Net()
    msg = request("OPTIONS", "z9hG4bKr").to_bytes().replace(b"127.0.0.1:5070", b"10.9.9.9:5999")
    net.b.receive_datagram(msg, Address("udp", "127.0.0.7", 40000), net.now)
    ev = server_request(net)
    assert ev.request.top_via.params["received"] == "127.0.0.7"
    assert ev.request.top_via.params["rport"] == "40000"
    assert ev.transaction is not None
    net.b.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), net.now)
    ((data, dest),) = net.b.datagrams_to_send()
    assert dest == Address("udp", "127.0.0.7", 40000)
    assert b";rport=40000" in data and b";received=127.0.0.7" in data


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ((b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"), b"CSeq method INVITE does not match OPTIONS"),
        ((b"Content-Length: 0", b"Content-Length: 99"), b"Content-Length 99 exceeds"),
    ],
)
def test_malformed_request_gets_stateless_400_with_reason(
    mutation: tuple[bytes, bytes], reason: bytes
) -> None:
    net = Net()
    data = request("OPTIONS", "z9hG4bKm").to_bytes().replace(*mutation)
    net.b.receive_datagram(data, UAC, net.now)
    ((out, dest),) = net.b.datagrams_to_send()
    assert dest == UAC
    assert out.startswith(b"SIP/2.0 400 " + reason)
    resp = parse_message(out)
    assert isinstance(resp, Response) and resp.to_addr.tag


def test_garbage_and_malformed_responses_are_dropped() -> None:
    net = Net()
    for junk in (b"\x16\x03\x01\x02\x00garbage", b"SIP/2.0 200 OK\r\n\r\n", b"\r\n\r\n"):
        net.b.receive_datagram(junk, UAC, net.now)
    assert net.b.datagrams_to_send() == []
    assert net.b.stats.malformed_dropped == 2
    assert net.b.stats.keepalives == 1


def test_invite_with_no_hops_left_gets_483_but_register_is_served() -> None:
    net = Net()
    invite = request("INVITE", "z9hG4bKmf").to_bytes().replace(b"Max-Forwards: 70",
                                                                b"Max-Forwards: 0")
    net.b.receive_datagram(invite, UAC, net.now)
    assert events(net.b) == []
    ((data, _),) = net.b.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 483 Too Many Hops")
    register = request("REGISTER", "z9hG4bKmf2").to_bytes().replace(b"Max-Forwards: 70",
                                                                      b"Max-Forwards: 0")
    net.b.receive_datagram(register, UAC, net.now)
    assert isinstance(server_request(net), RequestReceived)


def test_responses_go_to_the_real_source_whatever_the_via_says() -> None:
    # No rport in the Via, and a sent-by that names someone else: the answer (and any
    # retransmission of it) still goes back to where the request came from.
    net = Net()
    msg = request("OPTIONS", "z9hG4bKf").to_bytes().replace(b"127.0.0.1:5070;branch",
                                                            b"127.0.0.1:9999;branch")
    msg = msg.replace(b";rport", b"")
    source = Address("udp", "127.0.0.1", 40001)
    net.b.receive_datagram(msg, source, net.now)
    ev = server_request(net)
    assert ev.transaction is not None
    net.b.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), net.now)
    ((_data, dest),) = net.b.datagrams_to_send()
    assert dest == source


def test_a_stateless_refusal_is_sent_once_and_keeps_no_transaction() -> None:
    net = Net()
    invite = request("INVITE", "z9hG4bKs").to_bytes()
    net.b.receive_datagram(invite, UAC, net.now)
    ev = server_request(net)
    assert ev.transaction is not None
    net.b.datagrams_to_send()  # the automatic 100 Trying
    net.b.refuse_stateless(ev.transaction, make_response(ev.request, 403, to_tag="t"))
    ((data, dest),) = net.b.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 403 ") and dest == UAC
    for _ in range(40):  # 32 s: an INVITE transaction's final response would be resent 10 times
        net.now += 0.8
        net.b.handle_timer(net.now)
    assert net.b.datagrams_to_send() == []
    assert net.b.stats.server_transactions == 1
    # A retransmitted INVITE is a new request to us: one more answer, never more than asked.
    net.b.receive_datagram(invite, UAC, net.now)
    ev = server_request(net)
    assert ev.transaction is not None and net.b.stats.server_transactions == 2


def test_the_100_trying_goes_out_at_the_drain_unless_the_tu_answered_first() -> None:
    # The transport drains the endpoint after the TU has handled the event (one pump): an
    # INVITE refused (or challenged) at once gets that one answer, a dropped one nothing, and
    # one the TU is still working on its 100 Trying.
    net = Net()
    net.b.receive_datagram(request("INVITE", "z9hG4bKr").to_bytes(), UAC, net.now)
    ev = server_request(net)
    assert ev.transaction is not None
    net.b.refuse_stateless(ev.transaction, make_response(ev.request, 407, to_tag="t"))
    ((data, _),) = net.b.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 407 ")
    net.b.receive_datagram(request("INVITE", "z9hG4bKd").to_bytes(), UAC, net.now)
    ev = server_request(net)
    assert ev.transaction is not None
    net.b.drop(ev.transaction)
    assert net.b.datagrams_to_send() == [] and net.b.transaction_count == 0
    net.b.receive_datagram(request("INVITE", "z9hG4bKt").to_bytes(), UAC, net.now)
    ev = server_request(net)
    ((data, _),) = net.b.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 100 Trying")
    assert net.b.datagrams_to_send() == []  # once


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS", "REGISTER", "SUBSCRIBE"])
def test_a_source_the_endpoint_does_not_admit_gets_nothing_and_leaves_no_state(
    method: str,
) -> None:
    net = Net()
    net.b.admit = lambda source: source != UAC  # UAC's address is banned
    net.a.send_request(request(method, "z9hG4bKban"), UAS, net.now)
    net.transfer()
    assert net.b.next_event() is None and net.sent_by_b == []  # not even 100 Trying
    assert net.b.transaction_count == 0 and net.b.stats.refused_sources == 1
