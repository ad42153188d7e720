"""The media engine spread over worker processes, behind the same command interface.

`MediaWorkerPool` starts one process per worker (default: one per core), each running its own
`MediaEngine` with its own media clock on its own event loop (uvloop when installed). Commands
travel as ``(request id, method name, args, kwargs)`` over a pipe and come back as results or
exceptions; events come back as they happen. Session, bridge and recording ids carry the
worker's prefix (``w0m12``), so every later command is routed to the worker that owns it.

Both sessions of a bridge must live in one worker: open the second leg with
``open_session(offer, near=first_session_id)``. Bridging sessions of two workers raises
`MediaError`.

The pipes are asyncio pipe transports on both ends, framed like `multiprocessing`'s
``Connection`` (a 4-byte big-endian length, then the pickle). Writes are buffered and never
block: under overload both processes keep reading, so neither can end up waiting for the other
with both pipes full (with blocking writes, a PBX busy at 100 % filled the result pipe, the
worker stopped reading commands while it waited, and the next command blocked the PBX).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import multiprocessing
import os
import pickle
import random
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import structlog

from media.engine import (
    EngineStats,
    MediaEngine,
    MediaEngineConfig,
    MediaError,
    OpenedSession,
    SessionInfo,
    add_session_stats,
)
from media.events import MediaEvent
from media.session import SessionStats
from media.sources import Source

_EVENT = "event"
log = structlog.get_logger("media.workers")
_LENGTH = struct.Struct("!i")


def _frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class _FrameReader(asyncio.Protocol):
    """Splits a pipe's byte stream into messages; ``on_message(None)`` at end of file."""

    def __init__(self, on_message: Callable[[Any], None]) -> None:
        self._on_message = on_message
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:
            (length,) = _LENGTH.unpack_from(buffer, start)
            end = start + 4 + length
            if len(buffer) < end:
                break
            message = pickle.loads(buffer[start + 4 : end])
            start = end
            self._on_message(message)
        del buffer[:start]

    def eof_received(self) -> bool:
        self._on_message(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._buffer = bytearray()


async def _pipe_writer(loop: asyncio.AbstractEventLoop, connection: Connection,
                       ) -> asyncio.WriteTransport:
    transport, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(os.dup(connection.fileno()), "wb", buffering=0)
    )
    connection.close()
    return transport


async def _pipe_reader(loop: asyncio.AbstractEventLoop, connection: Connection,
                       on_message: Callable[[Any], None]) -> asyncio.ReadTransport:
    transport, _ = await loop.connect_read_pipe(
        lambda: _FrameReader(on_message),
        os.fdopen(os.dup(connection.fileno()), "rb", buffering=0),
    )
    connection.close()
    return transport


def _worker_config(config: MediaEngineConfig, index: int, count: int) -> MediaEngineConfig:
    low, high = config.rtp_port_min, config.rtp_port_max
    if low is not None and high is not None:
        # each worker gets its own slice of the port range
        span = (high - low + 1) // count
        low, high = low + index * span, low + (index + 1) * span - 1
    return dataclasses.replace(
        config, rtp_port_min=low, rtp_port_max=high, id_prefix=f"w{index}{config.id_prefix}"
    )


def _serve(commands: Connection, results: Connection, config: MediaEngineConfig,
           seed: int) -> None:
    try:
        import uvloop

        uvloop.run(_serve_engine(commands, results, config, seed))
    except ImportError:
        asyncio.run(_serve_engine(commands, results, config, seed))


