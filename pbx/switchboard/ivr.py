"""Running a pure `IvrSession` for a call: its commands carried out on the media engine and
the customer directory, its events fed from the call's inbox — L3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from media.engine import MediaError
from media.sources import Playlist
from pbx.call.events import (
    DtmfReceived,
    Hangup,
    HungUp,
    Play,
    PlaybackFinished,
    StopPlayback,
)
from pbx.ivr.events import CustomerFound, EnqueueCall, LookupCustomer
from pbx.ivr.runner import IvrSession
from pbx.switchboard.context import CallContext, CallerGone, Phase, log

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class IvrDriver:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    async def _run_ivr(
        self: Switchboard, call: CallContext, name: str, language: str = ""
    ) -> str | None:
        """Walk the caller through the flow `name`; returns where the flow sent the call
        ("queue:NAME", or a transfer node's "agent:EXT", "extension:EXT", "number:DIGITS"), or
        None when the flow ended the call itself. Raises `CallerGone` when the caller left."""
        flow = self.flows.get(name)
        if flow is None:
            raise ValueError(f"flow {name!r} is not configured")
        variables = {**call.variables, "caller": call.caller_number, "did": call.did}
        if language:
            # The DID says the language; without one the flow decides (a language menu, or
            # its default language for {lang}).
            variables["language"] = language
        call.phase = Phase.IVR
        session = IvrSession(flow, call.id, variables, hooks=self.hooks)
        commands = session.start(time.time())
        while True:
            await self._ivr_commands(call, session, commands)
            if session.finished:
                break
            deadline = session.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            try:
                event = await self._receive(call, timeout)
            except CallerGone:
                call.path.extend(session.path)
                call.variables.update(session.variables)
                raise
            if event is None:
                commands = session.handle_timer(time.time())
            elif isinstance(event, DtmfReceived | PlaybackFinished | CustomerFound):
                commands = session.handle(event, time.time())
            else:
                commands = []
                self._stray(call, event)
        call.path.extend(session.path)
        call.variables.update(session.variables)
        outcome = session.outcome
        log.info(
            "ivr_finished",
            call=call.id,
            flow=name,
            path=list(session.path),
            outcome=outcome.kind if outcome else None,
            target=outcome.target if outcome else None,
        )
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

    async def _ivr_commands(
        self: Switchboard, call: CallContext, session: IvrSession, commands: Iterable[object]
    ) -> None:
        assert call.caller_media is not None
        for command in commands:
            if isinstance(command, Play):
                source = Playlist(items=tuple(command.prompts), repeat=command.loop)
                try:
                    await self.play(call, command.playback, source, command.barge_in)
                except MediaError as exc:
                    # A missing prompt must not strand the caller: report it as played.
                    log.error(
                        "prompt_failed", call=call.id, prompts=command.prompts, error=str(exc)
                    )
                    call.inbox.put_nowait(PlaybackFinished(call.id, command.playback))
            elif isinstance(command, StopPlayback):
                await self.media.stop(call.caller_media)
            elif isinstance(command, Hangup):
                call.hangup_by, call.cause = "pbx", command.cause
                self._run(
                    call.caller,
                    [a for a in call.caller.hangup(command.cause) if not isinstance(a, HungUp)],
                )
            elif isinstance(command, LookupCustomer):
                self._spawn(self._lookup(call, command))
            elif isinstance(command, EnqueueCall):
                call.pinned_agents = tuple(command.pinned_agents)
                call.variables.update(command.variables)

    async def _lookup(self: Switchboard, call: CallContext, request: LookupCustomer) -> None:
        directory = self.customers
        customer = None
        error = ""
        if directory is None:
            error = "no customer directory"
        else:
            lookup = directory.by_phone if request.by == "phone" else directory.by_number
            try:
                customer = await asyncio.to_thread(lookup, request.value)
            except Exception as exc:  # storage trouble: the flow takes its not-found branch
                error = str(exc)
                log.error("customer_lookup_failed", call=call.id, error=error)
        if customer is not None:
            call.customer = customer  # for the screen pop
        call.inbox.put_nowait(CustomerFound(call.id, request.request, customer, error))

    def _spawn(self: Switchboard, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
