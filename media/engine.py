"""The media engine: UDP sockets, the one 20 ms media clock, commands in, events out.

Theory of operation
-------------------
The engine is the asyncio shell around sans-IO `MediaSession`s. It owns, per session, a pair
of non-blocking UDP sockets (even port RTP, odd port RTCP) and one media clock for all of them:

* The clock is an absolute grid: tick *k* is due at ``t0 + k × 20 ms``. One ``loop.call_at``
  timer is armed at a time. No per-stream sleeps exist, so nothing drifts.
* Each tick is split into ``phase_slots`` slots; every session is pinned to the least-used
  slot when it opens. Its packets leave at ``t0 + k × 20 ms + slot × 20 ms / phase_slots``, so
  a thousand streams do not all hit the socket layer in the same millisecond.
* When the loop wakes late it runs every slot that is due, in order: each session still sends
  exactly one packet per tick (no burst beyond what is due, nothing skipped). Only when the
  loop has fallen more than ``max_late_ticks`` behind are whole ticks skipped; that is
  counted (``ticks_skipped``) and logged, never silent.
* RTP sockets are not watched by the event loop: each slot first polls (one ``poll(2)`` call
  for all of them) the RTP sockets whose audio that slot's sessions send — a session's own
  socket, or its bridge peer's — reads what is waiting, then ticks the slot's sessions. A
  relayed packet so costs one ``recvfrom`` and one ``sendto`` and no wake-up of its own: at
  50,000 packets/s the per-packet loop wake-ups, not the relay logic, were the engine's main
  cost. Received packets wait at most one tick, as they would in the bridge's frame queue
  anyway. RTCP (one packet per few seconds) stays on ``loop.add_reader``.

The command interface is message-shaped: every method takes and returns plain data (ids,
SDP strings, frozen source descriptions) and is a coroutine, so the same interface can later be
served by worker processes (one engine per core) without changing callers. Events
(`media.events`) are pulled with `next_event()` or pushed to listeners added with
`add_listener()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

import structlog

from media.events import MediaEvent, PlaybackEnd, RecordingFailed
from media.monitor import Monitor, MonitorMode
from media.recording import Recording
from media.sdp import Direction
from media.session import MediaSession, SessionSettings, SessionStats
from media.sources import PromptLibrary, Source, create_player

TICK_S: Final = 0.02
_RECV_BATCH: Final = 64  # RTCP datagrams read per readiness callback
_POLL_ROUNDS: Final = 8  # poll rounds per slot: a source sending faster than 1 per tick drains
_MAX_DATAGRAM: Final = 2048
_PORT_ATTEMPTS: Final = 64

log = structlog.get_logger("media.engine")


class MediaError(Exception):
    """A command the engine can't carry out: unknown session, no free port, bad source."""


@dataclass(frozen=True, slots=True)
class MediaEngineConfig:
    """Where and how the engine runs. ``rtp_port_min``/``rtp_port_max`` None = any free port
    (the kernel's ephemeral range: for tests)."""

    bind_host: str = "127.0.0.1"
    advertised_address: str | None = None  # the address put into SDP; default: bind_host
    rtp_port_min: int | None = 20000
    rtp_port_max: int | None = 29999
    prompts_dir: str = "prompts"
    session: SessionSettings = field(default_factory=SessionSettings)
    phase_slots: int = 20
    max_late_ticks: int = 5
    socket_buffer_bytes: int | None = None
    id_prefix: str = "m"

    def __post_init__(self) -> None:
        low, high = self.rtp_port_min, self.rtp_port_max
        if (low is None) != (high is None):
            raise ValueError("rtp_port_min and rtp_port_max must be given together")
        if low is not None and high is not None and not 1024 <= low < high <= 65535:
            raise ValueError(f"RTP port range {low}-{high} must lie within 1024-65535")
        if not 1 <= self.phase_slots <= 200:
            raise ValueError(f"phase_slots {self.phase_slots} must be within 1..200")


