"""RTCP compound packets: SR, RR, SDES, BYE, unknown types; byte-exact round trips."""

from __future__ import annotations

import pytest

from media.rtcp import (
    Goodbye,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    UnknownRtcpPacket,
    ntp_middle_32,
    ntp_timestamp,
    parse_compound,
    serialize_compound,
)

# SR with one report block + SDES CNAME, as a softphone sends it.
SR_SDES = bytes.fromhex(
    "81c8000c 11223344 e8f1a2b3 40000000 0001e240 00000064 00003e80"
    "55667788 05fffffe 0001ffff 00000010 a2b34000 00010000"
    "81ca0004 11223344 01 09 75736572 4068 6f737400"
)


def test_sender_report_and_sdes_field_by_field() -> None:
    packets = parse_compound(SR_SDES)
    report, sdes = packets
    assert isinstance(report, SenderReport)
    assert report.ssrc == 0x11223344
    assert report.ntp_timestamp == 0xE8F1A2B3_40000000
    assert report.rtp_timestamp == 123456
    assert (report.packet_count, report.octet_count) == (100, 16000)
    (block,) = report.reports
    assert block.ssrc == 0x55667788
    assert block.fraction_lost == 5
    assert block.cumulative_lost == -2
    assert block.highest_sequence == 0x1FFFF
    assert block.jitter == 16
    assert (block.last_sr, block.delay_since_last_sr) == (0xA2B34000, 0x10000)
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks == ((0x11223344, "user@host"),)
    assert serialize_compound(packets) == SR_SDES


def test_receiver_report_bye_and_unknown_round_trip() -> None:
    packets = [
        ReceiverReport(7, (ReportBlock(8, 0, 3, 70000, 12, 0, 0),)),
        UnknownRtcpPacket(204, 1, b"\0\0\0\1name"),
        Goodbye((7,), "hangup"),
    ]
    data = serialize_compound(packets)
    assert parse_compound(data) == packets


def test_cumulative_lost_is_clamped_to_24_bits() -> None:
    data = ReportBlock(1, cumulative_lost=10**9).serialize()
    assert ReportBlock.parse(data, 0).cumulative_lost == 0x7FFFFF


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x81\xc8", "too short"),
        (bytes.fromhex("41c80001 00000000"), "RTCP version 1"),
        (bytes.fromhex("81050001 00000000"), "packet type 5"),
        (bytes.fromhex("81c90007 00000001"), "length field says 32 octets"),
        (bytes.fromhex("81c90001 00000001"), "announces 1 report blocks"),
        (bytes.fromhex("80c80001 00000001"), "shorter than its sender info"),
        (bytes.fromhex("81ca0001 00000001"), "not terminated"),
        (bytes.fromhex("80cb0000"), "must start with an SR or RR"),
        (bytes.fromhex("a0c90001 00000000"), "padding is invalid"),
    ],
)
def test_malformed_rtcp_raises_precise_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_compound(data)


def test_ntp_conversion() -> None:
    ntp = ntp_timestamp(0.5)
    assert ntp >> 32 == 2_208_988_800
    assert ntp & 0xFFFFFFFF == 1 << 31
    assert ntp_middle_32(ntp) == ((2_208_988_800 & 0xFFFF) << 16) | 0x8000
