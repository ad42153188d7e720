"""The call machine: one pure object per call — L2, sans-IO.

Theory of operation. A `Call` is everything one caller's call is (the caller's leg, the agent
or outside party put through, queue, IVR data, what the CDR needs) plus its *script*: a
generator that reads like the call's story (`pbx.call.script`: route, answer, IVR, queue, ring,
talk, transfer, end). The script never waits and never does I/O; it *yields*:

- a `Command` (`pbx.call.commands`): an effect the executor carries out (SIP actions of a leg,
  a message to the ACD, the dialer or the desk, the CDR), and the script goes straight on;
- an `Ask` (media operations, a new leg): the machine stops until the executor feeds the
  result back as `Reply`, which the script receives as the value of its `yield` (or as
  `CommandFailed` raised at that point);
- `Wait(deadline)`: the script needs its next input. Inputs are the typed union `CallInput`.
  `receive` (below) classifies each one (`pbx.call.phases.Input`) and looks up what the call's
  phase does with it (`pbx.call.phases.OUTCOMES`): re-INVITEs and UPDATEs are answered from
  the leg's media session, late SDP answers applied, a REFER that is not the connected agent's
  refused, the caller hanging up raises `CallerGone` wherever the script is, what the phase has
  no use for is logged — and only `HANDLE` inputs come back to the script's own logic.

`handle(input, now)` runs the script until it waits or asks, and returns the commands it
yielded; `next_deadline()` is when the executor must wake it (`Wake`). Inputs that arrive
while an `Ask` is outstanding are kept in order and fed at the next `Wait`. Time is injected:
`now` is monotonic (deadlines); wall time, for records and opening hours, is `now + epoch`.

What the call reads of the world — the registrar's bindings, the router's dial plan, flows,
queues, the legs' state — it reads synchronously through `CallWorld`; everything it changes
goes out as a command. The switchboard (`pbx.switchboard`, L3) is the executor: one task per
call that feeds inputs and carries out commands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog

from media.sources import HoldProgram, Source
from pbx.acd.events import AgentCallEnded, AgentCallStarted
from pbx.call.commands import (
    Ask,
    BridgeMedia,
    CallFinished,
    Command,
    CommandFailed,
    OfferMedia,
    PlayMedia,
    Reply,
    RespondStatus,
    SendLegActions,
    StopMedia,
    TellAcd,
    UnbridgeMedia,
    UpdateMedia,
    Wait,
    Wake,
)
from pbx.call.events import (
    Answered,
    DtmfReceived,
    Failed,
    HungUp,
    MediaTimedOut,
    PlaybackFinished,
    Ringing,
)
from pbx.call.inbound_leg import InboundLeg
from pbx.call.leg import Leg
from pbx.call.leg_events import RemoteAnswer, RemoteOffer, TransferRequested
from pbx.call.outbound_leg import OutboundLeg
from pbx.call.phases import Input, Outcome, Phase, outcome
from pbx.call.router import RouteTarget
from pbx.config.schema import HoldProgramConfig, TrunkConfig
from pbx.ivr.events import CustomerFound
from pbx.repositories import Binding, Customer

log = structlog.get_logger("pbx.call")

T = TypeVar("T")
Script = Generator[Any, Any, T]  # yields Command | Wait, receives Reply values and inputs

RING_TIMEOUT_S = 20.0
MAX_HOPS = 5  # overflow / transfer chains a call may follow before it is given up


class CallerGone(Exception):
    """The caller hung up (or cancelled, or their media died) — raised inside the script."""


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class AcdOrder:
    """The ACD engine's commands for this call from one step (a `CallLeftQueue` comes with
    the `Overflow` that says where the caller goes)."""

    commands: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class ControlOrder:
    """A CTI order for this call: hangup, hold, resume, transfer, consult, complete_transfer,
    cancel_transfer, record, stop_record, move (a supervisor sends a waiting caller to
    `target`). `agent` "" is an administrator's hangup (`pbx call hangup`)."""

    kind: str
    agent: str
    target: str = ""


@dataclass(frozen=True, slots=True)
class LegReplacement:
    """An INVITE with Replaces (RFC 3891) from the agent's other phone takes over the agent's
    leg of this call (`leg` is the new, not yet answered inbound leg)."""

    leg: InboundLeg


@dataclass(frozen=True, slots=True)
class DialerOrder:
    """The pacer's decision about this campaign call (connect, drop, hang up, leave message)."""

    command: object


