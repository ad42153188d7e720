"""Write pcap files of an RTP stream for SIPp's play_pcap_audio: G.711 μ-law silence every
20 ms with RFC 4733 telephone-events for key presses at given times, with one SSRC and
continuously increasing sequence numbers and timestamps — the way a real carrier sends them
(SIPp's bundled one-digit pcaps all reuse one sequence range, so a receiver rightly drops the
second digit as a replay)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
PT_PCMU = 0
PT_EVENT = 101
FRAME_MS = 20
SAMPLES = 160


def _packet(seq: int, ts: int, ssrc: int, pt: int, payload: bytes, marker: bool) -> bytes:
    header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                         ts & 0xFFFFFFFF, ssrc)
    rtp = header + payload
    udp = struct.pack("!HHHH", 10000, 20000, 8 + len(rtp), 0) + rtp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
    return b"\x00" * 12 + b"\x08\x00" + ip  # Ethernet II, IPv4


def write_dtmf_pcap(path: Path, presses: list[tuple[int, str]], total_ms: int,
                    key_ms: int = 120, ssrc: int = 0x1234ABCD) -> Path:
    """`presses`: (time in ms from the start, key). Silence fills the rest up to `total_ms`."""
    frames: list[tuple[int, bytes]] = []  # (time ms, ethernet frame)
    seq, ts = 1000, 160000
    events = sorted(presses)
    t = 0
    while t < total_ms:
        if events and events[0][0] <= t:
            _, key = events.pop(0)
            code = EVENT_CODES[key]
            steps = max(1, key_ms // FRAME_MS)
            for i in range(steps):  # updates, duration growing (RFC 4733 §2.5.1.3)
                payload = struct.pack("!BBH", code, 10, (i + 1) * SAMPLES)
                frames.append((t, _packet(seq, ts, ssrc, PT_EVENT, payload, i == 0)))
                seq += 1
                t += FRAME_MS
            for _ in range(3):  # the end packet, sent three times (§2.5.1.4)
                payload = struct.pack("!BBH", code, 0x80 | 10, steps * SAMPLES)
                frames.append((t, _packet(seq, ts, ssrc, PT_EVENT, payload, False)))
                seq += 1
            ts += steps * SAMPLES
            continue
        frames.append((t, _packet(seq, ts, ssrc, PT_PCMU, b"\xff" * SAMPLES, False)))
        seq += 1
        ts += SAMPLES
        t += FRAME_MS
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # DLT_EN10MB
    for ms, frame in frames:
        out.append(struct.pack("<IIII", ms // 1000, (ms % 1000) * 1000, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return path


def write_audio_pcap(path: Path, samples: Sequence[int] | Any, ssrc: int = 0x5EED1234) -> Path:
    """A pcap of `samples` (8 kHz, 16-bit scale) as G.711 μ-law RTP, 20 ms per packet — e.g.
    a recorded greeting, to play an answering machine."""
    from media.g711 import ulaw_encode

    payload = ulaw_encode(samples)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    seq, ts = 2000, 320000
    for index in range(0, len(payload) - SAMPLES + 1, SAMPLES):
        ms = index // 8
        frame = _packet(seq, ts, ssrc, PT_PCMU, payload[index:index + SAMPLES], index == 0)
        out.append(struct.pack("<IIII", ms // 1000, (ms % 1000) * 1000, len(frame), len(frame)))
        out.append(frame)
        seq += 1
        ts += SAMPLES
    path.write_bytes(b"".join(out))
    return path
