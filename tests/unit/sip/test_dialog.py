"""Dialogs (RFC 3261 §12): built on the UAS side from a captured INVITE and on the UAC side
from our INVITE and the far end's response; CSeq ordering, in-dialog requests, the ACK for a
2xx and target refresh. Requests are round-tripped through the parser and read by the peer's
dialog, as the other user agent would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx.errors import SipParseError
from pbx.sip.dialog import Dialog
from pbx.sip.message import Request, Response, make_response
from pbx.sip.parser import parse_message

DATA = Path(__file__).parents[2] / "data" / "sip"
OUR_CONTACT = "<sip:pbx@127.0.0.1:5060>"
VIA = ("127.0.0.1", 5060, "UDP")


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse_request(raw: bytes | str) -> Request:
    message = parse_message(raw.encode() if isinstance(raw, str) else raw)
    assert isinstance(message, Request)
    return message


def parse_response(raw: str) -> Response:
    message = parse_message(raw.encode())
    assert isinstance(message, Response)
    return message


def carrier_invite() -> Request:
    return parse_request(load("invite_carrier.txt"))


def uas_dialog(invite: Request | None = None, contact: str = OUR_CONTACT,
               via: tuple[str, int, str] = VIA) -> Dialog:
    return Dialog.for_uas(invite or carrier_invite(), "ours1", contact, via)


def invite_text(*extra: str, contact: str = "Contact: <sip:1001@127.0.0.1:40123>") -> str:
    """An INVITE from agent 1001 through a proxy that record-routes (extra headers added)."""
    lines = [
        "INVITE sip:1002@hotline.example SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:40123;branch=z9hG4bKinv1;rport",
        "Max-Forwards: 70",
        "From: <sip:1001@hotline.example>;tag=caller1",
        "To: <sip:1002@hotline.example>",
        "Call-ID: dlg-call-1",
        "CSeq: 20 INVITE",
        *([contact] if contact else []),
        *extra,
        "Content-Length: 0",
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


def ok_text(*extra: str, contact: str = "Contact: <sip:1002@192.0.2.20:5062;transport=tcp>",
            status: str = "200 OK") -> str:
    """The far end's answer to `invite_text()`, with its To tag."""
    lines = [
        f"SIP/2.0 {status}",
        "Via: SIP/2.0/UDP 127.0.0.1:40123;branch=z9hG4bKinv1;rport=40123",
        "From: <sip:1001@hotline.example>;tag=caller1",
        "To: <sip:1002@hotline.example>;tag=callee9",
        "Call-ID: dlg-call-1",
        "CSeq: 20 INVITE",
        *([contact] if contact else []),
        *extra,
        "Content-Length: 0",
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


def uac_dialog(*extra: str, contact: str = "Contact: <sip:1002@192.0.2.20:5062;transport=tcp>",
               status: str = "200 OK") -> Dialog:
    return Dialog.for_uac(parse_request(invite_text()),
                          parse_response(ok_text(*extra, contact=contact, status=status)),
                          OUR_CONTACT, VIA)


# --- for_uas (RFC 3261 §12.1.1) -----------------------------------------------------------------


def test_for_uas_from_captured_carrier_invite() -> None:
    dialog = uas_dialog()
    assert dialog.call_id == "1-12@127.0.0.1"
    assert dialog.local_tag == "ours1"
    assert dialog.remote_tag == "12SIPpTag001"
    assert dialog.id == ("1-12@127.0.0.1", "ours1", "12SIPpTag001")
    assert str(dialog.local_uri) == "<sip:+4930123456@hotline.example>"
    assert str(dialog.remote_uri) == (
        '"Erika Mustermann" <sip:+4917612345678@carrier.example>;tag=12SIPpTag001')
    assert str(dialog.remote_target) == "sip:+4917612345678@127.0.0.1:5070"
    assert dialog.route_set == []
    assert dialog.local_cseq == 0
    assert dialog.remote_cseq == 1
    assert (dialog.via_host, dialog.via_port, dialog.via_transport) == VIA
    assert dialog.contact == OUR_CONTACT


def test_for_uas_from_captured_compact_invite() -> None:
    dialog = Dialog.for_uas(parse_request(load("invite_compact.txt")), "ours2", "",
                            ("::1", 5062, "TCP"))
    assert dialog.call_id == "compact-call-id@example"
    assert dialog.remote_tag == "aa"
    assert dialog.remote_uri.display_name == "Agent One"
    assert str(dialog.remote_target) == "sip:1001@[::1]:5062;transport=tcp"
    assert dialog.remote_target.params == {"transport": "tcp"}
    assert dialog.remote_cseq == 7
    assert dialog.contact == ""


@pytest.mark.parametrize(
    ("record_route", "route_set"),
    [
        ((), []),
        (("Record-Route: <sip:p1.example;lr>",), ["<sip:p1.example;lr>"]),
        (("Record-Route: <sip:p1.example;lr>", "Record-Route: <sip:p2.example;lr;ftag=x>"),
         ["<sip:p1.example;lr>", "<sip:p2.example;lr;ftag=x>"]),
        (("Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>",),
         ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]),
    ],
    ids=["none", "one", "two-headers-in-order", "comma-list-in-order"],
)
def test_for_uas_route_set_is_record_route_in_order(record_route: tuple[str, ...],
                                                    route_set: list[str]) -> None:
    dialog = uas_dialog(parse_request(invite_text(*record_route)))
    assert dialog.route_set == route_set


