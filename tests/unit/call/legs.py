"""Test helpers for the call legs: a counting network, a peer that writes in-dialog requests
and answers the leg's requests, and real server transactions from a `SipEndpoint`."""

from __future__ import annotations

from dataclasses import dataclass, field

from pbx.call.sip_leg import (
    InboundLeg,
    Leg,
    OutboundLeg,
    Respond,
    SendRequest,
    SendStateless,
)
from pbx.clock import CountingIds
from pbx.sip.endpoint import Address, RequestReceived, SipEndpoint
from pbx.sip.message import Request, Response, make_response
from pbx.sip.parser import parse_message
from pbx.sip.transaction import ServerTransaction
from pbx.sip.uri import NameAddr, SipUri

PEER = Address("udp", "127.0.0.1", 5070)
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 4000 RTP/AVP 0\r\n")
SDP2 = SDP.replace(b"4000", b"4002")  # the peer's new offer (hold, codec change)
OURS = SDP.replace(b"4000", b"6000")  # what the layer above answers with


class Net:
    def __init__(self) -> None:
        self.ids = CountingIds("x")

    def new_branch(self) -> str:
        return "z9hG4bK" + self.ids.token()

    def new_tag(self) -> str:
        return "tag" + self.ids.token()

    def local_contact(self, transport: str) -> str:
        return "<sip:pbx@127.0.0.1:5060>"

    def local_via(self, transport: str) -> tuple[str, int, str]:
        return ("127.0.0.1", 5060, "UDP")


@dataclass
class Peer:
    """The far end of one leg: writes its in-dialog requests (with a fresh CSeq each) and gets
    real server transactions for them from an endpoint."""

    leg: Leg
    cseq: int = 10
    endpoint: SipEndpoint = field(default_factory=lambda: SipEndpoint(CountingIds("e")))

    def request(self, method: str, body: bytes = b"", headers: tuple[str, ...] = (),
                cseq: int | None = None) -> Request:
        dialog = self.leg.dialog
        assert dialog is not None
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        lines = [f"{method} sip:pbx@127.0.0.1:5060 SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{method}{cseq}x",
                 f"From: {dialog.remote_uri.with_tag(dialog.remote_tag)}",
                 f"To: {dialog.local_uri.with_tag(dialog.local_tag)}",
                 f"Call-ID: {dialog.call_id}", f"CSeq: {cseq} {method}", "Max-Forwards: 70",
                 "Contact: <sip:peer@127.0.0.1:5070>", *headers]
        if body:
            lines.append("Content-Type: application/sdp")
        raw = ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        message = parse_message(raw)
        assert isinstance(message, Request)
        return message

    def send(self, method: str, body: bytes = b"", headers: tuple[str, ...] = (),
             now: float = 10.0) -> tuple[list[object], ServerTransaction | None]:
        """Deliver a new in-dialog request to the leg: (its actions, the transaction)."""
        request = self.request(method, body, headers)
        tx = self.transaction(request) if method != "ACK" else None
        return self.leg.on_request(request, tx, now), tx

    def ack(self, cseq: int, body: bytes = b"", now: float = 10.0) -> list[object]:
        return self.leg.on_request(self.request("ACK", body, cseq=cseq), None, now)

    def transaction(self, request: Request) -> ServerTransaction:
        self.endpoint.receive_datagram(request.to_bytes(), PEER, 0.0)
        event = self.endpoint.next_event()
        assert isinstance(event, RequestReceived) and event.transaction is not None
        return event.transaction

    def deliver(self, actions: list[object], now: float = 10.0) -> None:
        """Carry out the leg's responses through the transactions (as the switchboard does)."""
        for action in actions:
            if isinstance(action, Respond):
                self.endpoint.respond(action.transaction, action.response, now)


