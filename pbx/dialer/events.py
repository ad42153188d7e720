"""What the dialer's pacer is told (events) and what it asks for (commands) — L2, pure.

The dialer service (an adapter above the pacer) turns the outbound legs' call-control events
(`pbx.call.events`: ``Answered``, ``Failed``, ``HungUp``), the ACD's agent counts and
connections, the AMD verdict, the CTI's preview decisions and the API's start/pause/stop into
these events, and carries the commands out as ``Dial``, ACD ``CallEnqueued``, ``Play`` +
``Hangup`` and storage writes. Call ids are the PBX-wide ids of the outbound legs, chosen by
the pacer's injected id generator. Events are past tense, commands imperative; all are frozen
and slotted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pbx.dialer.campaign import RecordAttempt, SaveContact
from pbx.repositories import Customer

# ------------------------------------------------------------------ events (into the pacer)


@dataclass(frozen=True, slots=True)
class AgentsChanged:
    """The agents of the campaign's queue now: `free` are logged in, unpaused, idle and not
    ringing; `busy` talk or wrap up (inbound or outbound). Send it whenever either changes,
    and before the `AgentConnected` of the call that took a free agent."""

    free: int
    busy: int


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """The outbound leg `call` was answered by the far end."""

    call: str


AmdVerdict = Literal["human", "machine", "unknown"]


@dataclass(frozen=True, slots=True)
class AmdDecided:
    """Answering-machine detection on `call` decided (`pbx.dialer.amd`)."""

    call: str
    verdict: AmdVerdict


@dataclass(frozen=True, slots=True)
class AgentConnected:
    """The ACD found an agent for the answered call `call` (offered it to `agent`, who
    auto-answers or answers)."""

    call: str
    agent: str


FailureResult = Literal["busy", "no_answer", "failed"]


@dataclass(frozen=True, slots=True)
class CallFailed:
    """The outbound leg did not connect: ``busy`` (486/600), ``no_answer`` (ring timeout,
    408/480/487) or ``failed`` (any other status, no route, trunk down)."""

    call: str
    result: FailureResult


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The answered outbound leg ended (either side hung up, or the pacer's own
    `DropCall` / `HangUpCall` / `LeaveMessage` finished)."""

    call: str


@dataclass(frozen=True, slots=True)
class InboundWaiting:
    """The longest wait of an inbound caller in the queues blending watches."""

    longest_wait_s: float


@dataclass(frozen=True, slots=True)
class PreviewDecided:
    """The agent who previewed `customer_no` chose to dial it (the answered call goes to
    `agent`) or to skip it."""

    customer_no: str
    agent: str
    dial: bool


@dataclass(frozen=True, slots=True)
class StartRequested:
    """Start (or resume after a pause) dialling."""


@dataclass(frozen=True, slots=True)
class PauseRequested:
    """Stop starting new calls; calls in progress go on."""


@dataclass(frozen=True, slots=True)
class StopRequested:
    """End the campaign run: no new calls, previews handed back; calls in progress go on."""


@dataclass(frozen=True, slots=True)
class ContactsAdded:
    """The customers matching the campaign's target now (after an import or an edit): the new
    ones become pending contacts; the ones it has get their current data (phone numbers)."""

    customers: tuple[Customer, ...]


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The deadline from `Pacer.next_deadline()` was reached (any event also runs every
    timer that is due)."""


DialerEvent = (
    AgentsChanged
    | CallAnswered
    | AmdDecided
    | AgentConnected
    | CallFailed
    | CallEnded
    | InboundWaiting
    | PreviewDecided
    | StartRequested
    | PauseRequested
    | StopRequested
    | ContactsAdded
    | TimerFired
)

# ------------------------------------------------------------------ commands (out of the pacer)


@dataclass(frozen=True, slots=True)
class DialContact:
    """Place the outbound leg `call` to `phone` through `trunk` (None: the first trunk) with
    `caller_id`; give up after `timeout_s` (→ ``CallFailed(no_answer)``). `detect_machine`:
    run AMD on the answered call and report `AmdDecided`. `agent`: the previewing agent the
    answered call belongs to."""

    call: str
    campaign: str
    customer_no: str
    phone: str
    attempt: int
    caller_id: str
    caller_name: str
    trunk: str | None
    timeout_s: float
    detect_machine: bool
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class ReserveAgentForPreview:
    """Hold a free agent of `queue` and show them `customer_no` (the `form` pops); their
    decision comes back as `PreviewDecided` within `timeout_s`, or the pacer sends
    `CancelPreview`."""

    campaign: str
    customer_no: str
    phone: str
    attempt: int
    queue: str
    form: str | None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class CancelPreview:
    """Take the preview of `customer_no` off the agent's screen and release the agent."""

    campaign: str
    customer_no: str


@dataclass(frozen=True, slots=True)
class ConnectAnsweredCall:
    """Hand the answered customer on `call` to the ACD: queue `queue` with `strategy` (None:
    the queue's own) and `priority`, pop `form`; straight to `agent` after a preview. The
    pacer drops the call if no `AgentConnected` comes within the campaign's drop time."""

    call: str
    campaign: str
    customer_no: str
    queue: str
    strategy: str | None
    priority: int
    form: str | None
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class DropCall:
    """No agent in time: take `call` out of the queue, play `prompt` (None: nothing; ``{lang}``
    is the customer's language) and hang up. Counted as dropped (abandoned)."""

    call: str
    prompt: str | None
    language: str


@dataclass(frozen=True, slots=True)
class HangUpCall:
    """Hang up `call` (an answering machine, with AMD action ``hangup``)."""

    call: str
    reason: str


@dataclass(frozen=True, slots=True)
class LeaveMessage:
    """Play `prompt` to the answering machine on `call` after its greeting, then hang up."""

    call: str
    prompt: str
    language: str


PauseReason = Literal["operator", "inbound"]


@dataclass(frozen=True, slots=True)
class DialingPaused:
    """No new calls for now: the operator paused, or inbound callers wait too long."""

    campaign: str
    reason: PauseReason


@dataclass(frozen=True, slots=True)
class DialingResumed:
    campaign: str


@dataclass(frozen=True, slots=True)
class CampaignFinished:
    """Every contact is in a final state and no call is left."""

    campaign: str


@dataclass(frozen=True, slots=True)
class EventIgnored:
    """An event that no longer fits (the result of a call already ended, a decision on a
    preview that timed out); nothing changed."""

    event: DialerEvent
    reason: str


DialerCommand = (
    DialContact
    | ReserveAgentForPreview
    | CancelPreview
    | ConnectAnsweredCall
    | DropCall
    | HangUpCall
    | LeaveMessage
    | DialingPaused
    | DialingResumed
    | CampaignFinished
    | EventIgnored
    | SaveContact
    | RecordAttempt
)
