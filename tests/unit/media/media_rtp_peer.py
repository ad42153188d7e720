"""A minimal RTP endpoint for the engine tests: a UDP socket on 127.0.0.1/::1 (port picked by
the kernel), a paced sender on its own absolute 20 ms grid, and a receiver thread that records
the kernel's arrival timestamp (SO_TIMESTAMPNS) of every packet, so the measurement does not
depend on how quickly the test's threads get scheduled."""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

from media.rtp import RtpPacket, build_packet
from media.sdp import create_offer

_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # kernel receive time, seconds (CLOCK_REALTIME)
    packet: RtpPacket
    source: tuple[str, int]


class RtpPeer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, _TIMESTAMPNS, 1)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.arrivals: list[Arrival] = []
        self.malformed = 0
        self._stop = threading.Event()
        self._receiver = threading.Thread(target=self._receive, daemon=True)
        self._receiver.start()
        self._sender: threading.Thread | None = None

    def offer(self, codecs: tuple[str, ...] = ("PCMU",), event_pt: int | None = 101) -> str:
        return create_offer(self.host, self.port, session_id=42, codecs=codecs,
                            telephone_event_pt=event_pt).serialize()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _, addr = self.sock.recvmsg(2048, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    at = seconds + nanoseconds / 1e9
            try:
                packet = RtpPacket.parse(data)
            except ValueError:
                self.malformed += 1
                continue
            self.arrivals.append(Arrival(at, packet, (addr[0], addr[1])))

    def send_raw(self, data: bytes, target: tuple[str, int]) -> None:
        self.sock.sendto(data, target)

    def stream(self, target: tuple[str, int], payloads: list[bytes], payload_type: int,
               ssrc: int = 0x5151, events: dict[int, list[bytes]] | None = None,
               event_pt: int = 101) -> None:
        """Send one payload per 20 ms on an absolute grid, in a thread. ``events`` maps a
        frame index to telephone-event payloads sent instead of audio from that frame on."""

        def run() -> None:
            start = time.monotonic()
            timestamp = 1000
            seq = 100
            queued: list[bytes] = []
            event_ts = 0
            for index, payload in enumerate(payloads):
                delay = start + index * 0.02 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if self._stop.is_set():
                    return
                if events and index in events:
                    queued = list(events[index])
                    event_ts = timestamp
                if queued:
                    data = build_packet(event_pt, seq, event_ts, ssrc, queued.pop(0))
                else:
                    data = build_packet(payload_type, seq, timestamp, ssrc, payload)
                self.sock.sendto(data, target)
                seq = (seq + 1) % 65536
                timestamp += 160

        self._sender = threading.Thread(target=run, daemon=True)
        self._sender.start()

    def wait_sent(self, timeout: float = 30.0) -> None:
        if self._sender is not None:
            self._sender.join(timeout)

    def close(self) -> None:
        self._stop.set()
        self.wait_sent(1.0)
        self._receiver.join(1.0)
        self.sock.close()

    def audio(self, payload_type: int) -> list[Arrival]:
        return [a for a in self.arrivals if a.packet.payload_type == payload_type]


def dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[:5] = 0
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
