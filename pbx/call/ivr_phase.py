"""The IVR phase of a call: a pure `IvrSession` driven by the call's inputs, its commands
turned into the call's — L2, pure (see `pbx.call.machine`)."""

from __future__ import annotations

from collections.abc import Iterable

from media.sources import Playlist
from pbx.call.commands import CommandFailed, LookUpCustomer, StopMedia
from pbx.call.events import DtmfReceived, Hangup, Play, PlaybackFinished, StopPlayback
from pbx.call.machine import Call, CallerGone, Script, end_leg, log, play, receive, stray
from pbx.call.phases import Phase
from pbx.ivr.events import CustomerFound, EnqueueCall, LookupCustomer
from pbx.ivr.runner import IvrSession


def run_ivr(call: Call, name: str, language: str = "") -> Script[str | None]:
    """Walk the caller through the flow `name`; returns where the flow sent the call
    ("queue:NAME", or a transfer node's "agent:EXT", "extension:EXT", "number:DIGITS"), or
    None when the flow ended the call itself. Raises `CallerGone` when the caller left.
    The IVR's clock is wall time (opening hours); its deadlines are turned into the call's."""
    flow = call.world.flows.get(name)
    if flow is None:
        raise CommandFailed(f"flow {name!r} is not configured")
    variables = {**call.variables, "caller": call.caller_number, "did": call.did}
    if language:
        # The DID says the language; without one the flow decides (a language menu, or its
        # default language for {lang}).
        variables["language"] = language
    call.phase = Phase.IVR
    session = IvrSession(flow, call.id, variables, hooks=call.world.hooks)
    commands = session.start(call.wall())
    while True:
        yield from _ivr_commands(call, commands)
        if session.finished:
            break
        deadline = session.next_deadline()
        try:
            event = yield from receive(
                call, None if deadline is None else deadline - call.epoch
            )
        except CallerGone:
            call.path.extend(session.path)
            call.variables.update(session.variables)
            raise
        if event is None:
            commands = session.handle_timer(call.wall())
        elif isinstance(event, DtmfReceived | PlaybackFinished | CustomerFound):
            commands = session.handle(event, call.wall())
        else:
            commands = []
            yield from stray(call, event)
    call.path.extend(session.path)
    call.variables.update(session.variables)
    outcome = session.outcome
    log.info("ivr_finished", call=call.id, flow=name, path=list(session.path),
             outcome=outcome.kind if outcome else None,
             target=outcome.target if outcome else None)
    if outcome is None or outcome.kind == "hung_up":
        raise CallerGone
    if outcome.kind == "queued":
        call.priority = outcome.priority
        call.skills = outcome.skills
        return f"queue:{outcome.target}"
    if outcome.kind == "transferred":
        return outcome.target
    call.disposition = "completed" if outcome.kind == "completed" else outcome.kind
    return None


def _ivr_commands(call: Call, commands: Iterable[object]) -> Script[None]:
    assert call.caller_media is not None
    for command in commands:
        if isinstance(command, Play):
            source = Playlist(items=tuple(command.prompts), repeat=command.loop)
            try:
                yield from play(call, command.playback, source, command.barge_in)
            except CommandFailed as exc:
                # A missing prompt must not strand the caller: report it as played.
                log.error("prompt_failed", call=call.id, prompts=command.prompts,
                          error=str(exc))
                call.post(PlaybackFinished(call.id, command.playback))
        elif isinstance(command, StopPlayback):
            yield StopMedia(call.caller_media)
        elif isinstance(command, Hangup):
            call.hangup_by, call.cause = "pbx", command.cause
            yield end_leg(call.caller, command.cause)
        elif isinstance(command, LookupCustomer):
            yield LookUpCustomer(command.request, command.by, command.value)
        elif isinstance(command, EnqueueCall):
            call.pinned_agents = tuple(command.pinned_agents)
            call.variables.update(command.variables)
