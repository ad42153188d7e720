"""The ACD's domain model (L2, pure): queued calls, agents and the agent state machine.

Theory of operation: an agent seat is a small state machine whose transitions are the table
`AGENT_TRANSITIONS`. Every change goes through `Agent.set_state`, which checks the table, keeps
the per-state bookkeeping (which call the seat is ringing for, talking on or reserved for) and
returns an `AgentStateChanged` record; the engine emits that record as a command so CTI, the
queue log and the statistics observe *every* transition, wrap-up and reservation included (the
Asterisk complaint that wrap-up looks "available" on wallboards, and the FreeSWITCH agents stuck
in "Reserved", come from states that were not first-class).

States (`AgentState`):

``logged_out``  not taking calls at all.
``available``   logged in and idle; huntable when its device is registered.
``ringing``     offered exactly one call (reserved for it until answer, failure or cancel).
``reserved``    held for a waiting pinned (VIP) call while finishing after-call work.
``on_call``     talking to a caller the ACD connected.
``wrap_up``     after-call work; becomes available when the queue's wrap-up time ends.
``paused``      logged in but not taking calls, with a reason ("lunch", "auto: no answer" …).
``busy_direct`` on one or more calls the ACD did not route (internal, click-to-dial, outbound,
                consultation, direct transfer, preview): not huntable until the last one ends.

Direct calls (`Agent.direct_calls`) are an overlay, not only a state: the switchboard reports
every call the agent's phone takes or places outside the ACD (`AgentCallStarted` /
`AgentCallEnded`). An agent who is available or paused moves to ``busy_direct`` at the first
one; an agent who is ringing, on a queue call or in wrap-up keeps that state (the offer, the
call and the wrap-up run their course) and the direct call only keeps them out of the hunt.
Wherever the engine would let an agent with direct calls come to rest — ``available``,
``paused`` or ``logged_out`` — it moves them to ``busy_direct`` instead and keeps the pause or
logout as `Agent.pending`, the same mechanism as a pause asked for during a queue call; when
the last direct call ends the agent settles exactly as after a wrap-up. So ``busy_direct`` has
its own row in the table and ``on_call`` keeps meaning "talking to a caller the ACD connected"
(talk time, calls answered, handle time and the zombie-call invariant all rest on that).

Whether the agent's phone is registered is a separate flag (`device_available`): an agent can
be "available" with no phone, and is then left out of the hunt until the phone registers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pbx.errors import LocalProtocolError


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"
    BUSY_DIRECT = "busy_direct"


_S = AgentState

# old state -> the states it may move to. PAUSED -> PAUSED is a change of pause reason. A state
# that may come to rest (available, paused, logged out) may move to BUSY_DIRECT instead when
# the agent has direct calls (see the module docstring); BUSY_DIRECT leaves only when the last
# direct call has ended, and then settles like the end of a wrap-up.
AGENT_TRANSITIONS: Mapping[AgentState, frozenset[AgentState]] = {
    _S.LOGGED_OUT: frozenset({_S.AVAILABLE, _S.PAUSED, _S.BUSY_DIRECT}),  # login
    _S.AVAILABLE: frozenset({_S.RINGING, _S.PAUSED, _S.LOGGED_OUT, _S.BUSY_DIRECT}),
    _S.RINGING: frozenset({_S.ON_CALL, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT, _S.BUSY_DIRECT}),
    _S.ON_CALL: frozenset({_S.WRAP_UP, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT, _S.BUSY_DIRECT}),
    _S.WRAP_UP: frozenset({_S.AVAILABLE, _S.RESERVED, _S.PAUSED, _S.LOGGED_OUT, _S.BUSY_DIRECT}),
    _S.RESERVED: frozenset(
        {_S.RINGING, _S.WRAP_UP, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT, _S.BUSY_DIRECT}
    ),
    _S.PAUSED: frozenset({_S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT, _S.BUSY_DIRECT}),
    _S.BUSY_DIRECT: frozenset({_S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
}

# The states an agent comes to rest in; with direct calls the engine parks them in BUSY_DIRECT
# instead and keeps a pause or logout as `Agent.pending`.
REST_STATES = frozenset({_S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT})

# States in which an agent counts as staffing a queue (join/leave-when-empty, tier skipping,
# EWT): logged in, not paused. BUSY_DIRECT counts only when the agent returns to the hunt
# afterwards (no pause or logout pending): see `Agent.staffed`.
STAFFED_STATES = frozenset({_S.AVAILABLE, _S.RINGING, _S.RESERVED, _S.ON_CALL, _S.WRAP_UP})


class AcdStateError(LocalProtocolError):
    """An illegal agent transition was attempted: a bug in the engine, never user input."""


class AcdInvariantError(LocalProtocolError):
    """`AcdEngine.check_invariants` found a broken rule (double offer, zombie call …)."""


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """An agent moved from `old` to `new` at `at`. `call`/`queue` name the call concerned (the
    one offered, connected, wrapped up or reserved for), `reason` why ("offered", "answered",
    "no_answer", "auto_pause", "lunch" …). Emitted by the engine as a command for CTI, the
    queue log and `AcdStats`.

    Direct calls: ``available``/``paused`` -> ``busy_direct`` has reason
    ``direct_call:<direction>``, `call` the direct call and `queue` None; ``busy_direct`` ->
    ``available`` has reason ``direct_call_ended`` (-> ``paused``/``logged_out``: the pause
    reason / ``logout``) and `call` the last direct call. When a ring, call or wrap-up ends
    during a direct call, the change to ``busy_direct`` keeps the reason, call and queue of
    what ended (``no_answer``, ``wrap_up_done`` …)."""

    agent: str
    old: AgentState
    new: AgentState
    reason: str
    at: float
    call: str | None = None
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """What the engine needs to know about an agent seat: its extension and skill levels."""

    extension: str
    name: str = ""
    skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueuedCall:
    """A caller handed to the ACD by the IVR (or the dialer).

    `priority`: None takes the priority of `customer_status` from the configuration; higher is
    served first. `enqueued_at`: None means "now"; a caller moved from another queue (overflow,
    callback) may keep its original time and so its place in line. `skills` are required skill
    levels (skill -> minimum level), on top of the queue's own. `pinned_agents` are the
    customer's own agents (VIP pinning), tried before anyone else. `variables` are what the IVR
    collected, passed through untouched for the screen pop.
    """

    call: str
    queue: str
    priority: int | None = None
    enqueued_at: float | None = None
    skills: Mapping[str, int] = field(default_factory=dict)
    pinned_agents: tuple[str, ...] = ()
    customer_status: str = "standard"
    caller: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Membership:
    """An agent's place in one queue: `seat` is the position in the queue's member list (the
    order `linear` hunts in), `penalty` the tier (lower is tried first; escalation widens)."""

    queue: str
    seat: int
    penalty: int = 0


@dataclass(slots=True, eq=False)
class Agent:
    """One agent seat as the engine tracks it. Mutated only by the engine; read by strategies
    (`idle_since`, `calls_answered`, `talk_time_s`, `skills`) and by tests. `calls_answered`
    and `talk_time_s` count ACD calls only; `direct_calls` lists the calls it did not route."""

    extension: str
    skills: Mapping[str, int]
    memberships: dict[str, Membership] = field(default_factory=dict)
    state: AgentState = AgentState.LOGGED_OUT
    state_since: float = 0.0
    pause_reason: str = ""
    device_available: bool = False
    offered_call: str | None = None  # while RINGING
    current_call: str | None = None  # while ON_CALL, WRAP_UP and RESERVED (the call finished)
    current_queue: str | None = None
    reserved_for: str | None = None  # while RESERVED
    wrap_up_until: float | None = None
    pending: AgentState | None = None  # PAUSED or LOGGED_OUT once the current call is done
    pending_reason: str = ""
    # calls the ACD did not route (call -> direction), in any state: see the module docstring
    direct_calls: dict[str, str] = field(default_factory=dict)
    missed_in_a_row: int = 0
    calls_answered: int = 0
    talk_time_s: float = 0.0
    idle_since: float = 0.0
    answered_at: float = 0.0

    @property
    def staffed(self) -> bool:
        """Logged in, not paused, phone registered: this seat will take calls sooner or later.
        On direct calls that only holds if no pause or logout waits for their end (an agent
        paused for lunch who takes an internal call does not staff the queue meanwhile)."""
        if not self.device_available:
            return False
        if self.state is AgentState.BUSY_DIRECT:
            return self.pending is None
        return self.state in STAFFED_STATES

    @property
    def huntable(self) -> bool:
        """Can be offered a call right now (never while on a direct call: AVAILABLE is not
        entered while `direct_calls` is non-empty)."""
        return self.device_available and self.state is AgentState.AVAILABLE

    def has_skills(self, required: Mapping[str, int]) -> bool:
        skills = self.skills
        return all(skills.get(name, 0) >= level for name, level in required.items())

    def skill_score(self, required: Mapping[str, int]) -> int:
        """Sum of the agent's levels in `required` (all its skills when nothing is required)."""
        if not required:
            return sum(self.skills.values())
        return sum(self.skills.get(name, 0) for name in required)

    def set_state(
        self,
        new: AgentState,
        now: float,
        reason: str,
        call: str | None = None,
        queue: str | None = None,
    ) -> AgentStateChanged:
        """The one place an agent changes state. Raises `AcdStateError` on a move the table
        does not allow."""
        old = self.state
        if new not in AGENT_TRANSITIONS[old]:
            raise AcdStateError(f"agent {self.extension}: illegal {old} -> {new} ({reason})")
        if old is AgentState.ON_CALL:
            self.talk_time_s += now - self.answered_at
        if new is AgentState.AVAILABLE and old is not AgentState.RINGING:
            self.idle_since = now  # a missed ring does not make the seat any less idle
        self.state = new
        self.state_since = now
        if new is not AgentState.RINGING:
            self.offered_call = None
        if new is not AgentState.RESERVED:
            self.reserved_for = None
        if new is AgentState.ON_CALL:
            self.answered_at = now
            self.calls_answered += 1
            self.missed_in_a_row = 0
        if new not in (AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.RESERVED):
            self.current_call = None
            self.current_queue = None
            self.wrap_up_until = None
        if new is AgentState.PAUSED:
            self.pause_reason = reason
        elif old is AgentState.PAUSED:
            self.pause_reason = ""
            self.missed_in_a_row = 0
        if new in (AgentState.PAUSED, AgentState.LOGGED_OUT, AgentState.AVAILABLE):
            self.pending = None
            self.pending_reason = ""
        return AgentStateChanged(
            agent=self.extension, old=old, new=new, reason=reason, at=now, call=call, queue=queue
        )
