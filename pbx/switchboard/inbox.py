"""What a call receives, and the inputs every phase of a call answers alike — L3.

Everything a call learns (SIP leg events, media events, ACD, desk and dialer orders) arrives on
its own inbox and is read through `_receive`, in every phase. Before a phase's own loop sees
an input, `_receive` deals with those that have one answer whatever the call is doing:

- a re-INVITE or UPDATE from any leg that has media: answered from that leg's session (hold,
  resume, codec change, session refresh), in every phase; 488 when the session can't take it.
  While connected, a hold from one party plays hold music to the other.
- the SDP answer in an ACK (after our offer to an offer-less re-INVITE): applied to the session.
- a REFER from anyone but the connected agent's phone: 403 (the carrier's side never
  transfers; the agent's REFER is the connected phase's to carry out).
- the caller hangs up (BYE, CANCEL), the caller's RTP times out, or the desk orders a hang-up:
  `CallerGone`, in every phase. The phase's `except`/`finally` then does its part (a queued
  caller leaves the queue as abandoned, offers are cancelled, a connected agent gets a BYE and
  goes to wrap-up), and `_end` writes the CDR.

Everything else goes to the phase's loop; an input a phase has no use for goes to `_stray`,
which never drops it silently: an answer from a phone no longer wanted is hung up, the rest is
logged with the phase.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from media.engine import MediaError
from media.sources import HoldProgram
from pbx.call.events import Answered, HungUp, MediaTimedOut
from pbx.call.sip_leg import OutboundLeg, RemoteAnswer, RemoteOffer, TransferRequested
from pbx.sip.message import make_response
from pbx.switchboard.context import CallContext, CallerGone, ControlOrder, Phase, is_hold, log

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class CallInputs:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    async def _receive(
        self: Switchboard, call: CallContext, timeout: float | None = None
    ) -> object | None:
        """The next input for the call's current phase, or None once `timeout` seconds passed.
        Raises `CallerGone` when the caller hung up, their media died or the desk hung up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                event = await call.inbox.get()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    event = await asyncio.wait_for(call.inbox.get(), remaining)
                except TimeoutError:
                    return None
            if isinstance(event, RemoteOffer):
                await self._remote_offer(call, event)
            elif isinstance(event, RemoteAnswer):
                if event.call in call.reoffered:
                    call.reoffered.discard(event.call)
                    await self._apply_answer(call, event)
            elif isinstance(event, HungUp) and event.call == call.id:
                call.hangup_by = call.hangup_by or ("caller" if event.by == "remote" else "pbx")
                call.cause = call.cause or event.cause
                raise CallerGone
            elif isinstance(event, MediaTimedOut) and event.call == call.id:
                call.hangup_by, call.cause = "pbx", "rtp_timeout"
                log.warning("rtp_timeout", call=call.id, side="caller", phase=call.phase)
                raise CallerGone
            elif isinstance(event, ControlOrder) and event.kind == "hangup":
                call.hangup_by, call.cause = "agent", "hung up from the desktop"
                raise CallerGone
            elif isinstance(event, TransferRequested) and not self._may_refer(call, event):
                leg = self.legs.get(event.call)
                if leg is not None:
                    self._run(leg, leg.reject_refer(event.transaction, 403, "Forbidden"))
                log.warning("refer_refused", call=call.id, leg=event.call, phase=call.phase,
                            target=event.refer_to)
            else:
                return event

    def _may_refer(self: Switchboard, call: CallContext, event: TransferRequested) -> bool:
        """Only the connected agent's own phone may transfer a call (never the carrier's
        side: an outside caller must not make the PBX dial out)."""
        agent_leg = call.agent_leg
        return call.phase == Phase.CONNECTED and agent_leg is not None and (
            event.call == agent_leg.call
        )

    def _stray(self: Switchboard, call: CallContext, event: object) -> None:
        """An input the call's phase has no use for (see the module docstring)."""
        if isinstance(event, Answered):
            leg = self.legs.get(event.call)
            if isinstance(leg, OutboundLeg) and not leg.ended and leg is not call.agent_leg:
                # A phone answered after its offer was withdrawn: end that leg at once.
                self._run(
                    leg, [a for a in leg.hangup("answered elsewhere") if not isinstance(a, HungUp)]
                )
                log.info("late_answer_ended", call=call.id, leg=event.call, phase=call.phase)
                return
        log.debug("input_ignored", call=call.id, phase=call.phase, input=type(event).__name__)

    async def _remote_offer(self: Switchboard, call: CallContext, offer: RemoteOffer) -> None:
        """A re-INVITE or UPDATE with an offer (or an offer-less re-INVITE) from one of the
        call's legs: answer it from that leg's media session, in whatever phase the call is."""
        leg = self.legs.get(offer.call)
        if leg is None or leg.ended:
            return
        session = call.leg_media.get(offer.call)
        try:
            if session is None:
                raise MediaError("the leg has no media session")
            if offer.sdp:
                answer = await self.media.update_session(session, offer.sdp.decode())
            else:
                # RFC 3261 §14.2: an offer-less re-INVITE: our offer goes in the 200, the
                # answer comes in the ACK.
                answer = await self.media.create_offer(session)
                call.reoffered.add(offer.call)
        except (MediaError, ValueError) as exc:
            log.warning("reoffer_refused", call=call.id, leg=offer.call, error=str(exc))
            request = offer.transaction.request
            if request is not None:
                response = make_response(request, 488)
                self.endpoint.respond(offer.transaction, response, time.monotonic())
                self.flush()
            return
        self._run(leg, leg.answer_reinvite(offer.transaction, answer.encode()))
        if offer.sdp:
            await self._follow_hold(call, offer.call, is_hold(offer.sdp))

    async def _apply_answer(self: Switchboard, call: CallContext, answer: RemoteAnswer) -> None:
        session = call.leg_media.get(answer.call)
        if session is None or not answer.sdp:
            return
        try:
            await self.media.update_session(session, answer.sdp.decode())
        except (MediaError, ValueError) as exc:
            log.warning("answer_refused", call=call.id, leg=answer.call, error=str(exc))

    async def _follow_hold(self: Switchboard, call: CallContext, leg_id: str, held: bool) -> None:
        """A talking party put the call on hold (or took it off): the other side hears the
        hold music, then the other party again."""
        if call.caller_media is None or call.agent_media is None or call.agent_leg is None:
            return
        if leg_id not in (call.id, call.agent_leg.call):
            return
        by_caller = leg_id == call.id
        other = call.agent_media if by_caller else call.caller_media
        if held and not call.on_hold:
            call.on_hold = True
            await self.media.unbridge(call.caller_media, call.agent_media)
            await self.media.play(other, HoldProgram(music=("music/hold_music",)))
            log.info("call_held", call=call.id, by="caller" if by_caller else "agent")
        elif not held and call.on_hold:
            call.on_hold = False
            await self.media.stop(other)
            await self.media.bridge(call.caller_media, call.agent_media)
            log.info("call_resumed", call=call.id, by="caller" if by_caller else "agent")
