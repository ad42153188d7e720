"""The switchboard: the asyncio side of the call layer — L3.

It receives the SIP events the endpoint reports for calls (INVITE, ACK, BYE, CANCEL, INFO,
re-INVITE and the responses to our INVITEs), feeds them to the sans-IO legs of `pbx.call.sip_leg`,
carries out the legs' actions on the endpoint, and runs each B2BUA call as one asyncio task (a
"call actor") that reads like the call's script: classify the caller (carrier trunk or agent
phone), route the dialled number, answer and run the IVR (`pbx.ivr`, pure), ring agents, bridge
the media, and finally write the CDR. Media goes through `media.engine.MediaEngine` (commands
awaited; its events are mapped back to the call that owns the session).

Everything a call learns arrives on its own queue (`CallContext.inbox`), so a call's logic never
races with itself; the legs' 2xx-retransmission deadlines run on one `loop.call_at` per leg.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from media.engine import MediaEngine, MediaError
from media.events import DtmfDetected, PlaybackEnd, RtpTimedOut
from media.events import PlaybackFinished as MediaPlaybackFinished
from media.sources import HoldProgram, Playlist, Source
from pbx.acd.engine import AcdEngine
from pbx.acd.events import (
    AcdEvent,
    AgentDeviceAvailable,
    AgentDeviceUnavailable,
    Announce,
    CallAbandoned,
    CallEnqueued,
    CallExitKeyPressed,
    CallJoinedQueue,
    CallLeftQueue,
    CancelOffer,
    ConnectCall,
    EventDeferred,
    EventRejected,
    OfferAnswered,
    OfferCall,
    OfferFailed,
    OfferFailure,
    Overflow,
)
from pbx.acd.events import AgentLoggedIn as AcdAgentLoggedIn
from pbx.acd.events import CallEnded as AcdCallEnded
from pbx.acd.events import TimerFired as AcdTimerFired
from pbx.acd.model import AgentStateChanged, QueuedCall
from pbx.call.events import (
    Answered,
    DtmfReceived,
    Failed,
    Hangup,
    HungUp,
    MediaTimedOut,
    Play,
    PlaybackFinished,
    Ringing,
    StopPlayback,
)
from pbx.call.router import RouteTarget, normalise_number
from pbx.call.sip_leg import (
    InboundLeg,
    Leg,
    OutboundLeg,
    RemoteAnswer,
    RemoteOffer,
    Respond,
    SendRequest,
    SendStateless,
)
from pbx.clock import IdGenerator
from pbx.config.schema import HoldProgramConfig, TrunkConfig
from pbx.ivr.events import CustomerFound, EnqueueCall, LookupCustomer
from pbx.ivr.hooks import Hook
from pbx.ivr.runner import IvrSession
from pbx.ivr.schema import FlowConfig
from pbx.registrar.registrar import Registrar
from pbx.repositories import CallDetailRecord, CustomerDirectory
from pbx.sip.endpoint import Address, RequestReceived, SipEndpoint
from pbx.sip.message import Request, make_response
from pbx.sip.transaction import ClientTransaction, ResponseReceived, TransactionTimedOut
from pbx.sip.uri import NameAddr, SipUri
from pbx.transport.sip import ListenAddress
from pbx.trunk.registration import TrunkRegistration

log = structlog.get_logger("pbx.call")

RING_TIMEOUT_S = 20.0
SUPPORTED = frozenset({"timer"})  # SIP extensions we honour in Require (RFC 4028)


class CallerGone(Exception):
    """The caller hung up (or cancelled) while the call was being set up."""


class CallRouter(Protocol):
    """Policy the switchboard asks (implemented from the configuration by the app)."""

    def trunk_for(self, host: str) -> str | None:
        """The trunk whose inbound addresses contain `host`, or None."""

    def route_did(self, did: str) -> RouteTarget | None: ...

    def route_internal(self, agent: str, dialled: str) -> RouteTarget | None:
        """An agent dialled `dialled`: another extension (kind "agent") or nothing."""

    def queue_members(self, queue: str) -> list[str]:
        """Agents (extensions) to hunt for `queue`, in seat order."""

    @property
    def trunks(self) -> dict[str, TrunkConfig]: ...


@dataclass(frozen=True, slots=True)
class AcdOrder:
    """An ACD engine command for one call, delivered through the call's inbox."""

    command: object


@dataclass
class AgentOffer:
    """The phones of one agent being rung for one call."""

    agent: str
    session: str
    legs: list[OutboundLeg] = field(default_factory=list)
    answered: OutboundLeg | None = None
    failed: set[str] = field(default_factory=set)


@dataclass
class CallContext:
    """One B2BUA call: the caller's leg, the agent's leg once connected, and what the CDR
    needs."""

    id: str
    caller: InboundLeg
    caller_number: str
    did: str
    trunk: str | None
    agent_caller: str | None
    inbox: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    caller_media: str | None = None
    agent_leg: OutboundLeg | None = None
    agent_media: str | None = None
    agent: str = ""
    started_at: float = field(default_factory=time.time)
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
    playbacks: dict[str, str] = field(default_factory=dict)  # media playback id -> name


def _is_hold(sdp: bytes) -> bool:
    """Whether an offer puts the session on hold (RFC 3264 §8.4: sendonly/inactive, or the
    old RFC 2543 c=0.0.0.0)."""
    text = sdp.decode("utf-8", "replace")
    lines = {line.strip() for line in text.splitlines()}
    return bool(lines & {"a=sendonly", "a=inactive"}) or "c=IN IP4 0.0.0.0" in lines


