"""The call-control vocabulary: the only language the IVR, the ACD and the dialer speak — L0.

The call layer (`pbx/call`) turns SIP dialogs and RTP into these events and carries out these
commands; nothing above it sees a SIP message or an RTP packet (../shared/DESIGN.md). Every
call leg has a PBX-wide id (`call`), not its SIP Call-ID: a B2BUA call has two legs and two
Call-IDs. Events are past tense, commands imperative; all are frozen and slotted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# ------------------------------------------------------------------ events (upwards)


@dataclass(frozen=True, slots=True)
class CallOffered:
    """A new inbound leg. `did` is the dialled number (Request-URI user or To), `trunk` the
    carrier trunk it came from (None for an agent's own phone), `caller` the calling number
    (E.164 where known)."""

    call: str
    caller: str
    did: str
    caller_name: str = ""
    trunk: str | None = None
    agent: str | None = None  # set when an agent's registered phone places the call
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ringing:
    call: str
    early_media: bool = False


@dataclass(frozen=True, slots=True)
class Answered:
    call: str


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """One key press (RFC 4733 event, SIP INFO or in-band tone: `source` says which)."""

    call: str
    digit: str
    duration_ms: int = 0
    source: str = "rfc4733"


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    call: str
    playback: str
    interrupted: bool = False  # stopped by barge-in (a digit) or StopPlayback


@dataclass(frozen=True, slots=True)
class MediaTimedOut:
    call: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """The leg ended after it was answered or while it was being offered. `by` is "remote"
    (the far end hung up or cancelled) or "local" (we ended it); `cause` a short reason such
    as "normal", "cancel", "rtp_timeout", "session_timer", "shutdown"."""

    call: str
    by: str
    cause: str = "normal"


@dataclass(frozen=True, slots=True)
class Failed:
    """An outgoing leg (Dial) did not connect: `status` is the SIP final status (408 for a
    timeout, 486 busy, 480 unavailable, 487 cancelled …)."""

    call: str
    status: int
    reason: str = ""


CallEvent = (
    CallOffered | Ringing | Answered | DtmfReceived | PlaybackFinished | MediaTimedOut | HungUp
    | Failed
)

# ------------------------------------------------------------------ commands (downwards)


@dataclass(frozen=True, slots=True)
class Answer:
    call: str


@dataclass(frozen=True, slots=True)
class Reject:
    call: str
    status: int = 486
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Play:
    """Play prompts (names of prompt files, e.g. "de/greeting") one after another.

    `barge_in`: a digit stops the playback (and is still reported as DtmfReceived).
    `loop`: start again at the end until stopped. `playback` names this playback in the
    PlaybackFinished event. `hold_program` names a queue-hold program instead of prompts.
    """

    call: str
    prompts: tuple[str, ...]
    playback: str = ""
    barge_in: bool = False
    loop: bool = False
    hold_program: str | None = None


@dataclass(frozen=True, slots=True)
class StopPlayback:
    call: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Start an outgoing leg `call` (a new id chosen by the caller of the command) to `target`:
    an agent extension ("agent:1001"), or a number through a trunk ("trunk:carrier:+49…").
    `related` is the leg this dial is for (the waiting caller), for CDRs and CTI."""

    call: str
    target: str
    caller_id: str = ""
    caller_name: str = ""
    timeout_s: float = 30.0
    related: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CancelDial:
    call: str


@dataclass(frozen=True, slots=True)
class Bridge:
    a: str
    b: str


@dataclass(frozen=True, slots=True)
class Unbridge:
    a: str
    b: str


@dataclass(frozen=True, slots=True)
class Hold:
    call: str


@dataclass(frozen=True, slots=True)
class Resume:
    call: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the leg to another target (a flow node, queue, agent or number)."""

    call: str
    target: str


@dataclass(frozen=True, slots=True)
class Hangup:
    call: str
    cause: str = "normal"


CallCommand = (
    Answer | Reject | Play | StopPlayback | Dial | CancelDial | Bridge | Unbridge | Hold | Resume
    | Transfer | Hangup
)