class OpenedSession(NamedTuple):
    session_id: str
    local_sdp: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Where a session lives: its ports, SSRC, codec and when its packets are due
    (``clock_origin_wall`` + k × 20 ms + ``phase_s``, in Unix time)."""

    session_id: str
    rtp_port: int
    rtcp_port: int
    ssrc: int
    codec: str
    clock_origin_wall: float
    phase_s: float


@dataclass(slots=True)
class EngineStats:
    """Engine-wide counters: clock health plus the sum of all sessions' counters."""

    sessions_open: int = 0
    sessions_opened: int = 0
    bridges: int = 0
    recordings: int = 0
    monitors: int = 0
    ticks: int = 0
    late_slots: int = 0
    max_lateness_ms: float = 0.0
    ticks_skipped: int = 0
    send_errors: int = 0
    receive_errors: int = 0
    sessions: SessionStats = field(default_factory=SessionStats)


@dataclass(slots=True)
class _Endpoint:
    session: MediaSession
    rtp: socket.socket
    rtcp: socket.socket
    slot: int
    poll_slot: int = -1  # the slot whose poll set holds our RTP socket
    recordings: list[Recording] = field(default_factory=list)


@dataclass(slots=True)
class _Bridge:
    bridge_id: str
    a: str
    b: str
    recordings: list[Recording] = field(default_factory=list)


def add_session_stats(total: SessionStats, stats: SessionStats) -> None:
    """Add ``stats``' counters into ``total`` (gauges like jitter are left alone)."""
    for item in dataclasses.fields(SessionStats):
        value = getattr(stats, item.name)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(total, item.name, getattr(total, item.name) + value)