@pytest.mark.parametrize(
    "contact",
    ["", "Contact: <tel:+4930123456>"],
    ids=["no-contact", "tel-contact"],
)
def test_for_uas_invite_without_sip_contact_is_refused(contact: str) -> None:
    with pytest.raises(SipParseError, match="INVITE without a sip: Contact"):
        uas_dialog(parse_request(invite_text(contact=contact)))


# --- for_uac (RFC 3261 §12.1.2) -----------------------------------------------------------------


@pytest.mark.parametrize("status", ["200 OK", "180 Ringing"], ids=["confirmed", "early"])
def test_for_uac_fields(status: str) -> None:
    dialog = uac_dialog(status=status)
    assert dialog.call_id == "dlg-call-1"
    assert dialog.local_tag == "caller1"
    assert dialog.remote_tag == "callee9"
    assert dialog.id == ("dlg-call-1", "caller1", "callee9")
    assert str(dialog.local_uri) == "<sip:1001@hotline.example>;tag=caller1"
    assert str(dialog.remote_uri) == "<sip:1002@hotline.example>;tag=callee9"
    assert str(dialog.remote_target) == "sip:1002@192.0.2.20:5062;transport=tcp"
    assert dialog.route_set == []
    assert dialog.local_cseq == 20
    assert dialog.remote_cseq == 0
    assert dialog.contact == OUR_CONTACT


@pytest.mark.parametrize(
    ("record_route", "route_set"),
    [
        (("Record-Route: <sip:p1.example;lr>",), ["<sip:p1.example;lr>"]),
        (("Record-Route: <sip:p2.example;lr>", "Record-Route: <sip:p1.example;lr>"),
         ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]),
        (("Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>",),
         ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]),
    ],
    ids=["one", "two-headers-reversed", "comma-list-reversed"],
)
def test_for_uac_route_set_is_record_route_reversed(record_route: tuple[str, ...],
                                                    route_set: list[str]) -> None:
    assert uac_dialog(*record_route).route_set == route_set


def test_for_uac_without_contact_targets_the_request_uri() -> None:
    dialog = uac_dialog(contact="")
    assert str(dialog.remote_target) == "sip:1002@hotline.example"


# --- accepts: CSeq ordering (RFC 3261 §12.2.2) --------------------------------------------------