def new_inbound(extra: str = "", allow: str = "INVITE, ACK, CANCEL, BYE, UPDATE") -> InboundLeg:
    raw = ("INVITE sip:+4930100@127.0.0.1 SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinv1\r\n"
           "From: <sip:+4917@carrier.test>;tag=c1\r\nTo: <sip:+4930100@127.0.0.1>\r\n"
           f"Call-ID: leg-test\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5070>\r\n"
           f"Allow: {allow}\r\n{extra}Max-Forwards: 70\r\nContent-Type: application/sdp\r\n"
           f"Content-Length: {len(SDP)}\r\n\r\n").encode() + SDP
    endpoint = SipEndpoint(CountingIds("i"))
    endpoint.receive_datagram(raw, PEER, 0.0)
    event = endpoint.next_event()
    assert isinstance(event, RequestReceived) and event.transaction is not None
    return InboundLeg("in", Net(), event.request, event.transaction, PEER)


def answered_inbound(extra: str = "", now: float = 0.0,
                     allow: str = "INVITE, ACK, CANCEL, BYE, UPDATE") -> tuple[InboundLeg, Peer]:
    leg = new_inbound(extra, allow)
    leg.answer(OURS, now)
    peer = Peer(leg)
    leg.on_request(peer.request("ACK", cseq=1), None, now)
    return leg, peer


def new_outbound(session_expires: int = 0) -> OutboundLeg:
    return OutboundLeg("out", Net(), SipUri("127.0.0.1", user="1001", port=5072), PEER,
                       NameAddr(SipUri("hotline.example", user="+4917")),
                       NameAddr(SipUri("hotline.example", user="1001")), OURS, 0.0,
                       session_expires=session_expires)


def invite_response(leg: OutboundLeg, status: int, headers: tuple[tuple[str, str], ...] = (),
                    body: bytes = b"", tag: str = "agent") -> Response:
    response = make_response(leg.invite, status, to_tag=tag)
    response.headers.add("Contact", "<sip:1001@127.0.0.1:5072>")
    for name, value in headers:
        response.headers.add(name, value)
    response.body = body
    return response


def answered_outbound(headers: tuple[tuple[str, str], ...] = (), now: float = 0.0,
                      allow: str = "INVITE, ACK, CANCEL, BYE, UPDATE") -> tuple[OutboundLeg, Peer]:
    leg = new_outbound()
    leg.start()
    leg.on_response(invite_response(leg, 200, (("Allow", allow), *headers), SDP), now)
    return leg, Peer(leg)


def answered(kind: str, extra: tuple[tuple[str, str], ...] = (), now: float = 0.0,
             allow: str = "INVITE, ACK, CANCEL, BYE, UPDATE") -> tuple[Leg, Peer]:
    """An established leg of `kind` ("inbound" or "outbound"); `extra` headers go in the
    INVITE (inbound) or in the 2xx (outbound)."""
    if kind == "inbound":
        text = "".join(f"{name}: {value}\r\n" for name, value in extra)
        return answered_inbound(text, now, allow)
    return answered_outbound(extra, now, allow)


def reply(request: Request, status: int, headers: tuple[tuple[str, str], ...] = (),
          body: bytes = b"") -> Response:
    """The peer's response to a request the leg sent."""
    response = make_response(request, status)
    for name, value in headers:
        response.headers.add(name, value)
    response.body = body
    return response


def responses(actions: list[object]) -> list[Response]:
    return [a.response for a in actions if isinstance(a, Respond)]


def statuses(actions: list[object]) -> list[int]:
    return [r.status for r in responses(actions)]


def sent(actions: list[object]) -> list[Request]:
    """The requests the leg sends in new client transactions."""
    return [a.request for a in actions if isinstance(a, SendRequest)]


def stateless(actions: list[object]) -> list[Request | Response]:
    return [a.message for a in actions if isinstance(a, SendStateless)]


def events(actions: list[object]) -> list[object]:
    return [a for a in actions if not isinstance(a, Respond | SendRequest | SendStateless)]
