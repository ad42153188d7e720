"""How long callers waited, phones rang and agents talked, as histograms (L2, pure).

`CallTimes.observe(command, now)` is fed every command the ACD engine emits (beside
`AcdStats`). Each call is counted once per histogram:

- *wait*: a queued call's time in the queue, when it leaves it — ``answered`` (from
  `ConnectCall`), ``abandoned`` (the caller hung up) or ``left`` (max wait, overflow, exit key
  …, from `CallLeftQueue`);
- *ring*: one agent's phone ringing for one offer, ``answered`` (the agent took the call) or
  ``not_answered`` (no answer, rejected, cancelled because another agent answered or the caller
  left);
- *talk*: an ACD call's time ``on_call`` (wrap-up not included).

Buckets are fixed per kind (seconds), chosen around call-center service levels (20 s, 30 s,
60 s) and handle times (3 to 5 minutes). `snapshot()` gives cumulative counts for export.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field

from pbx.acd.events import AcdCommand, CallLeftQueue, ConnectCall
from pbx.acd.model import AgentState, AgentStateChanged

WAIT_BUCKETS_S = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
RING_BUCKETS_S = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0)
TALK_BUCKETS_S = (10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
BUCKETS_S = {"wait": WAIT_BUCKETS_S, "ring": RING_BUCKETS_S, "talk": TALK_BUCKETS_S}


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """`buckets`: (upper bound, calls at or below it), cumulative, ending with +Inf."""

    buckets: tuple[tuple[float, int], ...]
    sum_s: float
    count: int


@dataclass(slots=True)
class Histogram:
    """Observations of one kind for one label set (bucket counts not cumulative)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum_s: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        value = max(0.0, seconds)
        self.counts[bisect_left(self.bounds, value)] += 1  # le: a value on a bound counts in
        self.sum_s += value

    def snapshot(self) -> HistogramSnapshot:
        running, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return HistogramSnapshot(tuple(buckets), self.sum_s, running)


# (kind, queue, outcome) -> histogram
Key = tuple[str, str, str]


class CallTimes:
    """Wait, ring and talk times per queue and outcome, from the ACD's commands."""

    def __init__(self) -> None:
        self._histograms: dict[Key, Histogram] = {}
        self._ringing: dict[str, tuple[float, str]] = {}  # agent -> (since, queue)
        self._talking: dict[str, tuple[float, str]] = {}

    def observe(self, command: AcdCommand, now: float) -> None:
        if isinstance(command, ConnectCall):
            self._add("wait", command.queue, "answered", command.waited_s)
        elif isinstance(command, CallLeftQueue) and command.reason != "answered":
            outcome = "abandoned" if command.reason == "abandoned" else "left"
            self._add("wait", command.queue, outcome, command.waited_s)
        elif isinstance(command, AgentStateChanged):
            self._agent_changed(command, now)

    def _agent_changed(self, command: AgentStateChanged, now: float) -> None:
        agent = command.agent
        if command.old is AgentState.RINGING and agent in self._ringing:
            since, queue = self._ringing.pop(agent)
            answered = command.new is AgentState.ON_CALL
            self._add("ring", queue, "answered" if answered else "not_answered", now - since)
        if command.old is AgentState.ON_CALL and agent in self._talking:
            since, queue = self._talking.pop(agent)
            self._add("talk", queue, "completed", now - since)
        if command.new is AgentState.RINGING and command.queue:
            self._ringing[agent] = (now, command.queue)
        elif command.new is AgentState.ON_CALL and command.queue:
            self._talking[agent] = (now, command.queue)

    def _add(self, kind: str, queue: str, outcome: str, seconds: float) -> None:
        key = (kind, queue, outcome)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = Histogram(BUCKETS_S[kind])
        histogram.observe(seconds)

    def snapshot(self) -> Mapping[Key, HistogramSnapshot]:
        """Every histogram observed so far, by (kind, queue, outcome)."""
        return {key: histogram.snapshot() for key, histogram in sorted(self._histograms.items())}
