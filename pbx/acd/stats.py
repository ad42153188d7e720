"""Live ACD statistics, computed from the engine's commands alone (L2, pure).

`AcdStats.observe(command, now)` is fed every command the engine emits (the engine does this
itself for `AcdEngine.stats`; a wallboard may keep its own copy fed from the same stream). It
keeps per-queue counters (offered, answered, abandoned, overflowed, waiting calls, ASA, AHT,
service level) and per-agent time per state, calls, talk time and occupancy, and the recent
handle times that `handle_time_estimate` turns into the estimated waiting time (EWT).

Definitions (as in most call-center reporting, stated here because vendors differ):

- *offered*: calls presented to the queue, including those turned away at the door
  (max_length, join_empty).
- *ASA*: mean wait of answered calls. *AHT*: mean talk + wrap-up of completed calls.
- *service level*: calls answered within ``service_level_s`` divided by every call that left
  the queue (answered, abandoned or overflowed) — the strict form; with no abandonment and no
  overflow it is P(wait <= T), which Erlang C predicts.
- *occupancy*: (on call + wrap-up + reserved) / (those + available + ringing); paused and
  logged-out time do not count, nor does time on calls the ACD did not route.
- *talk time* is time ``on_call``: ACD calls only. Time in ``busy_direct`` (internal, outbound,
  consultation … calls of an agent who was available or paused) is shown apart, as
  ``direct_call_time_s``; a direct call made while ringing, talking or wrapping up stays in
  those states' time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pbx.acd.events import (
    AcdCommand,
    CallJoinedQueue,
    CallLeftQueue,
    ConnectCall,
    OfferCall,
)
from pbx.acd.model import AgentState, AgentStateChanged
from pbx.acd.schema import QueueConfig

# Reasons of a RINGING -> … change that count as a missed offer (they feed auto-pause too).
MISS_REASONS = frozenset({"no_answer", "rejected", "auto_pause"})
HANDLE_SAMPLES = 100  # the EWT follows the last this many handled calls of a queue
_BUSY = (AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.RESERVED)
_IDLE = (AgentState.AVAILABLE, AgentState.RINGING)


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """One queue's live figures at `at`. Times in seconds; ratios 0..1; None when undefined."""

    queue: str
    at: float
    waiting: int
    longest_wait_s: float
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    agent_offers: int
    no_answers: int
    asa_s: float | None
    aht_s: float | None
    service_level: float | None
    abandon_rate: float | None


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """One agent's live figures at `at`."""

    agent: str
    at: float
    state: AgentState
    time_in_state_s: float
    calls: int
    offers: int
    missed: int
    talk_time_s: float
    wrap_up_time_s: float
    occupancy: float | None
    time_by_state: dict[AgentState, float]
    direct_call_time_s: float = 0.0


@dataclass(slots=True)
class _QueueFigures:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    agent_offers: int = 0
    no_answers: int = 0
    answered_within_sl: int = 0
    wait_answered_s: float = 0.0
    handled: int = 0
    handle_total_s: float = 0.0
    waiting: dict[str, float] = field(default_factory=dict)  # call -> joined at
    recent_handles: deque[float] = field(default_factory=lambda: deque(maxlen=HANDLE_SAMPLES))


@dataclass(slots=True)
class _AgentFigures:
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    calls: int = 0
    offers: int = 0
    missed: int = 0
    by_state: dict[AgentState, float] = field(default_factory=dict)
    handle_started: float | None = None
    handle_queue: str | None = None


