"""The CTI desk: live agent states and calls, screen pops, and the push to desktops (L3).

Theory of operation: the PBX reports what happens through the ``on_*`` methods (all
synchronous, cheap, never raising for unknown calls or agents — a late or duplicate event is
logged and dropped). The desk keeps its own picture of every agent (state, since when, on which
call) and of every call an agent may see (queued, offered, dialing, connected, held, ended),
and pushes each change as a JSON event to the connected desktops that may see it: an agent gets
its own state and its own calls, supervisors and admins get everything, and every
``offered``/``dialing`` event carries the screen pop rendered with *that client's* field
permissions. Requests from the desktops (hold, transfer, pause …) are checked here — may this
session act on this call, is the call in a state that allows it — and handed to the
`CallControl` / `AgentControl` protocols; their outcome comes back as ``on_*`` events.

Events reach each client through its own bounded queue, filled with
``loop.call_soon_threadsafe`` so ``on_*`` may be called from any thread; a client that falls
``CLIENT_QUEUE_SIZE`` events behind is disconnected (its desktop reconnects and gets a fresh
snapshot). Ended calls stay visible for ``ENDED_CALL_KEEP_S`` so the agent can save the form
and set the disposition during wrap-up.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from pbx.config.schema import PbxConfig
from pbx.cti.auth import Session
from pbx.cti.control import (
    AgentControl,
    CallControl,
    ControlRefused,
    MetricsSource,
    QueueStatus,
    QueueStatusSource,
)
from pbx.cti.forms import PopContext, build_pop, select_form
from pbx.cti.permissions import Principal
from pbx.repositories import Customer
from pbx.storage.cti import FieldChange

log = structlog.get_logger("pbx.cti")

CLIENT_QUEUE_SIZE = 1000
ENDED_CALL_KEEP_S = 3600.0
MAX_ENDED_CALLS = 2000
INTERVAL_S = 60  # width of one bar of the wallboard's calls-per-interval chart
INTERVALS_KEPT = 60
CONNECTED_STATES = ("connected", "held")


@dataclass(slots=True)
class DeskCall:
    """One call as the desk tracks it."""

    call_id: str
    direction: str = "inbound"  # inbound | outbound
    state: str = "queued"  # queued | offered | dialing | connected | held | ended
    caller: str = ""
    did: str = ""
    queue: str = ""
    flow: str = ""
    agent: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    customer: Customer | None = None
    values: dict[str, str] = field(default_factory=dict)
    queued_at: float | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    waited_s: float | None = None
    cause: str = ""
    disposition: str = ""
    note: str = ""
    transfer_target: str = ""
    recording: bool = False  # being recorded now
    recording_mode: str = ""  # on_demand: the agent may start and stop it

    def summary(self) -> dict[str, object]:
        """What any client that may see the call gets (customer data only via the pop)."""
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "state": self.state,
            "caller": self.caller,
            "did": self.did,
            "queue": self.queue,
            "agent": self.agent,
            "queued_at": self.queued_at,
            "offered_at": self.offered_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "waited_s": self.waited_s,
            "cause": self.cause,
            "disposition": self.disposition,
            "transfer_target": self.transfer_target,
            "recording": self.recording,
            "recording_mode": self.recording_mode,
        }

    def context(self) -> PopContext:
        return PopContext(
            call_id=self.call_id,
            caller=self.caller,
            did=self.did,
            queue=self.queue,
            flow=self.flow,
            agent=self.agent,
            offered_at=self.offered_at,
            waited_s=self.waited_s,
            variables=dict(self.variables),
            customer=self.customer,
            values=dict(self.values),
        )


@dataclass(slots=True)
class AgentStatus:
    """One agent seat as desktops see it."""

    extension: str
    name: str
    state: str = "logged_out"
    reason: str = ""
    since: float = 0.0
    call: str | None = None
    queue: str | None = None
    device_available: bool = False
    until: float | None = None  # wall time a wrap-up ends (the desk counts it down)

    def describe(self) -> dict[str, object]:
        return {
            "extension": self.extension,
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "since": self.since,
            "call": self.call,
            "queue": self.queue,
            "device_available": self.device_available,
            "until": self.until,
        }


@dataclass(slots=True)
class _QueueFigures:
    # The desk's own count per queue, used when no QueueStatusSource is wired.
    entered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0


class DeskClient:
    """One connected desktop (a WebSocket): its session and its outgoing event queue."""

    def __init__(self, session: Session, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(CLIENT_QUEUE_SIZE)
        self.overflowed = False

    def push(self, message: dict[str, Any]) -> None:
        """Queue `message` for sending; safe from any thread."""
        self.loop.call_soon_threadsafe(self._put, message)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._put, None)

    def _put(self, message: dict[str, Any] | None) -> None:
        if self.overflowed:
            return
        if message is not None and self.queue.qsize() >= CLIENT_QUEUE_SIZE - 1:
            self.overflowed = True  # leave room for the sentinel that ends the connection
            message = None
        self.queue.put_nowait(message)


class CtiDesk:
    """See the module docstring. Built by the composition root; `clock` is wall-clock time."""

    def __init__(
        self,
        config: PbxConfig,
        call_control: CallControl,
        agent_control: AgentControl,
        *,
        queue_status: QueueStatusSource | None = None,
        metrics: MetricsSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.call_control = call_control
        self.agent_control = agent_control
        self.queue_status_source = queue_status
        self.metrics_source = metrics
        self.clock = clock
        started = clock()
        self.agents: dict[str, AgentStatus] = {
            a.extension: AgentStatus(a.extension, a.name, since=started)
            for a in config.agents
            if a.enabled
        }
        self.calls: dict[str, DeskCall] = {}
        self._ended: deque[str] = deque()
        self._clients: set[DeskClient] = set()
        self._queues: dict[str, _QueueFigures] = {}
        self._intervals: deque[list[float]] = deque(maxlen=INTERVALS_KEPT)  # [start, count]
        self.form_saves = 0
        self.previews: dict[str, dict[str, Any]] = {}  # agent -> the preview shown to them
        self.events_dropped = 0
        self.monitors: dict[str, dict[str, object]] = {}  # call id -> who listens in, how

    # ================================================================== events from the PBX

    def on_agent_state(
        self,
        agent: str,
        state: str,
        reason: str = "",
        call: str | None = None,
        queue: str | None = None,
        at: float | None = None,
        until: float | None = None,
    ) -> None:
        """The ACD moved `agent` to `state` (an `AgentState` value; `until`: when a wrap-up
        ends). Also announces wrap-up start and end."""
        status = self._agent(agent)
        if status is None:
            return
        old = status.state
        status.state, status.reason = str(state), reason
        status.until = until if status.state == "wrap_up" else None
        status.since = self.clock() if at is None else at
        status.call, status.queue = call, queue
        self._publish({"type": "agent_state", "agent": status.describe()}, agent)
        if status.state == "wrap_up" and old != "wrap_up":
            self._publish({"type": "wrapup_started", "agent": agent, "call_id": call}, agent)
        elif old == "wrap_up" and status.state != "wrap_up":
            self._publish({"type": "wrapup_ended", "agent": agent, "call_id": call}, agent)

    def on_agent_device(self, agent: str, available: bool) -> None:
        """The agent's phone registered (True) or went away (False)."""
        status = self._agent(agent)
        if status is not None and status.device_available != available:
            status.device_available = available
            self._publish({"type": "agent_state", "agent": status.describe()}, agent)

    def on_call_queued(
        self,
        call_id: str,
        queue: str,
        *,
        caller: str = "",
        did: str = "",
        flow: str = "",
        variables: Mapping[str, str] | None = None,
        customer: Customer | None = None,
        at: float | None = None,
    ) -> None:
        """A caller entered `queue` (for the wallboard; optional when a QueueStatusSource is
        wired, but it also gives the later pop the queue's waiting time)."""
        now = self.clock() if at is None else at
        call = self.calls.get(call_id) or DeskCall(call_id)
        self.calls[call_id] = call
        call.state, call.queue, call.queued_at = "queued", queue, now
        call.caller, call.did, call.flow = caller or call.caller, did or call.did, flow or call.flow
        call.variables.update(variables or {})
        call.customer = customer or call.customer
        self._figures(queue).entered += 1
        self._count_interval(now)
        self._publish({"type": "queued", "call": call.summary()}, None)

    def on_call_presented(
        self,
        call_id: str,
        agent: str,
        variables: Mapping[str, str],
        customer: Customer | None,
        *,
        queue: str = "",
        flow: str = "",
        caller: str = "",
        did: str = "",
        waited_s: float | None = None,
        at: float | None = None,
    ) -> None:
        """The call rings at `agent` (``OfferCall``): pops the form on its desktop."""
        if self._agent(agent) is None:
            return
        now = self.clock() if at is None else at
        call = self.calls.get(call_id)
        if call is None:
            call = self.calls[call_id] = DeskCall(call_id)
            self._count_interval(now)
        call.state, call.agent, call.offered_at = "offered", agent, now
        call.queue, call.flow = queue or call.queue, flow or call.flow
        call.caller, call.did = caller or call.caller, did or call.did
        call.variables.update(variables)
        call.customer = customer if customer is not None else call.customer
        if waited_s is not None:
            call.waited_s = waited_s
        elif call.queued_at is not None:
            call.waited_s = max(0.0, now - call.queued_at)
        self._publish({"type": "offered", "call": call.summary()}, agent, pop=call)

    def on_call_dialing(
        self, call_id: str, agent: str, number: str, customer: Customer | None = None,
        at: float | None = None,
    ) -> None:
        """An outbound call from `agent`'s phone to `number` started (click-to-dial or dialed
        on the phone); pops the customer's form when `customer` is known."""
        if self._agent(agent) is None:
            return
        now = self.clock() if at is None else at
        call = self.calls.get(call_id) or DeskCall(call_id, direction="outbound")
        self.calls[call_id] = call
        call.state, call.agent, call.did, call.offered_at = "dialing", agent, number, now
        call.customer = customer or call.customer
        self._count_interval(now)
        self._publish({"type": "dialing", "call": call.summary()}, agent, pop=call)

    def on_preview(self, agent: str, campaign: str, customer: Customer | None,
                   customer_no: str, phone: str) -> None:
        """Preview dialling: `agent` sees the customer first and decides (dial or skip). Kept
        until decided, so a desktop that connects later still shows it."""
        event = {"type": "preview", "campaign": campaign, "customer_no": customer_no,
                 "phone": phone, "name": customer.name if customer is not None else ""}
        self.previews[agent] = event
        self._publish(dict(event), agent, supervisors=False)

    def on_preview_ended(self, agent: str, campaign: str, customer_no: str) -> None:
        """The preview was decided or withdrawn."""
        if self.previews.get(agent, {}).get("customer_no") == customer_no:
            del self.previews[agent]
        self._publish({"type": "preview_cancelled", "campaign": campaign,
                       "customer_no": customer_no}, agent, supervisors=False)

    def on_offer_cancelled(self, call_id: str, agent: str, reason: str = "") -> None:
        """The offer to `agent` ended unanswered (ring timeout, answered elsewhere …)."""
        call = self.calls.get(call_id)
        if call is None or call.agent != agent or call.state != "offered":
            return
        call.state, call.agent = ("queued" if call.queued_at is not None else "offered"), ""
        self._publish(
            {"type": "offer_cancelled", "call_id": call_id, "agent": agent, "reason": reason},
            agent,
        )

    def on_call_answered(self, call_id: str, agent: str | None = None,
                         at: float | None = None) -> None:
        call = self._call(call_id, "answered")
        if call is None:
            return
        now = self.clock() if at is None else at
        call.agent = agent or call.agent
        call.state, call.answered_at = "connected", now
        if call.queue and call.queued_at is not None:
            figures = self._figures(call.queue)
            figures.answered += 1
            if now - call.queued_at <= self.config.cti.service_level_s:
                figures.answered_in_time += 1
        self._publish({"type": "answered", "call": call.summary()}, call.agent)

    def on_call_recording(self, call_id: str, recording: bool, mode: str) -> None:
        """The call's recording started, paused or became possible (`mode` on_demand)."""
        call = self._call(call_id, "recording")
        if call is None:
            return
        call.recording, call.recording_mode = recording, mode
        self._publish({"type": "recording", "call": call.summary()}, call.agent)

    def on_call_held(self, call_id: str) -> None:
        self._set_call_state(call_id, "held", "held")

    def on_call_resumed(self, call_id: str) -> None:
        self._set_call_state(call_id, "connected", "resumed")

    def on_call_transferred(self, call_id: str, target: str, agent: str | None = None) -> None:
        """The call went to `target`; `agent` is the new agent when the target is one (the
        call then leaves the old agent's desktop and pops on the new one's)."""
        call = self._call(call_id, "transferred")
        if call is None:
            return
        old_agent = call.agent
        call.transfer_target = target
        message = {"type": "transferred", "call": call.summary(), "target": target}
        self._publish(message, old_agent)
        if agent and agent != old_agent and self._agent(agent) is not None:
            call.agent = agent
            self._publish({"type": "offered", "call": call.summary()}, agent, pop=call,
                          supervisors=False)

    def on_call_ended(self, call_id: str, cause: str = "normal", at: float | None = None) -> None:
        call = self._call(call_id, "ended")
        if call is None or call.state == "ended":
            return
        now = self.clock() if at is None else at
        if call.answered_at is None and call.queue and call.queued_at is not None:
            self._figures(call.queue).abandoned += 1
        call.state, call.ended_at, call.cause = "ended", now, cause
        self.monitors.pop(call_id, None)  # the call took the supervisor's leg with it
        self._ended.append(call_id)
        self._publish({"type": "ended", "call": call.summary()}, call.agent)
        self._forget_old_calls(now)

    def on_call_monitored(self, call_id: str, supervisor: str, mode: str,
                          ringing: bool = False) -> None:
        """A supervisor's phone rings for `call_id` (`ringing`), is on it in `mode` (listen,
        whisper, barge), or left it (`mode` ""). Told to supervisors only."""
        if mode:
            self.monitors[call_id] = {"supervisor": supervisor, "mode": mode, "ringing": ringing}
        else:
            self.monitors.pop(call_id, None)
        self._publish({"type": "monitor", "call_id": call_id, "supervisor": supervisor,
                       "mode": mode, "ringing": ringing}, None)

    # ================================================================== requests from desktops

    def visible_call(self, session: Session, call_id: str) -> DeskCall:
        """The call if `session` may see it; `ControlRefused` 404 otherwise (another agent's
        call is not even admitted to exist)."""
        call = self.calls.get(call_id)
        if call is None or not self.may_see(session, call):
            raise ControlRefused(404, f"no call {call_id!r} of yours")
        return call

    def may_see(self, session: Session, call: DeskCall) -> bool:
        return session.sees_all or (bool(call.agent) and call.agent == session.extension)

    def calls_for(self, session: Session) -> list[DeskCall]:
        return [call for call in self.calls.values() if self.may_see(session, call)]

    def acting_agent(self, session: Session, call: DeskCall) -> str:
        """On whose behalf a call request runs: the call's agent (supervisors may act on any
        agent's call)."""
        return call.agent or session.extension

    def check_state(self, call: DeskCall, allowed: tuple[str, ...], action: str) -> None:
        if call.state not in allowed:
            raise ControlRefused(
                409, f"cannot {action} a call that is {call.state} (needs {' or '.join(allowed)})"
            )

    def may_act_for(self, session: Session, agent: str) -> None:
        """Agents act for themselves only; supervisors and admins for anyone."""
        if agent not in self.agents:
            raise ControlRefused(404, f"no agent {agent!r}")
        if agent != session.extension and not session.sees_all:
            raise ControlRefused(403, "agents may only change their own state")

    def pop(self, call: DeskCall, who: Principal) -> dict[str, object]:
        """The screen pop of `call` for `who`: call summary, customer key, form."""
        chosen = select_form(self.config.forms, call.queue, call.flow)
        payload: dict[str, object] = {
            "call": call.summary(),
            "customer_no": call.customer.customer_no if call.customer else None,
            "dispositions": list(self.config.cti.dispositions),
            "form": None,
        }
        if chosen is not None:
            payload["form"] = build_pop(chosen[0], chosen[1], call.context(), who)
        return payload

    def form_saved(
        self, call: DeskCall | None, changes: list[FieldChange], customer: Customer | None,
        session: Session,
    ) -> None:
        """Apply a stored save to the desk's picture and tell the desktops."""
        self.form_saves += 1
        if call is not None:
            for change in changes:
                if not change.target.startswith("customer."):
                    call.values[change.field] = change.new_value
            if customer is not None:
                call.customer = customer
            self._publish(
                {"type": "form_saved", "call_id": call.call_id, "by": session.extension,
                 "fields": [c.field for c in changes]},
                call.agent,
            )

    def disposition_set(self, call: DeskCall, disposition: str, note: str) -> None:
        call.disposition, call.note = disposition, note
        self._publish(
            {"type": "disposition", "call_id": call.call_id, "disposition": disposition},
            call.agent,
        )

    # ================================================================== snapshots

    def agent_list(self) -> list[dict[str, object]]:
        return [status.describe() for status in self.agents.values()]

    def queue_list(self) -> list[QueueStatus]:
        if self.queue_status_source is not None:
            return list(self.queue_status_source.queue_status())
        now = self.clock()
        waiting: dict[str, list[float]] = {}
        for call in self.calls.values():
            if call.state in ("queued", "offered") and call.queue and call.queued_at is not None:
                waiting.setdefault(call.queue, []).append(now - call.queued_at)
        out = []
        configured = {q.name for q in self.config.effective_queues()}
        for name in sorted(configured | set(self._queues) | set(waiting)):
            figures = self._figures(name)
            waits = waiting.get(name, [])
            finished = figures.answered + figures.abandoned
            out.append(
                QueueStatus(
                    name=name,
                    waiting=len(waits),
                    longest_wait_s=round(max(waits, default=0.0), 1),
                    answered=figures.answered,
                    abandoned=figures.abandoned,
                    service_level=(figures.answered_in_time / finished) if finished else None,
                )
            )
        return out

    def calls_per_interval(self) -> list[dict[str, float]]:
        return [{"start": start, "calls": count} for start, count in self._intervals]

    def wallboard(self) -> dict[str, object]:
        """Everything the supervisor wallboard shows, in one message."""
        return {
            "type": "wallboard",
            "at": self.clock(),
            "interval_s": INTERVAL_S,
            "queues": [queue_json(q) for q in self.queue_list()],
            "agents": [self._agent_on_board(a) for a in self.agents.values()],
            "calls": [c.summary() for c in self.calls.values() if c.state != "ended"],
            "calls_per_interval": self.calls_per_interval(),
            "monitors": self.monitors,
        }

    def _agent_on_board(self, status: AgentStatus) -> dict[str, object]:
        # The wallboard names the caller and how long they talk, not the call's internal id;
        # customer name if the lookup found one (supervisors see every call's caller).
        out = status.describe()
        call = self.calls.get(status.call or "")
        if call is None:
            call = next((c for c in self.calls.values() if c.agent == status.extension
                         and c.state in ("connected", "held", "dialing", "offered")), None)
        out["caller"] = call.caller if call is not None else None
        out["customer_name"] = call.customer.name if call is not None and call.customer else None
        out["talking_since"] = call.answered_at if call is not None else None
        out["call_state"] = call.state if call is not None else None
        return out

    def snapshot_for(self, session: Session) -> dict[str, object]:
        """The first message after a desktop connects: its view of agents and calls."""
        me = self.agents.get(session.extension)
        agents = self.agent_list() if session.sees_all else ([me.describe()] if me else [])
        return {
            "type": "snapshot",
            "session": session.describe(),
            "agents": agents,
            "calls": [
                {**self.pop(call, session.principal), "type": "call"}
                for call in self.calls_for(session)
            ],
        }

    # ================================================================== clients

    def connect(self, session: Session, loop: asyncio.AbstractEventLoop) -> DeskClient:
        client = DeskClient(session, loop)
        self._clients.add(client)
        return client

    def disconnect(self, client: DeskClient) -> None:
        self._clients.discard(client)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def disconnect_session(self, session: Session) -> None:
        """Close every desktop of a session that logged out."""
        for client in list(self._clients):
            if client.session.token_hash == session.token_hash:
                client.close()

    # ================================================================== internals

    def _publish(
        self,
        message: dict[str, Any],
        agent: str | None,
        pop: DeskCall | None = None,
        supervisors: bool = True,
    ) -> None:
        message.setdefault("at", self.clock())
        for client in list(self._clients):
            session = client.session
            mine = agent is not None and session.extension == agent
            if not (mine or (supervisors and session.sees_all)):
                continue
            if client.overflowed:
                self.events_dropped += 1
                continue
            out = message
            if pop is not None:
                out = {**message, "pop": self.pop(pop, session.principal)}
            client.push(out)

    def _agent(self, agent: str) -> AgentStatus | None:
        status = self.agents.get(agent)
        if status is None:
            log.info("cti_unknown_agent", agent=agent)
        return status

    def _call(self, call_id: str, event: str) -> DeskCall | None:
        call = self.calls.get(call_id)
        if call is None:
            log.debug("cti_unknown_call", call_id=call_id, cti_event=event)
        return call

    def _set_call_state(self, call_id: str, state: str, event: str) -> None:
        call = self._call(call_id, event)
        if call is None or call.state == "ended":
            return
        call.state = state
        self._publish({"type": event, "call": call.summary()}, call.agent)

    def _figures(self, queue: str) -> _QueueFigures:
        return self._queues.setdefault(queue, _QueueFigures())

    def _count_interval(self, now: float) -> None:
        start = now - now % INTERVAL_S
        if self._intervals and self._intervals[-1][0] == start:
            self._intervals[-1][1] += 1
        else:
            self._intervals.append([start, 1])

    def _forget_old_calls(self, now: float) -> None:
        while self._ended:
            oldest = self.calls.get(self._ended[0])
            if (oldest is not None and oldest.state == "ended"
                    and len(self._ended) <= MAX_ENDED_CALLS
                    and (oldest.ended_at or now) >= now - ENDED_CALL_KEEP_S):
                break
            call_id = self._ended.popleft()
            if oldest is not None and oldest.state == "ended":
                del self.calls[call_id]


def queue_json(status: QueueStatus) -> dict[str, object]:
    """A queue's figures as JSON."""
    return {
        "name": status.name,
        "waiting": status.waiting,
        "longest_wait_s": status.longest_wait_s,
        "answered": status.answered,
        "abandoned": status.abandoned,
        "service_level": status.service_level,
        "agents_staffed": status.agents_staffed,
        "agents_available": status.agents_available,
        "offered": status.offered,
        "asa_s": status.asa_s,
        "aht_s": status.aht_s,
        "abandon_rate": status.abandon_rate,
        "service_level_s": status.service_level_s,
        "service_level_target": status.service_level_target,
        "thresholds": dict(status.thresholds),
    }