@dataclass(frozen=True, slots=True)
class AgentLegTaken:
    """Another call took this call's agent leg (the agent's phone completed an attended
    transfer): forget it, and end."""

    leg: str


CallInput = (
    RemoteOffer | RemoteAnswer | TransferRequested | LegReplacement | Ringing | Answered
    | Failed | HungUp | MediaTimedOut | DtmfReceived | PlaybackFinished | CustomerFound
    | AcdOrder | DialerOrder | ControlOrder | AgentLegTaken | Reply | Wake
)


# ------------------------------------------------------------------ what a call reads


class CallRouter(Protocol):
    """Policy the call asks (implemented from the configuration by the app)."""

    def trunk_for(self, host: str) -> str | None:
        """The trunk whose inbound addresses contain `host`, or None."""

    def route_did(self, did: str) -> RouteTarget | None: ...

    def route_internal(self, agent: str, dialled: str) -> RouteTarget | None:
        """An agent dialled `dialled`: another extension, a DID, a number, or refused."""

    def route_campaign(self, campaign: str, number: str) -> RouteTarget:
        """A campaign's customer number through the dial plan (trunk + E.164, or refused)."""

    def feature_code(self, dialled: str) -> str | None:
        """The agent state change an agent's phone asks by dialling `dialled`, or None."""

    @property
    def pause_code(self) -> str:
        """The pause reason of the pause feature code (the first of ``cti.pause_codes``)."""

    def queue_members(self, queue: str) -> list[str]:
        """Agents (extensions) to hunt for `queue`, in seat order."""

    @property
    def trunks(self) -> dict[str, TrunkConfig]: ...


class CallWorld(Protocol):
    """What a call reads synchronously (the switchboard implements it)."""

    @property
    def domain(self) -> str: ...

    @property
    def router(self) -> CallRouter: ...

    @property
    def flows(self) -> Mapping[str, Any]:
        """IVR flows by name (`pbx.ivr.schema.FlowConfig`)."""

    @property
    def hooks(self) -> Mapping[str, Any]: ...

    @property
    def hold_programs(self) -> Mapping[str, HoldProgramConfig]: ...

    @property
    def acd(self) -> Any:
        """The `pbx.acd.engine.AcdEngine` (queues, statuses, agents: read only) or None."""

    def contacts(self, agent: str) -> list[Binding]:
        """The agent's registered phones now."""

    def agent_busy(self, agent: str) -> bool:
        """Whether the agent talks on any call now."""

    def leg(self, leg: str) -> Leg | None:
        """A leg by its id (while the switchboard still knows it)."""

    def leg_of_dialog(self, call_id: str, local_tag: str) -> Leg | None: ...

    def call_of_leg(self, leg: str) -> Call | None: ...


# ------------------------------------------------------------------ the call


@dataclass
class AgentOffer:
    """The phones of one agent being rung for one queued call."""

    agent: str
    session: str
    legs: list[OutboundLeg] = field(default_factory=list)
    answered: OutboundLeg | None = None
    failed: set[str] = field(default_factory=set)


@dataclass
class Consultation:
    """An attended transfer in progress: the consulted agent's leg and media session."""

    agent: str
    leg: OutboundLeg
    session: str