class AcdStats:
    """Per-queue and per-agent live statistics. Driven by `observe(command, now)`; read with
    `queue(name, now)`, `agent(extension, now)` and `handle_time_estimate(queue)`."""

    def __init__(
        self, queues: Sequence[QueueConfig], agents: Iterable[str] = (), now: float = 0.0
    ) -> None:
        """`now`: when the figures start (the agents' first state began then)."""
        self._settings = {queue.name: queue for queue in queues}
        self._queues = {queue.name: _QueueFigures() for queue in queues}
        self._agents = {extension: _AgentFigures(since=now) for extension in agents}
        self._observers = {
            CallJoinedQueue: self._joined,
            CallLeftQueue: self._left,
            OfferCall: self._offered,
            ConnectCall: self._connected,
            AgentStateChanged: self._agent_changed,
        }

    def observe(self, command: AcdCommand, now: float) -> None:
        observer = self._observers.get(type(command))
        if observer is not None:
            observer(command, now)  # type: ignore[operator]

    # ------------------------------------------------------------------ observers

    def _joined(self, command: CallJoinedQueue, now: float) -> None:
        figures = self._queues[command.queue]
        figures.offered += 1
        figures.waiting[command.call] = now

    def _left(self, command: CallLeftQueue, now: float) -> None:
        figures = self._queues[command.queue]
        if figures.waiting.pop(command.call, None) is None:
            figures.offered += 1  # turned away at the door, never joined
        if command.reason == "abandoned":
            figures.abandoned += 1
        elif command.reason != "answered":
            figures.overflowed += 1

    def _offered(self, command: OfferCall, now: float) -> None:
        self._queues[command.queue].agent_offers += len(command.agents)
        for agent in command.agents:
            self._agent(agent).offers += 1

    def _connected(self, command: ConnectCall, now: float) -> None:
        figures = self._queues[command.queue]
        figures.answered += 1
        figures.wait_answered_s += command.waited_s
        if command.waited_s <= self._settings[command.queue].service_level_s:
            figures.answered_within_sl += 1
        self._agent(command.agent).calls += 1

    def _agent_changed(self, command: AgentStateChanged, now: float) -> None:
        figures = self._agent(command.agent)
        figures.by_state[command.old] = figures.by_state.get(command.old, 0.0) + (
            now - figures.since
        )
        figures.state, figures.since = command.new, now
        if command.new is AgentState.ON_CALL:
            figures.handle_started, figures.handle_queue = now, command.queue
        elif command.old is AgentState.RINGING and command.reason in MISS_REASONS:
            figures.missed += 1
            queue_figures = self._queues.get(command.queue or "")
            if queue_figures is not None:
                queue_figures.no_answers += 1
        if command.new not in _BUSY and figures.handle_started is not None:
            # Talk plus wrap-up (and any reservation that followed) of the call just done.
            queue = self._queues.get(figures.handle_queue or "")
            if queue is not None:
                handle = now - figures.handle_started
                queue.handled += 1
                queue.handle_total_s += handle
                queue.recent_handles.append(handle)
            figures.handle_started = figures.handle_queue = None

    def _agent(self, extension: str) -> _AgentFigures:
        return self._agents.setdefault(extension, _AgentFigures())

    # ------------------------------------------------------------------ readers

    def handle_time_estimate(self, queue: str) -> float:
        """Mean handle time of the queue's recent calls; its configured estimate until the
        first call has been handled."""
        recent = self._queues[queue].recent_handles
        if recent:
            return sum(recent) / len(recent)
        return self._settings[queue].handle_time_estimate_s

    def queue(self, name: str, now: float) -> QueueSnapshot:
        figures = self._queues[name]
        left = figures.answered + figures.abandoned + figures.overflowed
        longest = max((now - at for at in figures.waiting.values()), default=0.0)
        return QueueSnapshot(
            queue=name,
            at=now,
            waiting=len(figures.waiting),
            longest_wait_s=longest,
            offered=figures.offered,
            answered=figures.answered,
            abandoned=figures.abandoned,
            overflowed=figures.overflowed,
            agent_offers=figures.agent_offers,
            no_answers=figures.no_answers,
            asa_s=figures.wait_answered_s / figures.answered if figures.answered else None,
            aht_s=figures.handle_total_s / figures.handled if figures.handled else None,
            service_level=figures.answered_within_sl / left if left else None,
            abandon_rate=figures.abandoned / left if left else None,
        )

    def agent(self, extension: str, now: float) -> AgentSnapshot:
        figures = self._agent(extension)
        by_state = dict(figures.by_state)
        by_state[figures.state] = by_state.get(figures.state, 0.0) + (now - figures.since)
        busy = sum(by_state.get(state, 0.0) for state in _BUSY)
        idle = sum(by_state.get(state, 0.0) for state in _IDLE)
        return AgentSnapshot(
            agent=extension,
            at=now,
            state=figures.state,
            time_in_state_s=now - figures.since,
            calls=figures.calls,
            offers=figures.offers,
            missed=figures.missed,
            talk_time_s=by_state.get(AgentState.ON_CALL, 0.0),
            wrap_up_time_s=by_state.get(AgentState.WRAP_UP, 0.0),
            occupancy=busy / (busy + idle) if busy + idle > 0 else None,
            time_by_state=by_state,
            direct_call_time_s=by_state.get(AgentState.BUSY_DIRECT, 0.0),
        )

    def add_queues(self, queues: Iterable[QueueConfig]) -> None:
        """A config reload: new queues start at zero, changed ones keep their figures and use
        their new settings (service level, handle time estimate)."""
        for queue in queues:
            self._settings[queue.name] = queue
            self._queues.setdefault(queue.name, _QueueFigures())

    def drop_queue(self, name: str) -> None:
        self._settings.pop(name, None)
        self._queues.pop(name, None)

    def drop_agent(self, extension: str) -> None:
        self._agents.pop(extension, None)

    def queues(self) -> list[str]:
        return list(self._queues)

    def agents(self) -> list[str]:
        return list(self._agents)
