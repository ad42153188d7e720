"""Third-party call control and agent control for the CTI (what TAPI was) — L3.

`SwitchboardControl` implements `pbx.cti.control.CallControl` and `AgentControl` over the
switchboard: orders for a call are posted to that call (`ControlOrder`) and carried
out by the call's own task, so they never race with what the call is doing; agent orders go to
the ACD engine. Refusals are `ControlRefused` with the HTTP status the API answers with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbx.acd.events import AgentLoggedIn, AgentLoggedOut, AgentPaused, AgentUnpaused
from pbx.call.machine import Call, ControlOrder, log
from pbx.call.phases import Phase
from pbx.cti.control import ControlRefused
from pbx.repositories import AgentDisposition
from pbx.switchboard.supervision import SupervisorControl

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class SwitchboardControl(SupervisorControl):
    """`CallControl` + `AgentControl` (+ `MonitorControl`) for the CTI desk."""

    def __init__(self, board: Switchboard) -> None:
        self.board = board

    # ------------------------------------------------------------------ calls

    def _call(self, agent: str, call_id: str) -> Call:
        call = self.board.calls.get(call_id)
        if call is None:
            raise ControlRefused(404, f"call {call_id!r} is not in progress")
        return call

    async def make_call(self, agent: str, number: str) -> str:
        if not number.strip():
            raise ControlRefused(422, "number is empty")
        return await self.board.originate(agent, number)

    async def move(self, supervisor: str, call_id: str, target: str) -> None:
        call = self._call(supervisor, call_id)
        if call.phase is not Phase.QUEUED:
            raise ControlRefused(409, "the caller is not waiting in a queue")
        log.info("call_move_ordered", call=call_id, queue=call.queue, target=target,
                 supervisor=supervisor)
        self.board.post(call, ControlOrder("move", supervisor, target))

    async def hang_up(self, agent: str, call_id: str) -> None:
        self.board.post(self._call(agent, call_id), ControlOrder("hangup", agent))

    async def hold(self, agent: str, call_id: str) -> None:
        call = self._call(agent, call_id)
        if call.agent_leg is None:
            raise ControlRefused(409, "the call is not connected to an agent")
        self.board.post(call, ControlOrder("hold", agent))

    async def resume(self, agent: str, call_id: str) -> None:
        call = self._call(agent, call_id)
        if not call.on_hold:
            raise ControlRefused(409, "the call is not on hold")
        self.board.post(call, ControlOrder("resume", agent))

    async def transfer(self, agent: str, call_id: str, target: str, attended: bool) -> None:
        kind, _, name = target.partition(":")
        if attended:
            if kind != "agent" or not name:
                raise ControlRefused(422, "an attended transfer goes to agent:EXT")
            call = self._call(agent, call_id)
            if call.agent_leg is None or call.consult is not None:
                raise ControlRefused(409, "the call is not connected, or already consulting")
            self.board.post(call, ControlOrder("consult", agent, target))
            return
        if kind not in ("agent", "queue", "number") or not name:
            raise ControlRefused(422, "target must be agent:EXT, queue:NAME or number:DIGITS")
        call = self._call(agent, call_id)
        if call.agent_leg is None:
            raise ControlRefused(409, "only a connected call can be transferred")
        self.board.post(call, ControlOrder("transfer", agent, target))

    async def complete_transfer(self, agent: str, call_id: str) -> None:
        self.board.post(self._consulting(agent, call_id), ControlOrder("complete_transfer", agent))

    async def cancel_transfer(self, agent: str, call_id: str) -> None:
        self.board.post(self._consulting(agent, call_id), ControlOrder("cancel_transfer", agent))

    def _consulting(self, agent: str, call_id: str) -> Call:
        call = self._call(agent, call_id)
        if call.consult is None:
            raise ControlRefused(409, "no attended transfer is in progress on this call")
        return call

    async def record(self, agent: str, call_id: str, on: bool) -> None:
        call = self._call(agent, call_id)
        if call.agent_leg is None:
            raise ControlRefused(409, "the call is not connected to an agent")
        if call.recording_mode != "on_demand":
            raise ControlRefused(409, f"this call is recorded {call.recording_mode}: only "
                                      "calls of on_demand queues and campaigns are recorded "
                                      "from the desk")
        if on == call.recording_on:
            raise ControlRefused(409, "the call is being recorded already" if on
                                 else "the call is not being recorded")
        self.board.post(call, ControlOrder("record" if on else "stop_record", agent))

    async def set_disposition(self, agent: str, call_id: str, disposition: str, note: str) -> None:
        """A call in progress takes the disposition into its CDR when it ends; one already
        ended (wrap-up) gets it written into its CDR, behind the CDR itself."""
        if call_id in self.board.calls:
            self.board.dispositions[call_id] = (disposition, note)
            return
        sip_call_id = self.board.ended_calls.get(call_id)
        if sip_call_id is None or self.board.write_disposition is None:
            raise ControlRefused(409, f"call {call_id!r} ended too long ago to take a disposition")
        self.board.write_disposition(AgentDisposition(sip_call_id, disposition, note, agent))

    # ------------------------------------------------------------------ agents

    async def login(self, agent: str, paused: bool, reason: str) -> None:
        self.board.acd_handle(AgentLoggedIn(agent, paused=paused, reason=reason))

    async def logout(self, agent: str) -> None:
        self.board.acd_handle(AgentLoggedOut(agent))

    async def pause(self, agent: str, reason: str) -> None:
        self.board.acd_handle(AgentPaused(agent, reason))

    async def ready(self, agent: str) -> None:
        self.board.acd_handle(AgentUnpaused(agent))
