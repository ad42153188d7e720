"""The call's script: route, answer, follow the routing decisions (IVR, queues, overflow,
transfers), ring agents, dial the trunk, bridge, and end with a CDR; plus the media events that
belong to a call — L3. Talking, hold and transfers are in `pbx.switchboard.talk`; the inputs
every phase answers alike in `pbx.switchboard.inbox`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from media.engine import MediaError
from media.events import DtmfDetected, PlaybackEnd, RtpTimedOut
from media.events import PlaybackFinished as MediaPlaybackFinished
from media.sources import Playlist, Source, Tone
from pbx.acd.events import AgentCallEnded, AgentCallStarted
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
from pbx.call.sip_leg import InboundLeg, OutboundLeg
from pbx.cti.control import ControlRefused
from pbx.repositories import CallDetailRecord
from pbx.sip.endpoint import Address
from pbx.sip.uri import NameAddr, SipUri
from pbx.switchboard.context import (
    MAX_HOPS,
    RING_TIMEOUT_S,
    CallContext,
    CallerGone,
    Phase,
    log,
)

RINGBACK = Tone()  # what a caller put through to one agent hears while that phone rings

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class CallScript:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    async def _call_main(self: Switchboard, call: CallContext) -> None:
        if call.agent_caller is not None:
            self._agent_engaged(call, call.agent_caller)  # dialling from their phone: busy
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
                    rule=target.rule,
                )
                self._reject_caller(call, 403, "Forbidden")  # the rule is for the log only
                return
            if target.kind == "trunk":
                await self._dial_trunk(call, target.name, target.number,
                                       target.withhold_caller_id)
            elif target.kind == "agent":
                await self._connect_direct(call, [target.name])
            else:
                await self._answer(call)
                await self._follow(call, f"{target.kind}:{target.name}", target.language)
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
        call.leg_media[leg.call] = opened.session_id
        self.stats["active"] += 1
        self._agent_engaged(call, agent)
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
            if target.kind == "trunk":
                call.path.append(f"trunk:{target.name}")
                await self._dial_trunk(call, target.name, target.number,
                                       target.withhold_caller_id)
            else:
                await self._follow(call, f"{target.kind}:{target.name}", target.language)
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

    async def _answer(self: Switchboard, call: CallContext) -> None:
        """Answer the caller with our own media session (for the IVR and hold audio)."""
        assert isinstance(call.caller, InboundLeg)
        opened = await self.media.open_session(
            call.caller.remote_sdp.decode() or None, near=call.agent_media
        )
        call.caller_media = opened.session_id
        self._sessions[opened.session_id] = call
        call.leg_media[call.id] = opened.session_id
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
        """Ring every registered phone of `agent` (not through the ACD: a dialled extension,
        a transfer, an IVR `transfer` node); True once one answered and is bridged."""
        contacts = self.registrar.lookup(agent, time.time())
        if not contacts or self._agent_busy(agent):
            return False
        if call.caller_media is not None and hold is not None:
            await self.media.play(call.caller_media, hold)
        opened = await self.media.open_session(None, near=call.caller_media)
        self._sessions[opened.session_id] = call
        legs: list[OutboundLeg] = []
        caller_id = NameAddr(SipUri(self.domain, user=call.caller_number or "anonymous"))
        self._agent_engaged(call, agent)
        for binding in contacts:
            leg = self._phone_leg("a", binding, caller_id, agent, opened.local_sdp)
            self.leg_call[leg.call] = call
            call.leg_media[leg.call] = opened.session_id
            legs.append(leg)
            self._run(leg, leg.start())
        log.info("agent_offered", call=call.id, agent=agent, contacts=len(legs))
        if self.desk is not None:
            self.desk.on_call_presented(
                call.id, agent, dict(call.variables), call.customer, queue=call.queue,
                caller=call.caller_number, did=call.did,
            )
        phase, call.phase = call.phase, Phase.RINGING
        winner = await self._await_answer(call, legs, RING_TIMEOUT_S)
        call.phase = phase
        for leg in legs:
            if leg is not winner:
                self._run(leg, leg.cancel("answered elsewhere" if winner else "ring timeout"))
        if winner is None:
            await self.media.close(opened.session_id)
            self._sessions.pop(opened.session_id, None)
            self._agent_released(call, agent)
            if self.desk is not None:
                self.desk.on_offer_cancelled(call.id, agent, "no_answer")
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
        if self.desk is not None:
            self.desk.on_call_answered(call.id, agent)
        return True

    async def _dial_trunk(
        self: Switchboard, call: CallContext, trunk_name: str, number: str,
        withhold_caller_id: bool = False,
    ) -> None:
        """An agent's outside call: one leg to the carrier; the agent hears the carrier's
        progress as ringing; on answer both sides are bridged. `withhold_caller_id` (dialled
        with *31#): From is anonymous and `Privacy: id` asks the carrier to keep the asserted
        identity from the callee (RFC 3323 §4.2, RFC 3325 §9.3)."""
        trunk = self.router.trunks[trunk_name]
        opened = await self.media.open_session(None, near=call.caller_media)
        self._sessions[opened.session_id] = call
        domain = trunk.from_domain or trunk.host
        caller_id = trunk.caller_id or call.caller_number
        from_addr = NameAddr(SipUri(domain, user=caller_id))
        headers: tuple[tuple[str, str], ...] = (
            ("P-Asserted-Identity", f"<sip:{caller_id}@{domain}>"),
        )
        if withhold_caller_id:
            from_addr = NameAddr(SipUri("anonymous.invalid", user="anonymous"),
                                 display_name="Anonymous")
            headers += (("Privacy", "id"),)
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
            extra_headers=headers,
            t1=self.endpoint.timers.t1,
            t2=self.endpoint.timers.t2,
            credentials=credentials,
        )
        self.legs[leg.call] = leg
        self.leg_call[leg.call] = call
        call.leg_media[leg.call] = opened.session_id
        call.direction = "outbound"
        self._run(leg, leg.start())
        log.info("trunk_dialled", call=call.id, trunk=trunk_name, number=number)
        phase, call.phase = call.phase, Phase.RINGING
        winner = await self._await_answer(call, [leg], 60.0)
        call.phase = phase
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
        """Wait until one of `legs` answers (returned), all failed or `timeout` passed (None).
        The caller hanging up cancels them all and raises `CallerGone`."""
        ids = {leg.call: leg for leg in legs}
        deadline = time.monotonic() + timeout
        failed: set[str] = set()
        while len(failed) < len(legs):
            try:
                event = await self._receive(call, deadline - time.monotonic())
            except CallerGone:
                for leg in legs:
                    self._run(leg, leg.cancel("caller hung up"))
                raise
            if event is None:
                return None
            leg_id = getattr(event, "call", None)
            if leg_id not in ids:
                self._stray(call, event)
            elif isinstance(event, Answered):
                return ids[leg_id]
            elif isinstance(event, Ringing):
                if call.caller_media is None and isinstance(call.caller, InboundLeg):
                    self._run(call.caller, call.caller.ring())
            elif isinstance(event, Failed | HungUp):
                failed.add(leg_id)
        return None

    def _agent_busy(self: Switchboard, agent: str) -> bool:
        return any(
            c.agent == agent and c.agent_leg is not None and not c.agent_leg.ended
            for c in self.calls.values()
        )

    def _agent_engaged(self: Switchboard, call: CallContext, agent: str) -> None:
        """`agent`'s phone rings for, or talks on, this call outside the ACD's own offers: the
        ACD counts them busy until `_agent_released`."""
        if agent in call.direct_agents:
            return
        call.direct_agents.add(agent)
        if self.acd is not None and agent in self.acd.agents:
            self.acd_handle(AgentCallStarted(agent, call.id, call.direction))

    def _agent_released(self: Switchboard, call: CallContext, agent: str) -> None:
        if agent not in call.direct_agents:
            return
        call.direct_agents.discard(agent)
        if self.acd is not None and agent in self.acd.agents:
            self.acd_handle(AgentCallEnded(agent, call.id))

    async def _wait_playback(
        self: Switchboard, call: CallContext, name: str, timeout: float
    ) -> None:
        """Wait for the playback `name` to end (or `timeout`); the caller may hang up."""
        call.phase = Phase.IVR  # the caller hears a prompt: its end is this phase's input
        deadline = time.monotonic() + timeout
        while (event := await self._receive(call, deadline - time.monotonic())) is not None:
            if isinstance(event, PlaybackFinished) and event.playback == name:
                return
            self._stray(call, event)

    async def _say_goodbye(
        self: Switchboard, call: CallContext, first: str, disposition: str, cause: str
    ) -> None:
        """Nobody could take the call: the caller hears `first` and goodbye; the call ends."""
        call.disposition, call.cause = disposition, cause
        if call.caller_media is None:
            self._reject_caller(call, 480, cause)
            return
        lang = call.variables.get("language", "de")
        await self.play(call, "goodbye", Playlist((f"{lang}/{first}", f"{lang}/goodbye")), False)
        await self._wait_playback(call, "goodbye", 30.0)

    async def _follow(
        self: Switchboard, call: CallContext, target: str, language: str = "", by_agent: str = ""
    ) -> None:
        """Take the answered caller to `target` — ``flow:``, ``queue:``, ``agent:``,
        ``extension:`` or ``number:`` — and on to wherever that leads (a flow's queue or
        transfer node, a queue's overflow, exit key or max wait), until an agent or an outside
        party is connected (`call.agent_leg`), the flow ends the call, or nobody can take it
        (then the caller hears so). `by_agent`: the agent transferring the call, whose dial
        plan rights apply to numbers."""
        for _hop in range(MAX_HOPS):
            kind, _, name = target.partition(":")
            following: str | None = None
            if kind == "flow":
                following = await self._run_ivr(call, name, language)
            elif kind == "queue":
                following = await self._queued(call, name)
            elif kind == "agent":
                if call.caller_media is not None:
                    await self.media.play(call.caller_media, RINGBACK)
                if not await self._hunt_agents(call, [name], hold=None):
                    await self._say_goodbye(call, "all_agents_busy", "no_answer",
                                            f"agent {name} not available")
            elif kind in ("extension", "number"):
                route = self.router.route_internal(by_agent, name)
                if route is None or route.kind == "refused":
                    log.warning("transfer_refused", call=call.id, target=target,
                                reason=route.name if route else "no route",
                                rule=route.rule if route else "")
                    await self._say_goodbye(call, "all_agents_busy", "failed", "no route")
                elif route.kind == "trunk":
                    await self._dial_trunk(call, route.name, route.number,
                                           route.withhold_caller_id)
                else:
                    following = f"{route.kind}:{route.name}"
            else:
                log.error("route_unknown", call=call.id, target=target)
                await self._say_goodbye(call, "all_agents_busy", "failed", "bad target")
            if following is None:
                return
            if kind != "queue":  # a queue's exit is in the path as overflow:TARGET already
                call.path.append(following)
            target = following
        log.warning("route_loop", call=call.id, path=call.path)
        await self._say_goodbye(call, "all_agents_busy", "failed", "too many hops")

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
            legs = [leg for leg, session in call.leg_media.items() if session == session_id]
            for leg_id in legs or [call.id]:
                call.inbox.put_nowait(MediaTimedOut(leg_id))

    async def _end(self: Switchboard, call: CallContext) -> None:
        call.phase = Phase.ENDING
        consult = call.consult
        for leg in (call.caller, call.agent_leg, consult.leg if consult else None):
            if leg is not None and not leg.ended:
                actions = leg.hangup("normal")
                self._run(leg, [a for a in actions if not isinstance(a, HungUp)])
                if not call.hangup_by:
                    call.hangup_by = "pbx"
        self._release_agent(call)
        for agent in list(call.direct_agents):
            self._agent_released(call, agent)
        for session in (call.caller_media, call.agent_media, consult.session if consult else None):
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
