"""A connected call: talking, hold from the desktop, blind and attended transfers, and the end
of the agent's part in the call — L3.

The connected phase's own inputs (`_talk`): the agent's leg hangs up (the call ends, or an
attended transfer completes), the agent's media dies (the call ends and the agent is paused
"phone_lost", so no offer goes to a phone that vanished), the consulted party hangs up or
answers, and the desk's orders (hold, resume, transfer, consult, complete, cancel). Re-INVITEs,
the caller hanging up and the caller's media dying are answered for every phase in
`pbx.switchboard.inbox`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from media.engine import MediaError
from pbx.acd.events import AgentPaused
from pbx.acd.events import CallEnded as AcdCallEnded
from pbx.call.events import HungUp, MediaTimedOut
from pbx.call.sip_leg import InboundLeg, TransferRequested
from pbx.sip.uri import NameAddr, SipUri
from pbx.switchboard.context import (
    MAX_HOPS,
    RING_TIMEOUT_S,
    CallContext,
    Consultation,
    ControlOrder,
    LegReplacement,
    Phase,
    log,
)

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class Talking:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    async def _converse(self: Switchboard, call: CallContext) -> None:
        """Talk until someone hangs up, following blind transfers (at most a few)."""
        for _hop in range(MAX_HOPS):
            if call.agent_leg is None or call.agent_leg.ended:
                return
            call.phase = Phase.CONNECTED
            target = await self._talk(call)
            if target is None:
                return
            await self._transfer(call, target)

    async def _talk(self: Switchboard, call: CallContext) -> str | None:
        """Bridged: wait until the agent's side ends (the caller's end raises `CallerGone` in
        `_receive`), or a desk order transfers the caller (returns the target)."""
        assert call.agent_leg is not None
        while True:
            event = await self._receive(call)
            consult = call.consult
            if isinstance(event, HungUp) and consult is not None and event.call == consult.leg.call:
                await self._end_consult(call, complete=False)  # the consulted party hung up
            elif isinstance(event, HungUp) and event.call == call.agent_leg.call:
                if consult is not None:
                    # The transferring agent hung up during the consultation: that completes
                    # the transfer (as on a desk phone).
                    await self._end_consult(call, complete=True)
                    continue
                call.hangup_by, call.cause = "agent", event.cause
                return None
            elif isinstance(event, MediaTimedOut) and event.call == call.agent_leg.call:
                # The agent's phone vanished (no BYE, no RTP): end the call and keep offers
                # away from that phone until the agent says they are back.
                call.hangup_by, call.cause = "pbx", "agent rtp_timeout"
                log.warning("rtp_timeout", call=call.id, side="agent", agent=call.agent)
                if self.acd is not None and call.agent in self.acd.agents:
                    self.acd_handle(AgentPaused(call.agent, "phone_lost"))
                return None
            elif isinstance(event, ControlOrder):
                target = await self._desk_order(call, event)
                if target is not None:
                    return target
            elif isinstance(event, LegReplacement):
                await self._take_over(call, event.leg)
            elif isinstance(event, TransferRequested) and event.replaces is not None:
                await self._phone_attended_transfer(call, event)
            elif isinstance(event, TransferRequested):
                target = self._phone_transfer(call, event)
                if target is not None:
                    return target
            else:
                self._stray(call, event)

    def _phone_transfer(
        self: Switchboard, call: CallContext, refer: TransferRequested
    ) -> str | None:
        """The agent pressed their phone's transfer key (REFER, RFC 3515): the PBX takes the
        caller on to the Refer-To number as that agent may dial it (blind transfer). The REFER
        is accepted, and the final NOTIFY (200) tells the phone the PBX has the caller, so it
        can hang up; the PBX ends the agent's leg itself as well."""
        leg = call.agent_leg
        assert leg is not None
        try:
            uri = SipUri.parse(refer.refer_to.strip().strip("<>"))
        except ValueError:
            uri = None
        if uri is None or not uri.user:
            self._run(leg, leg.reject_refer(refer.transaction, 400, "Bad Refer-To"))
            return None
        route = self.router.route_internal(call.agent, uri.user)
        if route is None or route.kind == "refused":
            self._run(leg, leg.reject_refer(refer.transaction, 403, "Forbidden"))
            log.warning("refer_refused", call=call.id, target=uri.user,
                        reason=route.name if route else "no route",
                        rule=route.rule if route else "")
            return None
        self._run(leg, [*leg.accept_refer(refer.transaction),
                        *leg.notify_refer(200, "OK", final=True)])
        log.info("refer_accepted", call=call.id, agent=call.agent, target=uri.user)
        return f"extension:{uri.user}"

    async def _phone_attended_transfer(
        self: Switchboard, call: CallContext, refer: TransferRequested
    ) -> None:
        """Attended transfer from the agent's phone: the agent put the caller on hold, called a
        colleague or a number (a second call through the PBX), and now sends a REFER whose
        Refer-To replaces that second call's dialog (RFC 3891). The party the agent consulted
        takes the agent's place in this call; both of the agent's legs end."""
        leg, replaces = call.agent_leg, refer.replaces
        assert leg is not None and replaces is not None
        consulted_id = self._dialogs.get((replaces.call_id, replaces.to_tag), "")
        consulted_leg = self.legs.get(consulted_id)
        other = self.leg_call.get(consulted_id)
        status = 481 if consulted_leg is None or other is None or other is call else (
            consulted_leg.check_replaces(replaces)
        )
        if status is None and other is not None and (
            consulted_leg is not other.caller or other.agent_leg is None
            or other.agent_media is None or other.caller_media is None
            or other.phase != Phase.CONNECTED
        ):
            status = 481  # only the agent's own outgoing call, connected, can be handed over
        if status is not None or other is None:
            self._run(leg, leg.reject_refer(refer.transaction, status or 481))
            log.warning("refer_refused", call=call.id, reason=f"replaces: {status}")
            return
        assert other.agent_leg is not None and other.agent_media is not None
        assert other.caller_media is not None and call.caller_media is not None
        self._run(leg, [*leg.accept_refer(refer.transaction),
                        *leg.notify_refer(200, "OK", final=True)])
        # The consulted party leaves the agent's second call ...
        new_leg, new_media, new_agent = other.agent_leg, other.agent_media, other.agent
        await self.media.unbridge(other.caller_media, new_media)
        other.agent_leg, other.agent_media, other.agent = None, None, ""
        other.leg_media.pop(new_leg.call, None)
        if new_agent:
            self._agent_engaged(call, new_agent)  # busy on this call now, then not on that
            self._agent_released(other, new_agent)
        # ... the transferring agent leaves this call ...
        old_agent, old_leg, old_media = call.agent, leg, call.agent_media
        if not call.on_hold and old_media is not None:
            await self.media.unbridge(call.caller_media, old_media)
        self._run(old_leg, [a for a in old_leg.hangup("transferred") if not isinstance(a, HungUp)])
        if old_media is not None:
            self._sessions.pop(old_media, None)
            await self.media.close(old_media)
        self._release_agent(call)
        # ... and takes their place here; the second call ends.
        self.leg_call[new_leg.call] = call
        self._sessions[new_media] = call
        call.leg_media[new_leg.call] = new_media
        call.agent_leg, call.agent_media, call.agent = new_leg, new_media, new_agent
        await self.media.stop(call.caller_media)
        await self.media.bridge(call.caller_media, new_media)
        call.on_hold = False
        target = f"agent:{new_agent}" if new_agent else f"number:{other.did}"
        call.path.append(f"transfer:{target}")
        other.inbox.put_nowait(HungUp(other.id, by="local", cause="transferred"))
        log.info("call_transferred", call=call.id, by=old_agent, target=target, attended=True,
                 via="phone")
        if self.desk is not None:
            self.desk.on_call_transferred(call.id, target, agent=new_agent or None)

    async def _take_over(self: Switchboard, call: CallContext, leg: InboundLeg) -> None:
        """The agent's other phone replaces their leg of this call (INVITE with Replaces): it
        is answered with its own media session and bridged to the caller; the old leg ends."""
        old_leg, old_media = call.agent_leg, call.agent_media
        assert old_leg is not None and call.caller_media is not None
        try:
            opened = await self.media.open_session(
                leg.remote_sdp.decode() or None, near=call.caller_media
            )
        except (MediaError, ValueError) as exc:
            log.warning("replaces_refused", call=call.id, error=str(exc))
            self._run(leg, leg.reject(488, ""))
            return
        self._sessions[opened.session_id] = call
        call.leg_media[leg.call] = opened.session_id
        self._run(leg, leg.answer(opened.local_sdp.encode(), time.monotonic()))
        if old_media is not None and not call.on_hold:
            await self.media.unbridge(call.caller_media, old_media)
        self._run(old_leg, [a for a in old_leg.hangup("replaced") if not isinstance(a, HungUp)])
        if old_media is not None:
            self._sessions.pop(old_media, None)
            await self.media.close(old_media)
        call.agent_leg, call.agent_media = leg, opened.session_id
        if not call.on_hold:
            await self.media.bridge(call.caller_media, opened.session_id)
        log.info("call_replaced", call=call.id, agent=call.agent, leg=leg.call)

    async def _desk_order(self: Switchboard, call: CallContext, order: ControlOrder) -> str | None:
        """Carry out a desk order on a connected call; returns a blind transfer's target."""
        consult = call.consult
        if order.kind in ("hold", "resume"):
            await self._pbx_hold(call, order.kind == "hold")
        elif order.kind == "transfer":
            return order.target
        elif order.kind == "consult" and consult is None:
            await self._consult(call, order.target)
        elif order.kind in ("complete_transfer", "cancel_transfer") and consult is not None:
            await self._end_consult(call, complete=order.kind == "complete_transfer")
        else:
            log.warning("desk_order_refused", call=call.id, order=order.kind, phase=call.phase)
        return None

    def _release_agent(self: Switchboard, call: CallContext) -> None:
        """The call's agent leaves the call (it ended, or they transferred it): the ACD hears
        it — a queue call goes to wrap-up, a direct call frees the agent."""
        agent = call.agent
        if not agent:
            return
        if call.acd_connected:
            call.acd_connected = False
            if self.acd is not None:
                self.acd_handle(AcdCallEnded(call.id, agent))
        self._agent_released(call, agent)

    async def _consult(self: Switchboard, call: CallContext, target: str) -> None:
        """Attended transfer, first step: the caller waits with the hold program while the
        agent talks to `target` (agent:EXT) on a consultation leg."""
        assert call.agent_leg is not None and call.agent_media is not None
        kind, _, ext = target.partition(":")
        contacts = self.registrar.lookup(ext, time.time()) if kind == "agent" else []
        if not contacts or self._agent_busy(ext):
            log.warning("consult_failed", call=call.id, target=target, reason="not reachable")
            return
        await self._pbx_hold(call, True)
        opened = await self.media.open_session(None, near=call.agent_media)
        self._sessions[opened.session_id] = call
        caller = NameAddr(SipUri(self.domain, user=call.agent))
        leg = self._phone_leg("k", contacts[0], caller, ext, opened.local_sdp)
        self.leg_call[leg.call] = call
        call.leg_media[leg.call] = opened.session_id
        self._agent_engaged(call, ext)
        self._run(leg, leg.start())
        log.info("consult_started", call=call.id, agent=call.agent, target=target)
        if await self._await_answer(call, [leg], RING_TIMEOUT_S) is None:
            self._run(leg, leg.cancel("no answer"))
            self._sessions.pop(opened.session_id, None)
            await self.media.close(opened.session_id)
            self._agent_released(call, ext)
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
            self._agent_released(call, consult.agent)
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
        self._release_agent(call)
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
        """Blind transfer: release the agent, then take the caller to `target` (agent:EXT,
        queue:NAME, number:DIGITS as the transferring agent may dial it)."""
        assert call.agent_leg is not None and call.caller_media is not None
        old_agent, old_leg, old_media = call.agent, call.agent_leg, call.agent_media
        self._run(old_leg, [a for a in old_leg.hangup("transferred") if not isinstance(a, HungUp)])
        if old_media is not None:
            await self.media.unbridge(call.caller_media, old_media)
            self._sessions.pop(old_media, None)
            await self.media.close(old_media)
        self._release_agent(call)
        call.agent_leg, call.agent_media, call.agent = None, None, ""
        call.on_hold = False
        call.path.append(f"transfer:{target}")
        log.info("call_transferred", call=call.id, by=old_agent, target=target)
        if self.desk is not None:
            self.desk.on_call_transferred(call.id, target)
        await self._follow(call, target, by_agent=old_agent)
