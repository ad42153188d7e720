"""What the ACD engine is told (events) and what it asks for (commands) — L2, pure.

The ACD speaks its own small vocabulary, not SIP and not the call-control events of
`pbx.call.events`: the ACD *service* (an adapter above the engine) turns a caller entering a
queue node, an agent leg's ``Answered``/``Failed``, an agent's CTI request or a registration
change into these events, and carries the commands out as ``Dial``, ``CancelDial``, ``Bridge``,
``Play`` … . Call ids are the PBX-wide leg ids of the waiting callers; agents are extensions.
An agent leg is identified by the pair (call, agent). Events are past tense, commands
imperative; all are frozen and slotted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pbx.acd.model import AgentProfile, AgentStateChanged, QueuedCall
from pbx.acd.schema import CustomerStatusConfig, QueueConfig

# ------------------------------------------------------------------ events (into the engine)


@dataclass(frozen=True, slots=True)
class CallEnqueued:
    """A caller enters the queue `call.queue` (from the IVR, an overflow, or the dialer)."""

    call: QueuedCall


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    """The waiting caller hung up (or left through the exit key: see `CallExitKeyPressed`)."""

    call: str


@dataclass(frozen=True, slots=True)
class CallMoved:
    """A supervisor moves the waiting caller to `target` (queue:NAME or agent:EXTENSION): the
    call leaves its queue (reason ``moved``, not abandoned) and an `Overflow` says where to."""

    call: str
    target: str
    by: str = ""


@dataclass(frozen=True, slots=True)
class CallExitKeyPressed:
    """The waiting caller pressed `digit`; the engine lets them leave if it is the queue's
    exit key."""

    call: str
    digit: str


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    """The agent logs in; `paused` logs in already paused (no call can ring in between)."""

    agent: str
    paused: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    agent: str


@dataclass(frozen=True, slots=True)
class AgentPaused:
    """Pause now (or, on a call or in wrap-up, once the call and its wrap-up are done)."""

    agent: str
    reason: str = "break"


@dataclass(frozen=True, slots=True)
class AgentUnpaused:
    agent: str


@dataclass(frozen=True, slots=True)
class AgentDeviceAvailable:
    """The agent's phone registered (or recovered): it may be hunted again."""

    agent: str


@dataclass(frozen=True, slots=True)
class AgentDeviceUnavailable:
    """The agent's phone unregistered, expired or failed: out of the hunt until it is back."""

    agent: str


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    """The agent leg (call, agent) answered."""

    call: str
    agent: str


OfferFailure = Literal["busy", "no_answer", "rejected", "unavailable"]


@dataclass(frozen=True, slots=True)
class OfferFailed:
    """The agent leg (call, agent) did not connect: `busy` (486), `no_answer` (408/480 or the
    leg's own timer), `rejected` (the agent declined: 603), `unavailable` (no registered
    contact, transport failure: the device leaves the hunt)."""

    call: str
    agent: str
    reason: OfferFailure


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The connected call between `call` and `agent` ended (either side hung up)."""

    call: str
    agent: str


@dataclass(frozen=True, slots=True)
class AgentCallStarted:
    """The agent's phone takes or places a call the ACD did not route: an internal call, a
    click-to-dial or phone-dialled outside call, an attended-transfer consultation, a call
    transferred to the extension, a preview or campaign call rung directly. Sent as soon as the
    call exists (ringing or dialling), so the agent is busy from its start. `direction` is for
    CTI and the wallboard (``internal``, ``inbound``, ``outbound``, ``consultation``,
    ``transfer``, ``preview`` …); the engine treats them all alike.

    An available or paused agent becomes ``busy_direct``; a ringing, talking or wrapping-up
    agent keeps that state and is only kept out of the hunt. A repeated start of the same
    `call` changes nothing."""

    agent: str
    call: str
    direction: str = "internal"


@dataclass(frozen=True, slots=True)
class AgentCallEnded:
    """A call reported by `AgentCallStarted` ended (or never connected). When it was the
    agent's last one, a ``busy_direct`` agent returns to where they were: available (no
    wrap-up), paused with the same reason, or the pause/logout asked for meanwhile. An end for
    a call that is not (or no longer) known changes nothing."""

    agent: str
    call: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The deadline from `AcdEngine.next_deadline()` was reached. (Any event also runs every
    timer that is due, so a late TimerFired loses nothing.)"""


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """The configuration was reloaded (`pbx.acd.reconfigure`): these are now the queues, the
    agents (enabled ones, with their skills) and the customer statuses. Waiting callers keep
    their place; a removed queue's callers go to `removed_queue_targets[queue]` when it names
    one, else they wait in the retired queue (its old members) until answered. A removed agent
    leaves the hunt at once (logged out; on a call, when that call and its wrap-up end)."""

    queues: tuple[QueueConfig, ...]
    agents: tuple[AgentProfile, ...]
    customer_statuses: Mapping[str, CustomerStatusConfig]
    removed_queue_targets: Mapping[str, str] = field(default_factory=dict)


