"""SDP parsing and RFC 3264 offer/answer for G.711 + telephone-event, including hold."""

from __future__ import annotations

import pytest

from media.sdp import (
    Direction,
    accept_answer,
    create_answer,
    create_offer,
    parse_sdp,
)

# An offer as a carrier sends it: session-level c=, dynamic telephone-event, G.729 first.
CARRIER_OFFER = (
    "v=0\r\n"
    "o=carrier 1699 1 IN IP4 203.0.113.5\r\n"
    "s=SBC\r\n"
    "c=IN IP4 203.0.113.5\r\n"
    "t=0 0\r\n"
    "m=audio 30000 RTP/AVP 18 8 0 96\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:96 telephone-event/8000\r\n"
    "a=fmtp:96 0-15\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


def test_parse_carrier_offer_field_by_field() -> None:
    offer = parse_sdp(CARRIER_OFFER)
    assert offer.origin_username == "carrier"
    assert (offer.session_id, offer.session_version) == (1699, 1)
    assert offer.connection == "203.0.113.5"
    audio = offer.audio()
    assert audio.port == 30000
    assert [f.payload_type for f in audio.formats] == [18, 8, 0, 96]
    assert [f.encoding for f in audio.formats] == ["G729", "PCMA", "PCMU", "telephone-event"]
    assert audio.format(18) is not None and audio.format(18).fmtp == "annexb=no"  # type: ignore[union-attr]
    assert audio.ptime == 20
    assert audio.direction is Direction.SENDRECV


def test_serialize_parse_round_trip() -> None:
    offer = parse_sdp(CARRIER_OFFER)
    assert parse_sdp(offer.serialize()) == offer


def test_answer_picks_first_supported_codec_and_keeps_event_payload_type() -> None:
    offer = parse_sdp(CARRIER_OFFER)
    answer, negotiated = create_answer(offer, "192.0.2.1", 40000, session_id=7)
    assert negotiated.codec == "PCMA"
    assert negotiated.payload_type == 8
    assert negotiated.telephone_event_pt == 96
    assert (negotiated.remote_address, negotiated.remote_port) == ("203.0.113.5", 30000)
    assert negotiated.remote_rtcp_port == 30001
    assert negotiated.send and negotiated.receive
    text = answer.serialize()
    assert "m=audio 40000 RTP/AVP 8 96\r\n" in text
    assert "a=rtpmap:96 telephone-event/8000\r\n" in text
    assert "c=IN IP4 192.0.2.1\r\n" in text
    assert "a=sendrecv\r\n" in text


@pytest.mark.parametrize(
    ("offered", "answered", "send", "receive"),
    [
        ("sendrecv", "sendrecv", True, True),
        ("sendonly", "recvonly", False, True),
        ("recvonly", "sendonly", True, False),
        ("inactive", "inactive", False, False),
    ],
)
def test_hold_directions_are_mirrored(
    offered: str, answered: str, send: bool, receive: bool
) -> None:
    offer = parse_sdp(CARRIER_OFFER.replace("a=sendrecv", f"a={offered}"))
    answer, negotiated = create_answer(offer, "192.0.2.1", 40000, session_id=7)
    assert answer.audio().direction is Direction(answered)
    assert (negotiated.send, negotiated.receive) == (send, receive)


def test_old_style_hold_address_means_do_not_send() -> None:
    offer = parse_sdp(CARRIER_OFFER.replace("c=IN IP4 203.0.113.5", "c=IN IP4 0.0.0.0"))
    _, negotiated = create_answer(offer, "192.0.2.1", 40000, session_id=7)
    assert negotiated.remote_address is None
    assert negotiated.send is False


def test_media_level_connection_and_rtcp_attribute_win() -> None:
    text = CARRIER_OFFER.replace(
        "a=ptime:20\r\n", "c=IN IP6 2001:db8::5\r\na=rtcp:30011\r\na=ptime:20\r\n"
    )
    _, negotiated = create_answer(parse_sdp(text), "::1", 40000, session_id=7)
    assert negotiated.remote_address == "2001:db8::5"
    assert negotiated.remote_rtcp_port == 30011


def test_offer_then_answer_from_peer() -> None:
    offer = create_offer("127.0.0.1", 40000, session_id=3)
    text = offer.serialize()
    assert "m=audio 40000 RTP/AVP 0 8 101\r\n" in text
    assert "a=fmtp:101 0-16\r\n" in text
    assert "a=ptime:20\r\n" in text
    peer_answer, _ = create_answer(parse_sdp(text), "127.0.0.2", 50000, session_id=9,
                                   codecs=("PCMA",))
    negotiated = accept_answer(offer, parse_sdp(peer_answer.serialize()))
    assert negotiated.codec == "PCMA"
    assert negotiated.telephone_event_pt == 101
    assert (negotiated.remote_address, negotiated.remote_port) == ("127.0.0.2", 50000)


def test_no_common_codec_is_a_clear_error() -> None:
    offer = parse_sdp(CARRIER_OFFER.replace("RTP/AVP 18 8 0 96", "RTP/AVP 18"))
    with pytest.raises(ValueError, match="no common audio codec: offer has G729"):
        create_answer(offer, "192.0.2.1", 40000, session_id=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v=0\r\ns=x\r\n", "no o= line"),
        ("v=0\r\no=a b\r\n", "line 2: o= needs 6 fields"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n", "line 3: m= port must be"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP9 h\r\n", "line 3: c= must be"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5 RTP/AVP 0\r\n", "has no c= line"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nbogus\r\n", "line 3: expected"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 h\r\nm=audio 5 RTP/AVP 300\r\n", "type 300"),
    ],
)
def test_malformed_sdp_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sdp(text)


def test_g722_offer_answer_uses_static_type_9_at_the_rtp_clock_of_8000() -> None:
    # RFC 3551 §4.5.2: G.722 samples at 16 kHz, but its RTP clock and rtpmap say 8000
    offer = create_offer("192.0.2.1", 4000, session_id=7, codecs=("G722", "PCMU"))
    text = offer.serialize()
    assert "m=audio 4000 RTP/AVP 9 0 101\r\n" in text
    assert "a=rtpmap:9 G722/8000\r\n" in text
    answer, negotiated = create_answer(parse_sdp(text), "192.0.2.2", 5000, session_id=8,
                                       codecs=("PCMU", "PCMA", "G722"))
    assert (negotiated.codec, negotiated.payload_type) == ("G722", 9)  # the offerer's choice
    assert accept_answer(offer, answer).codec == "G722"
    # a phone that lists 9 without an rtpmap still means G.722
    bare = text.replace("a=rtpmap:9 G722/8000\r\n", "")
    _, negotiated = create_answer(parse_sdp(bare), "192.0.2.2", 5000, session_id=8,
                                  codecs=("G722",))
    assert negotiated.codec == "G722"
    # not configured: G.722 is skipped for the next offered codec
    _, negotiated = create_answer(parse_sdp(text), "192.0.2.2", 5000, session_id=8,
                                  codecs=("PCMU", "PCMA"))
    assert negotiated.codec == "PCMU"
