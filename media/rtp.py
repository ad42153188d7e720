"""RTP packets and per-source reception statistics (RFC 3550).

`RtpPacket.parse` and `RtpPacket.serialize` are symmetric: every field the wire carries,
including padding, CSRCs and the header extension, survives a round trip byte for byte. Bad
input raises `ValueError` with a message that says which field was wrong; the session counts
and drops such packets.

`ReceptionStatistics` is the RFC 3550 Appendix A.1/A.3/A.8 bookkeeping for one remote SSRC:
extended highest sequence number (16-bit wrap counted in ``cycles``), expected and lost packets,
interarrival jitter. The numbers feed RTCP report blocks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

RTP_VERSION: Final = 2
HEADER_SIZE: Final = 12
SEQ_MOD: Final = 1 << 16
TIMESTAMP_MOD: Final = 1 << 32

# RFC 3550 §A.1: how far a sequence number may jump before it counts as a restart
MAX_DROPOUT: Final = 3000
MAX_MISORDER: Final = 100

_HEADER: Final = struct.Struct("!BBHII")
_EXTENSION_HEADER: Final = struct.Struct("!HH")



@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the number of padding octets (0 = no padding bit)."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"RTP payload type {self.payload_type} out of range 0..127")
        if not 0 <= self.sequence_number < SEQ_MOD:
            raise ValueError(f"RTP sequence number {self.sequence_number} out of range 0..65535")
        if not 0 <= self.timestamp < TIMESTAMP_MOD:
            raise ValueError(f"RTP timestamp {self.timestamp} out of range 0..2**32-1")
        if not 0 <= self.ssrc < TIMESTAMP_MOD:
            raise ValueError(f"RTP SSRC {self.ssrc} out of range 0..2**32-1")
        if len(self.csrc) > 15:
            raise ValueError(f"RTP packet has {len(self.csrc)} CSRCs, at most 15 fit")
        if len(self.extension) % 4:
            raise ValueError("RTP header extension length must be a multiple of 4 octets")
        if self.extension and self.extension_profile is None:
            raise ValueError("RTP header extension data needs an extension profile")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"RTP padding of {self.padding} octets out of range 0..255")

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one datagram; raise ValueError naming the field that is wrong."""
        data = bytes(data)
        if len(data) < HEADER_SIZE:
            raise ValueError(f"RTP packet too short: {len(data)} octets, header needs 12")
        first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version {version}, expected 2")
        if second & 0x7F in (72, 73, 74, 75, 76) and second >> 7:
            # RFC 5761 §4: SR/RR/SDES/BYE/APP sent to the RTP port look exactly like this
            raise ValueError(f"RTCP packet type {second} on the RTP port")
        offset = HEADER_SIZE
        csrc_count = first & 0x0F
        end = len(data)
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or padding > end - HEADER_SIZE - 4 * csrc_count:
                raise ValueError(f"RTP padding length {padding} does not fit the packet")
            end -= padding
        else:
            padding = 0
        if offset + 4 * csrc_count > end:
            raise ValueError(f"RTP CSRC count {csrc_count} exceeds the packet length")
        csrc = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset += 4 * csrc_count
        extension_profile = None
        extension = b""
        if first & 0x10:
            if offset + 4 > end:
                raise ValueError("RTP header extension header truncated")
            extension_profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            offset += 4
            if offset + 4 * words > end:
                raise ValueError(f"RTP header extension of {words} words exceeds the packet")
            extension = data[offset : offset + 4 * words]
            offset += 4 * words
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=data[offset:end],
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension_profile=extension_profile,
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        """The packet as octets on the wire."""
        first = RTP_VERSION << 6 | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        parts = [
            _HEADER.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(_EXTENSION_HEADER.pack(self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def build_packet(
    payload_type: int, sequence_number: int, timestamp: int, ssrc: int, payload: bytes,
    marker: bool = False,
) -> bytes:
    """Serialize a plain packet (no CSRC, extension or padding): the sender's hot path."""
    return (
        _HEADER.pack(
            0x80, (0x80 if marker else 0) | payload_type, sequence_number, timestamp, ssrc
        )
        + payload
    )


def seq_distance(newer: int, older: int) -> int:
    """Signed distance from ``older`` to ``newer`` on the 16-bit sequence circle."""
    delta = (newer - older) % SEQ_MOD
    return delta - SEQ_MOD if delta >= SEQ_MOD // 2 else delta


def timestamp_distance(newer: int, older: int) -> int:
    """Signed distance from ``older`` to ``newer`` on the 32-bit timestamp circle."""
    delta = (newer - older) % TIMESTAMP_MOD
    return delta - TIMESTAMP_MOD if delta >= TIMESTAMP_MOD // 2 else delta


@dataclass(slots=True)
class RtpStream:
    """The sending side of one SSRC: sequence number and timestamp that wrap (RFC 3550 §5.1).

    Initial values come from the caller (an injected random generator), as RFC 3550 asks them
    to be random.
    """

    ssrc: int
    sequence_number: int
    timestamp: int
    packets_sent: int = 0
    octets_sent: int = 0

    def next_packet(self, payload_type: int, payload: bytes, marker: bool = False,
                    timestamp: int | None = None) -> bytes:
        """Serialize the next packet and advance the sequence number.

        ``timestamp`` overrides the stream's current timestamp (RFC 4733 events keep the
        timestamp of the event start).
        """
        data = build_packet(
            payload_type,
            self.sequence_number,
            self.timestamp if timestamp is None else timestamp,
            self.ssrc,
            payload,
            marker,
        )
        self.sequence_number = (self.sequence_number + 1) % SEQ_MOD
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return data

    def next_frame(self, payload_type: int, payload: bytes, marker: bool, samples: int) -> bytes:
        """`next_packet` at the current timestamp, then `advance` by ``samples``: one call for
        the media clock's common case."""
        sequence_number = self.sequence_number
        timestamp = self.timestamp
        data = _HEADER.pack(
            0x80, 0x80 | payload_type if marker else payload_type, sequence_number, timestamp,
            self.ssrc,
        ) + payload
        self.sequence_number = (sequence_number + 1) & 0xFFFF
        self.timestamp = (timestamp + samples) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return data

    def advance(self, samples: int) -> None:
        """Move the media clock on by ``samples`` (one frame), wrapping at 2**32."""
        self.timestamp = (self.timestamp + samples) % TIMESTAMP_MOD


@dataclass(slots=True)
class ReceptionStatistics:
    """RFC 3550 A.1 sequence bookkeeping and A.8 jitter for one remote SSRC.

    Drive it with `update(sequence_number, timestamp, arrival)` where ``arrival`` is the
    arrival time expressed in RTP timestamp units. It returns False for a packet that should
    be dropped (a duplicate or a very late one).
    """

    ssrc: int
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    restarts: int = 0
    jitter: float = 0.0
    expected_prior: int = 0
    received_prior: int = 0
    _last_transit: int | None = None
    _bad_seq: int | None = None
    _started: bool = False
    _recent: set[int] = field(default_factory=set)

    @property
    def extended_max_seq(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max_seq - self.base_seq + 1 if self._started else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost (may be negative with duplicates, RFC 3550 §6.4.1)."""
        return self.expected - self.received

    def update(self, sequence_number: int, timestamp: int, arrival: int) -> bool:
        max_seq = self.max_seq
        if sequence_number == max_seq + 1 and self._started and self._bad_seq is None:
            # the common case, inline: the next packet in order (no wrap, no restart pending)
            self.max_seq = sequence_number
            self.received += 1
            recent = self._recent
            if len(recent) > 2 * MAX_MISORDER:
                recent.clear()
            recent.add(sequence_number)
            transit = (arrival - timestamp) & 0xFFFFFFFF
            last = self._last_transit
            if last is not None:
                d = (transit - last) & 0xFFFFFFFF
                if d >= 0x80000000:
                    d = 0x100000000 - d
                self.jitter += (d - self.jitter) / 16.0
            self._last_transit = transit
            return True
        if not self._started:
            self._restart(sequence_number)
            self._started = True
        else:
            delta = (sequence_number - self.max_seq) % SEQ_MOD
            if delta == 0 or sequence_number in self._recent:
                self.duplicates += 1
                return False
            if delta < MAX_DROPOUT:
                if sequence_number < self.max_seq:
                    self.cycles += SEQ_MOD  # RFC 3550 A.1: the 16-bit number wrapped
                self.max_seq = sequence_number
            elif delta <= SEQ_MOD - MAX_MISORDER:
                # a big jump: accept it as a restart only when the next packet follows it
                if self._bad_seq is not None and sequence_number == self._bad_seq:
                    self.restarts += 1
                    self._restart(sequence_number)
                else:
                    self._bad_seq = (sequence_number + 1) % SEQ_MOD
                    return False
            else:
                self.out_of_order += 1
        self._bad_seq = None
        self.received += 1
        self._remember(sequence_number)
        self._update_jitter(timestamp, arrival)
        return True

    def _restart(self, sequence_number: int) -> None:
        self.base_seq = sequence_number
        self.max_seq = sequence_number
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self._last_transit = None
        self._recent.clear()

    def _remember(self, sequence_number: int) -> None:
        # a short memory of recent numbers, so duplicates are recognised when misordered
        if len(self._recent) > 2 * MAX_MISORDER:
            self._recent.clear()
        self._recent.add(sequence_number)

    def _update_jitter(self, timestamp: int, arrival: int) -> None:
        # RFC 3550 A.8: J += (|D| - J) / 16, with D the change in relative transit time
        transit = (arrival - timestamp) % TIMESTAMP_MOD
        if self._last_transit is not None:
            d = abs(timestamp_distance(transit, self._last_transit))
            self.jitter += (d - self.jitter) / 16.0
        self._last_transit = transit

    def interval_report(self) -> tuple[int, int]:
        """Fraction lost (0..255) and cumulative lost since the last report (RFC 3550 A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        return fraction, self.lost