AcdEvent = (
    CallEnqueued
    | CallAbandoned
    | CallMoved
    | CallExitKeyPressed
    | AgentLoggedIn
    | AgentLoggedOut
    | AgentPaused
    | AgentUnpaused
    | AgentDeviceAvailable
    | AgentDeviceUnavailable
    | OfferAnswered
    | OfferFailed
    | CallEnded
    | AgentCallStarted
    | AgentCallEnded
    | TimerFired
    | ConfigChanged
)

# ------------------------------------------------------------------ commands (out of the engine)


@dataclass(frozen=True, slots=True)
class CallJoinedQueue:
    """The call waits in `queue` at `position` (1 = next); start its hold program."""

    call: str
    queue: str
    position: int
    priority: int
    hold_program: str
    ewt_s: float | None = None


@dataclass(frozen=True, slots=True)
class OfferCall:
    """Ring `agents` for `call` (one agent, except under ring_all / ring_progressively). The
    engine times the ring itself (`ring_timeout_s`) and sends `CancelOffer` when it expires."""

    call: str
    queue: str
    agents: tuple[str, ...]
    ring_timeout_s: float


CancelReason = Literal[
    "ring_timeout",
    "answered_elsewhere",
    "abandoned",
    "left_queue",
    "agent_paused",
    "agent_logged_out",
    "device_unavailable",
    "stale_answer",
]


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing `agent` for `call`. With reason ``stale_answer`` the agent answered an
    offer that no longer exists (the caller hung up, another agent won the race): hang up
    that agent leg — the agent must never sit in a silent "zombie" call."""

    call: str
    agent: str
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class ConnectCall:
    """Bridge the waiting caller `call` with the answered agent leg; `waited_s` is the time
    the caller spent in the queue."""

    call: str
    agent: str
    queue: str
    waited_s: float


AnnounceKind = Literal["position", "ewt", "periodic"]


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the waiting caller their position and/or estimated wait (`ewt_s`, None when there
    is no estimate, e.g. nobody is staffed), or play the queue's periodic message."""

    call: str
    queue: str
    kind: AnnounceKind
    position: int | None = None
    ewt_s: float | None = None


LeaveReason = Literal[
    "answered",
    "abandoned",
    "max_wait",
    "max_length",
    "join_empty",
    "leave_empty",
    "exit_key",
    "queue_removed",
    "moved",
]


@dataclass(frozen=True, slots=True)
class CallLeftQueue:
    """The call is no longer waiting in `queue`. For every reason but ``answered`` and
    ``abandoned`` an `Overflow` follows when the queue has a target; without one the service
    decides (play a message and hang up, or return to the flow)."""

    call: str
    queue: str
    reason: LeaveReason
    waited_s: float


@dataclass(frozen=True, slots=True)
class Overflow:
    """Send the caller to `target` (flow:NAME, queue:NAME or agent:EXTENSION)."""

    call: str
    queue: str
    target: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class AgentDeviceChanged:
    """The agent's phone became available/unavailable for the hunt (for CTI and wallboards)."""

    agent: str
    available: bool


@dataclass(frozen=True, slots=True)
class EventRejected:
    """An event that did not fit the engine's state (pause while logged out, a result for an
    offer that is gone, an unknown queue) was dropped; `reason` says why. Never an exception:
    a CTI client's or phone's bad timing must not break the engine."""

    event: AcdEvent
    reason: str


@dataclass(frozen=True, slots=True)
class EventDeferred:
    """A pause or logout requested during a call (queue or direct) takes effect when the call
    and its wrap-up are done."""

    event: AcdEvent
    reason: str


AcdCommand = (
    CallJoinedQueue
    | OfferCall
    | CancelOffer
    | ConnectCall
    | Announce
    | CallLeftQueue
    | Overflow
    | AgentStateChanged
    | AgentDeviceChanged
    | EventRejected
    | EventDeferred
)

__all__ = [
    "AcdCommand",
    "AcdEvent",
    "AgentCallEnded",
    "AgentCallStarted",
    "AgentDeviceAvailable",
    "AgentDeviceChanged",
    "AgentDeviceUnavailable",
    "AgentLoggedIn",
    "AgentLoggedOut",
    "AgentPaused",
    "AgentStateChanged",
    "AgentUnpaused",
    "Announce",
    "CallAbandoned",
    "CallEnded",
    "CallEnqueued",
    "CallExitKeyPressed",
    "CallMoved",
    "CallJoinedQueue",
    "CallLeftQueue",
    "CancelOffer",
    "ConnectCall",
    "EventDeferred",
    "EventRejected",
    "OfferAnswered",
    "OfferCall",
    "OfferFailed",
    "Overflow",
    "TimerFired",
]
