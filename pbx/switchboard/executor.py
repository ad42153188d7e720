"""The call executor: one asyncio task per call that feeds the call machine its inputs and
carries out its commands — L3.

A call (`pbx.call.machine.Call`) is pure: it says what to do (`pbx.call.commands`) and waits.
Here each command is done: SIP actions through the legs' endpoint, media operations on the
media engine (their results fed back as `Reply`), events to the ACD, the pacer, the desk and
the CDR writer. Everything addressed to the call (its legs' events, media events, ACD and
dialer orders, desk orders) is put on the call's inbox with `post` and fed in order; when the
call's deadline passes it gets `Wake`. Also here: creating the calls the desk (click-to-dial)
originates, the media events mapped to their call, and shutting calls down.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from media.engine import MediaError
from media.events import DtmfDetected, PlaybackEnd, RecordingFailed, RtpTimedOut
from media.events import PlaybackFinished as MediaPlaybackFinished
from media.sources import read_wav
from pbx.call.commands import (
    AdoptLeg,
    Ask,
    BridgeMedia,
    CallFinished,
    CloseMedia,
    Command,
    CountCall,
    DecideAmd,
    LogQueueEvent,
    LookUpCustomer,
    MonitorMedia,
    NewPhoneLeg,
    NewTrunkLeg,
    OfferMedia,
    OpenMedia,
    PlayMedia,
    PostTo,
    RecordForAmd,
    ReleasePreview,
    Reply,
    RespondStatus,
    SendLegActions,
    StartRecording,
    StopMedia,
    StopRecording,
    TellAcd,
    TellDesk,
    TellPacer,
    TrackMedia,
    UnbridgeMedia,
    UpdateMedia,
    Wake,
    WriteCdr,
)
from pbx.call.events import DtmfReceived, HungUp, MediaTimedOut, PlaybackFinished
from pbx.call.machine import Call, Script, log
from pbx.call.outbound_leg import OutboundLeg
from pbx.call.script import originate
from pbx.cti.control import ControlRefused
from pbx.dialer.amd import AnsweringMachineDetector
from pbx.ivr.events import CustomerFound
from pbx.repositories import QueueLogEntry
from pbx.sip.endpoint import Address
from pbx.sip.message import make_response
from pbx.sip.uri import NameAddr, SipUri

if TYPE_CHECKING:
    from pbx.call.leg import Leg
    from pbx.repositories import Binding
    from pbx.switchboard.board import Switchboard

# Ended calls whose SIP Call-ID is kept for a disposition set in wrap-up (more than the desk
# shows: pbx.cti.desk.MAX_ENDED_CALLS).
ENDED_CALLS_KEPT = 5000


class Inbox:
    """A call's inputs in order, and one waiter: cheaper than `asyncio.Queue` with
    `asyncio.wait_for` (no task per wait, one timer handle only while waiting)."""

    __slots__ = ("_events", "_waiter")

    def __init__(self) -> None:
        self._events: deque[object] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, event: object) -> None:
        self._events.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, deadline: float | None) -> object:
        """The next input, or `Wake()` once `deadline` (monotonic) has passed."""
        if self._events:
            return self._events.popleft()
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None
        if deadline is not None:
            timer = loop.call_later(max(0.0, deadline - time.monotonic()), _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        return self._events.popleft() if self._events else Wake()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class CallExecutor:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    # ---------------------------------------------------------------- what a call reads

    def contacts(self: Switchboard, agent: str) -> list[Binding]:
        return self.registrar.lookup(agent, time.time())

    def agent_busy(self: Switchboard, agent: str) -> bool:
        return any(
            (c.agent == agent and c.agent_leg is not None and not c.agent_leg.ended)
            or (c.monitor is not None and c.monitor.supervisor == agent)  # listening in
            for c in self.calls.values()
        )

    def leg(self: Switchboard, leg: str) -> Leg | None:
        return self.legs.get(leg)

    def leg_of_dialog(self: Switchboard, call_id: str, local_tag: str) -> Leg | None:
        return self.legs.get(self._dialogs.get((call_id, local_tag), ""))

    def call_of_leg(self: Switchboard, leg: str) -> Call | None:
        return self.leg_call.get(leg)

    # ---------------------------------------------------------------- running calls

    def new_call(
        self: Switchboard, leg: Any, caller_number: str, did: str, trunk: str | None,
        agent_caller: str | None,
    ) -> Call:
        """A call around its first leg (counted active until it finishes)."""
        call = Call(leg.call, leg, caller_number, did, trunk, agent_caller, world=self,
                    epoch=time.time() - time.monotonic())
        self.calls[call.id] = call
        self.leg_call[leg.call] = call
        self.stats["active"] += 1
        if trunk is not None:
            self.trunk_active[trunk] = self.trunk_active.get(trunk, 0) + 1
        return call

    def start_call(self: Switchboard, call: Call, script: Callable[[Call], Script[None]]) -> None:
        """Run `call` with `script` in its own task."""
        inbox = Inbox()
        self._inboxes[call.id] = inbox
        self._spawn(self._drive(call, inbox, script))

    def post(self: Switchboard, call: Call, event: object) -> None:
        """An input for `call`, fed in order by its task."""
        inbox = self._inboxes.get(call.id)
        if inbox is not None:
            inbox.put(event)

    async def _drive(
        self: Switchboard, call: Call, inbox: Inbox, script: Callable[[Call], Script[None]]
    ) -> None:
        try:
            commands = call.start(script, time.monotonic())
            while True:
                reply = await self._carry_out(call, commands)
                if reply is not None:
                    commands = call.handle(reply, time.monotonic())
                    continue
                if call.finished:
                    break
                event = await inbox.get(call.next_deadline())
                commands = call.handle(event, time.monotonic())
        except Exception:  # the executor's own bug: the call is given up, the switch goes on
            log.exception("call_executor_failed", call=call.id)
        finally:
            self._call_done(call)

    def _call_done(self: Switchboard, call: Call) -> None:
        self._inboxes.pop(call.id, None)
        self.dispositions.pop(call.id, None)  # a call that crashed before its CDR
        # The desk may still set the call's disposition in wrap-up: its CDR is found by this.
        self.ended_calls[call.id] = call.caller.invite.call_id
        while len(self.ended_calls) > ENDED_CALLS_KEPT:
            self.ended_calls.popitem(last=False)
        if self.calls.pop(call.id, None) is not None:
            self.stats["active"] -= 1
            self.stats["completed"] += 1
            if call.trunk is not None:
                self.trunk_active[call.trunk] -= 1

    async def _carry_out(self: Switchboard, call: Call, commands: list[Command]) -> Reply | None:
        """Do `commands` in order; the reply to the last one when it is an `Ask`."""
        for command in commands:
            if isinstance(command, Ask):
                return await self._ask(call, command)
            if isinstance(command, SendLegActions):
                leg = self.legs.get(command.leg)
                if leg is not None:
                    self._run(leg, command.actions)
            elif isinstance(command, CloseMedia):
                self._sessions.pop(command.session, None)
                try:
                    await self.media.close(command.session)
                except MediaError as exc:
                    log.debug("media_close_failed", call=call.id, error=str(exc))
            elif isinstance(command, TellAcd):
                self.acd_handle(command.event)  # type: ignore[arg-type]
            elif isinstance(command, TellDesk):
                if self.desk is not None:
                    getattr(self.desk, command.method)(*command.args, **command.kwargs)
            elif isinstance(command, TrackMedia):
                self._sessions[command.session] = call
            elif isinstance(command, AdoptLeg):
                self.leg_call[command.leg] = call
            elif isinstance(command, PostTo):
                other = self.calls.get(command.call)
                if other is not None:
                    self.post(other, command.event)
            elif isinstance(command, TellPacer):
                if command.campaign in self.campaigns:
                    self._pacer(command.campaign, command.event)
            elif isinstance(command, ReleasePreview):
                running = self.campaigns.get(command.campaign)
                if running is not None:
                    self._release_preview(running, command.customer_no, cancelled=False)
            elif isinstance(command, LookUpCustomer):
                self._spawn(self._lookup(call, command))
            elif isinstance(command, CountCall):
                self.stats[command.name] += 1
            elif isinstance(command, WriteCdr):
                record = command.record
                chosen = self.dispositions.pop(call.id, None)
                if chosen is not None:  # the agent's, set while the call went on
                    record = replace(record, agent_disposition=chosen[0], agent_notes=chosen[1])
                self.write_cdr(record)  # queued; written behind the call path
            elif isinstance(command, RespondStatus):
                tx: Any = command.transaction
                if tx.request is not None:
                    response = make_response(tx.request, command.status)
                    self.endpoint.respond(tx, response, time.monotonic())
                    self.flush()
            elif isinstance(command, StopRecording):
                await self._stop_recording(call, command)
            elif isinstance(command, LogQueueEvent):
                if self.queue_log is not None:
                    self.queue_log(QueueLogEntry(time.time(), command.event, command.queue,
                                                 call.id, command.agent, command.data))
            elif isinstance(command, CallFinished):
                self._call_done(call)
            else:
                log.error("command_unknown", call=call.id, command=type(command).__name__)
        return None

    async def _ask(self: Switchboard, call: Call, ask: Ask) -> Reply:
        media = self.media
        try:
            value: object = None
            if isinstance(ask, OpenMedia):
                opened = await media.open_session(ask.remote_sdp, near=ask.near)
                self._sessions[opened.session_id] = call
                value = (opened.session_id, opened.local_sdp)
            elif isinstance(ask, UpdateMedia):
                value = await media.update_session(ask.session, ask.remote_sdp)
            elif isinstance(ask, PlayMedia):
                play = media.insert if ask.insert else media.play
                value = await play(ask.session, ask.source, barge_in=ask.barge_in)
            elif isinstance(ask, StopMedia):
                await media.stop(ask.session)
            elif isinstance(ask, BridgeMedia):
                await media.bridge(ask.a, ask.b)
            elif isinstance(ask, UnbridgeMedia):
                await media.unbridge(ask.a, ask.b)
            elif isinstance(ask, OfferMedia):
                value = await media.create_offer(ask.session)
            elif isinstance(ask, MonitorMedia):
                await media.monitor(ask.supervisor, ask.caller, ask.agent, ask.mode)
            elif isinstance(ask, NewPhoneLeg):
                leg = self._phone_leg(ask.prefix, ask.binding, ask.caller, ask.agent, ask.sdp)
                self.leg_call[leg.call] = call
                value = leg
            elif isinstance(ask, NewTrunkLeg):
                value = self._trunk_leg(call, ask)
            elif isinstance(ask, StartRecording):
                value = await self._start_recording(ask)
            elif isinstance(ask, RecordForAmd):
                path = Path(tempfile.mkdtemp(prefix="amd-")) / "answer.wav"
                recording = await media.record(ask.session, str(path))
                self._amd_paths[recording] = path
                value = recording
            elif isinstance(ask, DecideAmd):
                value = await self._decide_amd(ask)
            else:
                raise ValueError(f"unknown ask {type(ask).__name__}")
        except (MediaError, ValueError) as exc:
            return Reply(error=str(exc) or type(exc).__name__)
        return Reply(value)

    def _trunk_leg(self: Switchboard, call: Call, ask: NewTrunkLeg) -> OutboundLeg:
        trunk = self.router.trunks[ask.trunk]
        credentials = (
            (trunk.username, trunk.password) if trunk.username and trunk.password else None
        )
        leg = OutboundLeg(
            ask.leg_id or self._next_id("t"),
            self,
            ask.target,
            Address(trunk.transport, trunk.host, trunk.port),
            ask.from_addr,
            ask.to_addr,
            ask.sdp.encode(),
            time.monotonic(),
            extra_headers=tuple(ask.headers),
            t1=self.endpoint.timers.t1,
            t2=self.endpoint.timers.t2,
            credentials=credentials,
        )
        self.legs[leg.call] = leg
        self.leg_call[leg.call] = call
        return leg

    async def _start_recording(self: Switchboard, ask: StartRecording) -> tuple[str, str]:
        """A call's recording: a new stereo file (caller left, what the caller hears right),
        or a paused one going on."""
        if ask.recording:
            await self.media.pause_recording(ask.recording, False)
            return ask.recording, ""
        files = self.recording_files
        if files is None:
            raise MediaError("recordings are not set up")
        relative = files.new_path(ask.call, time.time())
        try:
            path = await asyncio.to_thread(files.prepare, relative)
        except OSError as exc:
            raise MediaError(f"cannot record to {files.root}: {exc}") from exc
        recording = await self.media.record(ask.session, str(path), stereo=True)
        return recording, relative

    async def _stop_recording(self: Switchboard, call: Call, command: StopRecording) -> None:
        try:
            if command.pause:
                await self.media.pause_recording(command.recording, True)
            else:
                await self.media.stop_recording(command.recording)
        except MediaError as exc:  # a recording that failed on its own is gone already
            log.warning("recording_stop_failed", call=call.id, recording=command.recording,
                        error=str(exc))

    async def _decide_amd(self: Switchboard, ask: DecideAmd) -> object:
        path = self._amd_paths.pop(ask.recording)
        try:
            await self.media.stop_recording(ask.recording)
            samples, rate = await asyncio.to_thread(read_wav, path)
            detector = AnsweringMachineDetector(ask.settings, rate)  # type: ignore[arg-type]
            return detector.feed(samples) or detector.finish()
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

    async def _lookup(self: Switchboard, call: Call, request: LookUpCustomer) -> None:
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
        self.post(call, CustomerFound(call.id, request.request, customer, error))

    def _spawn(self: Switchboard, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- the desk dials

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
        call = self.new_call(leg, agent, number, None, agent)
        call.direction = "internal" if target.kind == "agent" else "outbound"
        self._sessions[opened.session_id] = call
        call.leg_media[leg.call] = opened.session_id
        self._run(leg, leg.start())
        session = opened.session_id
        self.start_call(call, lambda c: originate(c, session, target))
        if self.desk is not None:
            self.desk.on_call_dialing(call.id, agent, number, None)
        log.info("originate", call=call.id, agent=agent, number=number, route=target.kind)
        return call.id

    # ---------------------------------------------------------------- media events

    def _on_media_event(self: Switchboard, event: object) -> None:
        session_id = getattr(event, "session_id", None)
        call = self._sessions.get(session_id or "")
        if call is None:
            return
        if isinstance(event, DtmfDetected) and session_id == call.caller_media:
            self.post(call, DtmfReceived(call.id, event.digit, source=event.method.value))
        elif isinstance(event, MediaPlaybackFinished) and session_id == call.caller_media:
            interrupted = event.reason is not PlaybackEnd.COMPLETED
            self.post(call, PlaybackFinished(call.id, event.playback_id, interrupted))
        elif isinstance(event, RecordingFailed):
            # Disk full or the file gone mid-call: the call goes on unrecorded.
            log.error("recording_failed", call=call.id, recording=event.recording_id,
                      path=event.path, error=event.error, agent=call.agent, queue=call.queue)
        elif isinstance(event, RtpTimedOut):
            legs = [leg for leg, session in call.leg_media.items() if session == session_id]
            for leg_id in legs or [call.id]:
                self.post(call, MediaTimedOut(leg_id))

    async def shutdown(self: Switchboard, drain_s: float = 0.0) -> None:
        """Stop taking calls; end the ones in progress with BYE (after `drain_s`)."""
        self.accepting = False
        now = time.monotonic()
        for reg in self.trunk_regs.values():
            self._run_reg(reg, reg.stop(now))
        if drain_s > 0 and self.calls:
            await asyncio.sleep(drain_s)
        for call in list(self.calls.values()):
            self.post(call, HungUp(call.id, by="local", cause="shutdown"))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
