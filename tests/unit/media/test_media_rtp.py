"""RTP packets: field-by-field parsing, byte-exact round trips, precise errors, wrap-around."""

from __future__ import annotations

import pytest

from media.rtp import (
    ReceptionStatistics,
    RtpPacket,
    RtpStream,
    build_packet,
    seq_distance,
    timestamp_distance,
)

# A PCMU packet as a softphone sends it: marker on the first packet of a talk spurt.
PCMU_PACKET = bytes.fromhex("8080 1f40 0001 e240 deadbeef") + b"\xff" * 160
# Padding, two CSRCs and a one-byte-header extension (RFC 8285 profile 0xBEDE).
COMPLEX_PACKET = bytes.fromhex(
    "b2 08 ffff ffffffff 01020304"  # V=2 P=1 X=1 CC=2, PT 8, seq 65535, ts 2**32-1
    "0000000a 0000000b"  # CSRCs
    "bede 0001 10aa0000"  # extension header + one word
    "d5d5d5d5"  # payload
    "000003"  # three octets of padding
)


def test_parse_a_pcmu_packet_field_by_field() -> None:
    packet = RtpPacket.parse(PCMU_PACKET)
    assert packet.marker is True
    assert packet.payload_type == 0
    assert packet.sequence_number == 0x1F40
    assert packet.timestamp == 0x1E240
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\xff" * 160
    assert packet.serialize() == PCMU_PACKET


def test_parse_padding_csrc_and_extension_round_trip() -> None:
    packet = RtpPacket.parse(COMPLEX_PACKET)
    assert packet.payload_type == 8
    assert packet.sequence_number == 65535
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.csrc == (10, 11)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension == bytes.fromhex("10aa0000")
    assert packet.payload == b"\xd5" * 4
    assert packet.padding == 3
    assert packet.serialize() == COMPLEX_PACKET


def test_build_packet_matches_serialize() -> None:
    packet = RtpPacket(8, 7, 1234, 99, b"abc", marker=True)
    assert build_packet(8, 7, 1234, 99, b"abc", marker=True) == packet.serialize()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "too short: 3 octets"),
        (bytes.fromhex("4000000100000001 00000001"), "RTP version 1, expected 2"),
        (bytes.fromhex("8fff0001 00000001 00000001"), "CSRC count 15 exceeds"),
        (bytes.fromhex("9000 0001 00000001 00000001 bede"), "extension header truncated"),
        (bytes.fromhex("9000 0001 00000001 00000001 bede0009 00000000"), "9 words exceeds"),
        (bytes.fromhex("a000 0001 00000001 00000001 0000 0010"), "padding length 16"),
        (bytes.fromhex("a000 0001 00000001 00000001 0000 0000"), "padding length 0"),
        (bytes.fromhex("80c8 0006 00000001 00000001"), "RTCP packet type 200"),
    ],
)
def test_malformed_packets_raise_precise_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RtpPacket.parse(data)


def test_constructor_validates_ranges() -> None:
    with pytest.raises(ValueError, match="payload type 128"):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(ValueError, match="sequence number 65536"):
        RtpPacket(0, 65536, 0, 0)
    with pytest.raises(ValueError, match="multiple of 4"):
        RtpPacket(0, 0, 0, 0, extension_profile=1, extension=b"abc")


def test_stream_wraps_sequence_and_timestamp() -> None:
    stream = RtpStream(ssrc=5, sequence_number=65535, timestamp=(1 << 32) - 80)
    first = RtpPacket.parse(stream.next_packet(0, b"x" * 160))
    stream.advance(160)
    second = RtpPacket.parse(stream.next_packet(0, b"x" * 160))
    assert (first.sequence_number, first.timestamp) == (65535, (1 << 32) - 80)
    assert (second.sequence_number, second.timestamp) == (0, 80)
    assert stream.packets_sent == 2 and stream.octets_sent == 320


def test_circular_distances() -> None:
    assert seq_distance(0, 65535) == 1
    assert seq_distance(65535, 0) == -1
    assert seq_distance(100, 100) == 0
    assert timestamp_distance(80, (1 << 32) - 80) == 160
    assert timestamp_distance((1 << 32) - 80, 80) == -160


def test_reception_statistics_count_cycles_across_the_wrap() -> None:
    stats = ReceptionStatistics(ssrc=1)
    for i in range(200):
        seq = (65436 + i) % 65536
        assert stats.update(seq, i * 160, i * 160)
    assert stats.cycles == 65536
    assert stats.extended_max_seq == 65536 + 99
    assert stats.expected == 200
    assert stats.lost == 0
    assert stats.jitter == 0.0


def test_reception_statistics_loss_duplicates_and_reordering() -> None:
    stats = ReceptionStatistics(ssrc=1)
    for seq in (10, 11, 13, 12, 12, 16):
        stats.update(seq, seq * 160, seq * 160)
    assert stats.received == 5
    assert stats.duplicates == 1
    assert stats.out_of_order == 1
    assert stats.expected == 7
    assert stats.lost == 2
    fraction, cumulative = stats.interval_report()
    assert cumulative == 2
    assert fraction == (2 << 8) // 7


def test_reception_statistics_accept_a_restart_after_two_packets() -> None:
    stats = ReceptionStatistics(ssrc=1)
    stats.update(100, 0, 0)
    assert not stats.update(40000, 0, 0)  # a jump is held back
    assert stats.update(40001, 160, 160)  # confirmed by its successor
    assert stats.restarts == 1
    assert stats.base_seq == 40001


def test_jitter_follows_rfc_3550_estimator() -> None:
    stats = ReceptionStatistics(ssrc=1)
    stats.update(1, 0, 1000)
    stats.update(2, 160, 1000 + 160 + 32)  # 32 units late
    assert stats.jitter == pytest.approx(2.0)