@dataclass(eq=False)
class Call:
    """One B2BUA call. Fields are the call's state (read by the executor and the desk); the
    methods `start`, `handle` and `next_deadline` are the machine (see the module docstring).
    """

    id: str
    caller: InboundLeg | OutboundLeg  # outbound when the PBX rang an agent (click-to-dial)
    caller_number: str
    did: str
    trunk: str | None
    agent_caller: str | None  # the agent whose phone placed the call
    world: CallWorld
    epoch: float  # wall time minus monotonic time
    now: float = 0.0  # monotonic time of the input being handled
    started_at: float = 0.0  # wall
    caller_media: str | None = None
    agent_leg: InboundLeg | OutboundLeg | None = None
    agent_media: str | None = None
    agent: str = ""
    answered_at: float | None = None
    disposition: str = "failed"
    hangup_by: str = ""
    cause: str = ""
    path: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    queue: str = ""
    direction: str = "inbound"
    on_hold: bool = False
    priority: int = 0
    pinned_agents: tuple[str, ...] = ()
    offers: dict[str, AgentOffer] = field(default_factory=dict)
    hold_program: str = "default"
    playbacks: dict[str, str] = field(default_factory=dict)  # playback id -> name
    customer: Customer | None = None
    consult: Consultation | None = None  # an attended transfer in progress
    monitor: Any = None  # a supervisor listening in (`pbx.call.monitoring.Supervision`)
    dropped: Any = None  # the dialer's DropCall, when a campaign call was dropped in the queue
    phase: Phase = Phase.ROUTING
    skills: tuple[str, ...] = ()  # skills the IVR asked for (the agent needs each)
    leg_media: dict[str, str] = field(default_factory=dict)  # leg id -> its media session
    reoffered: set[str] = field(default_factory=set)  # legs that owe us an SDP answer in ACK
    direct_agents: set[str] = field(default_factory=set)  # agents on this call outside the ACD
    acd_connected: bool = False  # the ACD put `agent` through: it must hear the call end
    recording_mode: str = "never"  # never | on_demand | always (the queue's, the campaign's)
    recording_id: str = ""  # the media engine's id of the call's recording
    recording_path: str = ""  # its file, relative to the recordings directory (for the CDR)
    recording_on: bool = False  # being written now (False: none yet, or paused)
    consent_played: bool = False  # the recording announcement was heard
    finished: bool = False
    _script: Script[None] | None = None
    _waiting: Wait | None = None
    _asking: bool = False
    _buffer: deque[object] = field(default_factory=deque)

    # ---------------------------------------------------------------- the machine

    def wall(self) -> float:
        """Wall time now (for records and opening hours)."""
        return self.now + self.epoch

    def start(self, script: Callable[[Call], Script[None]], now: float) -> list[Command]:
        """Begin the call's script; the commands until its first wait or ask."""
        self.now = now
        self.started_at = self.started_at or self.wall()
        self._script = script(self)
        return self._run(None, None)

    def handle(self, event: object, now: float) -> list[Command]:
        """Feed one input (an event, the `Reply` to the last ask, or `Wake`); the commands
        the script yielded until it waits or asks again."""
        self.now = now
        if self.finished:
            log.debug("input_after_end", call=self.id, input=type(event).__name__)
            return []
        if isinstance(event, Reply):
            if not self._asking:
                log.error("reply_unexpected", call=self.id)
                return []
            self._asking = False
            if event.error is not None:
                return self._run(None, CommandFailed(event.error))
            return self._run(event.value, None)
        if isinstance(event, Wake):
            waiting = self._waiting
            if waiting is None or waiting.deadline is None or now < waiting.deadline:
                return []
            self._waiting = None
            return self._run(None, None)  # `receive` returns None: the time is up
        event = self._note(event)
        if self._asking or self._waiting is None:
            self._buffer.append(event)
            return []
        self._waiting = None
        return self._run(event, None)

    def post(self, event: object) -> None:
        """An input the call gives itself (e.g. a prompt that could not be played counts as
        played); it comes at the script's next wait, after what is already waiting."""
        self._buffer.append(event)

    def next_deadline(self) -> float | None:
        """When the script's wait ends (monotonic), or None."""
        return self._waiting.deadline if self._waiting is not None and not self.finished else None

    def _note(self, event: object) -> object:
        """What every input tells the call's records before the script sees it."""
        if isinstance(event, PlaybackFinished) and event.playback in self.playbacks:
            name = self.playbacks.pop(event.playback)
            return PlaybackFinished(event.call, name, event.interrupted)
        if isinstance(event, CustomerFound) and event.customer is not None:
            self.customer = event.customer  # for the screen pop
        return event

    def _run(self, send: object, throw: BaseException | None) -> list[Command]:
        assert self._script is not None
        out: list[Command] = []
        while True:
            try:
                item = self._script.throw(throw) if throw is not None else self._script.send(send)
            except StopIteration:
                self.finished = True
                break
            except Exception:  # a bug in one call must not stop the switch: log, let go
                log.exception("call_crashed", call=self.id)
                self.finished = True
                out.append(CallFinished("internal error"))
                break
            send, throw = None, None
            if isinstance(item, Wait):
                if self._buffer:
                    send = self._buffer.popleft()
                    continue
                self._waiting = item
                break
            out.append(item)
            if isinstance(item, Ask):
                self._asking = True
                break
        return out


# ------------------------------------------------------------------ receiving

_SIMPLE: dict[type, Input] = {
    RemoteOffer: Input.OFFER,
    RemoteAnswer: Input.SDP_ANSWER,
    DtmfReceived: Input.DTMF,
    PlaybackFinished: Input.PLAYBACK_END,
    CustomerFound: Input.CUSTOMER_FOUND,
    AcdOrder: Input.ACD_ORDER,
    DialerOrder: Input.DIALER_ORDER,
    LegReplacement: Input.REPLACES,
    Ringing: Input.LEG_PROGRESS,
    Answered: Input.LEG_PROGRESS,
    Failed: Input.LEG_PROGRESS,
}


