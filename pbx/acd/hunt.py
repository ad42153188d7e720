"""Hunting: which waiting call is offered to which agent, and the timers that drive it (L2).

`HuntingCore` is the state and the decisions shared by `pbx.acd.engine.AcdEngine`, which adds
the event handlers and the public surface on top; see the engine module for the theory of
operation. This module holds the parts that change state: the one agent-state setter, offers,
cancellations, leaving the queue, reservations, the dispatch pass and the timers.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random

from pbx.acd.events import (
    AcdCommand,
    AcdEvent,
    AgentDeviceChanged,
    Announce,
    CallLeftQueue,
    CancelOffer,
    CancelReason,
    EventRejected,
    LeaveReason,
    OfferCall,
    Overflow,
)
from pbx.acd.model import REST_STATES, Agent, AgentProfile, AgentState, Membership, QueuedCall
from pbx.acd.schema import CustomerStatusConfig, PinningRule, QueueConfig
from pbx.acd.stats import AcdStats
from pbx.acd.strategies import STRATEGIES, HuntContext, RingMode

S = AgentState
NO_PINNING = PinningRule()
_UNLIMITED = 1 << 30

# Timer kinds. A timer is (when, seq, kind, call, agent); it is stale once the state it was set
# for has moved on, which `_timer_valid` checks against the live state, so nothing is ever
# removed from the heap early.
RING, RETRY, STEP, WRAP, MAX_WAIT, ANNOUNCE, PERIODIC, WAKE = range(8)
Timer = tuple[float, int, int, str, str]


@dataclass(slots=True, eq=False)
class Entry:
    """A waiting call and its hunt state."""

    call: QueuedCall
    queue: QueueConfig
    priority: int
    order_at: float
    seq: int
    joined_at: float
    pinning: PinningRule
    required_skills: Mapping[str, int]
    mode: RingMode
    ringing: dict[str, float] = field(default_factory=dict)  # agent -> ring deadline
    ring_level: int = 0  # ring_all: the tier that is ringing
    tried: set[str] = field(default_factory=set)  # offered in this round
    retry_until: float | None = None
    step_due: bool = False  # ring_progressively: time to add the next agent
    next_step_at: float | None = None
    reserved_by: str | None = None
    max_wait_at: float | None = None
    next_announce_at: float | None = None
    next_periodic_at: float | None = None

    @property
    def key(self) -> tuple[int, float, int]:
        """Service order: higher priority first, then earlier arrival, then enqueue order."""
        return (-self.priority, self.order_at, self.seq)


def entry_key(entry: Entry) -> tuple[int, float, int]:
    return entry.key


@dataclass(slots=True)
class EngineCounters:
    """How much work the engine did (for benchmarks and metrics)."""

    events: int = 0
    commands: int = 0
    offers: int = 0
    timers_fired: int = 0
    rejected: int = 0


class HuntingCore:
    """State and hunting decisions of the ACD; `AcdEngine` is the class to use."""

    def __init__(
        self,
        queues: Sequence[QueueConfig],
        agents: Iterable[AgentProfile],
        customer_statuses: Mapping[str, CustomerStatusConfig] | None,
        rng: Random | None,
        devices_available: bool,
        now: float,
    ) -> None:
        self.queues: dict[str, QueueConfig] = {queue.name: queue for queue in queues}
        self.statuses: dict[str, CustomerStatusConfig] = dict(customer_statuses or {})
        self.rng = rng if rng is not None else Random(0)
        self.agents: dict[str, Agent] = {}
        for profile in agents:
            self.agents[profile.extension] = Agent(
                profile.extension,
                dict(profile.skills),
                device_available=devices_available,
                state_since=now,
                idle_since=now,
            )
        self._members: dict[str, list[tuple[Agent, Membership]]] = {}  # in seat order
        # the same rows by (penalty, seat): the order `linear` hunts in, scanned lazily
        self._tier_seat_order: dict[str, list[tuple[Agent, Membership]]] = {}
        self._seats: dict[str, dict[str, int]] = {}
        self._penalties: dict[str, dict[str, int]] = {}
        for queue in queues:
            rows = []
            for seat, member in enumerate(queue.members):
                agent = self.agents.get(member.agent)
                if agent is None:
                    continue  # the configuration check reports members that are not agents
                membership = Membership(queue.name, seat, member.penalty)
                agent.memberships[queue.name] = membership
                rows.append((agent, membership))
            self._members[queue.name] = rows
            self._tier_seat_order[queue.name] = sorted(
                rows, key=lambda row: (row[1].penalty, row[1].seat)
            )
            self._seats[queue.name] = {a.extension: m.seat for a, m in rows}
            self._penalties[queue.name] = {a.extension: m.penalty for a, m in rows}
        self._leave_queues = [q for q in queues if q.leave_when == "unstaffed"]
        self._entries: dict[str, Entry] = {}
        self._order: list[Entry] = []
        self._waiting: dict[str, int] = dict.fromkeys(self.queues, 0)
        self._free: set[str] = {a.extension for a in self.agents.values() if a.huntable}
        # staffed members per queue (for the wait estimate), kept with every state change
        self._staffed_members: dict[str, int] = {
            name: sum(1 for agent, _ in rows if agent.staffed)
            for name, rows in self._members.items()
        }
        self._pinned_waiting = 0
        self._last_offered: dict[str, str] = {}
        self._timers: list[Timer] = []
        self._seq = 0
        self._now = now
        self._out: list[AcdCommand] = []
        self.stats = AcdStats(queues, self.agents, now)
        self.counters = EngineCounters()

    # ------------------------------------------------------------------ queries

    def position(self, call: str) -> int | None:
        """1-based position of `call` among the waiting calls of its queue; None if not waiting."""
        entry = self._entries.get(call)
        if entry is None:
            return None
        index = bisect.bisect_left(self._order, entry.key, key=entry_key)
        return 1 + sum(1 for e in self._order[:index] if e.queue is entry.queue)

    def estimated_wait(self, call: str) -> float | None:
        """Expected wait of `call` from now: position x recent mean handle time / staffed
        agents (each staffed agent frees up about once per handle time). None when nobody
        staffs the queue or the call is not waiting."""
        entry = self._entries.get(call)
        position = self.position(call)
        if entry is None or position is None:
            return None
        staffed = self._staffed_members[entry.queue.name]
        if staffed == 0:
            return None
        return position * self.stats.handle_time_estimate(entry.queue.name) / staffed

    def hunt_context(self, call: QueuedCall, last_offered: str | None = None) -> HuntContext:
        """What a strategy sees when hunting for `call`."""
        queue = self.queues[call.queue]
        return HuntContext(
            queue=queue,
            call=call,
            seats=self._seats[queue.name],
            penalties=self._penalties[queue.name],
            required_skills={**queue.skills, **call.skills},
            last_offered=last_offered,
        )

    # ------------------------------------------------------------------ state changes

    def _emit(self, command: AcdCommand) -> None:
        self._out.append(command)

    def _reject(self, event: AcdEvent, reason: str) -> None:
        self.counters.rejected += 1
        self._emit(EventRejected(event, reason))

    def _set_state(
        self,
        agent: Agent,
        new: AgentState,
        now: float,
        reason: str,
        call: str | None = None,
        queue: str | None = None,
    ) -> None:
        was_staffed = agent.staffed
        pending: AgentState | None = None
        if agent.direct_calls and new in REST_STATES:
            # Still on a direct call: rest in BUSY_DIRECT, out of the hunt; a pause or logout
            # waits for the last direct call to end, like one asked for during a queue call.
            # `reason`, `call` and `queue` still say what ended (a ring, a wrap-up …).
            if new is not S.AVAILABLE:
                pending = new
            new = S.BUSY_DIRECT
            if call is None:
                call = next(iter(agent.direct_calls))
        self._emit(agent.set_state(new, now, reason, call, queue))
        if pending is not None:
            agent.pending, agent.pending_reason = pending, reason
        self._agent_changed(agent, was_staffed)

    def _set_pending(self, agent: Agent, pending: AgentState | None, reason: str) -> None:
        # A pause or logout for when the current call is done (or its withdrawal). On a direct
        # call it decides whether the seat still staffs its queues, so the counts follow.
        was_staffed = agent.staffed
        agent.pending, agent.pending_reason = pending, reason
        self._agent_changed(agent, was_staffed)

    def _set_device(self, agent: Agent, available: bool) -> None:
        was_staffed = agent.staffed
        agent.device_available = available
        self._agent_changed(agent, was_staffed)
        self._emit(AgentDeviceChanged(agent.extension, available))

    def _agent_changed(self, agent: Agent, was_staffed: bool) -> None:
        if agent.huntable:
            self._free.add(agent.extension)
        else:
            self._free.discard(agent.extension)
        staffed = agent.staffed
        if staffed != was_staffed:
            step = 1 if staffed else -1
            for queue in agent.memberships:
                self._staffed_members[queue] += step

    def _offer(self, entry: Entry, agents: Sequence[Agent], now: float) -> None:
        queue = entry.queue
        deadline = now + queue.ring_timeout_s
        call = entry.call.call
        for agent in agents:
            self._set_state(agent, S.RINGING, now, "offered", call, queue.name)
            agent.offered_call = call
            entry.ringing[agent.extension] = deadline
            entry.tried.add(agent.extension)
            self._timer(deadline, RING, call, agent.extension)
        self._last_offered[queue.name] = agents[-1].extension
        self.counters.offers += 1
        agent_ids = tuple(agent.extension for agent in agents)
        self._emit(OfferCall(call, queue.name, agent_ids, queue.ring_timeout_s))

    def _cancel_offer(self, entry: Entry, agent_id: str, reason: CancelReason, now: float) -> None:
        """Stop ringing `agent_id` for `entry`. The caller of this sets the agent's next state
        for a pause or logout; every other reason returns the agent to the hunt."""
        del entry.ringing[agent_id]
        self._emit(CancelOffer(entry.call.call, agent_id, reason))
        agent = self.agents[agent_id]
        if reason == "ring_timeout":
            self._missed(agent, entry, "no_answer", now)
        elif reason not in ("agent_paused", "agent_logged_out"):
            self._set_state(agent, S.AVAILABLE, now, reason, entry.call.call, entry.queue.name)

    def _missed(self, agent: Agent, entry: Entry, reason: str, now: float) -> None:
        # No answer or declined: counts towards auto-pause (FreeSWITCH max-no-answer).
        agent.missed_in_a_row += 1
        limit = entry.queue.auto_pause_after_misses
        call, queue = entry.call.call, entry.queue.name
        if limit is not None and agent.missed_in_a_row >= limit:
            self._set_state(agent, S.PAUSED, now, "auto_pause", call, queue)
        else:
            self._set_state(agent, S.AVAILABLE, now, reason, call, queue)

    def _leave(
        self, entry: Entry, reason: LeaveReason, now: float, target: str | None = None
    ) -> None:
        """Take `entry` out of the queue: cancel its offers, release its reserved agent."""
        call = entry.call.call
        cancel: CancelReason = "left_queue"
        if reason == "answered":
            cancel = "answered_elsewhere"
        elif reason == "abandoned":
            cancel = "abandoned"
        for agent_id in list(entry.ringing):
            self._cancel_offer(entry, agent_id, cancel, now)
        self._release_reservation(entry, now)
        del self._entries[call]
        index = bisect.bisect_left(self._order, entry.key, key=entry_key)
        if self._order[index] is not entry:
            raise AssertionError(f"queue order lost call {call}")
        del self._order[index]
        self._waiting[entry.queue.name] -= 1
        if entry.call.pinned_agents:
            self._pinned_waiting -= 1
        self._emit(CallLeftQueue(call, entry.queue.name, reason, now - entry.joined_at))
        if reason not in ("answered", "abandoned"):
            target = target or entry.queue.overflow
            if target is not None:
                self._emit(Overflow(call, entry.queue.name, target, reason))

    def _settle(
        self,
        agent: Agent,
        now: float,
        call: str | None,
        queue: str | None,
        reason: str = "wrap_up_done",
    ) -> None:
        # After-call work (or the last direct call) is over: available, or the pause/logout
        # asked for during the call (or the pause the agent was in before a direct call).
        if agent.pending is S.LOGGED_OUT:
            self._set_state(agent, S.LOGGED_OUT, now, agent.pending_reason, call, queue)
        elif agent.pending is S.PAUSED:
            self._set_state(agent, S.PAUSED, now, agent.pending_reason, call, queue)
        else:
            self._set_state(agent, S.AVAILABLE, now, reason, call, queue)

    def _reserve(self, entry: Entry, now: float) -> None:
        # Hold a pinned agent who is finishing after-call work for this call.
        for agent_id in entry.call.pinned_agents:
            agent = self.agents.get(agent_id)
            if (
                agent is not None
                and agent.state is S.WRAP_UP
                and agent.device_available
                and agent.pending is None
                and not agent.direct_calls  # the reservation would turn into an offer
            ):
                call, queue, until = agent.current_call, agent.current_queue, agent.wrap_up_until
                self._set_state(agent, S.RESERVED, now, "reserved_for_pinned", entry.call.call)
                agent.current_call, agent.current_queue, agent.wrap_up_until = call, queue, until
                agent.reserved_for = entry.call.call
                entry.reserved_by = agent_id
                return

    def _release_reservation(self, entry: Entry, now: float) -> None:
        if entry.reserved_by is None:
            return
        agent = self.agents[entry.reserved_by]
        entry.reserved_by = None
        call, queue, until = agent.current_call, agent.current_queue, agent.wrap_up_until
        if until is not None and until > now:
            self._set_state(agent, S.WRAP_UP, now, "reservation_released", call, queue)
            agent.current_call, agent.current_queue, agent.wrap_up_until = call, queue, until
        else:
            self._settle(agent, now, call, queue)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, now: float) -> None:
        if self._leave_queues:
            self._apply_leave_rules(now)
        if self._pinned_waiting:
            self._serve_pinned(now)
        if not self._free:
            return
        for entry in list(self._order):
            if not self._free:
                break
            self._hunt(entry, now)

    def _pinned_only(self, entry: Entry, now: float) -> bool:
        # Whether `entry` may, for now, be offered to its pinned agents only.
        pins = entry.call.pinned_agents
        if not pins:
            return False
        rule = entry.pinning
        if rule.fallback == "pinned_only" or entry.reserved_by is not None:
            return True
        if now >= entry.joined_at + rule.wait_for_pinned_s:
            return False
        # Waiting only makes sense for a pinned agent who will become free.
        return any(self.agents[p].staffed for p in pins if p in self.agents)

    def _serve_pinned(self, now: float) -> None:
        # "A pinned call is offered to an available pinned agent at once, ahead of every
        # waiting call": this pass runs before the ordinary one.
        for entry in self._order:
            pins = entry.call.pinned_agents
            if not pins or entry.ringing:
                continue
            free = [p for p in pins if p in self._free and p not in entry.tried]
            if free:
                self._offer(entry, [self.agents[free[0]]], now)
                continue
            if not self._pinned_only(entry, now):
                continue
            if entry.pinning.reserve_pinned_agent and entry.reserved_by is None:
                self._reserve(entry, now)
            if entry.reserved_by is None and self._round_over(entry, now):
                free = [p for p in pins if p in self._free]
                if free:
                    self._offer(entry, [self.agents[free[0]]], now)

    def _hunt(self, entry: Entry, now: float) -> None:
        if entry.reserved_by is not None:
            return
        if entry.ringing and (
            entry.mode == "one" or (entry.mode == "progressive" and not entry.step_due)
        ):
            return
        if self._pinned_only(entry, now):
            return
        if entry.mode == "one" and entry.queue.strategy == "linear":
            self._hunt_in_seat_order(entry, now)
            return
        candidates = self._candidates(entry, now)
        if not candidates:
            if entry.ringing or not self._round_over(entry, now):
                return
            candidates = self._candidates(entry, now)
            if not candidates:
                return
        queue = entry.queue
        context = HuntContext(
            queue=queue,
            call=entry.call,
            seats=self._seats[queue.name],
            penalties=self._penalties[queue.name],
            required_skills=entry.required_skills,
            last_offered=self._last_offered.get(queue.name),
        )
        ordered = STRATEGIES[queue.strategy](context, candidates, now, self.rng)
        penalties = self._penalties[queue.name]
        ordered.sort(key=lambda agent: penalties.get(agent.extension, 0))  # tiers first
        if entry.mode == "all":
            if not entry.ringing:
                entry.ring_level = penalties.get(ordered[0].extension, 0)
            level = entry.ring_level
            chosen = [a for a in ordered if penalties.get(a.extension, 0) <= level]
            if chosen:
                self._offer(entry, chosen, now)
            return
        if entry.mode == "progressive":
            entry.step_due = False
            entry.next_step_at = now + queue.ring_progressively_step_s
            self._timer(entry.next_step_at, STEP, entry.call.call)
        self._offer(entry, ordered[:1], now)

    def _hunt_in_seat_order(self, entry: Entry, now: float) -> None:
        # `linear` ringing one at a time only needs the first candidate by (tier, seat): scan
        # the pre-sorted members and stop there, instead of collecting and sorting all
        # candidates (the same choice; with a thousand members, most of them free, the
        # difference is most of the ACD's work per call)
        agent = self._first_in_seat_order(entry, now)
        if agent is None:
            if entry.ringing or not self._round_over(entry, now):
                return
            agent = self._first_in_seat_order(entry, now)
            if agent is None:
                return
        self._offer(entry, [agent], now)

    def _first_in_seat_order(self, entry: Entry, now: float) -> Agent | None:
        limit = self._tier_limit(entry, now)
        required = entry.required_skills
        free, tried = self._free, entry.tried
        for agent, membership in self._tier_seat_order[entry.queue.name]:
            if membership.penalty > limit:
                return None
            extension = agent.extension
            if (
                extension in free
                and extension not in tried
                and (not required or agent.has_skills(required))
            ):
                return agent
        return None

    def _candidates(self, entry: Entry, now: float) -> list[Agent]:
        limit = self._tier_limit(entry, now)
        required = entry.required_skills
        free, tried = self._free, entry.tried
        return [
            agent
            for agent, membership in self._members[entry.queue.name]
            if agent.extension in free
            and agent.extension not in tried
            and membership.penalty <= limit
            and (not required or agent.has_skills(required))
        ]

    def _tier_limit(self, entry: Entry, now: float) -> int:
        queue = entry.queue
        if not queue.escalation:
            return _UNLIMITED  # penalties only order the hunt
        limit = queue.start_max_penalty
        for step in queue.escalation:
            if now < entry.joined_at + step.after_s:
                break
            limit = step.max_penalty
        if queue.skip_empty_tiers:
            # Nobody staffs the allowed tiers: waiting for them is pointless, widen at once
            # (FreeSWITCH tier-rule-no-agent-no-wait).
            staffed = [m.penalty for a, m in self._members[queue.name] if a.staffed]
            if staffed and min(staffed) > limit:
                limit = min(staffed)
        return limit

    def _round_over(self, entry: Entry, now: float) -> bool:
        """Everyone was tried and nobody rings: start the retry delay. True when the round
        may start again at once (retry_delay_s == 0)."""
        if entry.ringing or not entry.tried or entry.retry_until is not None:
            return False
        delay = entry.queue.retry_delay_s
        if delay <= 0:
            entry.tried.clear()
            return True
        entry.retry_until = now + delay
        self._timer(entry.retry_until, RETRY, entry.call.call)
        return False

    def _apply_leave_rules(self, now: float) -> None:
        for queue in self._leave_queues:
            if not self._waiting[queue.name]:
                continue
            if any(agent.staffed for agent, _ in self._members[queue.name]):
                continue
            for entry in [e for e in self._order if e.queue is queue]:
                pins = entry.call.pinned_agents
                if any(self.agents[p].staffed for p in pins if p in self.agents):
                    continue  # a VIP whose own agent is still here keeps waiting
                self._leave(entry, "leave_empty", now)

    # ------------------------------------------------------------------ timers

    def _timer(self, when: float, kind: int, call: str, agent: str = "") -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, kind, call, agent))

    def _run_due(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)
            if self._timer_valid(timer):
                self.counters.timers_fired += 1
                self._run_timer(timer, now)

    def _timer_valid(self, timer: Timer) -> bool:
        when, _, kind, call, agent_id = timer
        if kind == WRAP:
            agent = self.agents.get(agent_id)  # None: removed by a config reload
            return (agent is not None and agent.wrap_up_until == when
                    and agent.state in (S.WRAP_UP, S.RESERVED))
        entry = self._entries.get(call)
        if entry is None:
            return False
        if kind == RING:
            return entry.ringing.get(agent_id) == when
        if kind == RETRY:
            return entry.retry_until == when
        if kind == STEP:
            return entry.next_step_at == when
        if kind == MAX_WAIT:
            return entry.max_wait_at == when
        if kind == ANNOUNCE:
            return entry.next_announce_at == when
        if kind == PERIODIC:
            return entry.next_periodic_at == when
        return True  # WAKE: a pinning window or an escalation step ended; dispatch re-evaluates

    def _run_timer(self, timer: Timer, now: float) -> None:
        _, _, kind, call, agent_id = timer
        if kind == WRAP:
            self._wrap_up_over(self.agents[agent_id], now)
            return
        entry = self._entries[call]
        if kind == RING:
            self._cancel_offer(entry, agent_id, "ring_timeout", now)
        elif kind == RETRY:
            entry.retry_until = None
            entry.tried.clear()
        elif kind == STEP:
            entry.next_step_at = None
            entry.step_due = True
        elif kind == MAX_WAIT:
            self._leave(entry, "max_wait", now)
        elif kind == ANNOUNCE:
            self._announce(entry, now)
        elif kind == PERIODIC:
            every = entry.queue.announce.periodic_every_s or 0.0
            self._emit(Announce(call, entry.queue.name, "periodic"))
            entry.next_periodic_at = now + every
            self._timer(entry.next_periodic_at, PERIODIC, call)

    def _wrap_up_over(self, agent: Agent, now: float, reason: str = "wrap_up_done") -> None:
        if agent.state is S.WRAP_UP:
            self._settle(agent, now, agent.current_call, agent.current_queue, reason)
            return
        entry = self._entries[agent.reserved_for or ""]
        if entry.ringing:
            self._release_reservation(entry, now)  # another pinned agent is ringing already
            return
        entry.reserved_by = None
        self._offer(entry, [agent], now)  # the reservation turns into the offer

    def _announce(self, entry: Entry, now: float) -> None:
        settings = entry.queue.announce
        call = entry.call.call
        if not entry.ringing:  # an agent is about to answer: don't start a message now
            ewt = self.estimated_wait(call) if settings.ewt else None
            if settings.position_every_s is not None:
                self._emit(Announce(call, entry.queue.name, "position", self.position(call), ewt))
            else:
                self._emit(Announce(call, entry.queue.name, "ewt", None, ewt))
        if settings.position_every_s is not None:
            entry.next_announce_at = now + settings.position_every_s
            self._timer(entry.next_announce_at, ANNOUNCE, call)
        else:
            entry.next_announce_at = None
