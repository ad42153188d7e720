"""A campaign call's script: the customer's leg through the trunk, the pacer's decisions
(connect to an agent, drop, leave a message), answering-machine detection — L2, pure (see
`pbx.call.machine`). The pacer itself runs beside the calls (`pbx.dialer`); its orders for
this call arrive as `DialerOrder`."""

from __future__ import annotations

from dataclasses import dataclass

from media.sources import Playlist
from pbx.call.commands import DecideAmd, RecordForAmd, ReleasePreview, TellPacer, UpdateMedia
from pbx.call.events import Answered, Failed, HungUp
from pbx.call.machine import (
    Call,
    CallerGone,
    DialerOrder,
    Script,
    log,
    play,
    receive,
    send,
    stray,
)
from pbx.call.outbound_leg import OutboundLeg
from pbx.call.recording import adopt_mode, announce_recording
from pbx.dialer.amd import AmdSettings
from pbx.dialer.amd import AmdVerdict as Verdict
from pbx.dialer.events import (
    AgentConnected,
    AmdDecided,
    AmdVerdict,
    CallAnswered,
    CallEnded,
    CallFailed,
    ConnectAnsweredCall,
    DialContact,
    DropCall,
    FailureResult,
    HangUpCall,
    LeaveMessage,
)
from pbx.dialer.schema import CampaignConfig


@dataclass(frozen=True, slots=True)
class CampaignDial:
    """What a campaign call needs to know of its campaign."""

    campaign: str
    config: CampaignConfig
    contact: DialContact


def campaign_call(call: Call, dial: CampaignDial) -> Script[None]:
    """The customer's phone rings (`call.caller`, already started); on answer the pacer
    decides, and the customer is queued for an agent, dropped or left a message."""
    from pbx.call.queued import play_hold
    from pbx.call.script import end, follow, hunt_agents, wait_playback
    from pbx.call.talking import converse

    name, config, command = dial.campaign, dial.config, dial.contact
    leg = call.caller
    assert isinstance(leg, OutboundLeg) and call.caller_media is not None
    answered = False
    adopt_mode(call, config.recording)
    try:
        deadline = call.now + config.ring_timeout_s
        while not answered:
            try:
                event = yield from receive(call, deadline)
            except CallerGone:  # the customer's leg ended before it was answered
                event = HungUp(call.id, by="remote")
            if event is None:
                yield send(leg, leg.cancel("no answer"))
                yield TellPacer(name, CallFailed(call.id, "no_answer"))
                break
            if isinstance(event, Answered):
                answered = True
            elif isinstance(event, Failed | HungUp):
                status = event.status if isinstance(event, Failed) else 0
                result: FailureResult = (
                    "busy" if status in (486, 600)
                    else "no_answer" if status in (0, 408, 480, 487)
                    else "failed"
                )
                yield TellPacer(name, CallFailed(call.id, result))
                call.disposition = result
                break
            else:
                yield from stray(call, event)
        if answered:
            yield UpdateMedia(call.caller_media, leg.remote_sdp.decode())
            call.answered_at = call.wall()
            yield TellPacer(name, CallAnswered(call.id))
            if config.amd.enabled:
                verdict = yield from _detect_machine(call, config)
                call.variables["amd"] = str(verdict)
                yield TellPacer(name, AmdDecided(call.id, verdict))
            order = yield from _dialer_order(call)
            if isinstance(order, ConnectAnsweredCall):
                yield from announce_recording(call, config.recording,
                                              config.recording_consent_prompt)
                yield from play_hold(call)
                if order.agent:
                    # Preview: the call belongs to the agent who chose to dial it.
                    call.queue = order.queue
                    yield from hunt_agents(call, [order.agent], hold=None)
                else:
                    yield from follow(call, f"queue:{order.queue}")
                if call.dropped is not None:
                    order = call.dropped
                elif call.agent_leg is not None:
                    yield TellPacer(name, AgentConnected(call.id, call.agent))
                    yield from converse(call)
            if isinstance(order, LeaveMessage):
                call.disposition, call.cause = "machine", "message left"
                prompt = order.prompt.replace("{lang}", order.language or "de")
                yield from play(call, "message", Playlist((prompt,)), False)
                yield from wait_playback(call, "message", 60.0)
            if isinstance(order, DropCall):
                call.disposition, call.cause = "dropped", "no agent free"
                if order.prompt:
                    lang = order.language or "de"
                    prompt = order.prompt.replace("{lang}", lang)
                    yield from play(call, "drop", Playlist((prompt,)), False)
                    yield from wait_playback(call, "drop", 10.0)
    except CallerGone:
        call.disposition = "abandoned"
    except Exception:  # a bug in one call must not stop the dialer: log, clean up
        log.exception("call_crashed", call=call.id)
        call.cause = call.cause or "internal error"
    if answered:
        yield TellPacer(name, CallEnded(call.id))
    if command.agent:
        yield ReleasePreview(name, command.customer_no)
    yield from end(call)


def _detect_machine(call: Call, config: CampaignConfig) -> Script[AmdVerdict]:
    """Record the first seconds of the answered call and decide: person or machine."""
    assert call.caller_media is not None
    amd = config.amd
    recording = yield RecordForAmd(call.caller_media)
    deadline = call.now + amd.analysis_s
    try:
        while (event := (yield from receive(call, deadline))) is not None:
            yield from stray(call, event)
    finally:
        settings = AmdSettings(
            amd.analysis_s, amd.max_greeting_s, amd.silence_after_s, amd.initial_silence_s
        )
        decision = yield DecideAmd(recording, settings)
    log.info("amd_decided", call=call.id, verdict=str(decision.verdict),
             at_s=round(decision.decided_at_s, 2), reason=decision.reason)
    return _VERDICTS[decision.verdict]


def _dialer_order(call: Call) -> Script[object]:
    """Wait for the pacer's decision about an answered call (connect or drop), while the
    customer hears the hold program; `CallerGone` when they hang up first."""
    from pbx.call.queued import play_hold

    yield from play_hold(call)
    while True:
        event = yield from receive(call)
        if isinstance(event, DialerOrder):
            if isinstance(event.command, HangUpCall):
                raise CallerGone
            return event.command
        yield from stray(call, event)


_VERDICTS: dict[Verdict, AmdVerdict] = {
    Verdict.HUMAN: "human",
    Verdict.MACHINE: "machine",
    Verdict.UNKNOWN: "unknown",
}
