"""RTCP sender and receiver reports, SDES and BYE (RFC 3550 §6).

`parse_compound(data)` turns one datagram into a list of packets; `serialize_compound(packets)`
does the reverse, byte for byte. Unknown packet types (APP, XR, feedback) survive as
`UnknownRtcpPacket` so a compound packet is never rejected for carrying them. Malformed input
raises `ValueError` naming the offending field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

RTCP_VERSION: Final = 2
SR: Final = 200
RR: Final = 201
SDES: Final = 202
BYE: Final = 203
SDES_CNAME: Final = 1

# seconds from the NTP epoch (1900) to the Unix epoch (1970)
NTP_UNIX_OFFSET: Final = 2_208_988_800

_COMMON: Final = struct.Struct("!BBH")
_SENDER_INFO: Final = struct.Struct("!IIIIII")  # ssrc, ntp msw, ntp lsw, rtp ts, packets, octets
_REPORT_BLOCK: Final = struct.Struct("!IBBHIIII")


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp for a Unix time in seconds."""
    return int((unix_time + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle_32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as carried in LSR (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception report about one source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def serialize(self) -> bytes:
        # cumulative lost is a signed 24-bit number, clamped as RFC 3550 §6.4.1 asks
        lost = max(-0x800000, min(0x7FFFFF, self.cumulative_lost)) & 0xFFFFFF
        return _REPORT_BLOCK.pack(
            self.ssrc, self.fraction_lost, lost >> 16, lost & 0xFFFF,
            self.highest_sequence, self.jitter, self.last_sr, self.delay_since_last_sr,
        )

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost_high, lost_low, highest, jitter, lsr, dlsr = (
            _REPORT_BLOCK.unpack_from(data, offset)
        )
        lost = lost_high << 16 | lost_low
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES with one CNAME per source (other items are skipped when parsing)."""

    chunks: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UnknownRtcpPacket:
    packet_type: int
    count: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | UnknownRtcpPacket


def _header(packet_type: int, count: int, body_length: int) -> bytes:
    if body_length % 4:
        raise ValueError("RTCP packet body must be a multiple of 4 octets")
    return _COMMON.pack(RTCP_VERSION << 6 | count, packet_type, body_length // 4)


def _serialize_one(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        if len(packet.reports) > 31:
            raise ValueError("an RTCP SR carries at most 31 report blocks")
        body = _SENDER_INFO.pack(
            packet.ssrc, packet.ntp_timestamp >> 32, packet.ntp_timestamp & 0xFFFF_FFFF,
            packet.rtp_timestamp, packet.packet_count & 0xFFFF_FFFF,
            packet.octet_count & 0xFFFF_FFFF,
        ) + b"".join(block.serialize() for block in packet.reports)
        return _header(SR, len(packet.reports), len(body)) + body
    if isinstance(packet, ReceiverReport):
        if len(packet.reports) > 31:
            raise ValueError("an RTCP RR carries at most 31 report blocks")
        body = struct.pack("!I", packet.ssrc) + b"".join(b.serialize() for b in packet.reports)
        return _header(RR, len(packet.reports), len(body)) + body
    if isinstance(packet, SourceDescription):
        chunks = []
        for ssrc, cname in packet.chunks:
            text = cname.encode()
            if len(text) > 255:
                raise ValueError("an SDES CNAME is at most 255 octets")
            chunk = struct.pack("!IBB", ssrc, SDES_CNAME, len(text)) + text + b"\0"
            chunks.append(chunk + bytes(-len(chunk) % 4))
        body = b"".join(chunks)
        return _header(SDES, len(packet.chunks), len(body)) + body
    if isinstance(packet, Goodbye):
        body = b"".join(struct.pack("!I", ssrc) for ssrc in packet.ssrcs)
        if packet.reason:
            reason = packet.reason.encode()[:255]
            body += bytes((len(reason),)) + reason
            body += bytes(-len(body) % 4)
        return _header(BYE, len(packet.ssrcs), len(body)) + body
    return _header(packet.packet_type, packet.count, len(packet.body)) + packet.body


def serialize_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """Serialize packets into one compound RTCP datagram."""
    return b"".join(_serialize_one(packet) for packet in packets)


def _parse_reports(body: bytes, offset: int, count: int, kind: str) -> tuple[ReportBlock, ...]:
    if offset + count * _REPORT_BLOCK.size > len(body):
        raise ValueError(f"RTCP {kind} announces {count} report blocks, the packet is shorter")
    return tuple(
        ReportBlock.parse(body, offset + i * _REPORT_BLOCK.size) for i in range(count)
    )


def _parse_sdes(body: bytes, count: int) -> SourceDescription:
    chunks = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise ValueError("RTCP SDES chunk truncated")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        cname = ""
        while True:
            if offset >= len(body):
                raise ValueError("RTCP SDES item list not terminated")
            item = body[offset]
            if item == 0:
                offset += 1
                offset += -offset % 4  # chunks end on a 32-bit boundary
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise ValueError("RTCP SDES item truncated")
            length = body[offset + 1]
            if item == SDES_CNAME:
                cname = body[offset + 2 : offset + 2 + length].decode("utf-8", "replace")
            offset += 2 + length
        chunks.append((ssrc, cname))
    return SourceDescription(tuple(chunks))


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < _SENDER_INFO.size:
            raise ValueError("RTCP SR shorter than its sender info")
        ssrc, msw, lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = _parse_reports(body, _SENDER_INFO.size, count, "SR")
        return SenderReport(ssrc, msw << 32 | lsw, rtp_ts, packets, octets, reports)
    if packet_type == RR:
        if len(body) < 4:
            raise ValueError("RTCP RR shorter than its SSRC")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _parse_reports(body, 4, count, "RR"))
    if packet_type == SDES:
        return _parse_sdes(body, count)
    if packet_type == BYE:
        if len(body) < 4 * count:
            raise ValueError(f"RTCP BYE announces {count} sources, the packet is shorter")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        reason = ""
        if len(body) > 4 * count:
            length = body[4 * count]
            reason = body[4 * count + 1 : 4 * count + 1 + length].decode("utf-8", "replace")
        return Goodbye(tuple(ssrcs), reason)
    return UnknownRtcpPacket(packet_type, count, body)


def parse_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram; raise ValueError on the first malformed part."""
    data = bytes(data)
    if len(data) < 4:
        raise ValueError(f"RTCP packet too short: {len(data)} octets, header needs 4")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise ValueError(f"RTCP packet truncated at octet {offset}")
        first, packet_type, length = _COMMON.unpack_from(data, offset)
        if first >> 6 != RTCP_VERSION:
            raise ValueError(f"RTCP version {first >> 6}, expected 2")
        if not 192 <= packet_type <= 223:
            raise ValueError(f"RTCP packet type {packet_type} outside 192..223")
        end = offset + 4 + 4 * length
        if end > len(data):
            raise ValueError(
                f"RTCP length field says {4 * length + 4} octets, {len(data) - offset} remain"
            )
        body = data[offset + 4 : end]
        if first & 0x20:
            # RFC 3550 §6.4.1: only the last packet of a compound may be padded
            if end != len(data) or not body or body[-1] == 0 or body[-1] > len(body):
                raise ValueError("RTCP padding is invalid")
            body = body[: -body[-1]]
        packets.append(_parse_one(packet_type, first & 0x1F, body))
        offset = end
    if not isinstance(packets[0], SenderReport | ReceiverReport):
        raise ValueError("a compound RTCP packet must start with an SR or RR")
    return packets
