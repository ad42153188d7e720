"""Queue and agent statistics per 15-minute interval, for reports that survive a restart
(L2, pure).

`IntervalStats.observe(command, now)` is fed every command the ACD engine emits (the switchboard
does this beside `AcdStats`, from the same stream). It adds what happened to the interval it
happened in — intervals are ``INTERVAL_S`` seconds of wall time, aligned to the epoch, so they
are whole quarter hours in every time zone — and `take(now)` hands the sums gathered since the
last `take` to whoever stores them (added to what the database already holds for the same
interval, so several takes, and several runs of the PBX, make one figure). Time in a state
that is still going on is counted up to `now` at every `take`, so a stop loses nothing and a
crash loses at most the time since the last take.

What is counted, and when (the definitions of `pbx.acd.stats`, made additive):

- per queue: *offered* when a call joins (or is turned away at the door); *answered*,
  *answered_in_sl* (waited at most the queue's ``service_level_s``) and *wait_answered_s* when
  the ACD connects it; *abandoned* with *wait_abandoned_s* and *overflowed* (left for any other
  reason) when it leaves; *handled* and *handle_s* (talk + wrap-up + any reservation that
  followed) when the agent is done with it.
- per agent: *offers* (rung), *missed* (a ring that ended in no answer, rejection or
  auto-pause), *calls* (connected), *handled*/*handle_s* as for queues, and seconds per state:
  talk (``on_call``), wrap-up, ready (``available`` with a registered phone — an agent whose
  phone is gone cannot take calls), ringing, reserved, paused (also by pause reason) and direct
  calls (``busy_direct``). Durations are split at interval boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from pbx.acd.events import (
    AcdCommand,
    AgentDeviceChanged,
    CallJoinedQueue,
    CallLeftQueue,
    ConnectCall,
    OfferCall,
)
from pbx.acd.model import AgentState, AgentStateChanged
from pbx.acd.schema import QueueConfig
from pbx.acd.stats import MISS_REASONS

INTERVAL_S = 900  # 15 minutes
DEFAULT_SERVICE_LEVEL_S = 20.0  # for a queue the configuration does not (or no longer) know
NO_REASON = "none"  # the pause reason stored for a pause without one
_BUSY = (AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.RESERVED)
# state -> the AgentInterval field its time goes to (AVAILABLE only with a registered phone)
_STATE_FIELD = {
    AgentState.ON_CALL: "talk_s",
    AgentState.WRAP_UP: "wrap_up_s",
    AgentState.AVAILABLE: "ready_s",
    AgentState.RINGING: "ringing_s",
    AgentState.RESERVED: "reserved_s",
    AgentState.PAUSED: "paused_s",
    AgentState.BUSY_DIRECT: "direct_s",
}


def interval_start(at: float) -> int:
    """The start (epoch seconds) of the interval `at` falls in."""
    return int(at // INTERVAL_S) * INTERVAL_S


@dataclass(slots=True)
class QueueInterval:
    """One queue's sums in one interval (or several added together)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    answered_in_sl: int = 0
    wait_answered_s: float = 0.0
    wait_abandoned_s: float = 0.0
    handled: int = 0
    handle_s: float = 0.0

    def add(self, other: QueueInterval) -> None:
        for name in QUEUE_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in QUEUE_FIELDS)


@dataclass(slots=True)
class AgentInterval:
    """One agent's sums in one interval (or several added together). `pauses`: paused seconds
    by reason (they add up to `paused_s`)."""

    offers: int = 0
    missed: int = 0
    calls: int = 0
    handled: int = 0
    handle_s: float = 0.0
    talk_s: float = 0.0
    wrap_up_s: float = 0.0
    ready_s: float = 0.0
    ringing_s: float = 0.0
    reserved_s: float = 0.0
    paused_s: float = 0.0
    direct_s: float = 0.0
    pauses: dict[str, float] = field(default_factory=dict)

    def add(self, other: AgentInterval) -> None:
        for name in AGENT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, seconds in other.pauses.items():
            self.pauses[reason] = self.pauses.get(reason, 0.0) + seconds

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in AGENT_FIELDS) and not self.pauses


QUEUE_FIELDS = tuple(f.name for f in fields(QueueInterval))
AGENT_FIELDS = tuple(f.name for f in fields(AgentInterval) if f.name != "pauses")


@dataclass(frozen=True, slots=True)
class IntervalDeltas:
    """What `IntervalStats.take` hands over: sums per (interval start, queue) and per
    (interval start, agent), to be added to what is stored."""

    queues: dict[tuple[int, str], QueueInterval]
    agents: dict[tuple[int, str], AgentInterval]

    def __bool__(self) -> bool:
        return bool(self.queues or self.agents)

    def merged(self, other: IntervalDeltas) -> IntervalDeltas:
        """These sums and `other`'s added up (neither is changed)."""
        queues = {key: _copy_queue(sums) for key, sums in self.queues.items()}
        agents = {key: _copy_agent(sums) for key, sums in self.agents.items()}
        for key, queue in other.queues.items():
            queues.setdefault(key, QueueInterval()).add(queue)
        for key, agent in other.agents.items():
            agents.setdefault(key, AgentInterval()).add(agent)
        return IntervalDeltas(queues, agents)


def _copy_queue(sums: QueueInterval) -> QueueInterval:
    copy = QueueInterval()
    copy.add(sums)
    return copy


def _copy_agent(sums: AgentInterval) -> AgentInterval:
    copy = AgentInterval()
    copy.add(sums)
    return copy


@dataclass(slots=True)
class _AgentTrack:
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    pause_reason: str = ""
    device: bool = False
    handle_started: float | None = None
    handle_queue: str | None = None


