"""The call's script: route, answer, ring agents, dial the trunk, bridge, talk, hold, and end
with a CDR; plus the media events that belong to a call — L3."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from media.engine import MediaError
from media.events import DtmfDetected, PlaybackEnd, RtpTimedOut
from media.events import PlaybackFinished as MediaPlaybackFinished
from media.sources import HoldProgram, Source
from pbx.acd.events import CallEnded as AcdCallEnded
from pbx.call.events import (
    Answered,
    DtmfReceived,
    Failed,
    HungUp,
    MediaTimedOut,
    PlaybackFinished,
    Ringing,
)
from pbx.call.router import normalise_number
from pbx.call.sip_leg import (
    Leg,
    OutboundLeg,
    RemoteOffer,
)
from pbx.repositories import CallDetailRecord
from pbx.sip.endpoint import Address
from pbx.sip.uri import NameAddr, SipUri
from pbx.switchboard.context import (
    RING_TIMEOUT_S,
    CallContext,
    CallerGone,
    is_hold,
    log,
)

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class CallScript:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    async def _call_main(self: Switchboard, call: CallContext) -> None:
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
                log.warning(
                    "dial_refused",
                    call=call.id,
                    agent=call.agent_caller,
                    dialled=call.did,
                    reason=target.name,
                )
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

    async def _answer(self: Switchboard, call: CallContext) -> None:
        """Answer the caller with our own media session (for the IVR and hold audio)."""
        opened = await self.media.open_session(call.caller.remote_sdp.decode() or None)
        call.caller_media = opened.session_id
        self._sessions[opened.session_id] = call
        self._run(call.caller, call.caller.answer(opened.local_sdp.encode(), time.monotonic()))
        call.answered_at = time.time()
        self.stats["answered"] += 1

    async def _connect_direct(self: Switchboard, call: CallContext, agents: list[str]) -> None:
        """Ring the agent without answering the caller first: the caller hears ringing; when
        the agent answers, both sides are answered and bridged."""
        if not await self._hunt_agents(call, agents, hold=None):
            call.disposition = call.disposition if call.disposition != "failed" else "no_answer"
            self._run(call.caller, call.caller.reject(480, "No agent available"))

    async def _hunt_agents(
        self: Switchboard, call: CallContext, agents: list[str], hold: Source | None
    ) -> bool:
        """Offer the call to each agent in turn; True when one answered (and is bridged)."""
        for agent in agents:
            if await self._offer(call, agent, hold):
                return True
        return False

    async def _offer(self: Switchboard, call: CallContext, agent: str, hold: Source | None) -> bool:
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
            destination = Address(
                binding.source_transport, binding.source_host, binding.source_port
            )
            leg = OutboundLeg(
                self._next_id("a"),
                self,
                target,
                destination,
                caller_id,
                NameAddr(SipUri(self.domain, user=agent)),
                opened.local_sdp.encode(),
                time.monotonic(),
                t1=self.endpoint.timers.t1,
                t2=self.endpoint.timers.t2,
            )
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

    async def _dial_trunk(
        self: Switchboard, call: CallContext, trunk_name: str, number: str
    ) -> None:
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
        credentials = (
            (trunk.username, trunk.password) if trunk.username and trunk.password else None
        )
        leg = OutboundLeg(
            self._next_id("t"),
            self,
            target,
            Address(trunk.transport, trunk.host, trunk.port),
            from_addr,
            to_addr,
            opened.local_sdp.encode(),
            time.monotonic(),
            extra_headers=(("P-Asserted-Identity", f"<sip:{caller_id}@{domain}>"),),
            t1=self.endpoint.timers.t1,
            t2=self.endpoint.timers.t2,
            credentials=credentials,
        )
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

    async def _await_answer(
        self: Switchboard, call: CallContext, legs: list[OutboundLeg], timeout: float
    ) -> OutboundLeg | None:
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

    def _agent_busy(self: Switchboard, agent: str) -> bool:
        return any(
            c.agent == agent and c.agent_leg is not None and not c.agent_leg.ended
            for c in self.calls.values()
        )

    async def _talk(self: Switchboard, call: CallContext) -> None:
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

    async def _remote_offer(self: Switchboard, call: CallContext, offer: RemoteOffer) -> None:
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
        held = is_hold(offer.sdp)
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

    async def _wait(self: Switchboard, call: CallContext, seconds: float) -> None:
        """Sleep, but notice the caller hanging up."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = await asyncio.wait_for(call.inbox.get(), remaining)
            except TimeoutError:
                return
            if isinstance(event, HungUp) and event.call == call.id:
                raise CallerGone

    async def play(
        self: Switchboard, call: CallContext, name: str, source: Source, barge_in: bool
    ) -> None:
        """Play for the IVR; remembers the IVR's name for the playback."""
        assert call.caller_media is not None
        playback_id = await self.media.play(call.caller_media, source, barge_in=barge_in)
        call.playbacks[playback_id] = name

    def _on_media_event(self: Switchboard, event: object) -> None:
        session_id = getattr(event, "session_id", None)
        call = self._sessions.get(session_id or "")
        if call is None:
            return
        if isinstance(event, DtmfDetected) and session_id == call.caller_media:
            call.inbox.put_nowait(DtmfReceived(call.id, event.digit, source=event.method.value))
        elif isinstance(event, MediaPlaybackFinished) and session_id == call.caller_media:
            name = call.playbacks.pop(event.playback_id, event.playback_id)
            call.inbox.put_nowait(
                PlaybackFinished(
                    call.id, name, interrupted=event.reason is not PlaybackEnd.COMPLETED
                )
            )
        elif isinstance(event, RtpTimedOut):
            call.inbox.put_nowait(MediaTimedOut(call.id))

    async def _end(self: Switchboard, call: CallContext) -> None:
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
            direction=call.direction
            if not call.agent_caller or call.direction == "outbound"
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
        log.info(
            "call_ended",
            call=call.id,
            call_id=record.call_id,
            disposition=record.disposition,
            hangup=record.hangup_cause,
            agent=call.agent,
            path=call.path,
        )
        try:
            await asyncio.to_thread(self.write_cdr, record)
        except Exception:
            log.exception("cdr_write_failed", call=call.id)

    async def shutdown(self: Switchboard, drain_s: float = 0.0) -> None:
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
