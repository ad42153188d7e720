"""What a call machine asks of the world — L2, pure data.

`pbx.call.machine.Call.handle` returns these; the switchboard (L3) carries them out in order.
Three kinds:

- **Effects** (`Ask.needs_reply` False): SIP actions a leg computed, messages to the ACD, the
  dialer, the desk, the CDR writer. Carried out at once; the machine goes on without a reply.
- **Asks** (`needs_reply` True): media operations and new legs. The machine stops after one;
  the executor carries it out and feeds the result back as `Reply` (or `Reply(error=…)` when it
  failed — raised inside the call's script as `CommandFailed`).
- The waits of the script (`Wait`) never leave the machine: they become `next_deadline()`.

Inputs the executor feeds besides the call-control events are `Reply` and `Wake` (a deadline
passed). Everything is frozen and slotted, as in `pbx.call.events`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from media.sources import Source
from pbx.repositories import Binding, CallDetailRecord
from pbx.sip.uri import NameAddr, SipUri


class CommandFailed(Exception):
    """An ask the executor could not carry out (a media error, an SDP it could not use)."""


# ------------------------------------------------------------------ inputs besides events


@dataclass(frozen=True, slots=True)
class Reply:
    """The result of the last `Ask` (`value`), or why it failed (`error`)."""

    value: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Wake:
    """The executor's timer: `next_deadline()` has passed (a spurious wake is harmless)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """The script waits for its next input until `deadline` (monotonic; None: no limit)."""

    deadline: float | None


# ------------------------------------------------------------------ effects


class Command:
    needs_reply: ClassVar[bool] = False


class Ask(Command):
    needs_reply: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class SendLegActions(Command):
    """Carry out what a sans-IO leg decided (responses, requests, timers to re-arm)."""

    leg: str
    actions: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class RespondStatus(Command):
    """A bare final response to an in-dialog request no leg will take (e.g. 488)."""

    transaction: object
    status: int


@dataclass(frozen=True, slots=True)
class AdoptLeg(Command):
    """From now on the inputs of `leg` go to this call (a leg taken over from another)."""

    leg: str


@dataclass(frozen=True, slots=True)
class TrackMedia(Command):
    """Media events of `session` belong to this call (a session taken over from another)."""

    session: str


@dataclass(frozen=True, slots=True)
class CloseMedia(Command):
    """Close `session` and forget it for media events (an effect: the executor awaits it in
    order, and its errors are only logged — a session that is gone is closed)."""

    session: str


@dataclass(frozen=True, slots=True)
class TellAcd(Command):
    """An event for the ACD engine (enqueue, abandon, offer answered, agent busy …)."""

    event: object


@dataclass(frozen=True, slots=True)
class TellPacer(Command):
    """An event for a campaign's pacer (answered, connected, ended, failed, AMD verdict)."""

    campaign: str
    event: object


@dataclass(frozen=True, slots=True)
class ReleasePreview(Command):
    campaign: str
    customer_no: str


@dataclass(frozen=True, slots=True)
class TellDesk(Command):
    """A `pbx.cti.desk.CtiDesk` notification: `method` with `args` and `kwargs`."""

    method: str
    args: tuple[object, ...] = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PostTo(Command):
    """An input for another call (an attended transfer ends the agent's second call)."""

    call: str
    event: object


@dataclass(frozen=True, slots=True)
class LookUpCustomer(Command):
    """Find the customer (by "phone" or "number"); the answer comes back as `CustomerFound`."""

    request: str
    by: str
    value: str


@dataclass(frozen=True, slots=True)
class CountCall(Command):
    """Add one to the switchboard's counter `name` (answered …)."""

    name: str


@dataclass(frozen=True, slots=True)
class WriteCdr(Command):
    record: CallDetailRecord


@dataclass(frozen=True, slots=True)
class StopRecording(Command):
    """Stop writing the call's recording `recording`: for good (the call ended; the file is
    finished), or for now (`pause`: the agent stopped it on the desk; `StartRecording` with
    the same id goes on in the same file). An effect: its errors are only logged."""

    recording: str
    pause: bool = False


@dataclass(frozen=True, slots=True)
class LogQueueEvent(Command):
    """A queue-log line for this call (`pbx.repositories.QueueLogEntry`), e.g. the audit of
    a supervisor listening in."""

    event: str
    queue: str
    agent: str
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallFinished(Command):
    """The call is over: the executor forgets it (last command of every call)."""

    cause: str


# ------------------------------------------------------------------ asks


@dataclass(frozen=True, slots=True)
class OpenMedia(Ask):
    """Open a media session (answering `remote_sdp`, or offering); reply: (session, sdp).
    Its media events belong to this call from then on."""

    remote_sdp: str | None = None
    near: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateMedia(Ask):
    """Apply the far end's SDP to `session`; reply: our answer SDP."""

    session: str
    remote_sdp: str


@dataclass(frozen=True, slots=True)
class OfferMedia(Ask):
    """A new offer from `session` (offer-less re-INVITE); reply: the SDP."""

    session: str


@dataclass(frozen=True, slots=True)
class PlayMedia(Ask):
    """Play `source` to `session` (`insert`: over what plays, which then resumes where it
    was); reply: the playback id."""

    session: str
    source: Source
    barge_in: bool = False
    insert: bool = False


@dataclass(frozen=True, slots=True)
class StopMedia(Ask):
    session: str


@dataclass(frozen=True, slots=True)
class BridgeMedia(Ask):
    a: str
    b: str


@dataclass(frozen=True, slots=True)
class UnbridgeMedia(Ask):
    a: str
    b: str




@dataclass(frozen=True, slots=True)
class StartRecording(Ask):
    """Record the caller's media `session` in stereo: left what the caller says, right what
    they hear (the agent, or hold music while held), so the recording stays with the caller
    whoever they are bridged to. `recording`: a paused recording of this call to go on with.
    Reply: (recording id, the file's path relative to the recordings directory); fails
    (`CommandFailed`) when the file cannot be made (disk full, directory not writable)."""

    session: str
    call: str
    recording: str = ""


@dataclass(frozen=True, slots=True)
class MonitorMedia(Ask):
    """Join the session `supervisor` to the call `caller` ⇄ `agent` in `mode` (listen,
    whisper, barge; again: change the mode). Closing `supervisor` ends it."""

    supervisor: str
    caller: str
    agent: str
    mode: str


@dataclass(frozen=True, slots=True)
class RecordForAmd(Ask):
    """Record the first seconds of `session` for answering-machine detection; reply: an id."""

    session: str


@dataclass(frozen=True, slots=True)
class DecideAmd(Ask):
    """Stop the recording `recording` and analyse it with `settings`; reply: the
    `pbx.dialer.amd.AmdDecision`."""

    recording: str
    settings: object


@dataclass(frozen=True, slots=True)
class NewPhoneLeg(Ask):
    """A (not started) INVITE leg to one registered phone; reply: the `OutboundLeg`, whose
    inputs go to this call."""

    prefix: str
    binding: Binding
    caller: NameAddr
    agent: str
    sdp: str


@dataclass(frozen=True, slots=True)
class NewTrunkLeg(Ask):
    """A (not started) INVITE leg to a carrier; reply: the `OutboundLeg`."""

    trunk: str
    target: SipUri
    from_addr: NameAddr
    to_addr: NameAddr
    sdp: str
    headers: Sequence[tuple[str, str]] = ()
    leg_id: str = ""  # "" : the executor picks one
