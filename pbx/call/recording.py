"""Recording a call: which calls, the consent announcement, start, pause and stop — L2, pure
(see `pbx.call.machine`).

A call's recording mode comes from where it goes: the queue (`queues[].recording`) and, for a
campaign call, the campaign (`campaigns[].recording`); the strongest wins (always over
on_demand over never), so a call transferred into a recorded queue is recorded from there on.
The recording is of the *caller's* media session, stereo: left what the caller says, right
what the caller hears — the agent while bridged, hold music while held, the next agent after a
transfer — so it stays with the call through hold and transfers, in one file, until the call
ends (`finish_recording`, from `pbx.call.script.end`).

- ``always``: the recording starts when an agent is put through (`put_through`), before the
  bridge, so the first word is in it.
- ``on_demand``: the agent (or a supervisor) starts and stops it from the desk
  (`ControlOrder` ``record`` / ``stop_record``); stopping pauses the same file.
- The consent announcement (``recording_consent_prompt``) is played to the caller before they
  wait for an agent (so before any agent is bridged), once per call.

A recording that cannot be made (disk full, the directory not writable) is logged with the
call id and the call goes on unrecorded.
"""

from __future__ import annotations

from media.sources import Playlist
from pbx.call.commands import CommandFailed, StartRecording, StopRecording, TellDesk
from pbx.call.events import PlaybackFinished
from pbx.call.machine import (
    AcdOrder,
    Call,
    ControlOrder,
    DialerOrder,
    Script,
    log,
    play,
    receive,
    stray,
)
from pbx.call.phases import Phase

_STRENGTH = {"never": 0, "on_demand": 1, "always": 2}
CONSENT_TIMEOUT_S = 30.0


def adopt_mode(call: Call, mode: str) -> None:
    """The call entered a queue or belongs to a campaign recorded as `mode`."""
    if _STRENGTH.get(mode, 0) > _STRENGTH.get(call.recording_mode, 0):
        call.recording_mode = mode


def announce_recording(call: Call, mode: str, prompt: str | None) -> Script[None]:
    """Play the consent announcement `prompt` to the caller (once per call) when calls are
    recorded here (`mode` not never); returns when it ended."""
    if not prompt or mode == "never" or call.consent_played or call.caller_media is None:
        return
    call.consent_played = True
    lang = call.variables.get("language", "de")
    try:
        yield from play(call, "consent", Playlist((prompt.replace("{lang}", lang),)), False)
    except CommandFailed as exc:
        log.error("consent_prompt_failed", call=call.id, prompt=prompt, error=str(exc))
        return
    log.info("recording_consent_played", call=call.id, prompt=prompt, queue=call.queue)
    # The caller hears it to the end (the IVR phase: keys and the prompt's end are inputs).
    # The ACD's and the dialer's orders that come meanwhile (a campaign's pacer may drop the
    # call) are kept for the phase after it, which handles them.
    call.phase = Phase.IVR
    deadline = call.now + CONSENT_TIMEOUT_S
    kept: list[object] = []
    while "consent" in call.playbacks.values():  # its end takes it out (`Call._note`)
        event = yield from receive(call, deadline, keep=(AcdOrder, DialerOrder))
        if event is None:
            log.warning("consent_prompt_timeout", call=call.id, prompt=prompt)
            break
        if isinstance(event, AcdOrder | DialerOrder):
            kept.append(event)
        elif not isinstance(event, PlaybackFinished):
            yield from stray(call, event)
    for event in kept:
        call.post(event)


def start_recording(call: Call, by: str = "") -> Script[bool]:
    """Start (or resume) the call's recording; False when it could not be made (logged)."""
    if call.recording_on:
        return True
    if call.caller_media is None:
        return False
    try:
        recording, path = yield StartRecording(call.caller_media, call.id, call.recording_id)
    except CommandFailed as exc:
        log.error("recording_failed", call=call.id, error=str(exc), queue=call.queue)
        return False
    resumed = bool(call.recording_id)
    call.recording_id, call.recording_on = recording, True
    call.recording_path = path or call.recording_path
    log.info("recording_resumed" if resumed else "recording_started", call=call.id,
             path=call.recording_path, by=by or "config", agent=call.agent)
    yield TellDesk("on_call_recording", (call.id, True, call.recording_mode))
    return True


def pause_recording(call: Call, by: str) -> Script[None]:
    """The agent stopped the recording on the desk: nothing more is written until they start
    it again (same file)."""
    if not call.recording_on:
        return
    call.recording_on = False
    yield StopRecording(call.recording_id, pause=True)
    log.info("recording_paused", call=call.id, by=by, agent=call.agent)
    yield TellDesk("on_call_recording", (call.id, False, call.recording_mode))


def desk_recording(call: Call, order: ControlOrder) -> Script[None]:
    """The desk's ``record`` / ``stop_record`` on a connected call (on_demand calls only; the
    API checked who asks)."""
    if call.recording_mode != "on_demand":
        log.warning("desk_order_refused", call=call.id, order=order.kind,
                    reason=f"recording is {call.recording_mode}")
        return
    if order.kind == "record":
        yield from start_recording(call, by=order.agent)
    else:
        yield from pause_recording(call, by=order.agent)


def offer_recording(call: Call) -> Script[None]:
    """An agent was put through: record now when the call is recorded always; tell the desk
    that the agent may record an on-demand call."""
    if call.recording_mode == "always":
        yield from start_recording(call)
    elif call.recording_mode == "on_demand" and not call.recording_on:
        yield TellDesk("on_call_recording", (call.id, False, call.recording_mode))


def finish_recording(call: Call) -> Script[None]:
    """The call ends: the recording's file is finished."""
    if not call.recording_id:
        return
    call.recording_on = False
    yield StopRecording(call.recording_id)
    log.info("recording_finished", call=call.id, path=call.recording_path)
