"""What a call receives — L3: every input, in every phase, goes through `_receive`, which
classifies it (`pbx.call.phases.Input`), looks up what the call's phase does with it
(`pbx.call.phases.OUTCOMES`, the table of phase × input) and carries that out: answers
re-INVITEs and UPDATEs from the leg's media session, applies late SDP answers, raises
`CallerGone` when the caller, their media or the desk ended the call, refuses a REFER that
isn't the connected agent's, logs what the phase has no use for, and hands the rest
(`HANDLE`) to the phase's own loop. A `HANDLE`d input the loop did not expect (a phone that
answered after its offer was withdrawn) goes to `_stray`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from media.engine import MediaError
from media.sources import HoldProgram
from pbx.call.events import (
    Answered,
    DtmfReceived,
    Failed,
    HungUp,
    MediaTimedOut,
    PlaybackFinished,
    Ringing,
)
from pbx.call.phases import Input, Outcome, outcome
from pbx.call.sip_leg import OutboundLeg, RemoteAnswer, RemoteOffer, TransferRequested
from pbx.ivr.events import CustomerFound
from pbx.sip.message import make_response
from pbx.switchboard.context import (
    AcdOrder,
    CallContext,
    CallerGone,
    ControlOrder,
    DialerOrder,
    LegReplacement,
    is_hold,
    log,
)

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard

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


def classify(call: CallContext, event: object) -> Input | None:
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
    return None


class CallInputs:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    async def _receive(
        self: Switchboard, call: CallContext, timeout: float | None = None
    ) -> object | None:
        """The next input the call's phase handles, or None once `timeout` seconds passed.
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
            kind = classify(call, event)
            if kind is None:
                log.error("input_unknown", call=call.id, input=type(event).__name__)
                continue
            action = outcome(call.phase, kind)
            if action is Outcome.HANDLE:
                return event
            await self._carry_out(call, action, kind, event)

    async def _carry_out(
        self: Switchboard, call: CallContext, action: Outcome, kind: Input, event: object
    ) -> None:
        """What the phase table says for an input the phase's loop does not see."""
        if action is Outcome.ANSWER_OFFER:
            assert isinstance(event, RemoteOffer)
            await self._remote_offer(call, event)
        elif action is Outcome.APPLY_ANSWER:
            assert isinstance(event, RemoteAnswer)
            if event.call in call.reoffered:
                call.reoffered.discard(event.call)
                await self._apply_answer(call, event)
        elif action is Outcome.END_CALL:
            if kind is Input.CALLER_MEDIA_LOST:
                call.hangup_by, call.cause = "pbx", "rtp_timeout"
                log.warning("rtp_timeout", call=call.id, side="caller", phase=call.phase)
            elif kind is Input.DESK_HANGUP:
                call.hangup_by, call.cause = "agent", "hung up from the desktop"
            elif isinstance(event, HungUp):
                call.hangup_by = call.hangup_by or ("caller" if event.by == "remote" else "pbx")
                call.cause = call.cause or event.cause
            raise CallerGone
        elif action is Outcome.REFUSE and isinstance(event, LegReplacement):
            self._run(event.leg, event.leg.reject(481, "Call Does Not Exist"))
            log.warning("replaces_refused", call=call.id, phase=call.phase)
        elif action is Outcome.REFUSE:
            assert isinstance(event, TransferRequested)
            leg = self.legs.get(event.call)
            if leg is not None:
                self._run(leg, leg.reject_refer(event.transaction, 403, "Forbidden"))
            log.warning("refer_refused", call=call.id, leg=event.call, phase=call.phase,
                        target=event.refer_to)
        elif isinstance(event, Answered):
            self._stray(call, event)  # IGNORE, but a phone that answers must not stay up
        else:
            log.debug("input_ignored", call=call.id, phase=call.phase, input=kind.value)

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