@pytest.mark.parametrize(
    ("remote_cseq", "method", "number", "accepted", "after"),
    [
        (5, "BYE", 6, True, 6),
        (5, "INFO", 100, True, 100),
        (5, "BYE", 4, False, 5),
        (5, "UPDATE", 5, False, 5),
        (5, "ACK", 5, True, 5),
        (5, "ACK", 1, True, 5),
        (5, "CANCEL", 1, True, 5),
        (0, "BYE", 1, True, 1),
        (0, "INVITE", 7000, True, 7000),
    ],
    ids=["next", "gap", "lower", "equal", "ack-same", "ack-lower", "cancel-lower",
         "empty-first", "empty-large"],
)
def test_accepts(remote_cseq: int, method: str, number: int, accepted: bool,
                 after: int) -> None:
    dialog = uas_dialog()
    dialog.remote_cseq = remote_cseq
    request = Request(method, "sip:pbx@127.0.0.1:5060")
    request.headers.add("CSeq", f"{number} {method}")
    assert dialog.accepts(request) is accepted
    assert dialog.remote_cseq == after


# --- make_request (RFC 3261 §12.2.1.1) ----------------------------------------------------------


def test_make_request_bye_fields() -> None:
    dialog = uas_dialog()
    bye = dialog.make_request("BYE", "z9hG4bKbye1")
    assert bye.method == "BYE"
    assert bye.uri == "sip:+4917612345678@127.0.0.1:5070"
    via = bye.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "127.0.0.1", 5060)
    assert via.branch == "z9hG4bKbye1"
    assert "rport" in via.params
    assert bye.headers.get("max-forwards") == "70"
    assert str(bye.from_addr) == "<sip:+4930123456@hotline.example>;tag=ours1"
    assert str(bye.to_addr) == (
        '"Erika Mustermann" <sip:+4917612345678@carrier.example>;tag=12SIPpTag001')
    assert bye.call_id == "1-12@127.0.0.1"
    assert (bye.cseq.number, bye.cseq.method) == (1, "BYE")
    assert "route" not in bye.headers
    assert "contact" not in bye.headers
    assert "content-type" not in bye.headers
    assert bye.body == b""


def test_make_request_uac_side_starts_after_the_invite_cseq() -> None:
    dialog = uac_dialog()
    bye = dialog.make_request("BYE", "z9hG4bKbye2")
    assert bye.uri == "sip:1002@192.0.2.20:5062;transport=tcp"
    assert bye.from_addr.tag == "caller1"
    assert bye.to_addr.tag == "callee9"
    assert bye.cseq.number == 21
    assert dialog.local_cseq == 21


def test_make_request_cseq_increases_by_one() -> None:
    dialog = uas_dialog()
    numbers = [dialog.make_request(m, f"z9hG4bK{m}").cseq.number
               for m in ("INFO", "UPDATE", "BYE")]
    assert numbers == [1, 2, 3]
    assert dialog.local_cseq == 3


def test_make_request_with_explicit_cseq_keeps_the_counter() -> None:
    dialog = uas_dialog()
    dialog.local_cseq = 4
    request = dialog.make_request("CANCEL", "z9hG4bKc", cseq=4)
    assert (request.cseq.number, request.cseq.method) == (4, "CANCEL")
    assert dialog.local_cseq == 4


@pytest.mark.parametrize(
    ("method", "has_contact"),
    [("INVITE", True), ("UPDATE", True), ("SUBSCRIBE", True), ("NOTIFY", True),
     ("REFER", True), ("BYE", False), ("INFO", False), ("OPTIONS", False), ("MESSAGE", False)],
    ids=["invite", "update", "subscribe", "notify", "refer", "bye", "info", "options",
         "message"],
)
def test_make_request_contact_only_on_target_refresh_methods(method: str,
                                                            has_contact: bool) -> None:
    request = uas_dialog().make_request(method, "z9hG4bKx")
    assert (request.headers.get("contact") == OUR_CONTACT) is has_contact
    assert ("contact" in request.headers) is has_contact


def test_make_request_without_our_contact_adds_none() -> None:
    request = uas_dialog(contact="").make_request("INVITE", "z9hG4bKx")
    assert "contact" not in request.headers


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"v=0\r\n", "application/sdp", "application/sdp"),
        (b"v=0\r\n", None, None),
        (b"", "application/sdp", None),
    ],
    ids=["body-and-type", "body-without-type", "type-without-body"],
)
def test_make_request_content_type(body: bytes, content_type: str | None,
                                   expected: str | None) -> None:
    request = uas_dialog().make_request("INFO", "z9hG4bKx", body=body, content_type=content_type)
    assert request.headers.get("content-type") == expected
    assert request.body == body


