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
from pbx.call.router import RouteTarget, normalise_number
from pbx.call.sip_leg import (
    InboundLeg,
    Leg,
    OutboundLeg,
    RemoteOffer,
)
from pbx.cti.control import ControlRefused
from pbx.repositories import CallDetailRecord
from pbx.sip.endpoint import Address
from pbx.sip.uri import NameAddr, SipUri
from pbx.switchboard.context import (
    RING_TIMEOUT_S,
    CallContext,
    CallerGone,
    Consultation,
    ControlOrder,
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
                self._reject_caller(call, 404, "No route to this number")
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
                self._reject_caller(call, 403, target.name[:100])
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
            await self._converse(call)
        except CallerGone:
            if call.disposition not in ("answered",):
                call.disposition = "abandoned" if call.answered_at else "cancelled"
        except (MediaError, ValueError) as exc:
            log.warning("call_failed", call=call.id, error=str(exc))
            call.cause = f"error: {exc}"
        except Exception:  # a bug in one call must not stop the switch: log, clean up
            log.exception("call_crashed", call=call.id)
            call.cause = call.cause or "internal error"
        finally:
            await self._end(call)

    def _reject_caller(self: Switchboard, call: CallContext, status: int, reason: str) -> None:
        """Refuse the caller: a final response to an inbound INVITE, a BYE to an originated
        call's agent leg."""
        if isinstance(call.caller, InboundLeg):
            self._run(call.caller, call.caller.reject(status, reason))
        else:
            self._run(
                call.caller,
                [a for a in call.caller.hangup(reason or "failed") if not isinstance(a, HungUp)],
            )

    async def originate(self: Switchboard, agent: str, number: str) -> str:
        """Click-to-dial: ring the agent's phone; when the agent answers, dial `number` (a
        colleague, one of our DIDs, or an outside number as the dial plan allows). Returns the
        new call's id at once; the rest happens in the call's own task."""
        target = self.router.route_internal(agent, number)
        if target is None or target.kind == "refused":
            raise ControlRefused(403, target.name if target else f"no route to {number}")
        contacts = self.registrar.lookup(agent, time.time())
        if not contacts:
            raise ControlRefused(409, f"agent {agent} has no registered phone")
        binding = contacts[0]
        opened = await self.media.open_session(None)
        caller = NameAddr(SipUri(self.domain, user=number), display_name=f"Call {number}")
        leg = self._phone_leg("o", binding, caller, agent, opened.local_sdp)
        call = CallContext(leg.call, leg, agent, number, None, agent)
        call.direction = "internal" if target.kind == "agent" else "outbound"
        self.leg_call[leg.call] = call
        self.calls[call.id] = call
        self._sessions[opened.session_id] = call
        self.stats["active"] += 1
        self._run(leg, leg.start())
        self._spawn(self._originate_main(call, opened.session_id, target))
        if self.desk is not None:
            self.desk.on_call_dialing(call.id, agent, number, None)
        log.info("originate", call=call.id, agent=agent, number=number, route=target.kind)
        return call.id

    async def _originate_main(
        self: Switchboard, call: CallContext, session: str, target: RouteTarget
    ) -> None:
        assert isinstance(call.caller, OutboundLeg)
        try:
            if await self._await_answer(call, [call.caller], RING_TIMEOUT_S) is None:
                self._run(call.caller, call.caller.cancel("agent did not answer"))
                call.disposition = "no_answer"
                return
            call.caller_media = session
            await self.media.update_session(session, call.caller.remote_sdp.decode())
            call.answered_at = time.time()
            call.path.append(f"{target.kind}:{target.name}")
            if target.kind == "trunk":
                await self._dial_trunk(call, target.name, target.number)
            elif target.kind == "agent":
                await self._play_hold(call)
                await self._hunt_agents(call, [target.name], hold=None)
            elif target.kind == "queue":
                await self._hunt_queue(call, target.name)
            await self._converse(call)
        except CallerGone:
            call.disposition = "cancelled"
        except (MediaError, ValueError) as exc:
            log.warning("call_failed", call=call.id, error=str(exc))
            call.cause = f"error: {exc}"
        except Exception:  # a bug in one call must not stop the switch: log, clean up
            log.exception("call_crashed", call=call.id)
            call.cause = call.cause or "internal error"
        finally:
            await self._end(call)

    async def _converse(self: Switchboard, call: CallContext) -> None:
        """Talk until someone hangs up, following blind transfers (at most a few)."""
        for _hop in range(5):
            if call.agent_leg is None or call.agent_leg.ended:
                return
            target = await self._talk(call)
            if target is None:
                break
            await self._transfer(call, target)
        if call.queue and call.agent and self.acd is not None:
            self.acd_handle(AcdCallEnded(call.id, call.agent))

    async def _answer(self: Switchboard, call: CallContext) -> None:
        """Answer the caller with our own media session (for the IVR and hold audio)."""
        assert isinstance(call.caller, InboundLeg)
        opened = await self.media.open_session(
            call.caller.remote_sdp.decode() or None, near=call.agent_media
        )
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
            self._reject_caller(call, 480, "No agent available")

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
        opened = await self.media.open_session(None, near=call.caller_media)
        self._sessions[opened.session_id] = call
        legs: list[OutboundLeg] = []
        caller_id = NameAddr(SipUri(self.domain, user=call.caller_number or "anonymous"))
        for binding in contacts:
            leg = self._phone_leg("a", binding, caller_id, agent, opened.local_sdp)
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
        opened = await self.media.open_session(None, near=call.caller_media)
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
            self._reject_caller(call, leg.status if leg.status >= 400 else 480, "")
            return
        call.agent_leg, call.agent_media = winner, opened.session_id
        await self.media.update_session(opened.session_id, winner.remote_sdp.decode())
        if call.caller_media is None:
            await self._answer(call)
        else:
            await self.media.stop(call.caller_media)
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
                if isinstance(call.caller, InboundLeg):
                    self._run(call.caller, call.caller.ring())
            elif isinstance(event, Failed | HungUp):
                failed.add(leg_id)
        return None

    def _agent_busy(self: Switchboard, agent: str) -> bool:
        return any(
            c.agent == agent and c.agent_leg is not None and not c.agent_leg.ended
            for c in self.calls.values()
        )

    async def _talk(self: Switchboard, call: CallContext) -> str | None:
        """Bridged: wait until either side hangs up (then end the other), or a CTI order
        transfers the caller (returns the target)."""
        assert call.agent_leg is not None
        while True:
            event = await call.inbox.get()
            consult = call.consult
            if isinstance(event, HungUp) and consult is not None and event.call == consult.leg.call:
                await self._end_consult(call, complete=False)  # the consulted party hung up
                continue
            if isinstance(event, HungUp) and event.call in (call.id, call.agent_leg.call):
                if consult is not None and event.call == call.agent_leg.call:
                    # The transferring agent hung up during the consultation: that completes
                    # the transfer (as on a desk phone).
                    await self._end_consult(call, complete=True)
                    continue
                call.hangup_by = "caller" if event.call == call.id else "agent"
                call.cause = event.cause
                return None
            if isinstance(event, MediaTimedOut):
                call.hangup_by, call.cause = "pbx", "rtp_timeout"
                log.warning("rtp_timeout", call=call.id)
                return None
            if isinstance(event, RemoteOffer):
                await self._remote_offer(call, event)
            elif isinstance(event, ControlOrder):
                if event.kind == "hangup":
                    call.hangup_by, call.cause = "agent", "hung up from the desktop"
                    return None
                if event.kind in ("hold", "resume"):
                    await self._pbx_hold(call, event.kind == "hold")
                elif event.kind == "transfer":
                    return event.target
                elif event.kind == "consult" and consult is None:
                    await self._consult(call, event.target)
                elif event.kind in ("complete_transfer", "cancel_transfer") and consult:
                    await self._end_consult(call, complete=event.kind == "complete_transfer")

    async def _consult(self: Switchboard, call: CallContext, target: str) -> None:
        """Attended transfer, first step: the caller waits with the hold program while the
        agent talks to `target` (agent:EXT) on a consultation leg."""
        assert call.agent_leg is not None and call.agent_media is not None
        kind, _, ext = target.partition(":")
        contacts = self.registrar.lookup(ext, time.time()) if kind == "agent" else []
        if not contacts:
            log.warning("consult_failed", call=call.id, target=target, reason="not reachable")
            return
        await self._pbx_hold(call, True)
        opened = await self.media.open_session(None, near=call.agent_media)
        self._sessions[opened.session_id] = call
        caller = NameAddr(SipUri(self.domain, user=call.agent))
        leg = self._phone_leg("k", contacts[0], caller, ext, opened.local_sdp)
        self.leg_call[leg.call] = call
        self._run(leg, leg.start())
        log.info("consult_started", call=call.id, agent=call.agent, target=target)
        if await self._await_answer(call, [leg], RING_TIMEOUT_S) is None:
            self._run(leg, leg.cancel("no answer"))
            self._sessions.pop(opened.session_id, None)
            await self.media.close(opened.session_id)
            await self._pbx_hold(call, False)
            log.info("consult_failed", call=call.id, target=target, reason="no answer")
            return
        await self.media.update_session(opened.session_id, leg.remote_sdp.decode())
        await self.media.bridge(call.agent_media, opened.session_id)
        call.consult = Consultation(ext, leg, opened.session_id)

    async def _end_consult(self: Switchboard, call: CallContext, complete: bool) -> None:
        """Attended transfer, second step: complete (the caller is put through to the
        consulted agent, the transferring agent leaves) or cancel (back to the caller)."""
        consult = call.consult
        assert consult is not None and call.agent_media is not None
        assert call.caller_media is not None and call.agent_leg is not None
        call.consult = None
        await self.media.unbridge(call.agent_media, consult.session)
        if not complete or consult.leg.ended:
            if not consult.leg.ended:
                self._run(
                    consult.leg,
                    [
                        a
                        for a in consult.leg.hangup("transfer cancelled")
                        if not isinstance(a, HungUp)
                    ],
                )
            self._sessions.pop(consult.session, None)
            await self.media.close(consult.session)
            await self._pbx_hold(call, False)
            log.info("consult_cancelled", call=call.id, target=consult.agent)
            return
        old_agent, old_leg, old_media = call.agent, call.agent_leg, call.agent_media
        if not old_leg.ended:
            self._run(
                old_leg, [a for a in old_leg.hangup("transferred") if not isinstance(a, HungUp)]
            )
        self._sessions.pop(old_media, None)
        await self.media.close(old_media)
        if call.queue and old_agent and self.acd is not None:
            self.acd_handle(AcdCallEnded(call.id, old_agent))
        call.agent_leg, call.agent_media, call.agent = consult.leg, consult.session, consult.agent
        await self.media.stop(call.caller_media)
        await self.media.bridge(call.caller_media, consult.session)
        call.on_hold = False
        call.path.append(f"transfer:agent:{consult.agent}")
        log.info(
            "call_transferred", call=call.id, by=old_agent, target=consult.agent, attended=True
        )
        if self.desk is not None:
            self.desk.on_call_transferred(call.id, f"agent:{consult.agent}", agent=consult.agent)

    async def _pbx_hold(self: Switchboard, call: CallContext, hold: bool) -> None:
        """Hold ordered from the desktop: the caller hears the hold program, the agent
        silence; resume bridges them again."""
        if call.caller_media is None or call.agent_media is None or hold == call.on_hold:
            return
        call.on_hold = hold
        if hold:
            await self.media.unbridge(call.caller_media, call.agent_media)
            await self._play_hold(call)
            if self.desk is not None:
                self.desk.on_call_held(call.id)
        else:
            await self.media.stop(call.caller_media)
            await self.media.bridge(call.caller_media, call.agent_media)
            if self.desk is not None:
                self.desk.on_call_resumed(call.id)
        log.info("call_held" if hold else "call_resumed", call=call.id, by="desktop")

    async def _transfer(self: Switchboard, call: CallContext, target: str) -> None:
        """Blind transfer: release the agent, then take the caller to `target`."""
        assert call.agent_leg is not None and call.caller_media is not None
        old_agent, old_leg, old_media = call.agent, call.agent_leg, call.agent_media
        self._run(old_leg, [a for a in old_leg.hangup("transferred") if not isinstance(a, HungUp)])
        if old_media is not None:
            await self.media.unbridge(call.caller_media, old_media)
            self._sessions.pop(old_media, None)
            await self.media.close(old_media)
        if call.queue and old_agent and self.acd is not None:
            self.acd_handle(AcdCallEnded(call.id, old_agent))
        call.agent_leg, call.agent_media, call.agent = None, None, ""
        call.on_hold = False
        call.path.append(f"transfer:{target}")
        log.info("call_transferred", call=call.id, by=old_agent, target=target)
        if self.desk is not None:
            self.desk.on_call_transferred(call.id, target)
        kind, _, name = target.partition(":")
        if kind == "queue":
            await self._hunt_queue(call, name)
        elif kind == "agent":
            await self._play_hold(call)
            await self._hunt_agents(call, [name], hold=None)
        else:
            decision = self.router.route_internal(old_agent, name)
            if decision is None or decision.kind != "trunk":
                reason = decision.name if decision is not None else "no route"
                log.warning("transfer_refused", call=call.id, target=target, reason=reason)
                return
            await self._dial_trunk(call, decision.name, decision.number)

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
        if self.desk is not None:
            self.desk.on_call_ended(call.id, call.cause or call.disposition)
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
        self.write_cdr(record)  # queued; written behind the call path

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