class Switchboard:
    """See the module docstring. Created by the app once SIP, media and storage are up."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        bound: list[ListenAddress],
        registrar: Registrar,
        media: MediaEngine,
        router: CallRouter,
        ids: IdGenerator,
        write_cdr: Callable[[CallDetailRecord], None],
        flush: Callable[[], None],
        domain: str,
        flows: Mapping[str, FlowConfig] | None = None,
        hooks: Mapping[str, Hook] | None = None,
        customers: CustomerDirectory | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.bound = bound
        self.registrar = registrar
        self.media = media
        self.router = router
        self.ids = ids
        self.write_cdr = write_cdr
        self.flush = flush  # push the endpoint's output now (the transport pump)
        self.domain = domain
        self.flows = dict(flows or {})
        self.hooks = dict(hooks or {})
        self.customers = customers
        self.legs: dict[str, Leg] = {}
        self.leg_call: dict[str, CallContext] = {}
        self.calls: dict[str, CallContext] = {}
        self._dialogs: dict[tuple[str, str], str] = {}  # (Call-ID, our tag) -> leg
        self._pending: dict[tuple[str, str], str] = {}  # (Call-ID, their tag) -> inbound leg
        self._client_tx: dict[ClientTransaction, str] = {}
        self._sessions: dict[str, CallContext] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.trunk_regs: dict[str, TrunkRegistration] = {}
        self.acd: AcdEngine | None = None
        self.hold_programs: dict[str, HoldProgramConfig] = {}
        self._acd_timer: asyncio.TimerHandle | None = None
        self.on_agent_event: Callable[[object], None] | None = None
        self.accepting = True
        self.stats = {"offered": 0, "answered": 0, "rejected": 0, "active": 0, "completed": 0}
        media.add_listener(self._on_media_event)

    # ------------------------------------------------------------------ network facts for legs

    def new_branch(self) -> str:
        return self.endpoint.new_branch()

    def new_tag(self) -> str:
        return self.ids.token(6)

    def local_via(self, transport: str) -> tuple[str, int, str]:
        for b in self.bound:
            if b.transport == transport:
                return (b.host, b.port, transport.upper())
        b = self.bound[0]
        return (b.host, b.port, b.transport.upper())

    def local_contact(self, transport: str) -> str:
        host, port, _ = self.local_via(transport)
        host = f"[{host}]" if ":" in host else host
        return f"<sip:pbx@{host}:{port};transport={transport}>"

    # ------------------------------------------------------------------ SIP events in

    def on_sip_event(self, event: object) -> bool:
        """Handle `event` if it belongs to a call; False when it is not ours."""
        if isinstance(event, RequestReceived):
            return self._on_request(event)
        if isinstance(event, ResponseReceived):
            return self._on_response(event)
        if isinstance(event, TransactionTimedOut):
            tx = event.transaction
            if isinstance(tx, ClientTransaction):
                leg_id = self._client_tx.pop(tx, None)
                reg = self.trunk_regs.get(leg_id or "")
                if reg is not None:
                    self._run_reg(reg, reg.on_timeout(time.monotonic()))
                    return True
                leg = self.legs.get(leg_id or "")
                if isinstance(leg, OutboundLeg) and tx.method == "INVITE":
                    self._run(leg, leg.on_timeout())
                return leg_id is not None
        return False

    def _on_request(self, event: RequestReceived) -> bool:
        request, tx = event.request, event.transaction
        method = request.method
        if method not in ("INVITE", "ACK", "BYE", "CANCEL", "INFO", "UPDATE", "PRACK"):
            return False
        now = time.monotonic()
        to_tag = request.to_addr.tag
        if method == "INVITE" and to_tag is None:
            assert tx is not None
            self._new_inbound(request, tx, event.source, now)
            return True
        leg_id = None
        if to_tag is not None:
            leg_id = self._dialogs.get((request.call_id, to_tag))
        if leg_id is None and method in ("CANCEL", "ACK"):
            leg_id = self._pending.get((request.call_id, request.from_addr.tag or ""))
        leg = self.legs.get(leg_id or "")
        if leg is None:
            if tx is not None:
                self.endpoint.respond(tx, make_response(request, 481), now)
            return True
        self._run(leg, leg.on_request(request, tx, now))
        return True

    def _on_response(self, event: ResponseReceived) -> bool:
        response, tx = event.response, event.transaction
        leg_id = self._client_tx.get(tx) if tx is not None else None
        reg = self.trunk_regs.get(leg_id or "")
        if reg is not None:
            if response.status >= 200 and tx is not None:
                self._client_tx.pop(tx, None)
            self._run_reg(reg, reg.on_response(None, response, time.monotonic()))
            return True
        if leg_id is None:
            # A retransmitted 2xx after the transaction ended: find the dialog and re-ACK.
            leg_id = self._dialogs.get((response.call_id, response.from_addr.tag or ""))
        leg = self.legs.get(leg_id or "")
        if not isinstance(leg, OutboundLeg):
            return leg_id is not None
        if tx is not None and response.status >= 200 and tx.method != "INVITE":
            self._client_tx.pop(tx, None)
        self._run(leg, leg.on_response(response, time.monotonic()))
        return True

    # ------------------------------------------------------------------ leg plumbing

    def _run(self, leg: Leg, actions: Iterable[object]) -> None:
        """Carry out a leg's actions: SIP out through the endpoint, events to the call."""
        now = time.monotonic()
        for action in actions:
            if isinstance(action, Respond):
                self.endpoint.respond(action.transaction, action.response, now)
            elif isinstance(action, SendRequest):
                tx = self.endpoint.send_request(action.request, action.destination, now)
                self._client_tx[tx] = action.leg
            elif isinstance(action, SendStateless):
                self.endpoint.send_stateless(action.message, action.destination)
            else:
                call = self.leg_call.get(leg.call)
                if call is not None:
                    call.inbox.put_nowait(action)
        if leg.dialog is not None:
            self._dialogs[(leg.dialog.call_id, leg.dialog.local_tag)] = leg.call
        self._arm(leg)
        if leg.ended:
            self._forget_leg_later(leg)
        self.flush()

    def _arm(self, leg: Leg) -> None:
        handle = self._timers.pop(leg.call, None)
        if handle is not None:
            handle.cancel()
        deadline = leg.next_deadline()
        if deadline is not None and not leg.ended:
            loop = asyncio.get_running_loop()
            self._timers[leg.call] = loop.call_at(
                deadline, lambda: self._run(leg, leg.handle_timer(time.monotonic()))
            )

    def _forget_leg_later(self, leg: Leg) -> None:
        # Keep the dialog mapping a while so late retransmissions (BYE, 2xx) still match.
        asyncio.get_running_loop().call_later(40.0, self._forget_leg, leg)

    def _forget_leg(self, leg: Leg) -> None:
        self.legs.pop(leg.call, None)
        self.leg_call.pop(leg.call, None)
        if leg.dialog is not None:
            self._dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)
        if isinstance(leg, InboundLeg):
            self._pending.pop((leg.invite.call_id, leg.invite.from_addr.tag or ""), None)
        for tx in [t for t, leg_id in self._client_tx.items() if leg_id == leg.call]:
            self._client_tx.pop(tx, None)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._seq)}"

    # ------------------------------------------------------------------ new inbound calls

    def _new_inbound(self, request: Request, tx: Any, source: Address, now: float) -> None:
        self.stats["offered"] += 1
        unsupported = [ext.strip() for value in request.headers.get_all("require")
                       for ext in value.split(",") if ext.strip().lower() not in SUPPORTED]
        if unsupported:
            # RFC 3261 §8.2.2.3: refuse what we cannot honour, and say what it was.
            response = make_response(request, 420, to_tag=self.new_tag())
            response.headers.add("Unsupported", ", ".join(unsupported))
            self.endpoint.respond(tx, response, now)
            return
        if not self.accepting:
            self.endpoint.respond(tx, make_response(request, 503, "Shutting down",
                                                    to_tag=self.new_tag()), now)
            return
        # An agent's registered phone is recognised first: on one host (tests, a small office)
        # the phones and the carrier can share an address.
        agent = self._agent_at(request, source)
        trunk = None if agent else self.router.trunk_for(source.host)
        if trunk is None and agent is None:
            self.stats["rejected"] += 1
            log.warning("call_refused", call_id=request.call_id, source=source.host,
                        reason="not from a trunk address or a registered agent phone")
            self.endpoint.respond(tx, make_response(request, 403, "Forbidden",
                                                    to_tag=self.new_tag()), now)
            return
        leg_id = self._next_id("c")
        leg = InboundLeg(leg_id, self, request, tx, source, self.endpoint.timers.t1,
                         self.endpoint.timers.t2)
        self.legs[leg_id] = leg
        self._pending[(request.call_id, request.from_addr.tag or "")] = leg_id
        from_uri = request.from_addr.uri
        caller_number = (from_uri.user if from_uri is not None else "") or ""
        pai = request.headers.get("p-asserted-identity")
        if trunk and pai:
            try:
                pai_uri = NameAddr.parse(pai).uri
                caller_number = (pai_uri.user if pai_uri else None) or caller_number
            except ValueError:
                pass
        to_uri = request.to_addr.uri
        dialled = request.parsed_uri.user or (to_uri.user if to_uri is not None else "") or ""
        call = CallContext(leg_id, leg, normalise_number(caller_number), dialled or "",
                           trunk, agent)
        self.calls[leg_id] = call
        self.leg_call[leg_id] = call
        self.stats["active"] += 1
        log.info("call_offered", call_id=request.call_id, call=leg_id, caller=call.caller_number,
                 did=call.did, trunk=trunk, agent=agent)
        task = asyncio.create_task(self._call_main(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _agent_at(self, request: Request, source: Address) -> str | None:
        """The agent whose registered phone sent `request` (same user and source address)."""
        uri = request.from_addr.uri
        if uri is None or not uri.user:
            return None
        for binding in self.registrar.lookup(uri.user, time.time()):
            if (binding.source_host, binding.source_port) == (source.host, source.port):
                return uri.user
        return None

    # ------------------------------------------------------------------ the call's script

    async def _call_main(self, call: CallContext) -> None:
        try:
            if call.agent_caller is not None:
                target = self.router.route_internal(call.agent_caller, call.did)
            else:
                target = self.router.route_did(normalise_number(call.did))
            if target is None:
                call.disposition, call.cause = "failed", "no route"
                self._run(call.caller, call.caller.reject(404, "No route to this number"))
                return
            call.path.append(f"{target.kind}:{target.name}")
            if target.kind == "refused":
                call.disposition, call.cause = "failed", target.name
                log.warning("dial_refused", call=call.id, agent=call.agent_caller,
                            dialled=call.did, reason=target.name)
                self._run(call.caller, call.caller.reject(403, target.name[:100]))
                return
            if target.kind == "trunk":
                await self._dial_trunk(call, target.name, target.number)
            elif target.kind == "agent":
                await self._connect_direct(call, [target.name])
            elif target.kind == "queue":
                await self._answer(call)
                await self._hunt_queue(call, target.name)
            else:
                await self._answer(call)
                outcome = await self._run_ivr(call, target)
                if outcome is not None:
                    kind, name = outcome
                    call.path.append(f"{kind}:{name}")
                    if kind == "queue":
                        await self._hunt_queue(call, name)
                    elif kind == "agent":
                        await self._hunt_agents(call, [name], hold=None)
            if call.agent_leg is not None and not call.agent_leg.ended:
                await self._talk(call)
            if call.queue and call.agent and self.acd is not None:
                self.acd_handle(AcdCallEnded(call.id, call.agent))
        except CallerGone:
            if call.disposition not in ("answered",):
                call.disposition = "abandoned" if call.answered_at else "cancelled"
        except (MediaError, ValueError) as exc:
            log.warning("call_failed", call=call.id, error=str(exc))
            call.cause = f"error: {exc}"
        finally:
            await self._end(call)

    async def _answer(self, call: CallContext) -> None:
        """Answer the caller with our own media session (for the IVR and hold audio)."""
        opened = await self.media.open_session(call.caller.remote_sdp.decode() or None)
        call.caller_media = opened.session_id
        self._sessions[opened.session_id] = call
        self._run(call.caller, call.caller.answer(opened.local_sdp.encode(), time.monotonic()))
        call.answered_at = time.time()
        self.stats["answered"] += 1

    async def _connect_direct(self, call: CallContext, agents: list[str]) -> None:
        """Ring the agent without answering the caller first: the caller hears ringing; when
        the agent answers, both sides are answered and bridged."""
        if not await self._hunt_agents(call, agents, hold=None):
            call.disposition = call.disposition if call.disposition != "failed" else "no_answer"
            self._run(call.caller, call.caller.reject(480, "No agent available"))

    async def _hunt_queue(self, call: CallContext, queue: str) -> None:
        """The caller waits in `queue` with the hold program while the ACD engine offers the
        call to agents by the queue's strategy; returns once an agent is connected, or raises
        `CallerGone`. Overflow targets are followed."""
        for _hop in range(5):  # overflow chains are bounded
            target = await self._queued(call, queue)
            if target is None:
                return
            kind, _, name = target.partition(":")
            call.path.append(f"overflow:{target}")
            if kind == "queue":
                queue = name
                continue
            if kind == "agent":
                await self._hunt_agents(call, [name], hold=None)
                return
            if kind == "flow":
                outcome = await self._run_ivr(call, RouteTarget("flow", name))
                if outcome is not None and outcome[0] == "queue":
                    queue = outcome[1]
                    continue
                if outcome is not None:
                    await self._hunt_agents(call, [outcome[1]], hold=None)
            return
        call.disposition = "failed"

    async def _queued(self, call: CallContext, queue: str) -> str | None:
        """One stay in one queue: None when connected (or when the queue gave up without an
        overflow target), else the overflow target."""
        assert self.acd is not None and call.caller_media is not None
        call.queue = queue
        status = call.variables.get("customer.status", "standard")
        if status not in self.acd.statuses:
            status = "standard"
        pinned = tuple(a for a in call.variables.get("customer.pinned_agents", "").split(",")
                       if a)
        self.acd_handle(CallEnqueued(QueuedCall(
            call=call.id, queue=queue, priority=call.priority or None,
            enqueued_at=time.time(), pinned_agents=pinned, customer_status=status,
            caller=call.caller_number, variables=dict(call.variables),
        )))
        overflow: str | None = None
        try:
            while True:
                event = await call.inbox.get()
                if isinstance(event, HungUp) and event.call == call.id:
                    self.acd_handle(CallAbandoned(call.id))
                    raise CallerGone
                if isinstance(event, AcdOrder):
                    done, overflow = await self._acd_order(call, event.command)
                    if done:
                        return overflow
                elif isinstance(event, Answered | Failed | HungUp | Ringing):
                    self._offer_progress(call, event)
                elif isinstance(event, RemoteAnswer):
                    continue
                elif isinstance(event, DtmfReceived) and event.call == call.id:
                    self.acd_handle(CallExitKeyPressed(call.id, event.digit))
                elif isinstance(event, PlaybackFinished) and event.playback == "announcement":
                    await self._play_hold(call)
        finally:
            for agent in list(call.offers):
                await self._drop_offer(call, agent, "left queue")

    async def _acd_order(self, call: CallContext, command: object) -> tuple[bool, str | None]:
        """Carry out one ACD command for this call; (finished waiting, overflow target)."""
        if isinstance(command, CallJoinedQueue):
            call.hold_program = command.hold_program
            await self._play_hold(call)
        elif isinstance(command, OfferCall):
            for agent in command.agents:
                await self._ring(call, agent)
        elif isinstance(command, CancelOffer):
            await self._drop_offer(call, command.agent, command.reason)
        elif isinstance(command, ConnectCall):
            await self._connect_offer(call, command.agent)
            return True, None
        elif isinstance(command, Announce):
            await self._announce(call, command)
        elif isinstance(command, Overflow):
            return True, command.target
        elif isinstance(command, CallLeftQueue) and command.reason not in ("answered",):
            # No overflow target followed: tell the caller and end the call.
            call.disposition = "abandoned" if command.reason == "abandoned" else "no_answer"
            call.cause = f"queue {command.reason}"
            lang = call.variables.get("language", "de")
            await self.play(call, "left", Playlist((f"{lang}/all_agents_busy",
                                                    f"{lang}/goodbye")), False)
            await self._wait_playback(call, "left", 20.0)
            return True, None
        return False, None

    async def _play_hold(self, call: CallContext) -> None:
        assert call.caller_media is not None
        lang = call.variables.get("language", "de")
        config = self.hold_programs.get(call.hold_program) or self.hold_programs.get("default")
        if config is None:
            program = HoldProgram(music=("music/hold_music",))
        else:
            program = HoldProgram(
                music=tuple(m.replace("{lang}", lang) for m in config.music),
                announcements=tuple(a.replace("{lang}", lang) for a in config.announcements),
                ads=tuple(a.replace("{lang}", lang) for a in config.ads),
                interval_s=config.interval_s, shuffle_ads=config.shuffle_ads,
                first_insert_after_s=config.first_insert_after_s,
            )
        await self.play(call, "hold", program, False)

    async def _announce(self, call: CallContext, command: Announce) -> None:
        lang = call.variables.get("language", "de")
        prompts: list[str] = []
        if command.kind == "position" and command.position:
            prompts += [f"{lang}/you_are_caller", f"{lang}/numbers/{min(command.position, 30)}",
                        f"{lang}/in_the_queue"]
        elif command.kind == "ewt" and command.ewt_s is not None:
            minutes = round(command.ewt_s / 60)
            prompts.append(f"{lang}/estimated_wait")
            if minutes < 1:
                prompts.append(f"{lang}/less_than_one_minute")
            else:
                prompts += [f"{lang}/numbers/{min(minutes, 30)}",
                            f"{lang}/minute" if minutes == 1 else f"{lang}/minutes"]
        else:
            prompts.append(f"{lang}/thank_you_for_waiting")
        await self.play(call, "announcement", Playlist(tuple(prompts)), False)

    async def _wait_playback(self, call: CallContext, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = await asyncio.wait_for(call.inbox.get(), remaining)
            except TimeoutError:
                return
            if isinstance(event, HungUp) and event.call == call.id:
                raise CallerGone
            if isinstance(event, PlaybackFinished) and event.playback == name:
                return

    async def _ring(self, call: CallContext, agent: str) -> None:
        """Start ringing every registered phone of `agent` (forked; the first answer wins)."""
        contacts = self.registrar.lookup(agent, time.time())
        if not contacts:
            self.acd_handle(OfferFailed(call.id, agent, "unavailable"))
            return
        opened = await self.media.open_session(None)
        self._sessions[opened.session_id] = call
        offer = AgentOffer(agent, opened.session_id)
        call.offers[agent] = offer
        caller_id = NameAddr(SipUri(self.domain, user=call.caller_number or "anonymous"))
        for binding in contacts:
            leg = OutboundLeg(
                self._next_id("a"), self, SipUri.parse(binding.contact),
                Address(binding.source_transport, binding.source_host, binding.source_port),
                caller_id, NameAddr(SipUri(self.domain, user=agent)),
                opened.local_sdp.encode(), time.monotonic(),
                t1=self.endpoint.timers.t1, t2=self.endpoint.timers.t2,
            )
            self.legs[leg.call] = leg
            self.leg_call[leg.call] = call
            offer.legs.append(leg)
            self._run(leg, leg.start())
        log.info("agent_offered", call=call.id, agent=agent, queue=call.queue,
                 contacts=len(offer.legs))

    def _offer_progress(self, call: CallContext, event: object) -> None:
        leg_id = getattr(event, "call", "")
        offer = next((o for o in call.offers.values() if any(leg.call == leg_id
                                                              for leg in o.legs)), None)
        if offer is None:
            if isinstance(event, Answered):
                # An answer for an offer already withdrawn: end that leg at once.
                leg = self.legs.get(leg_id)
                if isinstance(leg, OutboundLeg):
                    self._run(leg, [a for a in leg.hangup("answered elsewhere")
                                    if not isinstance(a, HungUp)])
            return
        if isinstance(event, Answered):
            if offer.answered is None:
                offer.answered = next(leg for leg in offer.legs if leg.call == leg_id)
                for leg in offer.legs:
                    if leg is not offer.answered:
                        self._run(leg, leg.cancel("answered elsewhere"))
                self.acd_handle(OfferAnswered(call.id, offer.agent))
        elif isinstance(event, Failed | HungUp):
            offer.failed.add(leg_id)
            if offer.answered is None and len(offer.failed) == len(offer.legs):
                status = event.status if isinstance(event, Failed) else 487
                reason: OfferFailure = ("busy" if status in (486, 600) else
                                        "rejected" if status in (603, 403) else "no_answer")
                self.acd_handle(OfferFailed(call.id, offer.agent, reason))

    async def _drop_offer(self, call: CallContext, agent: str, reason: str) -> None:
        offer = call.offers.pop(agent, None)
        if offer is None:
            return
        for leg in offer.legs:
            if not leg.ended:
                self._run(leg, [a for a in leg.hangup(reason) if not isinstance(a, HungUp)])
        self._sessions.pop(offer.session, None)
        try:
            await self.media.close(offer.session)
        except MediaError:
            pass

    async def _connect_offer(self, call: CallContext, agent: str) -> None:
        offer = call.offers.pop(agent)
        assert offer.answered is not None and call.caller_media is not None
        call.agent_leg, call.agent_media, call.agent = offer.answered, offer.session, agent
        await self.media.update_session(offer.session, offer.answered.remote_sdp.decode())
        await self.media.stop(call.caller_media)
        await self.media.bridge(call.caller_media, offer.session)
        call.disposition = "answered"
        log.info("agent_connected", call=call.id, agent=agent, queue=call.queue)

    # ------------------------------------------------------------------ the ACD engine

    def attach_acd(self, engine: AcdEngine,
                   hold_programs: Mapping[str, HoldProgramConfig]) -> None:
        self.acd = engine
        self.hold_programs = dict(hold_programs)
        now = time.time()
        for agent in engine.agents:
            self.acd_handle(AcdAgentLoggedIn(agent))
            if self.registrar.lookup(agent, now):
                self.acd_handle(AgentDeviceAvailable(agent))

    def agent_device(self, agent: str, available: bool) -> None:
        """The registrar saw `agent`'s phones come or go."""
        if self.acd is not None and agent in self.acd.agents:
            self.acd_handle(AgentDeviceAvailable(agent) if available
                            else AgentDeviceUnavailable(agent))

    def acd_handle(self, event: AcdEvent) -> None:
        if self.acd is None:
            return
        commands = self.acd.handle(event, time.time())
        for command in commands:
            call_id = getattr(command, "call", None)
            if isinstance(command, AgentStateChanged):
                log.info("agent_state", agent=command.agent, old=command.old, new=command.new,
                         reason=command.reason or None)
                if self.on_agent_event is not None:
                    self.on_agent_event(command)
            elif isinstance(command, EventRejected | EventDeferred):
                log.debug("acd_event_not_applied", event=type(command.event).__name__,
                          reason=command.reason)
            elif isinstance(call_id, str) and call_id in self.calls:
                self.calls[call_id].inbox.put_nowait(AcdOrder(command))
        self._acd_rearm()

    def _acd_rearm(self) -> None:
        if self._acd_timer is not None:
            self._acd_timer.cancel()
            self._acd_timer = None
        deadline = self.acd.next_deadline() if self.acd is not None else None
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._acd_timer = asyncio.get_running_loop().call_later(
                delay, lambda: self.acd_handle(AcdTimerFired()))

    async def _hunt_agents(self, call: CallContext, agents: list[str],
                           hold: Source | None) -> bool:
        """Offer the call to each agent in turn; True when one answered (and is bridged)."""
        for agent in agents:
            if await self._offer(call, agent, hold):
                return True
        return False

    async def _offer(self, call: CallContext, agent: str, hold: Source | None) -> bool:
        contacts = self.registrar.lookup(agent, time.time())
        if not contacts or self._agent_busy(agent):
            return False
        if call.caller_media is not None and hold is not None:
            await self.media.play(call.caller_media, hold)
        opened = await self.media.open_session(None)
        self._sessions[opened.session_id] = call
        legs: list[OutboundLeg] = []
        caller_id = NameAddr(SipUri(self.domain, user=call.caller_number or "anonymous"))
        for binding in contacts:
            target = SipUri.parse(binding.contact)
            destination = Address(binding.source_transport, binding.source_host,
                                  binding.source_port)
            leg = OutboundLeg(self._next_id("a"), self, target, destination, caller_id,
                              NameAddr(SipUri(self.domain, user=agent)),
                              opened.local_sdp.encode(), time.monotonic(),
                              t1=self.endpoint.timers.t1, t2=self.endpoint.timers.t2)
            self.legs[leg.call] = leg
            self.leg_call[leg.call] = call
            legs.append(leg)
            self._run(leg, leg.start())
        log.info("agent_offered", call=call.id, agent=agent, contacts=len(legs))
        winner = await self._await_answer(call, legs, RING_TIMEOUT_S)
        for leg in legs:
            if leg is not winner:
                self._run(leg, leg.cancel("answered elsewhere" if winner else "ring timeout"))
        if winner is None:
            await self.media.close(opened.session_id)
            self._sessions.pop(opened.session_id, None)
            return False
        call.agent_leg, call.agent_media, call.agent = winner, opened.session_id, agent
        await self.media.update_session(opened.session_id, winner.remote_sdp.decode())
        if call.caller_media is None:
            await self._answer(call)
        else:
            await self.media.stop(call.caller_media)
        assert call.caller_media is not None
        await self.media.bridge(call.caller_media, opened.session_id)
        call.disposition = "answered"
        log.info("agent_connected", call=call.id, agent=agent)
        return True

    async def _dial_trunk(self, call: CallContext, trunk_name: str, number: str) -> None:
        """An agent's outside call: one leg to the carrier; the agent hears the carrier's
        progress as ringing; on answer both sides are bridged."""
        trunk = self.router.trunks[trunk_name]
        opened = await self.media.open_session(None)
        self._sessions[opened.session_id] = call
        domain = trunk.from_domain or trunk.host
        caller_id = trunk.caller_id or call.caller_number
        from_addr = NameAddr(SipUri(domain, user=caller_id))
        to_addr = NameAddr(SipUri(domain, user=number))
        target = SipUri(trunk.host, user=number, port=trunk.port)
        credentials = ((trunk.username, trunk.password)
                       if trunk.username and trunk.password else None)
        leg = OutboundLeg(self._next_id("t"), self, target,
                          Address(trunk.transport, trunk.host, trunk.port), from_addr, to_addr,
                          opened.local_sdp.encode(), time.monotonic(),
                          extra_headers=(("P-Asserted-Identity", f"<sip:{caller_id}@{domain}>"),),
                          t1=self.endpoint.timers.t1, t2=self.endpoint.timers.t2,
                          credentials=credentials)
        self.legs[leg.call] = leg
        self.leg_call[leg.call] = call
        call.direction = "outbound"
        self._run(leg, leg.start())
        log.info("trunk_dialled", call=call.id, trunk=trunk_name, number=number)
        winner = await self._await_answer(call, [leg], 60.0)
        if winner is None:
            self._run(leg, leg.cancel("no answer"))
            await self.media.close(opened.session_id)
            call.disposition = "no_answer" if leg.status in (0, 408, 480, 487) else "failed"
            if leg.status == 486 or leg.status == 600:
                call.disposition = "busy"
            self._run(call.caller, call.caller.reject(leg.status if leg.status >= 400 else 480))
            return
        call.agent_leg, call.agent_media = winner, opened.session_id
        await self.media.update_session(opened.session_id, winner.remote_sdp.decode())
        await self._answer(call)
        assert call.caller_media is not None
        await self.media.bridge(call.caller_media, opened.session_id)
        call.disposition = "answered"

    async def _await_answer(self, call: CallContext, legs: list[OutboundLeg],
                            timeout: float) -> OutboundLeg | None:
        ids = {leg.call: leg for leg in legs}
        deadline = time.monotonic() + timeout
        failed: set[str] = set()
        while len(failed) < len(legs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                event = await asyncio.wait_for(call.inbox.get(), remaining)
            except TimeoutError:
                return None
            if isinstance(event, HungUp) and event.call == call.id:
                for leg in legs:
                    self._run(leg, leg.cancel("caller hung up"))
                raise CallerGone
            leg_id = getattr(event, "call", None)
            if leg_id not in ids:
                continue
            if isinstance(event, Answered):
                return ids[leg_id]
            if isinstance(event, Ringing) and call.caller_media is None:
                self._run(call.caller, call.caller.ring())
            elif isinstance(event, Failed | HungUp):
                failed.add(leg_id)
        return None

    def _agent_busy(self, agent: str) -> bool:
        return any(c.agent == agent and c.agent_leg is not None and not c.agent_leg.ended
                   for c in self.calls.values())

    async def _talk(self, call: CallContext) -> None:
        """Bridged: wait until either side hangs up, then end the other."""
        assert call.agent_leg is not None
        while True:
            event = await call.inbox.get()
            if isinstance(event, HungUp):
                call.hangup_by = "caller" if event.call == call.id else "agent"
                call.cause = event.cause
                return
            if isinstance(event, MediaTimedOut):
                call.hangup_by, call.cause = "pbx", "rtp_timeout"
                log.warning("rtp_timeout", call=call.id)
                return
            if isinstance(event, RemoteOffer):
                await self._remote_offer(call, event)
            elif isinstance(event, DtmfReceived) and event.call == call.id:
                pass  # DTMF during the conversation is passed through as RTP by the bridge

    async def _remote_offer(self, call: CallContext, offer: RemoteOffer) -> None:
        """Hold/resume or a codec change from either side: answer from our session."""
        is_caller = offer.call == call.id
        session = call.caller_media if is_caller else call.agent_media
        leg: Leg | None = call.caller if is_caller else call.agent_leg
        if session is None or leg is None:
            return
        answer = await self.media.update_session(session, offer.sdp.decode())
        self._run(leg, leg.answer_reinvite(offer.transaction, answer.encode()))
        other = call.agent_media if is_caller else call.caller_media
        if other is None or call.caller_media is None or call.agent_media is None:
            return
        held = _is_hold(offer.sdp)
        if held and not call.on_hold:
            # The far end put the call on hold: the other side hears the hold program.
            call.on_hold = True
            await self.media.unbridge(call.caller_media, call.agent_media)
            await self.media.play(other, HoldProgram(music=("music/hold_music",)))
            log.info("call_held", call=call.id, by="caller" if is_caller else "agent")
        elif not held and call.on_hold:
            call.on_hold = False
            await self.media.stop(other)
            await self.media.bridge(call.caller_media, call.agent_media)
            log.info("call_resumed", call=call.id, by="caller" if is_caller else "agent")

    async def _wait(self, call: CallContext, seconds: float) -> None:
        """Sleep, but notice the caller hanging up."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = await asyncio.wait_for(call.inbox.get(), remaining)
            except TimeoutError:
                return
            if isinstance(event, HungUp) and event.call == call.id:
                raise CallerGone

    # ------------------------------------------------------------------ IVR

    async def _run_ivr(self, call: CallContext, target: RouteTarget) -> tuple[str, str] | None:
        """Walk the caller through the flow; returns where the flow sent the call (("queue",
        name) or ("agent", extension)), or None when the flow ended the call itself."""
        flow = self.flows.get(target.name)
        if flow is None:
            raise ValueError(f"flow {target.name!r} is not configured")
        variables = {"caller": call.caller_number, "did": call.did,
                     "language": target.language or flow.language}
        session = IvrSession(flow, call.id, variables, hooks=self.hooks)
        commands = session.start(time.time())
        while True:
            await self._ivr_commands(call, session, commands)
            if session.finished:
                break
            deadline = session.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            try:
                event = await asyncio.wait_for(call.inbox.get(), timeout)
            except TimeoutError:
                commands = session.handle_timer(time.time())
                continue
            if isinstance(event, HungUp) and event.call != call.id:
                continue
            if isinstance(event, DtmfReceived | PlaybackFinished | HungUp | MediaTimedOut
                          | CustomerFound):
                commands = session.handle(event, time.time())
            else:
                commands = []
        call.path.extend(session.path)
        call.variables.update(session.variables)
        outcome = session.outcome
        log.info("ivr_finished", call=call.id, flow=target.name, path=list(session.path),
                 outcome=outcome.kind if outcome else None,
                 target=outcome.target if outcome else None)
        if outcome is None or outcome.kind == "hung_up":
            raise CallerGone
        if outcome.kind == "queued":
            call.priority = outcome.priority
            return ("queue", outcome.target)
        if outcome.kind == "transferred":
            return ("agent", outcome.target)
        call.disposition = "completed" if outcome.kind == "completed" else outcome.kind
        return None

    async def _ivr_commands(self, call: CallContext, session: IvrSession,
                            commands: Iterable[object]) -> None:
        assert call.caller_media is not None
        for command in commands:
            if isinstance(command, Play):
                source = Playlist(items=tuple(command.prompts), repeat=command.loop)
                try:
                    await self.play(call, command.playback, source, command.barge_in)
                except MediaError as exc:
                    # A missing prompt must not strand the caller: report it as played.
                    log.error("prompt_failed", call=call.id, prompts=command.prompts,
                              error=str(exc))
                    call.inbox.put_nowait(PlaybackFinished(call.id, command.playback))
            elif isinstance(command, StopPlayback):
                await self.media.stop(call.caller_media)
            elif isinstance(command, Hangup):
                call.hangup_by, call.cause = "pbx", command.cause
                self._run(call.caller, [a for a in call.caller.hangup(command.cause)
                                        if not isinstance(a, HungUp)])
            elif isinstance(command, LookupCustomer):
                self._spawn(self._lookup(call, command))
            elif isinstance(command, EnqueueCall):
                call.pinned_agents = tuple(command.pinned_agents)
                call.variables.update(command.variables)

    async def _lookup(self, call: CallContext, request: LookupCustomer) -> None:
        directory = self.customers
        customer = None
        error = ""
        if directory is None:
            error = "no customer directory"
        else:
            lookup = directory.by_phone if request.by == "phone" else directory.by_number
            try:
                customer = await asyncio.to_thread(lookup, request.value)
            except Exception as exc:  # storage trouble: the flow takes its not-found branch
                error = str(exc)
                log.error("customer_lookup_failed", call=call.id, error=error)
        call.inbox.put_nowait(CustomerFound(call.id, request.request, customer, error))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def play(self, call: CallContext, name: str, source: Source,
                   barge_in: bool) -> None:
        """Play for the IVR; remembers the IVR's name for the playback."""
        assert call.caller_media is not None
        playback_id = await self.media.play(call.caller_media, source, barge_in=barge_in)
        call.playbacks[playback_id] = name

    # ------------------------------------------------------------------ media events

    def _on_media_event(self, event: object) -> None:
        session_id = getattr(event, "session_id", None)
        call = self._sessions.get(session_id or "")
        if call is None:
            return
        if isinstance(event, DtmfDetected) and session_id == call.caller_media:
            call.inbox.put_nowait(DtmfReceived(call.id, event.digit, source=event.method.value))
        elif isinstance(event, MediaPlaybackFinished) and session_id == call.caller_media:
            name = call.playbacks.pop(event.playback_id, event.playback_id)
            call.inbox.put_nowait(PlaybackFinished(
                call.id, name, interrupted=event.reason is not PlaybackEnd.COMPLETED))
        elif isinstance(event, RtpTimedOut):
            call.inbox.put_nowait(MediaTimedOut(call.id))

    # ------------------------------------------------------------------ trunk registration

    def start_trunk_registrations(self) -> None:
        """Register to every carrier trunk configured with `register: true`."""
        now = time.monotonic()
        for trunk in self.router.trunks.values():
            if not trunk.registers or not trunk.username or not trunk.password:
                continue
            reg = TrunkRegistration(
                trunk.name, self, Address(trunk.transport, trunk.host, trunk.port),
                trunk.from_domain or trunk.host, trunk.username, trunk.password,
                trunk.register_expires, f"{self.ids.token(8)}@pbx",
            )
            self.trunk_regs[reg.leg] = reg
            self._run_reg(reg, reg.start(now))

    def _run_reg(self, reg: TrunkRegistration, actions: Iterable[object]) -> None:
        now = time.monotonic()
        before = reg.state
        for action in actions:
            if isinstance(action, SendRequest):
                tx = self.endpoint.send_request(action.request, action.destination, now)
                self._client_tx[tx] = action.leg
        if reg.state is not before:
            status = reg.status()
            level = log.warning if status.state == "failed" else log.info
            level("trunk_registration", trunk=reg.trunk, state=status.state,
                  status=status.last_status, error=status.last_error or None)
        handle = self._timers.pop(reg.leg, None)
        if handle is not None:
            handle.cancel()
        deadline = reg.next_deadline()
        if deadline is not None:
            self._timers[reg.leg] = asyncio.get_running_loop().call_at(
                deadline, lambda: self._run_reg(reg, reg.handle_timer(time.monotonic())))
        self.flush()

    def trunk_status(self) -> list[dict[str, object]]:
        return [dataclasses.asdict(reg.status()) for reg in self.trunk_regs.values()]

    # ------------------------------------------------------------------ the end of a call

    async def _end(self, call: CallContext) -> None:
        for leg in (call.caller, call.agent_leg):
            if leg is not None and not leg.ended:
                actions = leg.hangup("normal")
                self._run(leg, [a for a in actions if not isinstance(a, HungUp)])
                if not call.hangup_by:
                    call.hangup_by = "pbx"
        for session in (call.caller_media, call.agent_media):
            if session is not None:
                self._sessions.pop(session, None)
                try:
                    await self.media.close(session)
                except MediaError:
                    pass
        self.calls.pop(call.id, None)
        self.stats["active"] -= 1
        self.stats["completed"] += 1
        record = CallDetailRecord(
            call_id=call.caller.invite.call_id,
            direction=call.direction if not call.agent_caller or call.direction == "outbound"
            else "internal",
            caller=call.caller_number,
            callee=call.agent or call.did,
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=time.time(),
            disposition=call.disposition,
            hangup_cause=f"{call.hangup_by}:{call.cause}" if call.hangup_by else call.cause,
            agent=call.agent,
            queue=call.queue,
            did=call.did,
            ivr_path=tuple(call.path),
            variables=dict(call.variables),
        )
        log.info("call_ended", call=call.id, call_id=record.call_id,
                 disposition=record.disposition, hangup=record.hangup_cause, agent=call.agent,
                 path=call.path)
        try:
            await asyncio.to_thread(self.write_cdr, record)
        except Exception:
            log.exception("cdr_write_failed", call=call.id)

    async def shutdown(self, drain_s: float = 0.0) -> None:
        """Stop taking calls; end the ones in progress with BYE (after `drain_s`)."""
        self.accepting = False
        now = time.monotonic()
        for reg in self.trunk_regs.values():
            self._run_reg(reg, reg.stop(now))
        if drain_s > 0 and self.calls:
            await asyncio.sleep(drain_s)
        for call in list(self.calls.values()):
            call.inbox.put_nowait(HungUp(call.id, by="local", cause="shutdown"))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)


__all__ = ["CallContext", "CallRouter", "Switchboard"]