def classify(call: Call, event: object) -> Input | None:
    """The kind of `event` for `call` (None: not an input a call knows)."""
    kind = _SIMPLE.get(type(event))
    if kind is not None:
        return kind
    leg = getattr(event, "call", None)
    agent_leg = call.agent_leg.call if call.agent_leg is not None else None
    if isinstance(event, HungUp):
        if leg == call.id:
            return Input.CALLER_HUNG_UP
        return Input.AGENT_HUNG_UP if leg == agent_leg else Input.LEG_PROGRESS
    if isinstance(event, MediaTimedOut):
        if leg == call.id:
            return Input.CALLER_MEDIA_LOST
        return Input.AGENT_MEDIA_LOST if leg == agent_leg else Input.LEG_PROGRESS
    if isinstance(event, TransferRequested):
        return Input.REFER_BY_AGENT if leg == agent_leg else Input.REFER_BY_OTHER
    if isinstance(event, ControlOrder):
        return Input.DESK_HANGUP if event.kind == "hangup" else Input.DESK_ORDER
    if isinstance(event, AgentLegTaken):
        return Input.AGENT_HUNG_UP if event.leg == agent_leg else Input.LEG_PROGRESS
    return None


def receive(call: Call, deadline: float | None = None,
            keep: tuple[type, ...] = ()) -> Script[object | None]:
    """The next input the call's phase handles (or of a `keep` type, whatever the phase), or
    None once `deadline` (monotonic) passed. Raises `CallerGone` when the caller hung up, their
    media died or the desk hung up."""
    while True:
        event: object = yield Wait(deadline)
        if event is None:
            return None
        if keep and isinstance(event, keep):
            return event
        kind = classify(call, event)
        if kind is None:
            log.error("input_unknown", call=call.id, input=type(event).__name__)
            continue
        action = outcome(call.phase, kind)
        if action is Outcome.HANDLE:
            return event
        yield from _carry_out(call, action, kind, event)


def _carry_out(call: Call, action: Outcome, kind: Input, event: object) -> Script[None]:
    """What the phase table says for an input the phase's own logic does not see."""
    if action is Outcome.ANSWER_OFFER:
        assert isinstance(event, RemoteOffer)
        yield from answer_offer(call, event)
    elif action is Outcome.APPLY_ANSWER:
        assert isinstance(event, RemoteAnswer)
        session = call.leg_media.get(event.call)
        if event.call in call.reoffered and session is not None and event.sdp:
            call.reoffered.discard(event.call)
            try:
                yield UpdateMedia(session, event.sdp.decode())
            except CommandFailed as exc:
                log.warning("answer_refused", call=call.id, leg=event.call, error=str(exc))
    elif action is Outcome.END_CALL:
        if kind is Input.CALLER_MEDIA_LOST:
            call.hangup_by, call.cause = "pbx", "rtp_timeout"
            log.warning("rtp_timeout", call=call.id, side="caller", phase=call.phase)
        elif kind is Input.DESK_HANGUP and isinstance(event, ControlOrder) and not event.agent:
            # `pbx call hangup` / the admin API: no agent's desk asked for it
            call.hangup_by, call.cause = "pbx", "hung up by an administrator"
        elif kind is Input.DESK_HANGUP:
            call.hangup_by, call.cause = "agent", "hung up from the desktop"
        elif isinstance(event, HungUp):
            call.hangup_by = call.hangup_by or ("caller" if event.by == "remote" else "pbx")
            call.cause = call.cause or event.cause
        raise CallerGone
    elif action is Outcome.REFUSE and isinstance(event, LegReplacement):
        yield send(event.leg, event.leg.reject(481, "Call Does Not Exist"))
        log.warning("replaces_refused", call=call.id, phase=call.phase)
    elif action is Outcome.REFUSE:
        assert isinstance(event, TransferRequested)
        leg = call.world.leg(event.call)
        if leg is None:
            yield RespondStatus(event.transaction, 403)
        else:
            yield send(leg, leg.reject_refer(event.transaction, 403, "Forbidden"))
        log.warning("refer_refused", call=call.id, leg=event.call, phase=call.phase,
                    target=event.refer_to)
    else:
        yield from stray(call, event, kind.value)