class IntervalStats:
    """See the module docstring. `queues` give each queue's service-level target."""

    def __init__(self, queues: Iterable[QueueConfig] = (), now: float = 0.0) -> None:
        self._service_level: dict[str, float] = {}
        self.configure(queues)
        self._agents: dict[str, _AgentTrack] = {}
        self._waiting: set[tuple[str, str]] = set()  # (queue, call) joined and not yet left
        self._queues: dict[tuple[int, str], QueueInterval] = {}
        self._agent_sums: dict[tuple[int, str], AgentInterval] = {}
        self._started = now
        self._observers = {
            CallJoinedQueue: self._joined,
            CallLeftQueue: self._left,
            OfferCall: self._offered,
            ConnectCall: self._connected,
            AgentStateChanged: self._agent_changed,
            AgentDeviceChanged: self._device_changed,
        }

    def configure(self, queues: Iterable[QueueConfig]) -> None:
        """Take the queues' service-level targets (at start, and after a reload)."""
        self._service_level = {queue.name: queue.service_level_s for queue in queues}

    def observe(self, command: AcdCommand | AgentDeviceChanged, now: float) -> None:
        observer = self._observers.get(type(command))
        if observer is not None:
            observer(command, now)  # type: ignore[operator]

    def take(self, now: float) -> IntervalDeltas:
        """The sums since the last take, with every agent's current state counted up to
        `now`; starts over from empty."""
        for agent, track in self._agents.items():
            self._credit(agent, track, now)
        queues = {key: sums for key, sums in self._queues.items() if not sums.is_empty()}
        agents = {key: sums for key, sums in self._agent_sums.items() if not sums.is_empty()}
        self._queues, self._agent_sums = {}, {}
        return IntervalDeltas(queues, agents)

    # ------------------------------------------------------------------ queues

    def _queue(self, queue: str, now: float) -> QueueInterval:
        key = (interval_start(now), queue)
        sums = self._queues.get(key)
        if sums is None:
            sums = self._queues[key] = QueueInterval()
        return sums

    def _joined(self, command: CallJoinedQueue, now: float) -> None:
        self._queue(command.queue, now).offered += 1
        self._waiting.add((command.queue, command.call))

    def _left(self, command: CallLeftQueue, now: float) -> None:
        sums = self._queue(command.queue, now)
        if (command.queue, command.call) in self._waiting:
            self._waiting.discard((command.queue, command.call))
        else:
            sums.offered += 1  # turned away at the door, never joined
        if command.reason == "abandoned":
            sums.abandoned += 1
            sums.wait_abandoned_s += command.waited_s
        elif command.reason != "answered":
            sums.overflowed += 1

    def _connected(self, command: ConnectCall, now: float) -> None:
        sums = self._queue(command.queue, now)
        sums.answered += 1
        sums.wait_answered_s += command.waited_s
        target = self._service_level.get(command.queue, DEFAULT_SERVICE_LEVEL_S)
        if command.waited_s <= target:
            sums.answered_in_sl += 1
        self._agent_at(command.agent, now).calls += 1

    def _offered(self, command: OfferCall, now: float) -> None:
        for agent in command.agents:
            self._agent_at(agent, now).offers += 1

    # ------------------------------------------------------------------ agents

    def _track(self, agent: str) -> _AgentTrack:
        track = self._agents.get(agent)
        if track is None:
            track = self._agents[agent] = _AgentTrack(since=self._started)
        return track

    def _agent_at(self, agent: str, at: float) -> AgentInterval:
        key = (interval_start(at), agent)
        sums = self._agent_sums.get(key)
        if sums is None:
            sums = self._agent_sums[key] = AgentInterval()
        return sums

    def _agent_changed(self, command: AgentStateChanged, now: float) -> None:
        track = self._track(command.agent)
        self._credit(command.agent, track, now)
        if command.old is AgentState.RINGING and command.reason in MISS_REASONS:
            self._agent_at(command.agent, now).missed += 1
        track.state = command.new
        track.pause_reason = (command.reason or NO_REASON) if command.new is AgentState.PAUSED \
            else ""
        if command.new is AgentState.ON_CALL:
            track.handle_started, track.handle_queue = now, command.queue
        elif command.new not in _BUSY and track.handle_started is not None:
            handle = max(0.0, now - track.handle_started)
            sums = self._agent_at(command.agent, now)
            sums.handled += 1
            sums.handle_s += handle
            if track.handle_queue:
                queue = self._queue(track.handle_queue, now)
                queue.handled += 1
                queue.handle_s += handle
            track.handle_started = track.handle_queue = None

    def _device_changed(self, command: AgentDeviceChanged, now: float) -> None:
        track = self._track(command.agent)
        self._credit(command.agent, track, now)
        track.device = command.available

    def _credit(self, agent: str, track: _AgentTrack, now: float) -> None:
        """Count the time in the current state from `track.since` to `now`, split at interval
        boundaries; `since` moves to `now`."""
        name = _STATE_FIELD.get(track.state)
        if track.state is AgentState.AVAILABLE and not track.device:
            name = None
        start = track.since
        track.since = max(track.since, now)
        if name is None:
            return
        while start < now:
            end = min(now, interval_start(start) + INTERVAL_S)
            sums = self._agent_at(agent, start)
            setattr(sums, name, getattr(sums, name) + (end - start))
            if track.state is AgentState.PAUSED:
                sums.pauses[track.pause_reason] = (
                    sums.pauses.get(track.pause_reason, 0.0) + (end - start)
                )
            start = end
