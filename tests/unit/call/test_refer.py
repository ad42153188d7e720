"""REFER and Replaces parsing, and the REFER usage of a dialog, on their own."""

from __future__ import annotations

import pytest

from pbx.call.refer import (
    TRANSFER_PENDING,
    ReferTarget,
    ReferUsage,
    Replaces,
    parse_refer_to,
    parse_replaces,
    sipfrag,
)
from pbx.errors import SipParseError
from tests.unit.call.legs import answered_inbound


@pytest.mark.parametrize(("value", "expected"), [
    ("12345@192.168.118.3;to-tag=12345;from-tag=5FFE-3994",
     Replaces("12345@192.168.118.3", "12345", "5FFE-3994")),
    ("abc;from-tag=2;to-tag=1;early-only", Replaces("abc", "1", "2", early_only=True)),
    (" abc ; To-Tag=1 ; FROM-TAG=2 ", Replaces("abc", "1", "2")),
    ("abc;to-tag=1;from-tag=2;x-vendor=3", Replaces("abc", "1", "2")),
    ("abc;to-tag=1", None),  # both tags are mandatory (RFC 3891 §6.1)
    ("abc;from-tag=2", None),
    (";to-tag=1;from-tag=2", None),
    ("abc;to-tag=;from-tag=2", None),
    ("", None),
])
def test_parse_replaces(value: str, expected: Replaces | None) -> None:
    assert parse_replaces(value) == expected


def test_replaces_round_trip() -> None:
    for replaces in (Replaces("a@b", "1", "2"), Replaces("a@b", "1", "2", early_only=True)):
        assert parse_replaces(str(replaces)) == replaces


ATTENDED = Replaces("12345@192.168.118.3", "12345", "5FFE-3994")


@pytest.mark.parametrize(("value", "expected"), [
    ("<sip:1002@pbx.example>", ReferTarget("sip:1002@pbx.example")),
    ("sip:1002@pbx.example", ReferTarget("sip:1002@pbx.example")),
    ('"Bob" <sip:bob@pbx.example;user=phone>;x=1',
     ReferTarget("sip:bob@pbx.example;user=phone")),
    ("<sip:bob@pbx.example?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>",
     ReferTarget("sip:bob@pbx.example", ATTENDED)),
    ("<sip:bob@pbx.example?replaces=12345%40192.168.118.3%3bto-tag%3d12345%3bfrom-tag%3d5FFE-3994>",
     ReferTarget("sip:bob@pbx.example", ATTENDED)),
    # Phones that do not escape the Replaces value are understood as well.
    ("<sip:bob@pbx.example?Replaces=12345@192.168.118.3;to-tag=12345;from-tag=5FFE-3994>",
     ReferTarget("sip:bob@pbx.example", ATTENDED)),
    # Other embedded headers stay in the URI.
    ("<sip:bob@pbx.example?Require=replaces&Replaces=12345%40192.168.118.3%3Bto-tag%3D12345"
     "%3Bfrom-tag%3D5FFE-3994>",
     ReferTarget("sip:bob@pbx.example?Require=replaces", ATTENDED)),
    ("<tel:+4930123456>", ReferTarget("tel:+4930123456")),
])
def test_parse_refer_to(value: str, expected: ReferTarget) -> None:
    assert parse_refer_to(value) == expected


@pytest.mark.parametrize("value", [
    "<sip:bob@pbx.example?Replaces=junk>",
    "<sip:bob@pbx.example",
    "bob",
    "",
])
def test_parse_refer_to_refuses_malformed_values(value: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_refer_to(value)
    assert caught.value.status == 400


def test_sipfrag() -> None:
    assert sipfrag(100, "Trying") == b"SIP/2.0 100 Trying\r\n"
    assert sipfrag(486) == b"SIP/2.0 486 Busy Here\r\n"


def test_usage_one_transfer_at_a_time_and_ids_for_later_refers() -> None:
    leg, peer = answered_inbound()
    assert leg.dialog is not None
    usage = ReferUsage()
    first = peer.request("REFER", headers=("Refer-To: <sip:1002@pbx>",))
    first_tx = peer.transaction(first)
    assert usage.receive(first, first_tx) == ReferTarget("sip:1002@pbx")
    second = peer.request("REFER", headers=("Refer-To: <sip:1003@pbx>",))
    with pytest.raises(SipParseError) as caught:
        usage.receive(second, peer.transaction(second))
    assert caught.value.status == TRANSFER_PENDING
    assert usage.unanswered() is not None and usage.accept(first_tx) is not None
    assert usage.unanswered() is None and usage.reject(first_tx) is False
    trying = usage.notify(leg.dialog, "z9hG4bKn1", 100, "Trying", final=False)
    done = usage.notify(leg.dialog, "z9hG4bKn2", 200, "OK", final=True)
    assert trying is not None and done is not None
    assert trying.headers.get("event") == "refer" and usage.current is None
    assert usage.notify(leg.dialog, "z9hG4bKn3", 200, "OK", final=True) is None
    # RFC 3515 §2.4.6: the second REFER of a dialog has its NOTIFYs carry id=<its CSeq>.
    third = peer.request("REFER", headers=("Refer-To: <sip:1004@pbx>",))
    third_tx = peer.transaction(third)
    usage.receive(third, third_tx)
    usage.accept(third_tx)
    notify = usage.notify(leg.dialog, "z9hG4bKn4", 100, "Trying", final=False)
    assert notify is not None
    assert notify.headers.get("event") == f"refer;id={third.cseq.number}"
    usage.notify_failed(done.cseq.number)  # an old NOTIFY's failure: not this subscription
    assert usage.current is not None
    usage.notify_failed(notify.cseq.number)
    assert usage.current is None