def stray(call: Call, event: object, kind: str = "") -> Script[None]:
    """An input the call's phase has no use for: logged; a phone that answers an offer that
    was withdrawn is hung up at once (it must not stay up)."""
    if isinstance(event, Answered):
        leg = call.world.leg(event.call)
        if isinstance(leg, OutboundLeg) and not leg.ended and leg is not call.agent_leg:
            yield end_leg(leg, "answered elsewhere")
            log.info("late_answer_ended", call=call.id, leg=event.call, phase=call.phase)
            return
    log.debug("input_ignored", call=call.id, phase=call.phase,
              input=kind or type(event).__name__)


def answer_offer(call: Call, offer: RemoteOffer) -> Script[None]:
    """A re-INVITE or UPDATE with an offer (or an offer-less re-INVITE) from one of the
    call's legs: answer it from that leg's media session, in whatever phase the call is."""
    leg = call.world.leg(offer.call)
    if leg is None or leg.ended:
        return
    session = call.leg_media.get(offer.call)
    try:
        if session is None:
            raise CommandFailed("the leg has no media session")
        if offer.sdp:
            answer = yield UpdateMedia(session, offer.sdp.decode())
        else:
            # RFC 3261 §14.2: an offer-less re-INVITE: our offer goes in the 200, the
            # answer comes in the ACK.
            answer = yield OfferMedia(session)
            call.reoffered.add(offer.call)
    except CommandFailed as exc:
        log.warning("reoffer_refused", call=call.id, leg=offer.call, error=str(exc))
        yield send(leg, leg.refuse_offer(offer.transaction, 488))
        return
    yield send(leg, leg.answer_reinvite(offer.transaction, answer.encode()))
    if offer.sdp:
        yield from follow_hold(call, offer.call, is_hold(offer.sdp))


def follow_hold(call: Call, leg_id: str, held: bool) -> Script[None]:
    """A talking party put the call on hold (or took it off): the other side hears the hold
    music, then the other party again."""
    if call.caller_media is None or call.agent_media is None or call.agent_leg is None:
        return
    if leg_id not in (call.id, call.agent_leg.call):
        return
    by_caller = leg_id == call.id
    other = call.agent_media if by_caller else call.caller_media
    if held and not call.on_hold:
        call.on_hold = True
        yield UnbridgeMedia(call.caller_media, call.agent_media)
        yield PlayMedia(other, HoldProgram(music=("music/hold_music",)))
        log.info("call_held", call=call.id, by="caller" if by_caller else "agent")
    elif not held and call.on_hold:
        call.on_hold = False
        yield StopMedia(other)
        yield BridgeMedia(call.caller_media, call.agent_media)
        log.info("call_resumed", call=call.id, by="caller" if by_caller else "agent")


def is_hold(sdp: bytes) -> bool:
    """Whether an offer puts the session on hold (RFC 3264 §8.4: sendonly/inactive, or the
    old RFC 2543 c=0.0.0.0)."""
    text = sdp.decode("utf-8", "replace")
    lines = {line.strip() for line in text.splitlines()}
    return bool(lines & {"a=sendonly", "a=inactive"}) or "c=IN IP4 0.0.0.0" in lines


# ------------------------------------------------------------------ small helpers


def send(leg: Leg, actions: Iterable[object]) -> SendLegActions:
    """The executor carries out what `leg` decided."""
    return SendLegActions(leg.call, tuple(actions))


def end_leg(leg: Leg, cause: str) -> SendLegActions:
    """Hang `leg` up (BYE, or CANCEL/final response before it was answered); the leg's own
    HungUp is not needed: we ended it."""
    return send(leg, [a for a in leg.hangup(cause) if not isinstance(a, HungUp)])


def play(call: Call, name: str, source: Source, barge_in: bool) -> Script[None]:
    """Play to the caller; `name` is what the PlaybackFinished input will say."""
    assert call.caller_media is not None
    playback = yield PlayMedia(call.caller_media, source, barge_in=barge_in)
    call.playbacks[playback] = name


def engage(call: Call, agent: str) -> Script[None]:
    """`agent`'s phone rings for, or talks on, this call outside the ACD's own offers: the ACD
    counts them busy until `release`."""
    if agent in call.direct_agents:
        return
    call.direct_agents.add(agent)
    acd = call.world.acd
    if acd is not None and agent in acd.agents:
        yield TellAcd(AgentCallStarted(agent, call.id, call.direction))


def release(call: Call, agent: str) -> Script[None]:
    if agent not in call.direct_agents:
        return
    call.direct_agents.discard(agent)
    acd = call.world.acd
    if acd is not None and agent in acd.agents:
        yield TellAcd(AgentCallEnded(agent, call.id))
