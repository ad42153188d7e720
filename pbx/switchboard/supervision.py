"""Supervisor orders over the switchboard: listen in, whisper, barge, stop — L3.

`SupervisorControl` implements `pbx.cti.supervise.MonitorControl`; `SwitchboardControl`
inherits it. It checks what only the switchboard knows (the call is connected to an agent,
the supervisor's phone is registered and free, nobody else listens in) and answers a refusal
as `ControlRefused` with the HTTP status; an accepted order is posted to the call
(`ControlOrder` ``monitor`` / ``monitor_stop``), whose own task carries it out
(`pbx.call.monitoring`), so it never races with what the call is doing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from pbx.call.machine import Call, ControlOrder
from pbx.call.monitoring import MODES
from pbx.cti.control import ControlRefused

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard

log = structlog.get_logger("pbx.supervise")


class SupervisorControl:
    """Monitor orders for `board`'s calls (see the module docstring)."""

    board: Switchboard

    def _monitored_call(self, call_id: str) -> Call:
        call = self.board.calls.get(call_id)
        if call is None:
            raise ControlRefused(404, f"call {call_id!r} is not in progress")
        if call.agent_leg is None or call.agent_media is None or call.caller_media is None:
            raise ControlRefused(409, "the call is not connected to an agent")
        return call

    async def monitor(self, supervisor: str, call_id: str, mode: str) -> None:
        """Ring `supervisor`'s phone and join it to the call in `mode`; when they are on the
        call already, change the mode."""
        if mode not in MODES:
            raise ControlRefused(422, f"mode must be one of {', '.join(MODES)}")
        call = self._monitored_call(call_id)
        if supervisor == call.agent:
            raise ControlRefused(409, "this is your own call")
        watch = call.monitor
        if watch is not None and watch.supervisor != supervisor:
            raise ControlRefused(409, f"supervisor {watch.supervisor} is already on this call")
        if watch is None:
            if not self.board.registrar.lookup(supervisor, time.time()):
                raise ControlRefused(409, f"your phone (extension {supervisor}) is not "
                                          "registered: the PBX has nothing to ring")
            if self.board.agent_busy(supervisor):
                raise ControlRefused(409, f"your phone (extension {supervisor}) is on a call")
        log.info("monitor_requested", call=call.id, supervisor=supervisor, mode=mode,
                 agent=call.agent, change=watch is not None)
        self.board.post(call, ControlOrder("monitor", supervisor, mode))

    async def stop_monitor(self, supervisor: str, call_id: str) -> None:
        """Hang up the supervisor's leg of the call."""
        call = self.board.calls.get(call_id)
        if call is None or call.monitor is None:
            raise ControlRefused(409, "nobody listens in on this call")
        log.info("monitor_stop_requested", call=call.id, supervisor=supervisor,
                 on_leg=call.monitor.supervisor)
        self.board.post(call, ControlOrder("monitor_stop", supervisor))