async def _serve_engine(commands: Connection, results: Connection, config: MediaEngineConfig,
                        seed: int) -> None:
    engine = MediaEngine(config, rng=random.Random(seed))
    await engine.start()
    loop = asyncio.get_running_loop()
    out = await _pipe_writer(loop, results)

    def send(message: object) -> None:
        if not out.is_closing():  # the PBX is gone: nobody to tell
            out.write(_frame(message))

    engine.add_listener(lambda event: send((_EVENT, event)))
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    reader = await _pipe_reader(loop, commands, inbox.put_nowait)
    while (message := await inbox.get()) is not None:
        request_id, method, args, kwargs = message
        try:
            result = getattr(engine, method)(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            send((request_id, True, result))
        except Exception as error:  # handed back to the caller, who re-raises it
            send((request_id, False, error))
    reader.close()
    await engine.shutdown()
    out.close()


class MediaWorkerPool:
    """`MediaEngine`'s commands, served by ``workers`` processes. Raises what the engine
    raises (MediaError, ValueError), re-raised in the caller."""

    def __init__(self, config: MediaEngineConfig | None = None, *, workers: int | None = None,
                 seed: int | None = None) -> None:
        self.config = config or MediaEngineConfig()
        self.workers = workers or os.cpu_count() or 1
        self._seed = random.Random(seed).getrandbits(32) if seed is not None else None
        self._connections: list[asyncio.WriteTransport] = []  # commands to each worker
        self._results: list[asyncio.ReadTransport] = []  # results and events from each
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[MediaEvent] = asyncio.Queue()
        self._listeners: list[Callable[[MediaEvent], None]] = []
        self._next_request = 0
        self._sessions_per_worker = [0] * self.workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_stats = EngineStats()  # what the last `stats()` returned

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        for index in range(self.workers):
            command_reader, command_writer = context.Pipe(duplex=False)
            result_reader, result_writer = context.Pipe(duplex=False)
            seed = (self._seed or random.SystemRandom().getrandbits(32)) + index
            process = context.Process(
                target=_serve,
                args=(command_reader, result_writer,
                      _worker_config(self.config, index, self.workers), seed),
                daemon=True, name=f"media-worker-{index}",
            )
            process.start()
            command_reader.close()
            result_writer.close()
            self._connections.append(await _pipe_writer(self._loop, command_writer))
            self._results.append(await _pipe_reader(
                self._loop, result_reader, functools.partial(self._on_message, index)
            ))
            self._processes.append(process)

    async def shutdown(self) -> None:
        """Close every worker's sessions and stop the workers; their last events still
        arrive while they shut down."""
        for connection in self._connections:
            if not connection.is_closing():
                connection.write(_frame(None))
        for process in self._processes:
            await asyncio.to_thread(process.join, 10)
        for connection, results in zip(self._connections, self._results, strict=True):
            results.close()
            connection.close()
        self._connections.clear()
        self._results.clear()
        self._processes.clear()
        self._loop = None

    async def __aenter__(self) -> MediaWorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (for CPU and memory accounting)."""
        return [process.pid for process in self._processes if process.pid is not None]

    def _on_message(self, index: int, message: Any) -> None:
        if message is None:  # end of file: the worker exited
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(MediaError(f"media worker {index} exited"))
            return
        if message[0] == _EVENT:
            event: MediaEvent = message[1]
            self._events.put_nowait(event)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a listener's bug must not cut the pipe to the worker
                    log.exception("media_listener_failed", session_id=event.session_id)
            return
        request_id, ok, value = message
        future = self._pending.pop(int(request_id), None)
        if future is None or future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    async def _call(self, index: int, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._loop is None:
            raise MediaError("the media worker pool is not started")
        self._next_request += 1
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[self._next_request] = future
        connection = self._connections[index]
        if connection.is_closing():
            raise MediaError(f"media worker {index} is gone")
        connection.write(_frame((self._next_request, method, args, kwargs)))
        return await future

    def _worker_of(self, some_id: str) -> int:
        digits = some_id[1:].split(self.config.id_prefix, 1)[0] if some_id[:1] == "w" else ""
        if not digits.isdigit() or int(digits) >= self.workers:
            raise MediaError(f"no media session, bridge or recording {some_id!r}")
        return int(digits)

    # ------------------------------------------------------------------ commands

    async def open_session(self, offer_sdp: str | None = None, *,
                           near: str | None = None) -> OpenedSession:
        """As `MediaEngine.open_session`; ``near`` puts the session in the worker of another
        session (required for bridging them later)."""
        if near is not None:
            index = self._worker_of(near)
        else:
            index = min(range(self.workers), key=lambda i: self._sessions_per_worker[i])
        opened: OpenedSession = await self._call(index, "open_session", offer_sdp)
        self._sessions_per_worker[index] += 1
        return opened

    async def update_session(self, session_id: str, remote_sdp: str) -> str:
        result: str = await self._call(self._worker_of(session_id), "update_session",
                                       session_id, remote_sdp)
        return result

    async def create_offer(self, session_id: str, direction: str = "sendrecv") -> str:
        result: str = await self._call(self._worker_of(session_id), "create_offer", session_id,
                                       direction)
        return result

    async def play(self, session_id: str, source: Source, *, barge_in: bool = False) -> str:
        result: str = await self._call(self._worker_of(session_id), "play", session_id, source,
                                       barge_in=barge_in)
        return result

    async def insert(self, session_id: str, source: Source, *, barge_in: bool = False) -> str:
        """As `MediaEngine.insert`: ``source`` over what plays, which resumes after it."""
        result: str = await self._call(self._worker_of(session_id), "insert", session_id,
                                       source, barge_in=barge_in)
        return result

    async def stop(self, session_id: str) -> None:
        await self._call(self._worker_of(session_id), "stop", session_id)

    async def send_dtmf(self, session_id: str, digits: str, duration_ms: int = 100) -> None:
        await self._call(self._worker_of(session_id), "send_dtmf", session_id, digits,
                         duration_ms)

    async def bridge(self, a: str, b: str) -> str:
        index = self._worker_of(a)
        if self._worker_of(b) != index:
            raise MediaError(f"sessions {a} and {b} live in different media workers: open the "
                             "second one with near=")
        result: str = await self._call(index, "bridge", a, b)
        return result

    async def unbridge(self, a: str, b: str) -> None:
        await self._call(self._worker_of(a), "unbridge", a, b)

    async def record(self, target: str, path: str, *, stereo: bool = False) -> str:
        result: str = await self._call(self._worker_of(target), "record", target, path,
                                       stereo=stereo)
        return result

    async def pause_recording(self, recording_id: str, paused: bool = True) -> None:
        await self._call(self._worker_of(recording_id), "pause_recording", recording_id,
                         paused)

    async def stop_recording(self, recording_id: str) -> None:
        await self._call(self._worker_of(recording_id), "stop_recording", recording_id)

    async def monitor(self, supervisor: str, caller: str, agent: str, mode: str) -> None:
        """As `MediaEngine.monitor`; the three sessions must live in one worker (open the
        supervisor's with ``near=`` the caller's)."""
        index = self._worker_of(supervisor)
        if {self._worker_of(caller), self._worker_of(agent)} != {index}:
            raise MediaError(f"sessions {supervisor}, {caller} and {agent} live in different "
                             "media workers: open the supervisor's with near=")
        await self._call(index, "monitor", supervisor, caller, agent, mode)

    async def stop_monitor(self, supervisor: str) -> None:
        await self._call(self._worker_of(supervisor), "stop_monitor", supervisor)

    async def close(self, session_id: str) -> None:
        index = self._worker_of(session_id)
        await self._call(index, "close", session_id)
        self._sessions_per_worker[index] -= 1

    async def session_info(self, session_id: str) -> SessionInfo:
        result: SessionInfo = await self._call(self._worker_of(session_id), "session_info",
                                               session_id)
        return result

    async def next_event(self) -> MediaEvent:
        return await self._events.get()

    def poll_events(self) -> list[MediaEvent]:
        events = []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events

    def add_listener(self, listener: Callable[[MediaEvent], None]) -> None:
        self._listeners.append(listener)

    async def stats(self, *, reset_peak: bool = False) -> EngineStats:
        """The workers' counters summed (``max_lateness_ms``: the worst worker)."""
        total = EngineStats()
        sessions = SessionStats()
        for index in range(self.workers):
            stats: EngineStats = await self._call(index, "stats", reset_peak=reset_peak)
            add_session_stats(sessions, stats.sessions)
            for item in dataclasses.fields(EngineStats):
                value = getattr(stats, item.name)
                if item.name == "max_lateness_ms":
                    total.max_lateness_ms = max(total.max_lateness_ms, value)
                elif isinstance(value, int):
                    setattr(total, item.name, getattr(total, item.name) + value)
        total.sessions = sessions
        self.last_stats = total
        return total
