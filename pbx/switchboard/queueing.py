"""Queues: the pure ACD engine's commands carried out for calls (hold program, announcements,
ringing agents, connecting, overflow), agent devices and states, and the queue log — L3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from media.engine import MediaError
from media.sources import HoldProgram, Playlist
from pbx.acd.engine import AcdEngine
from pbx.acd.events import (
    AcdEvent,
    AgentDeviceAvailable,
    AgentDeviceChanged,
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
from pbx.acd.events import TimerFired as AcdTimerFired
from pbx.acd.model import AgentStateChanged, QueuedCall
from pbx.call.events import (
    Answered,
    DtmfReceived,
    Failed,
    HungUp,
    Ringing,
)
from pbx.call.outbound_leg import (
    OutboundLeg,
)
from pbx.config.schema import HoldProgramConfig
from pbx.repositories import QueueLogEntry
from pbx.sip.uri import NameAddr, SipUri
from pbx.switchboard.context import (
    AcdOrder,
    AgentOffer,
    CallContext,
    CallerGone,
    DialerOrder,
    Phase,
    log,
)

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class Queueing:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    acd: AcdEngine | None
    hold_programs: dict[str, HoldProgramConfig]
    _acd_timer: asyncio.TimerHandle | None

    async def _queued(self: Switchboard, call: CallContext, queue: str) -> str | None:
        """One stay in `queue`: the caller hears the hold program and announcements while the
        ACD offers the call to agents. Returns None once an agent is connected (or the queue
        gave up with no target: the caller was told, the call ends), else the target the ACD
        sent the caller on to (overflow, exit key, max wait, max length, join/leave rules).
        Raises `CallerGone` when the caller left (the ACD hears it as abandoned)."""
        assert self.acd is not None and call.caller_media is not None
        if queue not in self.acd.queues:
            log.error("queue_unknown", call=call.id, queue=queue)
            await self._say_goodbye(call, "all_agents_busy", "failed", f"no queue {queue}")
            return None
        call.queue, call.phase = queue, Phase.QUEUED
        status = call.variables.get("customer.status", "standard")
        if status not in self.acd.statuses:
            status = "standard"
        pinned = tuple(a for a in call.variables.get("customer.pinned_agents", "").split(",") if a)
        self.acd_handle(
            CallEnqueued(
                QueuedCall(
                    call=call.id,
                    queue=queue,
                    priority=call.priority or None,
                    enqueued_at=time.time(),
                    skills=dict.fromkeys(call.skills, 1),
                    pinned_agents=pinned,
                    customer_status=status,
                    caller=call.caller_number,
                    variables=dict(call.variables),
                )
            )
        )
        try:
            while True:
                event = await self._receive(call)
                if isinstance(event, AcdOrder):
                    done, target = await self._acd_orders(call, event.commands)
                    if done:
                        return target
                elif isinstance(event, Answered | Failed | HungUp | Ringing):
                    self._offer_progress(call, event)
                elif isinstance(event, DtmfReceived) and event.call == call.id:
                    self.acd_handle(CallExitKeyPressed(call.id, event.digit))
                elif isinstance(event, DialerOrder):
                    # The dialer dropped this campaign call: no agent came in time.
                    call.dropped = getattr(event, "command", None)
                    self.acd_handle(CallAbandoned(call.id))
                    return None
                else:
                    self._stray(call, event)
        except CallerGone:
            self.acd_handle(CallAbandoned(call.id))
            raise
        finally:
            for agent in list(call.offers):
                await self._drop_offer(call, agent, "left queue")

    async def _acd_orders(
        self: Switchboard, call: CallContext, commands: tuple[object, ...]
    ) -> tuple[bool, str | None]:
        """Carry out one ACD step's commands for this call; (finished waiting, where to)."""
        left: CallLeftQueue | None = None
        for command in commands:
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
                call.path.append(f"overflow:{command.target}")
                log.info("queue_overflow", call=call.id, queue=command.queue,
                         target=command.target, reason=command.reason)
                return True, command.target
            elif isinstance(command, CallLeftQueue) and command.reason != "answered":
                left = command  # an Overflow in the same step says where to
        if left is None:
            return False, None
        # No target to go on to: tell the caller and end the call.
        disposition = "abandoned" if left.reason == "abandoned" else "no_answer"
        await self._say_goodbye(call, "all_agents_busy", disposition, f"queue {left.reason}")
        return True, None

    async def _play_hold(self: Switchboard, call: CallContext) -> None:
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
                interval_s=config.interval_s,
                shuffle_ads=config.shuffle_ads,
                first_insert_after_s=config.first_insert_after_s,
            )
        await self.play(call, "hold", program, False)

    async def _announce(self: Switchboard, call: CallContext, command: Announce) -> None:
        """Speak the ACD's announcement over the hold program (which then goes on where it
        was): the caller's position, followed by the estimated wait when the queue says
        `ewt: true`; or the wait alone; or the queue's periodic message."""
        lang = call.variables.get("language", "de")
        prompts: list[str] = []
        if command.kind == "position" and command.position:
            prompts += [
                f"{lang}/you_are_caller",
                f"{lang}/numbers/{min(command.position, 30)}",
                f"{lang}/in_the_queue",
            ]
        if command.kind in ("position", "ewt") and command.ewt_s is not None:
            minutes = round(command.ewt_s / 60)
            prompts.append(f"{lang}/estimated_wait")
            if minutes < 1:
                prompts.append(f"{lang}/less_than_one_minute")
            else:
                prompts += [
                    f"{lang}/numbers/{min(minutes, 30)}",
                    f"{lang}/minute" if minutes == 1 else f"{lang}/minutes",
                ]
        if command.kind == "periodic":
            queue = self.acd.queues.get(command.queue) if self.acd is not None else None
            periodic = queue.announce.periodic_prompts if queue is not None else ()
            prompts += [p.replace("{lang}", lang) for p in periodic] or [
                f"{lang}/thank_you_for_waiting"
            ]
        if not prompts or call.caller_media is None:
            return
        try:
            playback = await self.media.insert(call.caller_media, Playlist(tuple(prompts)))
        except MediaError as exc:
            log.error("announcement_failed", call=call.id, prompts=prompts, error=str(exc))
            return
        call.playbacks[playback] = "announcement"
        log.info("queue_announcement", call=call.id, kind=command.kind, prompts=prompts)

    async def _ring(self: Switchboard, call: CallContext, agent: str) -> None:
        """Start ringing every registered phone of `agent` (forked; the first answer wins)."""
        contacts = self.registrar.lookup(agent, time.time())
        if not contacts:
            self.acd_handle(OfferFailed(call.id, agent, "unavailable"))
            return
        opened = await self.media.open_session(None, near=call.caller_media)
        self._sessions[opened.session_id] = call
        offer = AgentOffer(agent, opened.session_id)
        call.offers[agent] = offer
        caller_id = NameAddr(SipUri(self.domain, user=call.caller_number or "anonymous"))
        for binding in contacts:
            leg = self._phone_leg("a", binding, caller_id, agent, opened.local_sdp)
            self.leg_call[leg.call] = call
            call.leg_media[leg.call] = opened.session_id
            offer.legs.append(leg)
            self._run(leg, leg.start())
        log.info(
            "agent_offered", call=call.id, agent=agent, queue=call.queue, contacts=len(offer.legs)
        )

    def _offer_progress(self: Switchboard, call: CallContext, event: object) -> None:
        leg_id = getattr(event, "call", "")
        offer = next(
            (o for o in call.offers.values() if any(leg.call == leg_id for leg in o.legs)), None
        )
        if offer is None:
            if isinstance(event, Answered):
                # An answer for an offer already withdrawn: end that leg at once.
                leg = self.legs.get(leg_id)
                if isinstance(leg, OutboundLeg):
                    self._run(
                        leg,
                        [a for a in leg.hangup("answered elsewhere") if not isinstance(a, HungUp)],
                    )
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
                reason: OfferFailure = (
                    "busy"
                    if status in (486, 600)
                    else "rejected"
                    if status in (603, 403)
                    else "no_answer"
                )
                self.acd_handle(OfferFailed(call.id, offer.agent, reason))

    async def _drop_offer(self: Switchboard, call: CallContext, agent: str, reason: str) -> None:
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

    async def _connect_offer(self: Switchboard, call: CallContext, agent: str) -> None:
        offer = call.offers.pop(agent)
        assert offer.answered is not None and call.caller_media is not None
        call.agent_leg, call.agent_media, call.agent = offer.answered, offer.session, agent
        call.acd_connected = True
        await self.media.update_session(offer.session, offer.answered.remote_sdp.decode())
        await self.media.stop(call.caller_media)
        await self.media.bridge(call.caller_media, offer.session)
        call.disposition = "answered"
        log.info("agent_connected", call=call.id, agent=agent, queue=call.queue)

    def attach_acd(
        self: Switchboard, engine: AcdEngine, hold_programs: Mapping[str, HoldProgramConfig]
    ) -> None:
        self.acd = engine
        self.hold_programs = dict(hold_programs)
        now = time.time()
        for agent in engine.agents:
            self.acd_handle(AcdAgentLoggedIn(agent))
            if self.registrar.lookup(agent, now):
                self.acd_handle(AgentDeviceAvailable(agent))

    def agent_device(self: Switchboard, agent: str, available: bool) -> None:
        """The registrar saw `agent`'s phones come or go."""
        if self.acd is not None and agent in self.acd.agents:
            self.acd_handle(
                AgentDeviceAvailable(agent) if available else AgentDeviceUnavailable(agent)
            )

    def acd_handle(self: Switchboard, event: AcdEvent) -> None:
        if self.acd is None:
            return
        now = time.time()
        commands = self.acd.handle(event, now)
        if self.queue_log is not None:
            self._log_queue(event, commands, now)
        if self.desk is not None:
            self._tell_desk(event, commands)
        agents_moved = queues_moved = False
        orders: dict[str, list[object]] = {}
        for command in commands:
            call_id = getattr(command, "call", None)
            if isinstance(command, AgentStateChanged):
                agents_moved = True
                log.info(
                    "agent_state",
                    agent=command.agent,
                    old=command.old,
                    new=command.new,
                    reason=command.reason or None,
                )
                if self.on_agent_event is not None:
                    self.on_agent_event(command)
            elif isinstance(command, AgentDeviceChanged):
                agents_moved = True
            elif isinstance(command, EventRejected | EventDeferred):
                log.debug(
                    "acd_event_not_applied",
                    acd_event=type(command.event).__name__,
                    reason=command.reason,
                )
            elif isinstance(call_id, str) and call_id in self.calls:
                queues_moved |= isinstance(command, CallJoinedQueue | CallLeftQueue)
                orders.setdefault(call_id, []).append(command)
        for call_id, batch in orders.items():
            # One step's commands for a call go together: a CallLeftQueue is followed by the
            # Overflow that says where the caller goes.
            self.calls[call_id].inbox.put_nowait(AcdOrder(tuple(batch)))
        # The dialer recounts once per ACD step, not once per command.
        if self.campaigns and agents_moved:
            self.dialer_agents_changed()
        if self.campaigns and queues_moved:
            self.dialer_inbound_waits()
        self._acd_rearm()

    def _log_queue(self: Switchboard, event: object, commands: list[Any], now: float) -> None:
        """Queue-log lines for what just happened (issue 5: enqueue, offer, no-answer, answer,
        abandon, overflow, pause/unpause, wrap-up)."""
        assert self.queue_log is not None
        entries: list[QueueLogEntry] = []
        if isinstance(event, OfferFailed):
            queue = self.calls[event.call].queue if event.call in self.calls else ""
            entries.append(QueueLogEntry(now, event.reason, queue, event.call, event.agent))
        for c in commands:
            if isinstance(c, CallJoinedQueue):
                entries.append(
                    QueueLogEntry(
                        now,
                        "enqueue",
                        c.queue,
                        c.call,
                        "",
                        {"position": c.position, "priority": c.priority},
                    )
                )
            elif isinstance(c, OfferCall):
                entries += [
                    QueueLogEntry(now, "offer", c.queue, c.call, agent) for agent in c.agents
                ]
            elif isinstance(c, CancelOffer) and c.reason == "ring_timeout":
                queue = self.calls[c.call].queue if c.call in self.calls else ""
                entries.append(QueueLogEntry(now, "no_answer", queue, c.call, c.agent))
            elif isinstance(c, ConnectCall):
                entries.append(
                    QueueLogEntry(
                        now, "answer", c.queue, c.call, c.agent, {"waited_s": round(c.waited_s, 3)}
                    )
                )
            elif isinstance(c, CallLeftQueue) and c.reason != "answered":
                name = "abandon" if c.reason == "abandoned" else "left"
                entries.append(
                    QueueLogEntry(
                        now,
                        name,
                        c.queue,
                        c.call,
                        "",
                        {"reason": c.reason, "waited_s": round(c.waited_s, 3)},
                    )
                )
            elif isinstance(c, Overflow):
                entries.append(
                    QueueLogEntry(
                        now,
                        "overflow",
                        c.queue,
                        c.call,
                        "",
                        {"target": c.target, "reason": c.reason},
                    )
                )
            elif isinstance(c, AgentStateChanged):
                new, old = str(getattr(c.new, "value", c.new)), str(getattr(c.old, "value", c.old))
                if new in ("paused", "wrap_up") or old == "paused":
                    name = new if new in ("paused", "wrap_up") else "unpause"
                    entries.append(
                        QueueLogEntry(
                            now,
                            "pause" if name == "paused" else name,
                            c.queue or "",
                            c.call or "",
                            c.agent,
                            {"reason": c.reason or ""},
                        )
                    )
        for entry in entries:
            self.queue_log(entry)

    def _tell_desk(self: Switchboard, event: object, commands: list[Any]) -> None:
        """What the agent desktops and the wallboard need to know (pbx.cti wiring table)."""
        desk = self.desk
        assert desk is not None
        if isinstance(event, OfferFailed):
            desk.on_offer_cancelled(event.call, event.agent, event.reason)
        for c in commands:
            call = self.calls.get(getattr(c, "call", None) or "")
            if isinstance(c, AgentStateChanged):
                desk.on_agent_state(
                    c.agent,
                    str(getattr(c.new, "value", c.new)),
                    c.reason or "",
                    c.call,
                    c.queue,
                    c.at,
                )
            elif isinstance(c, AgentDeviceChanged):
                desk.on_agent_device(c.agent, c.available)
            elif call is None:
                continue
            elif isinstance(c, CallJoinedQueue):
                desk.on_call_queued(
                    c.call,
                    c.queue,
                    caller=call.caller_number,
                    did=call.did,
                    variables=dict(call.variables),
                    customer=call.customer,
                )
            elif isinstance(c, OfferCall):
                for agent in c.agents:
                    desk.on_call_presented(
                        c.call,
                        agent,
                        dict(call.variables),
                        call.customer,
                        queue=c.queue,
                        caller=call.caller_number,
                        did=call.did,
                    )
            elif isinstance(c, CancelOffer):
                desk.on_offer_cancelled(c.call, c.agent, c.reason)
            elif isinstance(c, ConnectCall):
                desk.on_call_answered(c.call, c.agent)

    def _acd_rearm(self: Switchboard) -> None:
        if self._acd_timer is not None:
            self._acd_timer.cancel()
            self._acd_timer = None
        deadline = self.acd.next_deadline() if self.acd is not None else None
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._acd_timer = asyncio.get_running_loop().call_later(
                delay, lambda: self.acd_handle(AcdTimerFired())
            )