def test_make_request_routes_through_the_loose_route_set() -> None:
    dialog = uas_dialog(parse_request(invite_text(
        "Record-Route: <sip:p1.example;lr>", "Record-Route: <sip:p2.example;lr>")))
    request = dialog.make_request("BYE", "z9hG4bKx")
    assert request.uri == "sip:1001@127.0.0.1:40123"
    assert request.headers.get_all("route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]


@pytest.mark.parametrize(
    ("via", "sent_by"),
    [(("127.0.0.1", 5060, "UDP"), "UDP 127.0.0.1:5060"),
     (("::1", 5062, "TCP"), "TCP [::1]:5062")],
    ids=["ipv4", "ipv6-bracketed"],
)
def test_make_request_via_sent_by(via: tuple[str, int, str], sent_by: str) -> None:
    request = uas_dialog(via=via).make_request("BYE", "z9hG4bKx")
    assert request.headers.get("via") == f"SIP/2.0/{sent_by};branch=z9hG4bKx;rport"


def test_make_request_roundtrips_byte_for_byte() -> None:
    dialog = uas_dialog(parse_request(invite_text("Record-Route: <sip:p1.example;lr>")))
    request = dialog.make_request("INVITE", "z9hG4bKre", body=b"v=0\r\n",
                                  content_type="application/sdp")
    again = parse_request(request.to_bytes())
    assert again.to_bytes() == request.to_bytes()
    assert again.method == "INVITE"
    assert again.uri == request.uri
    assert again.call_id == "dlg-call-1"
    assert (again.cseq.number, again.cseq.method) == (1, "INVITE")
    assert again.from_addr.tag == "ours1"
    assert again.to_addr.tag == "caller1"
    assert again.headers.get_all("route") == ["<sip:p1.example;lr>"]
    assert again.headers.get("content-type") == "application/sdp"
    assert again.body == b"v=0\r\n"


# --- make_ack (RFC 3261 §13.2.2.4) --------------------------------------------------------------


def test_make_ack_reuses_the_invite_cseq_number() -> None:
    dialog = uac_dialog("Record-Route: <sip:p1.example;lr>")
    ack = dialog.make_ack(20, "z9hG4bKack1")
    assert ack.method == "ACK"
    assert ack.uri == "sip:1002@192.0.2.20:5062;transport=tcp"
    assert (ack.cseq.number, ack.cseq.method) == (20, "ACK")
    assert ack.top_via.branch == "z9hG4bKack1"
    assert ack.from_addr.tag == "caller1"
    assert ack.to_addr.tag == "callee9"
    assert ack.headers.get_all("route") == ["<sip:p1.example;lr>"]
    assert "contact" not in ack.headers
    assert dialog.local_cseq == 20


def test_make_ack_for_a_reinvite() -> None:
    dialog = uac_dialog()
    reinvite = dialog.make_request("INVITE", "z9hG4bKre")
    ack = dialog.make_ack(reinvite.cseq.number, "z9hG4bKack2")
    assert ack.cseq.number == 21
    assert ack.top_via.branch != reinvite.top_via.branch
    assert dialog.local_cseq == 21


# --- update_target ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "target"),
    [
        ("Contact: <sip:1001@192.0.2.30:5070>", "sip:1001@192.0.2.30:5070"),
        ("Contact: <sip:1001@[2001:db8::1]:5062;transport=tcp>",
         "sip:1001@[2001:db8::1]:5062;transport=tcp"),
        ("", "sip:+4917612345678@127.0.0.1:5070"),
        ("Contact: <tel:+4930123456>", "sip:+4917612345678@127.0.0.1:5070"),
    ],
    ids=["new-contact", "ipv6-contact", "no-contact-keeps", "tel-contact-keeps"],
)
def test_update_target_from_reinvite(contact: str, target: str) -> None:
    dialog = uas_dialog()
    reinvite = parse_request(invite_text(contact=contact))
    dialog.update_target(reinvite)
    assert str(dialog.remote_target) == target


