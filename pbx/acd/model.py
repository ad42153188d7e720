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


_S = AgentState

# old state -> the states it may move to. PAUSED -> PAUSED is a change of pause reason.
AGENT_TRANSITIONS: Mapping[AgentState, frozenset[AgentState]] = {
    _S.LOGGED_OUT: frozenset({_S.AVAILABLE, _S.PAUSED}),  # login (optionally paused)
    _S.AVAILABLE: frozenset({_S.RINGING, _S.PAUSED, _S.LOGGED_OUT}),
    _S.RINGING: frozenset({_S.ON_CALL, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
    _S.ON_CALL: frozenset({_S.WRAP_UP, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
    _S.WRAP_UP: frozenset({_S.AVAILABLE, _S.RESERVED, _S.PAUSED, _S.LOGGED_OUT}),
    _S.RESERVED: frozenset({_S.RINGING, _S.WRAP_UP, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
    _S.PAUSED: frozenset({_S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
}

# States in which an agent counts as staffing a queue (join/leave-when-empty, tier skipping,
# EWT): logged in, not paused.
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
    queue log and `AcdStats`."""

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
    (`idle_since`, `calls_answered`, `talk_time_s`, `skills`) and by tests."""

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
    missed_in_a_row: int = 0
    calls_answered: int = 0
    talk_time_s: float = 0.0
    idle_since: float = 0.0
    answered_at: float = 0.0

    @property
    def staffed(self) -> bool:
        """Logged in, not paused, phone registered: this seat will take calls sooner or later."""
        return self.device_available and self.state in STAFFED_STATES

    @property
    def huntable(self) -> bool:
        """Can be offered a call right now."""
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