class MediaEngine:
    """RTP media for many sessions on one event loop. See the module docstring.

    Create it, ``await start()``, then use the commands. Raises `MediaError` for commands
    about unknown sessions, for a bad source or path, and when no port pair is free; raises
    ValueError (from the SDP layer) for unusable SDP. Randomness (SSRCs, sequence numbers,
    shuffles) comes from ``rng``.
    """

    def __init__(self, config: MediaEngineConfig | None = None, *,
                 rng: random.Random | None = None) -> None:
        self.config = config or MediaEngineConfig()
        self._rng = rng or random.Random()
        self._library = PromptLibrary(Path(self.config.prompts_dir))
        self._endpoints: dict[str, _Endpoint] = {}
        self._bridges: dict[str, _Bridge] = {}
        self._bridge_of: dict[str, str] = {}  # session id -> its bridge's id
        self._slots: list[list[_Endpoint]] = [[] for _ in range(self.config.phase_slots)]
        self._polls = [select.poll() for _ in range(self.config.phase_slots)]
        self._by_fd: dict[int, _Endpoint] = {}
        self._recordings: dict[str, Recording] = {}
        self._monitors: dict[str, Monitor] = {}  # supervisor's session id -> its monitor
        self._events: asyncio.Queue[MediaEvent] = asyncio.Queue()
        self._listeners: list[Callable[[MediaEvent], None]] = []
        self._stats = EngineStats()
        self._closed_totals = SessionStats()
        self._counter = 0
        self._port_cursor = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._t0 = 0.0
        self._tick = 0
        self._slot = 0
        self._family = socket.AF_INET6 if ":" in self.config.bind_host else socket.AF_INET

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the media clock on the running loop."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._tick = 0
        self._slot = 0
        self._timer = self._loop.call_at(self._t0, self._on_clock)

    async def shutdown(self) -> None:
        """Close every session (sending RTCP BYE) and stop the clock."""
        for session_id in list(self._endpoints):
            await self.close(session_id)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None

    async def __aenter__(self) -> MediaEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    @property
    def library(self) -> PromptLibrary:
        return self._library

    # ------------------------------------------------------------------ commands

    async def open_session(self, offer_sdp: str | None = None, *,
                           near: str | None = None) -> OpenedSession:
        """Open a session; answer ``offer_sdp``, or make our own offer when it is None.
        ``near`` names a session this one will be bridged with: `MediaWorkerPool` puts both in
        one worker; one engine has nothing to do with it."""
        loop = self._require_loop()
        self._counter += 1
        session_id = f"{self.config.id_prefix}{self._counter}"
        rtp_sock, rtcp_sock = self._bind_pair()
        address = self.config.advertised_address or self.config.bind_host
        session = MediaSession(
            session_id, address, rtp_sock.getsockname()[1],
            ssrc=self._rng.getrandbits(32), sequence_number=self._rng.getrandbits(16),
            timestamp=self._rng.getrandbits(32), now=loop.time(), rng=self._rng,
            settings=self.config.session,
        )
        try:
            if offer_sdp is None:
                local_sdp = session.create_offer()
            else:
                local_sdp = session.apply_remote_description(offer_sdp, loop.time())
        except ValueError:
            rtp_sock.close()
            rtcp_sock.close()
            raise
        slot = min(range(len(self._slots)), key=lambda index: len(self._slots[index]))
        endpoint = _Endpoint(session, rtp_sock, rtcp_sock, slot)
        self._endpoints[session_id] = endpoint
        self._slots[slot].append(endpoint)
        self._by_fd[rtp_sock.fileno()] = endpoint
        self._set_poll_slot(endpoint, slot)
        loop.add_reader(rtcp_sock.fileno(), self._on_rtcp_readable, endpoint)
        self._stats.sessions_opened += 1
        log.debug("media_session_opened", session_id=session_id, rtp_port=session.rtp_port)
        return OpenedSession(session_id, local_sdp)

    async def update_session(self, session_id: str, remote_sdp: str) -> str:
        """Apply the peer's SDP (answer to our offer, or a re-INVITE's offer); returns the local
        SDP in force (our answer when ``remote_sdp`` was an offer)."""
        endpoint = self._endpoint(session_id)
        return endpoint.session.apply_remote_description(remote_sdp, self._require_loop().time())

    async def create_offer(self, session_id: str, direction: str = "sendrecv") -> str:
        """A new offer from us, e.g. ``direction="sendonly"`` to put the peer on hold."""
        try:
            wanted = Direction(direction)
        except ValueError:
            raise MediaError(f"unknown direction {direction!r}") from None
        return self._endpoint(session_id).session.create_offer(wanted)

    async def play(self, session_id: str, source: Source, *, barge_in: bool = False) -> str:
        """Play ``source`` on the session (replacing what plays); returns the playback id that
        the `PlaybackFinished` event carries."""
        return await self._start_playback(session_id, source, barge_in, insert=False)

    async def insert(self, session_id: str, source: Source, *, barge_in: bool = False) -> str:
        """Play ``source`` over what plays, e.g. a position announcement over the hold program;
        returns the playback id that the insert's `PlaybackFinished` carries.

        The running playback pauses at its exact frame and resumes when the insert ends, with
        no event of its own (a hold program keeps its music position, its announcement/ad
        rotation and its time to the next ad). With nothing playing this is `play`; an insert
        given while another plays queues behind it. `stop` ends the insert, the queued inserts
        and the paused playback, each reported ``STOPPED``; `play` replaces them all.
        """
        return await self._start_playback(session_id, source, barge_in, insert=True)

    async def stop(self, session_id: str) -> None:
        """Stop the session's playback (reported as `PlaybackFinished` ``STOPPED``); during an
        insert also the queued inserts and the paused playback, each reported."""
        endpoint = self._endpoint(session_id)
        endpoint.session.stop_playback()
        self._dispatch(endpoint.session)

    async def send_dtmf(self, session_id: str, digits: str, duration_ms: int = 100) -> None:
        try:
            self._endpoint(session_id).session.send_dtmf(digits, duration_ms)
        except ValueError as error:
            raise MediaError(str(error)) from error

    async def bridge(self, a: str, b: str) -> str:
        """Relay audio and DTMF between two sessions; stops their playbacks. Returns the
        bridge id (usable with `record`)."""
        if a == b:
            raise MediaError(f"cannot bridge session {a} with itself")
        first, second = self._endpoint(a), self._endpoint(b)
        for endpoint in (first, second):
            peer = endpoint.session.peer
            if peer is not None:
                await self.unbridge(endpoint.session.session_id, peer.session_id)
            endpoint.session.stop_playback()
        first.session.peer = second.session
        second.session.peer = first.session
        # each side's packets are read in the slot where the other side sends them on
        self._set_poll_slot(first, second.slot)
        self._set_poll_slot(second, first.slot)
        self._counter += 1
        bridge_id = f"{self.config.id_prefix}b{self._counter}"
        self._bridges[bridge_id] = _Bridge(bridge_id, a, b)
        self._bridge_of[a] = self._bridge_of[b] = bridge_id
        for endpoint in (first, second):
            self._dispatch(endpoint.session)
        return bridge_id

    async def unbridge(self, a: str, b: str) -> None:
        bridge = self._bridges.get(self._bridge_of.get(a, ""))
        if bridge is not None and {bridge.a, bridge.b} == {a, b}:
            del self._bridges[bridge.bridge_id]
            del self._bridge_of[bridge.a], self._bridge_of[bridge.b]
            for recording in bridge.recordings:
                self._finish_recording(recording)
        for session_id in (a, b):
            endpoint = self._endpoints.get(session_id)
            if endpoint is not None:
                endpoint.session.peer = None
                self._set_poll_slot(endpoint, endpoint.slot)

    async def record(self, target: str, path: str, *, stereo: bool = False) -> str:
        """Record a session (left = what it receives, right = what it sends) or a bridge
        (left = side a, right = side b) to a WAV file; returns the recording id."""
        self._counter += 1
        recording_id = f"{self.config.id_prefix}r{self._counter}"
        bridge = self._bridges.get(target)
        try:
            recording = Recording(recording_id, Path(path), stereo)
        except OSError as error:
            raise MediaError(f"cannot record to {path}: {error}") from error
        if bridge is not None:
            owner = self._endpoint(bridge.a)
            owner.session.rx_taps.append(recording.left)
            self._endpoint(bridge.b).session.rx_taps.append(recording.right)
            bridge.recordings.append(recording)
        else:
            if target not in self._endpoints:
                recording.close()
                raise MediaError(f"no session or bridge {target!r} to record")
            owner = self._endpoints[target]
            owner.session.rx_taps.append(recording.left)
            owner.session.tx_taps.append(recording.right)
        owner.recordings.append(recording)
        self._recordings[recording_id] = recording
        return recording_id

    async def pause_recording(self, recording_id: str, paused: bool = True) -> None:
        """Stop writing the recording for now (`paused`), or go on writing it."""
        recording = self._recordings.get(recording_id)
        if recording is None or recording.closed:
            raise MediaError(f"no recording {recording_id!r}")
        recording.paused = paused

    async def stop_recording(self, recording_id: str) -> None:
        recording = self._recordings.get(recording_id)
        if recording is None:
            raise MediaError(f"no recording {recording_id!r}")
        self._finish_recording(recording)

    async def monitor(self, supervisor: str, caller: str, agent: str, mode: str) -> None:
        """Join the session ``supervisor`` to the call ``caller`` ⇄ ``agent`` (bridged or
        not): ``listen`` (the supervisor hears both), ``whisper`` (the agent hears the
        supervisor too), ``barge`` (both do). Again for the same three sessions changes the
        mode; for others it moves the supervisor. See `media.monitor`."""
        try:
            wanted = MonitorMode(mode)
        except ValueError:
            raise MediaError(f"unknown monitor mode {mode!r} (listen, whisper, barge)") from None
        listener, first, second = (self._endpoint(s).session for s in (supervisor, caller, agent))
        current = self._monitors.get(supervisor)
        if current is not None and current.sessions == (supervisor, caller, agent):
            current.set_mode(wanted)
            return
        if current is not None:
            current.detach()
        try:
            monitor = Monitor(listener, first, second, mode=wanted)
        except ValueError as error:
            raise MediaError(str(error)) from error
        monitor.attach()
        self._monitors[supervisor] = monitor
        log.debug("media_monitor", supervisor=supervisor, caller=caller, agent=agent, mode=mode)

    async def stop_monitor(self, supervisor: str) -> None:
        """Take the session ``supervisor`` out of the call it monitors (no-op when none)."""
        monitor = self._monitors.pop(supervisor, None)
        if monitor is not None:
            monitor.detach()

    async def close(self, session_id: str) -> None:
        """Close the session: unbridge, finish its recordings, end the monitors it is part
        of, send RTCP BYE, free the ports."""
        endpoint = self._endpoints.get(session_id)
        if endpoint is None:
            raise MediaError(f"no media session {session_id!r}")
        for key, monitor in list(self._monitors.items()):
            if session_id in monitor.sessions:
                monitor.detach()
                del self._monitors[key]
        session = endpoint.session
        if session.peer is not None:
            await self.unbridge(session_id, session.peer.session_id)
        for recording in list(endpoint.recordings):
            self._finish_recording(recording)
        remote_rtcp = session.remote_rtcp
        if remote_rtcp is not None and session.negotiated is not None:
            with contextlib.suppress(OSError):
                endpoint.rtcp.sendto(session.build_bye("session closed"), remote_rtcp)
        session.close()
        self._dispatch(session)
        del self._endpoints[session_id]
        self._slots[endpoint.slot].remove(endpoint)
        self._polls[endpoint.poll_slot].unregister(endpoint.rtp.fileno())
        del self._by_fd[endpoint.rtp.fileno()]
        self._require_loop().remove_reader(endpoint.rtcp.fileno())
        endpoint.rtp.close()
        endpoint.rtcp.close()
        add_session_stats(self._closed_totals, session.stats)
        log.debug("media_session_closed", session_id=session_id)

    # ------------------------------------------------------------------ events and stats

    async def next_event(self) -> MediaEvent:
        """Wait for the next event."""
        return await self._events.get()

    def poll_events(self) -> list[MediaEvent]:
        """All events waiting now, without blocking."""
        events = []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events

    def add_listener(self, listener: Callable[[MediaEvent], None]) -> None:
        """Call ``listener(event)`` for every event (in addition to the queue)."""
        self._listeners.append(listener)

    def stats(self, *, reset_peak: bool = False) -> EngineStats:
        """A snapshot of the engine's counters; ``reset_peak`` restarts ``max_lateness_ms``."""
        totals = dataclasses.replace(self._closed_totals)
        for endpoint in self._endpoints.values():
            add_session_stats(totals, endpoint.session.stats)
        snapshot = dataclasses.replace(
            self._stats, sessions_open=len(self._endpoints), bridges=len(self._bridges),
            recordings=sum(1 for r in self._recordings.values() if not r.closed),
            monitors=len(self._monitors),
            sessions=totals,
        )
        if reset_peak:
            self._stats.max_lateness_ms = 0.0
        return snapshot

    def session_stats(self, session_id: str) -> SessionStats:
        return dataclasses.replace(self._endpoint(session_id).session.stats)

    def session_ports(self, session_id: str) -> tuple[int, int]:
        """The session's local (RTP, RTCP) ports."""
        endpoint = self._endpoint(session_id)
        return endpoint.rtp.getsockname()[1], endpoint.rtcp.getsockname()[1]

    async def session_info(self, session_id: str) -> SessionInfo:
        endpoint = self._endpoint(session_id)
        wall_offset = time.time() - self._require_loop().time()
        return SessionInfo(
            session_id, endpoint.rtp.getsockname()[1], endpoint.rtcp.getsockname()[1],
            endpoint.session.stream.ssrc, endpoint.session.codec, self._t0 + wall_offset,
            endpoint.slot * TICK_S / len(self._slots),
        )

    # ------------------------------------------------------------------ internals

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise MediaError("the media engine is not started")
        return self._loop

    def _endpoint(self, session_id: str) -> _Endpoint:
        endpoint = self._endpoints.get(session_id)
        if endpoint is None:
            raise MediaError(f"no media session {session_id!r}")
        return endpoint

    async def _start_playback(self, session_id: str, source: Source, barge_in: bool, *,
                              insert: bool) -> str:
        endpoint = self._endpoint(session_id)
        loop = self._require_loop()
        codec = endpoint.session.codec
        try:
            # a prompt not yet loaded is read and resampled off the loop, away from the clock
            player = await loop.run_in_executor(
                None, create_player, source, codec, self._library, self._rng
            )
        except ValueError as error:
            raise MediaError(str(error)) from error
        endpoint = self._endpoint(session_id)
        self._counter += 1
        playback_id = f"{session_id}.p{self._counter}"
        if insert:
            endpoint.session.insert(player, playback_id, barge_in)
        else:
            endpoint.session.play(player, playback_id, barge_in)
        self._dispatch(endpoint.session)
        return playback_id

    def _new_socket(self, port: int) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            if self.config.socket_buffer_bytes:
                for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    sock.setsockopt(socket.SOL_SOCKET, option, self.config.socket_buffer_bytes)
            sock.bind((self.config.bind_host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        # RFC 3550 §11: RTP on an even port, RTCP on the next (odd) one
        low, high = self.config.rtp_port_min, self.config.rtp_port_max
        for _ in range(_PORT_ATTEMPTS if low is None else (high or 0) - (low or 0)):
            if low is None or high is None:
                rtp = self._new_socket(0)
                port = rtp.getsockname()[1]
                if port % 2 or port == 65535:
                    rtp.close()
                    continue
            else:
                span = (high - low + 1) // 2
                port = (low + 1) // 2 * 2 + 2 * (self._port_cursor % span)
                self._port_cursor += 1
                if port + 1 > high:
                    continue
                try:
                    rtp = self._new_socket(port)
                except OSError:
                    continue
            try:
                rtcp = self._new_socket(port + 1)
            except OSError:
                rtp.close()
                continue
            return rtp, rtcp
        raise MediaError(f"no free RTP/RTCP port pair on {self.config.bind_host}")

    def _on_clock(self) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        slots = len(self._slots)
        slot_s = TICK_S / slots
        due = self._t0 + self._tick * TICK_S + self._slot * slot_s
        behind = now - due
        if behind > self.config.max_late_ticks * TICK_S:
            skipped = int(behind / TICK_S)
            for endpoint in self._endpoints.values():
                endpoint.session.skip_ticks(skipped)
            self._tick += skipped
            self._stats.ticks_skipped += skipped
            log.warning("media_clock_behind", behind_ms=round(behind * 1000, 1),
                        ticks_skipped=skipped)
            due = self._t0 + self._tick * TICK_S + self._slot * slot_s
        # run every slot that is due; a late wake-up sends what is due, in order
        while due <= now + 0.0002:
            lateness = now - due
            if lateness > 0.002:
                self._stats.late_slots += 1
                self._stats.max_lateness_ms = max(self._stats.max_lateness_ms, lateness * 1000)
            self._poll_rtp(self._polls[self._slot], now)
            for endpoint in self._slots[self._slot]:
                self._tick_endpoint(endpoint, now)
            self._slot += 1
            if self._slot == slots:
                self._slot = 0
                self._tick += 1
                self._stats.ticks += 1
            due = self._t0 + self._tick * TICK_S + self._slot * slot_s
        # sleep until the next slot that has sessions (or the next tick)
        for _ in range(slots):
            if self._slots[self._slot] or self._slot == 0:
                break
            self._slot += 1
            if self._slot == slots:
                self._slot = 0
                self._tick += 1
                self._stats.ticks += 1
        due = self._t0 + self._tick * TICK_S + self._slot * slot_s
        self._timer = loop.call_at(due, self._on_clock)

    def _tick_endpoint(self, endpoint: _Endpoint, now: float) -> None:
        session = endpoint.session
        packet = session.tick(now)
        if packet is not None:
            remote = session.remote_rtp
            if remote is not None:
                try:
                    endpoint.rtp.sendto(packet, remote)
                except OSError:
                    self._stats.send_errors += 1
        if endpoint.recordings:
            for recording in list(endpoint.recordings):
                recording.tick()
                if recording.failed:
                    self._recording_failed(endpoint, recording)
        if now >= session.next_rtcp_at and session.rtcp_due(now):
            report = session.build_rtcp(now, time.time())
            remote_rtcp = session.remote_rtcp
            if remote_rtcp is not None:
                try:
                    endpoint.rtcp.sendto(report, remote_rtcp)
                except OSError:
                    self._stats.send_errors += 1
        if session.events:
            self._dispatch(session)

    def _set_poll_slot(self, endpoint: _Endpoint, slot: int) -> None:
        if endpoint.poll_slot == slot:
            return
        fd = endpoint.rtp.fileno()
        if endpoint.poll_slot >= 0:
            self._polls[endpoint.poll_slot].unregister(fd)
        self._polls[slot].register(fd, select.POLLIN)
        endpoint.poll_slot = slot

    def _poll_rtp(self, poller: select.poll, now: float) -> None:
        # one datagram per ready socket per round: the common case (one packet per 20 ms)
        # then needs no failing recvfrom; a second round catches sources that sent more
        by_fd = self._by_fd
        for _ in range(_POLL_ROUNDS):
            ready = poller.poll(0)
            if not ready:
                return
            for fd, _mask in ready:
                endpoint = by_fd[fd]
                try:
                    data, addr = endpoint.rtp.recvfrom(_MAX_DATAGRAM)
                except BlockingIOError:
                    continue
                except OSError:
                    self._stats.receive_errors += 1
                    continue
                session = endpoint.session
                session.receive_rtp(data, addr if len(addr) == 2 else (addr[0], addr[1]), now)
                if session.events:
                    self._dispatch(session)

    def _on_rtcp_readable(self, endpoint: _Endpoint) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        for _ in range(_RECV_BATCH):
            try:
                data, addr = endpoint.rtcp.recvfrom(_MAX_DATAGRAM)
            except BlockingIOError:
                break
            except OSError:
                self._stats.receive_errors += 1
                break
            endpoint.session.receive_rtcp(data, (addr[0], addr[1]), now)

    def _dispatch(self, session: MediaSession) -> None:
        for event in session.take_events():
            self._events.put_nowait(event)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a listener's bug must not stop the media clock
                    log.exception("media_listener_failed", session_id=session.session_id)

    def _recording_failed(self, endpoint: _Endpoint, recording: Recording) -> None:
        event = RecordingFailed(endpoint.session.session_id, recording.recording_id,
                                str(recording.path), recording.failed)
        self._finish_recording(recording)  # no longer ticked: reported once
        self._events.put_nowait(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the media clock
                log.exception("media_listener_failed", session_id=event.session_id)

    def _finish_recording(self, recording: Recording) -> None:
        recording.close()
        self._recordings.pop(recording.recording_id, None)
        for endpoint in self._endpoints.values():
            if recording in endpoint.recordings:
                endpoint.recordings.remove(recording)
            for taps in (endpoint.session.rx_taps, endpoint.session.tx_taps):
                for tap in (recording.left, recording.right):
                    if tap in taps:
                        taps.remove(tap)
        for bridge in self._bridges.values():
            if recording in bridge.recordings:
                bridge.recordings.remove(recording)


__all__ = [
    "EngineStats",
    "MediaEngine",
    "MediaEngineConfig",
    "MediaError",
    "OpenedSession",
    "PlaybackEnd",
    "SessionInfo",
]
