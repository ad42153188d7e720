"""The ACD engine: queues of waiting callers, agents, and who is offered which call (L2, pure).

Theory of operation. `AcdEngine.handle(event, now)` first runs every timer that is due, then
the event, then one *dispatch* pass, and returns the commands those produced, in order. The
caller re-arms one timer from `next_deadline()` and calls `handle(TimerFired(), now)` when it
expires. Nothing here reads a clock, sleeps or does I/O; randomness comes from the injected
`rng`, so a run is reproducible from its seed.

Dispatch (`pbx.acd.hunt`) serves waiting calls in this order: first every call pinned to a
customer's own agent who is free right now (VIP pinning: "at once, ahead of every waiting
call"), then all calls by priority (higher first) and arrival (earlier first), across queues.
For each call it takes the candidates — members of the call's queue who are available with a
registered phone, within the tier its waiting time allows, with the required skills, not yet
tried in this round — lets the queue's strategy order them (`pbx.acd.strategies`) and offers
the call to the first (every one of the lowest tier under ``ring_all``; one more every step
under ``ring_progressively``). A pinned call whose pinned agents are busy waits for them as its
customer status says (``wait_for_pinned_s``, reserving one who finishes a call meanwhile,
fallback to anyone or pinned agents only).

A *round* ends when every candidate was tried and nobody rings: the caller keeps waiting,
untried agents who become free are offered at once, and the tried ones are eligible again
after ``retry_delay_s``. A ring timeout or a failed offer moves on to the next seat;
``auto_pause_after_misses`` misses in a row pause the agent; after a call the agent wraps up
for the queue's ``wrap_up_s``.

Calls the ACD did not route (internal, outbound, consultations, direct transfers, previews)
reach the engine as `AgentCallStarted` / `AgentCallEnded`. While an agent has one, they are
never offered a call: an available or paused agent is ``busy_direct``; a ringing, talking or
wrapping-up agent keeps that state, and wherever they would come to rest the engine parks them
in ``busy_direct`` instead (`HuntingCore._set_state`). The last end settles them like the end
of a wrap-up (no wrap-up of its own): available, the pause they were in, or the pause/logout
asked for meanwhile — and the next waiting caller is offered to them in the same step.

Invariants (`check_invariants`, run by the tests and the simulator after every step): an agent
rings for at most one call; a call rings at most one agent except under ring_all and
ring_progressively; every ringing or reserved agent belongs to a call still waiting (no zombie
offers); a call that left the queue rings nobody; an agent without a registered phone is never
offered a call; the set of huntable agents matches the agents' states; an agent on a direct
call is neither huntable, available, paused nor reserved, and ``busy_direct`` means at least one
direct call; the staffed count of every queue matches its members.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from random import Random
from typing import Any

from pbx.acd.call_times import CallTimes
from pbx.acd.events import (
    AcdCommand,
    AcdEvent,
    AgentCallEnded,
    AgentCallStarted,
    AgentDeviceAvailable,
    AgentDeviceUnavailable,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentUnpaused,
    CallAbandoned,
    CallEnded,
    CallEnqueued,
    CallExitKeyPressed,
    CallJoinedQueue,
    CallLeftQueue,
    CallMoved,
    CancelOffer,
    CancelReason,
    ConfigChanged,
    ConnectCall,
    EventDeferred,
    LeaveReason,
    OfferAnswered,
    OfferFailed,
    Overflow,
    TimerFired,
)
from pbx.acd.hunt import (
    ANNOUNCE,
    MAX_WAIT,
    NO_PINNING,
    PERIODIC,
    WAKE,
    WRAP,
    Entry,
    entry_key,
)
from pbx.acd.model import (
    AcdInvariantError,
    Agent,
    AgentProfile,
    AgentState,
    Membership,
    QueuedCall,
)
from pbx.acd.reconfigure import Reconfiguring
from pbx.acd.schema import CustomerStatusConfig, QueueConfig
from pbx.acd.strategies import ring_mode

S = AgentState


class AcdEngine(Reconfiguring):
    """The sans-IO ACD. Driven by `handle(event, now)` with the events of `pbx.acd.events`;
    returns the commands to carry out (`OfferCall`, `CancelOffer`, `ConnectCall`, `Announce`,
    `CallLeftQueue`, `Overflow`, `AgentStateChanged` …); `next_deadline()` says when to call it
    again with `TimerFired`. `stats` holds the live statistics, `counters` the work done.

    Events that do not fit the current state (a pause while logged out, the result of an offer
    that is gone) come back as `EventRejected`, never as an exception; only a broken internal
    rule raises (`AcdStateError`). Agents start logged out; `devices_available` says whether
    their phones count as registered until told otherwise.
    """

    def __init__(
        self,
        queues: Sequence[QueueConfig],
        agents: Iterable[AgentProfile],
        customer_statuses: Mapping[str, CustomerStatusConfig] | None = None,
        *,
        rng: Random | None = None,
        devices_available: bool = False,
        now: float = 0.0,
    ) -> None:
        super().__init__(queues, agents, customer_statuses, rng, devices_available, now)
        self.call_times = CallTimes()  # wait, ring and talk histograms (/metrics)
        self._connected: dict[str, str] = {}  # call -> the agent it is talking to
        self._retired_queues: set[str] = set()
        self._retired_agents: set[str] = set()
        self._handlers: dict[type[Any], Callable[[Any, float], None]] = {
            CallEnqueued: self._on_enqueued,
            CallAbandoned: self._on_abandoned,
            CallExitKeyPressed: self._on_exit_key,
            CallMoved: self._on_moved,
            AgentLoggedIn: self._on_logged_in,
            AgentLoggedOut: self._on_logged_out,
            AgentPaused: self._on_paused,
            AgentUnpaused: self._on_unpaused,
            AgentDeviceAvailable: self._on_device_available,
            AgentDeviceUnavailable: self._on_device_unavailable,
            OfferAnswered: self._on_answered,
            OfferFailed: self._on_failed,
            CallEnded: self._on_call_ended,
            AgentCallStarted: self._on_direct_call_started,
            AgentCallEnded: self._on_direct_call_ended,
            TimerFired: self._on_timer,
            ConfigChanged: self._on_config_changed,
        }

    # ------------------------------------------------------------------ the public surface

    def handle(self, event: AcdEvent, now: float) -> list[AcdCommand]:
        """Feed one event at `now` (seconds, monotonic); returns the commands to carry out."""
        now = max(now, self._now)  # time never runs backwards inside the engine
        self._now = now
        self.counters.events += 1
        self._run_due(now)
        self._handlers[type(event)](event, now)
        self._dispatch(now)
        out, self._out = self._out, []
        observe, observe_times = self.stats.observe, self.call_times.observe
        for command in out:
            observe(command, now)
            observe_times(command, now)
        if self._retired_queues or self._retired_agents:
            self.drop_retired()  # after the statistics saw the last caller leave
        self.counters.commands += len(out)
        return out

    def next_deadline(self) -> float | None:
        """When the engine next needs `TimerFired`; None when no timer is pending."""
        timers = self._timers
        while timers and not self._timer_valid(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def waiting_calls(self, queue: str | None = None) -> list[QueuedCall]:
        """The waiting calls (of one queue, or all), in the order they will be served."""
        return [e.call for e in self._order if queue is None or e.queue.name == queue]

    def ringing(self, call: str) -> tuple[str, ...]:
        """The agents ringing for `call` right now."""
        entry = self._entries.get(call)
        return tuple(entry.ringing) if entry is not None else ()

    def members(self, queue: str) -> list[tuple[Agent, Membership]]:
        """The queue's members in seat order, with their seat and penalty."""
        return list(self._members[queue])

    def check_invariants(self) -> None:
        """Raise `AcdInvariantError` naming the first broken rule (see the module docstring)."""
        owner: dict[str, str] = {}
        for call, entry in self._entries.items():
            if entry.call.call != call:
                raise AcdInvariantError(f"call {call} filed under another id")
            if len(entry.ringing) > 1 and entry.mode == "one":
                raise AcdInvariantError(
                    f"call {call} rings {sorted(entry.ringing)} under {entry.queue.strategy}"
                )
            for agent_id in entry.ringing:
                if agent_id in owner:
                    raise AcdInvariantError(
                        f"agent {agent_id} offered {owner[agent_id]} and {call} at once"
                    )
                owner[agent_id] = call
                agent = self.agents[agent_id]
                if agent.state is not S.RINGING or agent.offered_call != call:
                    raise AcdInvariantError(f"{call} rings {agent_id}, who is {agent.state}")
                if not agent.device_available:
                    raise AcdInvariantError(f"{call} rings {agent_id} without a registered phone")
            if entry.reserved_by is not None:
                agent = self.agents[entry.reserved_by]
                if agent.state is not S.RESERVED or agent.reserved_for != call:
                    raise AcdInvariantError(f"{call} holds {agent.extension}, who is {agent.state}")
        if len(self._order) != len(self._entries):
            raise AcdInvariantError("queue order and waiting calls disagree")
        if any(a.key >= b.key for a, b in zip(self._order, self._order[1:], strict=False)):
            raise AcdInvariantError("waiting calls are out of order")
        talking: dict[str, str] = {}
        for agent in self.agents.values():
            extension = agent.extension
            if agent.state is S.RINGING and owner.get(extension) != agent.offered_call:
                raise AcdInvariantError(f"{extension} rings for {agent.offered_call}, not waiting")
            if agent.state is S.ON_CALL:
                call = agent.current_call or ""
                if call in self._entries or call in talking:
                    raise AcdInvariantError(f"{extension} talks on {call!r}, a zombie call")
                talking[call] = extension
            if agent.state is S.RESERVED:
                held = self._entries.get(agent.reserved_for or "")
                if held is None or held.reserved_by != extension:
                    raise AcdInvariantError(f"{extension} reserved for {agent.reserved_for}")
            if (extension in self._free) != agent.huntable:
                raise AcdInvariantError(f"{extension}: huntable set disagrees with {agent.state}")
            self._check_direct_calls(agent)
        if talking != self._connected:
            raise AcdInvariantError(f"connected calls {self._connected} but talking {talking}")
        for name, rows in self._members.items():
            staffed = sum(1 for agent, _ in rows if agent.staffed)
            if self._staffed_members[name] != staffed:
                raise AcdInvariantError(
                    f"queue {name}: {self._staffed_members[name]} staffed counted, {staffed} are"
                )

    def _check_direct_calls(self, agent: Agent) -> None:
        direct = agent.direct_calls
        if agent.state is S.BUSY_DIRECT:
            if not direct:
                raise AcdInvariantError(f"{agent.extension} is busy_direct without a direct call")
            if agent.offered_call is not None or agent.current_call is not None:
                raise AcdInvariantError(f"{agent.extension} is busy_direct with an ACD call")
            if agent.pending not in (None, S.PAUSED, S.LOGGED_OUT):
                raise AcdInvariantError(f"{agent.extension} busy_direct pending {agent.pending}")
        elif direct and (agent.huntable or agent.state in (S.AVAILABLE, S.PAUSED, S.RESERVED)):
            raise AcdInvariantError(
                f"{agent.extension} is {agent.state} on direct calls {sorted(direct)}"
            )

    # ------------------------------------------------------------------ calls

    def _on_enqueued(self, event: CallEnqueued, now: float) -> None:
        call = event.call
        queue = self.queues.get(call.queue)
        if queue is None or call.queue in self._retired_queues:
            self._reject(event, f"no queue named {call.queue!r}")
            return
        if call.call in self._entries:
            self._reject(event, "the call is already waiting")
            return
        talking_to = self._connected.get(call.call)
        if talking_to is not None:
            # Transferred back into a queue: its conversation with the agent is over.
            self._on_call_ended(CallEnded(call.call, talking_to), now)
        if queue.max_length is not None and self._waiting[queue.name] >= queue.max_length:
            self._turn_away(call, queue, "max_length")
            return
        if queue.join_when != "always" and not self._can_join(call, queue):
            self._turn_away(call, queue, "join_empty")
            return
        if any(p not in self.agents for p in call.pinned_agents):
            # A pin to a seat that does not exist (any more) must not hold the caller back.
            known = tuple(p for p in call.pinned_agents if p in self.agents)
            call = replace(call, pinned_agents=known)
        status = self.statuses.get(call.customer_status)
        priority = call.priority
        if priority is None:
            priority = status.priority if status is not None else 0
        self._seq += 1
        entry = Entry(
            call=call,
            queue=queue,
            priority=priority,
            order_at=call.enqueued_at if call.enqueued_at is not None else now,
            seq=self._seq,
            joined_at=now,
            pinning=status.pinning if status is not None else NO_PINNING,
            required_skills={**queue.skills, **call.skills},
            mode=ring_mode(queue.strategy),
        )
        self._file(entry, now)
        hold = status.hold_program if status is not None else None
        self._emit(
            CallJoinedQueue(
                call=call.call,
                queue=queue.name,
                position=self.position(call.call) or 1,
                priority=priority,
                hold_program=hold or queue.announce.hold_program,
                ewt_s=self.estimated_wait(call.call),
            )
        )

    def _file(self, entry: Entry, now: float) -> None:
        # Put the entry in line and set its timers (all relative to joining this queue).
        call, queue = entry.call.call, entry.queue
        self._entries[call] = entry
        bisect.insort(self._order, entry, key=entry_key)
        self._waiting[queue.name] += 1
        if entry.call.pinned_agents:
            self._pinned_waiting += 1
            self._timer(now + entry.pinning.wait_for_pinned_s, WAKE, call)
        if queue.max_wait_s is not None:
            entry.max_wait_at = now + queue.max_wait_s
            self._timer(entry.max_wait_at, MAX_WAIT, call)
        for step in queue.escalation:
            self._timer(now + step.after_s, WAKE, call)
        announce = queue.announce
        if announce.position_every_s is not None or announce.ewt:
            entry.next_announce_at = now + announce.first_after_s
            self._timer(entry.next_announce_at, ANNOUNCE, call)
        if announce.periodic_every_s is not None:
            entry.next_periodic_at = now + announce.periodic_every_s
            self._timer(entry.next_periodic_at, PERIODIC, call)

    def _can_join(self, call: QueuedCall, queue: QueueConfig) -> bool:
        pinned = [self.agents[p] for p in call.pinned_agents if p in self.agents]
        members = [agent for agent, _ in self._members[queue.name]] + pinned
        if queue.join_when == "available":
            return any(agent.huntable for agent in members)
        return any(agent.staffed for agent in members)

    def _turn_away(self, call: QueuedCall, queue: QueueConfig, reason: LeaveReason) -> None:
        self._emit(CallLeftQueue(call.call, queue.name, reason, 0.0))
        if queue.overflow is not None:
            self._emit(Overflow(call.call, queue.name, queue.overflow, reason))

    def _on_abandoned(self, event: CallAbandoned, now: float) -> None:
        entry = self._entries.get(event.call)
        if entry is None:
            self._reject(event, "the call is not waiting")
        else:
            self._leave(entry, "abandoned", now)  # cancels a ringing offer at once

    def _on_exit_key(self, event: CallExitKeyPressed, now: float) -> None:
        entry = self._entries.get(event.call)
        if entry is None:
            self._reject(event, "the call is not waiting")
        elif entry.queue.exit_key is None or event.digit != entry.queue.exit_key:
            self._reject(event, f"{event.digit!r} is not the exit key of {entry.queue.name!r}")
        else:
            self._leave(entry, "exit_key", now, entry.queue.exit_target)

    def _on_moved(self, event: CallMoved, now: float) -> None:
        entry = self._entries.get(event.call)
        if entry is None:
            self._reject(event, "the call is not waiting")
        else:
            self._leave(entry, "moved", now, event.target)

    def _on_timer(self, event: TimerFired, now: float) -> None:
        pass  # `handle` has run the due timers already

    # ------------------------------------------------------------------ offers

    def _on_answered(self, event: OfferAnswered, now: float) -> None:
        entry = self._entries.get(event.call)
        agent = self._agent_for(event)
        if agent is None:
            return
        if entry is None or event.agent not in entry.ringing:
            # The offer is gone (caller hung up, another agent won, the ring timed out) but the
            # phone answered anyway: hang that leg up rather than leave a silent zombie call.
            self._emit(CancelOffer(event.call, event.agent, "stale_answer"))
            return
        del entry.ringing[event.agent]
        queue = entry.queue.name
        self._set_state(agent, S.ON_CALL, now, "answered", event.call, queue)
        agent.current_call, agent.current_queue = event.call, queue
        self._connected[event.call] = agent.extension
        self._emit(ConnectCall(event.call, event.agent, queue, now - entry.joined_at))
        self._leave(entry, "answered", now)  # the first answer wins; the others are cancelled

    def _on_failed(self, event: OfferFailed, now: float) -> None:
        entry = self._entries.get(event.call)
        agent = self.agents.get(event.agent)
        if agent is None or entry is None or event.agent not in entry.ringing:
            self._reject(event, "no such offer")
            return
        del entry.ringing[event.agent]
        call, queue = event.call, entry.queue.name
        if event.reason == "unavailable":
            self._set_device(agent, False)
            self._set_state(agent, S.AVAILABLE, now, "device_unavailable", call, queue)
        elif event.reason == "busy":
            self._set_state(agent, S.AVAILABLE, now, "busy", call, queue)
        else:
            self._missed(agent, entry, event.reason, now)

    # ------------------------------------------------------------------ agents

    def _on_logged_in(self, event: AgentLoggedIn, now: float) -> None:
        agent = self._agent_for(event)
        if agent is None:
            return
        if agent.state is not S.LOGGED_OUT:
            self._reject(event, f"already logged in ({agent.state})")
        elif event.paused:  # straight into a pause: no call can ring in between
            self._set_state(agent, S.PAUSED, now, event.reason or "login_paused")
        else:
            self._set_state(agent, S.AVAILABLE, now, "login")

    def _on_logged_out(self, event: AgentLoggedOut, now: float) -> None:
        agent = self._agent_for(event)
        if agent is None:
            return
        if agent.state is S.LOGGED_OUT:
            self._reject(event, "not logged in")
        elif agent.state in (S.ON_CALL, S.BUSY_DIRECT):
            self._set_pending(agent, S.LOGGED_OUT, "logout")
            self._emit(EventDeferred(event, "on a call: logs out when the call ends"))
        else:
            self._leave_hunt(agent, S.LOGGED_OUT, "logout", "agent_logged_out", now)
            if agent.direct_calls:  # was ringing or wrapping up: parked in BUSY_DIRECT
                self._emit(EventDeferred(event, "on a direct call: logs out when it ends"))

    def _on_paused(self, event: AgentPaused, now: float) -> None:
        agent = self._agent_for(event)
        if agent is None:
            return
        if agent.state is S.LOGGED_OUT:
            self._reject(event, "not logged in")
            return
        if agent.state is S.RESERVED and agent.reserved_for is not None:
            self._release_reservation(self._entries[agent.reserved_for], now)
        if agent.state in (S.ON_CALL, S.WRAP_UP, S.BUSY_DIRECT):
            self._set_pending(agent, S.PAUSED, event.reason)
            self._emit(EventDeferred(event, "pauses when the call and its wrap-up are done"))
        else:
            self._leave_hunt(agent, S.PAUSED, event.reason, "agent_paused", now)
            if agent.direct_calls:  # was ringing: parked in BUSY_DIRECT
                self._emit(EventDeferred(event, "on a direct call: pauses when it ends"))

    def _on_unpaused(self, event: AgentUnpaused, now: float) -> None:
        agent = self._agent_for(event)
        if agent is None:
            return
        if agent.state is S.PAUSED:
            self._set_state(agent, S.AVAILABLE, now, "unpause")
        elif agent.state in (S.WRAP_UP, S.RESERVED):
            # Ready during after-call work: the agent is done early (and no longer wants the
            # pause asked for during the call).
            if agent.pending is S.PAUSED:
                self._set_pending(agent, None, "")
            self._wrap_up_over(agent, now, "wrap_up_ended")
        elif agent.pending is S.PAUSED:
            self._set_pending(agent, None, "")
        else:
            self._reject(event, f"not paused ({agent.state})")

    def _leave_hunt(
        self, agent: Agent, new: AgentState, reason: str, cancel: CancelReason, now: float
    ) -> None:
        # Pause or log out right now: a ringing offer is withdrawn (not a miss), a reservation
        # released, wrap-up cut short.
        if agent.state is S.RINGING and agent.offered_call is not None:
            self._cancel_offer(self._entries[agent.offered_call], agent.extension, cancel, now)
        elif agent.state is S.RESERVED and agent.reserved_for is not None:
            self._entries[agent.reserved_for].reserved_by = None
        self._set_state(agent, new, now, reason)

    def _on_device_available(self, event: AgentDeviceAvailable, now: float) -> None:
        agent = self._agent_for(event)
        if agent is not None and not agent.device_available:
            self._set_device(agent, True)

    def _on_device_unavailable(self, event: AgentDeviceUnavailable, now: float) -> None:
        agent = self._agent_for(event)
        if agent is None or not agent.device_available:
            return
        self._set_device(agent, False)
        if agent.state is S.RINGING and agent.offered_call is not None:
            entry = self._entries[agent.offered_call]
            self._cancel_offer(entry, agent.extension, "device_unavailable", now)
        elif agent.state is S.RESERVED and agent.reserved_for is not None:
            self._release_reservation(self._entries[agent.reserved_for], now)

    def _on_call_ended(self, event: CallEnded, now: float) -> None:
        agent = self.agents.get(event.agent)
        if agent is None or agent.state is not S.ON_CALL or agent.current_call != event.call:
            self._reject(event, "no such connected call")
            return
        del self._connected[event.call]
        queue = self.queues.get(agent.current_queue or "")
        name = queue.name if queue is not None else None
        wrap = queue.wrap_up_s if queue is not None else 0.0
        if agent.pending is S.LOGGED_OUT or wrap <= 0:
            self._settle(agent, now, event.call, name)
            return
        self._set_state(agent, S.WRAP_UP, now, "call_ended", event.call, name)
        agent.current_call, agent.current_queue = event.call, name
        agent.wrap_up_until = now + wrap
        self._timer(agent.wrap_up_until, WRAP, "", agent.extension)

    # ------------------------------------------------------------------ direct calls

    def _on_direct_call_started(self, event: AgentCallStarted, now: float) -> None:
        agent = self._agent_for(event)
        if agent is None or event.call in agent.direct_calls:
            return  # a repeated start changes nothing
        if event.call == agent.offered_call or (
            agent.state is S.ON_CALL and event.call == agent.current_call
        ):
            self._reject(event, f"{event.call} is the call the ACD routed to the agent")
            return
        agent.direct_calls[event.call] = event.direction
        reason = f"direct_call:{event.direction}"
        if agent.state is S.AVAILABLE:
            self._set_state(agent, S.BUSY_DIRECT, now, reason, event.call)
        elif agent.state is S.PAUSED:
            # The pause resumes when the direct calls are over, with the same reason.
            self._set_pending(agent, S.PAUSED, agent.pause_reason)
            self._set_state(agent, S.BUSY_DIRECT, now, reason, event.call)
        elif agent.state is S.RESERVED and agent.reserved_for is not None:
            # The reservation would turn into an offer when wrap-up ends: give it up (the agent
            # goes on wrapping up) and let the pinned call look elsewhere or wait.
            self._release_reservation(self._entries[agent.reserved_for], now)
        # RINGING, ON_CALL, WRAP_UP: the offer, the call or the wrap-up runs its course; the
        # direct call only keeps the agent out of the hunt. LOGGED_OUT: remembered, so that a
        # login during the call lands in BUSY_DIRECT. BUSY_DIRECT: one more call.

    def _on_direct_call_ended(self, event: AgentCallEnded, now: float) -> None:
        agent = self._agent_for(event)
        if agent is None or agent.direct_calls.pop(event.call, None) is None:
            return  # a repeated end, or the end of a call never reported: nothing to undo
        if not agent.direct_calls and agent.state is S.BUSY_DIRECT:
            self._settle(agent, now, event.call, None, "direct_call_ended")

    def _agent_for(self, event: Any) -> Agent | None:
        agent = self.agents.get(event.agent)
        if agent is None:
            self._reject(event, f"no agent {event.agent!r}")
        return agent