def test_update_target_from_2xx() -> None:
    dialog = uac_dialog()
    dialog.update_target(parse_response(ok_text(contact="Contact: <sip:1002@192.0.2.21:5060>")))
    assert str(dialog.remote_target) == "sip:1002@192.0.2.21:5060"
    assert dialog.make_request("BYE", "z9hG4bKx").uri == "sip:1002@192.0.2.21:5060"


# --- two peers ----------------------------------------------------------------------------------


def peers() -> tuple[Dialog, Dialog]:
    """Caller A (UAC) and callee B (UAS) after B answered A's INVITE with 200 and a Contact."""
    invite = parse_request(invite_text("Record-Route: <sip:p1.example;lr>",
                                       "Record-Route: <sip:p2.example;lr>"))
    callee = Dialog.for_uas(invite, "callee9", "<sip:1002@192.0.2.20:5062>",
                            ("192.0.2.20", 5062, "UDP"))
    ok = make_response(invite, 200, "OK", to_tag="callee9")
    ok.headers.add("Contact", "<sip:1002@192.0.2.20:5062>")
    ok = parse_response(ok.to_bytes().decode())
    caller = Dialog.for_uac(invite, ok, "<sip:1001@127.0.0.1:40123>", ("127.0.0.1", 40123, "UDP"))
    return caller, callee


def test_peers_share_the_dialog_id_mirrored() -> None:
    caller, callee = peers()
    assert caller.id == (callee.call_id, callee.remote_tag, callee.local_tag)
    assert caller.route_set == list(reversed(callee.route_set))
    assert str(caller.remote_target) == callee.contact.strip("<>")
    assert str(callee.remote_target) == caller.contact.strip("<>")


@pytest.mark.parametrize("direction", ["caller-to-callee", "callee-to-caller"])
def test_peer_accepts_in_dialog_requests_in_order(direction: str) -> None:
    caller, callee = peers()
    sender, receiver = (caller, callee) if direction == "caller-to-callee" else (callee, caller)
    first = parse_request(sender.make_request("INFO", "z9hG4bK1").to_bytes())
    second = parse_request(sender.make_request("BYE", "z9hG4bK2").to_bytes())
    assert first.call_id == receiver.call_id
    assert first.from_addr.tag == receiver.remote_tag
    assert first.to_addr.tag == receiver.local_tag
    assert receiver.accepts(first) is True
    assert receiver.accepts(second) is True
    assert receiver.accepts(first) is False  # a late, out-of-order request
    assert receiver.remote_cseq == second.cseq.number


# --- against the module docstring and RFC 3261 §12.2.1.1 ----------------------------------------


@pytest.mark.parametrize(
    ("record_route", "uri", "routes"),
    [((), "sip:1001@127.0.0.1:40123", []),
     (("Record-Route: <sip:p1.example;lr>",), "sip:1001@127.0.0.1:40123",
      ["<sip:p1.example;lr>"]),
     (("Record-Route: <sip:strict.example;transport=tcp;method=INVITE?x=y>",),
      "sip:strict.example;transport=tcp",
      ["<sip:1001@127.0.0.1:40123>"])],
    ids=["remote-target", "first-route", "strict-first-route"],
)
def test_request_names_the_next_hop(record_route: tuple[str, ...], uri: str,
                                    routes: list[str]) -> None:
    """The dialog has no `next_hop`: the caller sends to the first route set entry or the remote
    target (§8.1.2); the request carries both where the RFC puts them (§12.2.1.1). A strict
    router's URI loses what a Request-URI may not carry (`method`, headers; §19.1.1)."""
    dialog = uas_dialog(parse_request(invite_text(*record_route)))
    request = dialog.make_request("BYE", "z9hG4bKx")
    assert request.uri == uri
    assert request.headers.get_all("route") == routes


def test_make_request_strict_route_set() -> None:
    dialog = uas_dialog(parse_request(invite_text(
        "Record-Route: <sip:strict.example>", "Record-Route: <sip:p2.example;lr>")))
    request = dialog.make_request("BYE", "z9hG4bKx")
    assert request.uri == "sip:strict.example"
    assert request.headers.get_all("route") == [
        "<sip:p2.example;lr>", "<sip:1001@127.0.0.1:40123>"]
