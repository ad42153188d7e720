"""Queues: the pure ACD engine beside the calls — L3. Its orders for a call go to that call as
one `AcdOrder` per step (carried out by the call's queued phase, `pbx.call.queued`); agent
devices and states, the queue log, the desk's queue and agent events and the engine's timer
are here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from pbx.acd.engine import AcdEngine
from pbx.acd.events import (
    AcdEvent,
    AgentDeviceAvailable,
    AgentDeviceChanged,
    AgentDeviceUnavailable,
    CallJoinedQueue,
    CallLeftQueue,
    CancelOffer,
    ConnectCall,
    EventDeferred,
    EventRejected,
    OfferCall,
    OfferFailed,
    Overflow,
)
from pbx.acd.events import AgentLoggedIn as AcdAgentLoggedIn
from pbx.acd.events import TimerFired as AcdTimerFired
from pbx.acd.model import AgentStateChanged
from pbx.call.machine import AcdOrder, log
from pbx.config.schema import HoldProgramConfig
from pbx.repositories import QueueLogEntry

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class Queueing:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    acd: AcdEngine | None
    hold_programs: dict[str, HoldProgramConfig]
    _acd_timer: asyncio.TimerHandle | None

    def attach_acd(
        self: Switchboard, engine: AcdEngine, hold_programs: Mapping[str, HoldProgramConfig],
        auto_login: Collection[str] | None = None,
    ) -> None:
        """Start using `engine`: the agents in `auto_login` (all when None) are logged in,
        the others wait for a login from the desk or their phone's feature code."""
        self.acd = engine
        self.hold_programs = dict(hold_programs)
        now = time.time()
        for agent in engine.agents:
            if auto_login is None or agent in auto_login:
                self.acd_handle(AcdAgentLoggedIn(agent))
            if self.registrar.lookup(agent, now):
                self.acd_handle(AgentDeviceAvailable(agent))

    def agent_device(self: Switchboard, agent: str, available: bool) -> None:
        """The registrar saw `agent`'s phones come or go."""
        if self.acd is not None and agent in self.acd.agents:
            self.acd_handle(
                AgentDeviceAvailable(agent) if available else AgentDeviceUnavailable(agent)
            )

    def acd_handle(self: Switchboard, event: AcdEvent) -> None:
        if self.acd is None:
            return
        now = time.time()
        commands = self.acd.handle(event, now)
        if self.intervals is not None:
            self.intervals.observe(commands, now)
        if self.queue_log is not None:
            self._log_queue(event, commands, now)
        if self.desk is not None:
            self._tell_desk(event, commands)
        agents_moved = queues_moved = False
        orders: dict[str, list[object]] = {}
        for command in commands:
            call_id = getattr(command, "call", None)
            if isinstance(command, AgentStateChanged):
                agents_moved = True
                log.info(
                    "agent_state",
                    agent=command.agent,
                    old=command.old,
                    new=command.new,
                    reason=command.reason or None,
                )
                if self.on_agent_event is not None:
                    self.on_agent_event(command)
            elif isinstance(command, AgentDeviceChanged):
                agents_moved = True
            elif isinstance(command, EventRejected | EventDeferred):
                log.debug(
                    "acd_event_not_applied",
                    acd_event=type(command.event).__name__,
                    reason=command.reason,
                )
            elif isinstance(call_id, str) and call_id in self.calls:
                queues_moved |= isinstance(command, CallJoinedQueue | CallLeftQueue)
                orders.setdefault(call_id, []).append(command)
        for call_id, batch in orders.items():
            # One step's commands for a call go together: a CallLeftQueue is followed by the
            # Overflow that says where the caller goes.
            self.post(self.calls[call_id], AcdOrder(tuple(batch)))
        # The dialer recounts once per ACD step, not once per command.
        if self.campaigns and agents_moved:
            self.dialer_agents_changed()
        if self.campaigns and queues_moved:
            self.dialer_inbound_waits()
        self._acd_rearm()

    def _log_queue(self: Switchboard, event: object, commands: list[Any], now: float) -> None:
        """Queue-log lines for what just happened (issue 5: enqueue, offer, no-answer, answer,
        abandon, overflow, pause/unpause, wrap-up)."""
        assert self.queue_log is not None
        entries: list[QueueLogEntry] = []
        if isinstance(event, OfferFailed):
            queue = self.calls[event.call].queue if event.call in self.calls else ""
            entries.append(QueueLogEntry(now, event.reason, queue, event.call, event.agent))
        for c in commands:
            if isinstance(c, CallJoinedQueue):
                entries.append(
                    QueueLogEntry(
                        now,
                        "enqueue",
                        c.queue,
                        c.call,
                        "",
                        {"position": c.position, "priority": c.priority},
                    )
                )
            elif isinstance(c, OfferCall):
                entries += [
                    QueueLogEntry(now, "offer", c.queue, c.call, agent) for agent in c.agents
                ]
            elif isinstance(c, CancelOffer) and c.reason == "ring_timeout":
                queue = self.calls[c.call].queue if c.call in self.calls else ""
                entries.append(QueueLogEntry(now, "no_answer", queue, c.call, c.agent))
            elif isinstance(c, ConnectCall):
                entries.append(
                    QueueLogEntry(
                        now, "answer", c.queue, c.call, c.agent, {"waited_s": round(c.waited_s, 3)}
                    )
                )
            elif isinstance(c, CallLeftQueue) and c.reason != "answered":
                name = "abandon" if c.reason == "abandoned" else "left"
                entries.append(
                    QueueLogEntry(
                        now,
                        name,
                        c.queue,
                        c.call,
                        "",
                        {"reason": c.reason, "waited_s": round(c.waited_s, 3)},
                    )
                )
            elif isinstance(c, Overflow):
                entries.append(
                    QueueLogEntry(
                        now,
                        "overflow",
                        c.queue,
                        c.call,
                        "",
                        {"target": c.target, "reason": c.reason},
                    )
                )
            elif isinstance(c, AgentStateChanged):
                new, old = str(getattr(c.new, "value", c.new)), str(getattr(c.old, "value", c.old))
                if new in ("paused", "wrap_up") or old == "paused":
                    name = new if new in ("paused", "wrap_up") else "unpause"
                    entries.append(
                        QueueLogEntry(
                            now,
                            "pause" if name == "paused" else name,
                            c.queue or "",
                            c.call or "",
                            c.agent,
                            {"reason": c.reason or ""},
                        )
                    )
        for entry in entries:
            self.queue_log(entry)

    def _tell_desk(self: Switchboard, event: object, commands: list[Any]) -> None:
        """What the agent desktops and the wallboard need to know (pbx.cti wiring table)."""
        desk = self.desk
        assert desk is not None
        if isinstance(event, OfferFailed):
            desk.on_offer_cancelled(event.call, event.agent, event.reason)
        for c in commands:
            call = self.calls.get(getattr(c, "call", None) or "")
            if isinstance(c, AgentStateChanged):
                desk.on_agent_state(
                    c.agent,
                    str(getattr(c.new, "value", c.new)),
                    c.reason or "",
                    c.call,
                    c.queue,
                    c.at,
                    until=self._wrap_up_until(c.agent),
                )
            elif isinstance(c, AgentDeviceChanged):
                desk.on_agent_device(c.agent, c.available)
            elif call is None:
                continue
            elif isinstance(c, CallJoinedQueue):
                desk.on_call_queued(
                    c.call,
                    c.queue,
                    caller=call.caller_number,
                    did=call.did,
                    variables=dict(call.variables),
                    customer=call.customer,
                )
            elif isinstance(c, OfferCall):
                for agent in c.agents:
                    desk.on_call_presented(
                        c.call,
                        agent,
                        dict(call.variables),
                        call.customer,
                        queue=c.queue,
                        caller=call.caller_number,
                        did=call.did,
                    )
            elif isinstance(c, CancelOffer):
                desk.on_offer_cancelled(c.call, c.agent, c.reason)
            elif isinstance(c, ConnectCall):
                desk.on_call_answered(c.call, c.agent)

    def _wrap_up_until(self: Switchboard, agent: str) -> float | None:
        seat = self.acd.agents.get(agent) if self.acd is not None else None
        return seat.wrap_up_until if seat is not None else None

    def _acd_rearm(self: Switchboard) -> None:
        if self._acd_timer is not None:
            self._acd_timer.cancel()
            self._acd_timer = None
        deadline = self.acd.next_deadline() if self.acd is not None else None
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            self._acd_timer = asyncio.get_running_loop().call_later(
                delay, lambda: self.acd_handle(AcdTimerFired())
            )
