"""The load side of `bench_media.py`: a lean RTP sender/receiver in its own process.

One UDP socket on 127.0.0.1, one thread, no asyncio: ``select`` waits until the next send slot
or until packets arrive. Every received packet is stored with the kernel's arrival time
(SO_TIMESTAMPNS, CLOCK_REALTIME), so the figures do not depend on how promptly this process is
scheduled. Sending (for bridged pairs) follows its own absolute 20 ms grid with the streams'
phases spread over the tick, like the engine does.

The same socket sends and receives because the engine latches onto the address packets come
from (symmetric RTP): the engine's answer goes back to the sender.
"""

from __future__ import annotations

import array
import resource
import select
import socket
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_HEADER = struct.Struct("!BBHII")
_TIME = struct.Struct("qq")
_SLOTS = 20


@dataclass(frozen=True, slots=True)
class LoadResult:
    arrival: bytes  # float64 wall-clock seconds
    ssrc: bytes  # uint32
    seq: bytes  # uint16 (as uint32)
    packets_sent: int
    cpu_s: float
    wall_s: float
    receive_buffer: int


def _open_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    for option, size in ((_RCVBUFFORCE, 64 << 20), (socket.SO_RCVBUF, 64 << 20)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            break
        except OSError:
            continue
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.setsockopt(socket.SOL_SOCKET, _TIMESTAMPNS, 1)
    sock.setblocking(False)
    return sock


def run_load(control: Connection) -> None:
    """Protocol over ``control``: send our port; receive (targets, stop_after_s); stream to
    the targets (if any) and record until the deadline; send back a `LoadResult`."""
    sock = _open_socket()
    control.send(sock.getsockname()[1])
    targets, seconds = control.recv()
    payload = b"\xd5" * 160  # PCMA silence-ish; the engine only relays it
    arrival = array.array("d")
    ssrcs = array.array("I")
    seqs = array.array("I")
    streams = [(("127.0.0.1", port), 0x10000 + index) for index, port in enumerate(targets)]
    slots: list[list[int]] = [[] for _ in range(_SLOTS)]
    for index in range(len(streams)):
        slots[index % _SLOTS].append(index)
    sequence = [0] * len(streams)
    timestamp = [0] * len(streams)
    sent = 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    deadline = start + seconds
    tick, slot = 0, 0
    slot_s = 0.02 / _SLOTS
    recvmsg = sock.recvmsg
    unpack_time = _TIME.unpack_from
    unpack_header = _HEADER.unpack_from
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if streams:
            due = start + tick * 0.02 + slot * slot_s
            while due <= now:
                for index in slots[slot]:
                    target, ssrc = streams[index]
                    data = _HEADER.pack(0x80, 8, sequence[index], timestamp[index], ssrc)
                    try:
                        sock.sendto(data + payload, target)
                        sent += 1
                    except BlockingIOError:
                        pass
                    sequence[index] = (sequence[index] + 1) & 0xFFFF
                    timestamp[index] = (timestamp[index] + 160) & 0xFFFFFFFF
                slot += 1
                if slot == _SLOTS:
                    slot, tick = 0, tick + 1
                due = start + tick * 0.02 + slot * slot_s
            timeout = max(0.0, due - time.monotonic())
        else:
            timeout = min(0.05, deadline - now)
        readable, _, _ = select.select([sock], [], [], timeout)
        if not readable:
            continue
        for _ in range(512):
            try:
                data, ancillary, _, _ = recvmsg(64, 64)
            except BlockingIOError:
                break
            if len(data) < 12:
                continue
            seconds_ns = 0.0
            for _level, _kind, value in ancillary:
                wall_s, wall_ns = unpack_time(value)
                seconds_ns = wall_s + wall_ns * 1e-9
            _, _, seq, _, ssrc = unpack_header(data)
            arrival.append(seconds_ns)
            ssrcs.append(ssrc)
            seqs.append(seq)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    control.send(
        LoadResult(
            arrival.tobytes(), ssrcs.tobytes(), seqs.tobytes(), sent, cpu,
            time.monotonic() - start, sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        )
    )
    sock.close()
