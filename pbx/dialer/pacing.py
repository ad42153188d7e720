"""The pacer: how many customers to call now, and what happens to each call (L2, pure).

Theory of operation. One `Pacer` runs one campaign. `handle(event, now)` first runs every
timer that is due (drop timers, preview timeouts), then the event, then one *pacing* pass, and
returns the commands those produced, in order; the caller re-arms one timer from
`next_deadline()` and calls `handle(TimerFired(), now)` when it expires. The `Campaign` (the
contact book) says *whom* to call; the pacer says *how many* and follows each outbound line:

    dialling ─answered─▶ detecting (AMD) ─human─▶ waiting ─agent─▶ connected ─ended─▶ (done)
        │                    │ machine: hang up / leave a message           │
        └─failed─▶ (retry)   └──────────────────────▶ waiting ─drop time─▶ dropping

A line waiting for an agent longer than the campaign's ``drop_after_s`` (2 s) is dropped: the
customer hears the drop prompt, the attempt counts as ``dropped`` (abandoned) and the number is
locked out. The abandon rate is drops / (connects + drops) over the rolling
``abandon_window_s``. Modes:

- **preview**: for every free agent not yet served, one contact is reserved for preview; the
  agent's `PreviewDecided` dials it (the answered call goes to that agent) or skips it;
- **progressive**: one line per free agent (free agents minus lines dialling or waiting);
- **predictive**: dials ahead. From the live estimates — p, the share of attempts that end
  in a customer needing an agent; R, the time from dial to answer; H, the handle time (talk +
  wrap-up) — it expects ``A + B·(1 − e^(−R/H))`` agents within R (A free, B busy) and adds
  lines while the expected overflow of Binomial(lines, p) answers over those agents stays
  under ``margin × max_abandon_rate`` of the expected answers. The margin is proportional to
  what is left of the cap in the rolling window (``1 − rate / (SAFETY × cap)``, at least
  `MARGIN_MIN`); while one more drop would take the window over ``SAFETY × cap`` — which
  includes the warm-up, when the window holds too few answered calls — and while too few
  results exist to estimate p, it dials like progressive.
  Dialling lines never exceed ``max_dial_level`` per expected agent, nor ``max_lines`` calls.

Blending: while an inbound caller waits longer than ``blending.pause_above_s`` no new line is
started (calls in progress go on) until the wait falls below ``resume_below_s``. Nothing here
reads a clock; call ids come from the injected `new_call_id`.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import count
from typing import Any

import numpy as np
import numpy.typing as npt

from pbx.dialer.campaign import Campaign, ContactStats
from pbx.dialer.events import (
    AgentConnected,
    AgentsChanged,
    AmdDecided,
    CallAnswered,
    CallEnded,
    CallFailed,
    CampaignFinished,
    CancelPreview,
    ConnectAnsweredCall,
    ContactsAdded,
    DialContact,
    DialerCommand,
    DialerEvent,
    DialingPaused,
    DialingResumed,
    DropCall,
    EventIgnored,
    HangUpCall,
    InboundWaiting,
    LeaveMessage,
    PauseReason,
    PauseRequested,
    PreviewDecided,
    ReserveAgentForPreview,
    StartRequested,
    StopRequested,
    TimerFired,
)
from pbx.dialer.records import DialResult
from pbx.errors import PbxError

log = logging.getLogger(__name__)

# Results needed before predictive trusts its answer-rate estimate.
WARMUP_RESULTS = 30
# Attempts the answer rate is estimated over (most recent).
ANSWER_SAMPLE = 300
# Exponential smoothing of ring and handle times.
SMOOTHING = 0.05
PRIOR_RING_S = 10.0
# The share of the abandon cap the predictive pacer allows itself in the rolling window, and
# the least margin it keeps aiming at while under it.
SAFETY = 0.85
MARGIN_MIN = 0.1


class PacerStateError(PbxError):
    """A broken internal rule of the pacer (a bug, not a late event)."""


class RunState(enum.StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


class LineState(enum.StrEnum):
    DIALLING = "dialling"
    DETECTING = "detecting"
    WAITING = "waiting"
    CONNECTED = "connected"
    DROPPING = "dropping"
    HANGING_UP = "hanging_up"
    MESSAGE = "message"


L = LineState
_LINE_ALLOWED: Mapping[LineState, frozenset[LineState]] = {
    L.DIALLING: frozenset({L.DETECTING, L.WAITING}),
    L.DETECTING: frozenset({L.WAITING, L.HANGING_UP, L.MESSAGE}),
    L.WAITING: frozenset({L.CONNECTED, L.DROPPING}),
    L.CONNECTED: frozenset(),
    L.DROPPING: frozenset(),
    L.HANGING_UP: frozenset(),
    L.MESSAGE: frozenset(),
}
# What an answered line that ends in this state counts as.
_ENDED_AS: Mapping[LineState, DialResult] = {
    L.DETECTING: "dropped",  # hung up during detection: counted against us, to be safe
    L.WAITING: "dropped",  # hung up before an agent came
    L.CONNECTED: "connected",
    L.DROPPING: "dropped",
    L.HANGING_UP: "machine",
    L.MESSAGE: "message_left",
}


@dataclass(slots=True)
class _Line:
    call: str
    customer_no: str
    language: str
    dialled_at: float
    state: LineState = L.DIALLING
    agent: str | None = None  # previewing agent
    answered_at: float | None = None
    waiting_since: float | None = None
    connected_at: float | None = None
    connected_agent: str = ""
    counted_drop: bool = False


@dataclass(frozen=True, slots=True)
class PacerStats:
    """Live figures of one campaign run."""

    campaign: str
    mode: str
    state: str
    paused_reason: str
    dialling: int  # lines ringing (or in AMD)
    waiting: int  # answered, waiting for an agent
    connected: int
    previews: int
    attempts: int
    answered: int
    connects: int
    drops: int
    machines: int
    abandon_rate: float  # over the rolling window
    answer_rate: float  # share of attempts that needed an agent (estimate)
    ring_time_s: float
    handle_time_s: float
    margin: float
    agent_occupancy: float  # busy agent time / staffed agent time since the start


@dataclass(frozen=True, slots=True)
class CampaignStatistics:
    """What the API and the wallboard show per campaign: the live run and the contacts."""

    campaign: str
    state: str
    attempts: int
    connects: int
    drops: int
    abandon_rate: float
    contacts: int
    contacts_left: int
    agent_occupancy: float
    by_state: Mapping[str, int]
    results: Mapping[str, int]


def _binomial_pmf(n: int, p: float) -> npt.NDArray[np.float64]:
    k = np.arange(n + 1)
    log_comb = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                         for i in range(n + 1)])
    p = min(max(p, 0.0), 1.0)
    if p in (0.0, 1.0):
        certain = np.zeros(n + 1)
        certain[0 if p == 0.0 else n] = 1.0
        return certain
    pmf: npt.NDArray[np.float64] = np.exp(log_comb + k * math.log(p) + (n - k) * math.log1p(-p))
    return pmf


def expected_overflow(lines: int, p: float, agents: float, detecting: int = 0,
                      q: float = 0.0) -> float:
    """E[max(0, X + Y − agents)] for X ~ Binomial(lines, p) (lines ringing, each ending with
    a customer needing an agent with probability p) and Y ~ Binomial(detecting, q) (answered
    lines under answering-machine detection, each a person with probability q): the calls
    expected to find no agent."""
    if lines + detecting <= 0:
        return 0.0
    pmf = np.convolve(_binomial_pmf(lines, p), _binomial_pmf(detecting, q))
    excess = np.maximum(np.arange(len(pmf)) - agents, 0.0)
    return float(np.dot(pmf, excess))


class Pacer:
    """The sans-IO outbound dialer of one campaign. Driven by `handle(event, now)` with the
    events of `pbx.dialer.events`; returns `DialContact`, `ConnectAnsweredCall`, `DropCall`,
    `SaveContact`, … to carry out; `next_deadline()` says when to call it with `TimerFired`.
    A run starts with `StartRequested`. Late events (about calls already ended) come back as
    `EventIgnored`; only a broken internal rule raises (`PacerStateError`).

    `handle_time_estimate_s` seeds the handle-time estimate and `wrap_up_s` is added to each
    measured talk time (both from the campaign's ACD queue)."""

    def __init__(
        self,
        campaign: Campaign,
        *,
        new_call_id: Callable[[], str] | None = None,
        handle_time_estimate_s: float = 180.0,
        wrap_up_s: float = 0.0,
        now: float = 0.0,
    ) -> None:
        self.campaign = campaign
        self.config = campaign.config
        numbers: Iterator[int] = count(1)
        self._new_call_id = new_call_id or (lambda: f"{self.config.name}-{next(numbers)}")
        self._wrap_up_s = wrap_up_s
        self._state = RunState.IDLE
        self._inbound_hold = False
        self._lines: dict[str, _Line] = {}
        self._previews: dict[str, float] = {}  # customer_no -> deadline
        self._free = 0
        self._busy = 0
        self._out: list[DialerCommand] = []
        # estimates
        self._needs_agent: deque[bool] = deque(maxlen=ANSWER_SAMPLE)
        self._human: deque[bool] = deque(maxlen=ANSWER_SAMPLE)  # AMD verdicts
        self._ring_s = PRIOR_RING_S
        self._handle_s = handle_time_estimate_s
        self._outcomes: deque[tuple[float, bool]] = deque()  # (at, dropped) in the window
        self._window_drops = 0
        # counters
        self._attempts = self._answered = self._connects = self._drops = self._machines = 0
        self._busy_time = self._staffed_time = 0.0
        self._last_now = now
        self._handlers: dict[type[Any], Callable[[Any, float], None]] = {
            AgentsChanged: self._on_agents,
            CallAnswered: self._on_answered,
            AmdDecided: self._on_amd,
            AgentConnected: self._on_connected,
            CallFailed: self._on_failed,
            CallEnded: self._on_ended,
            InboundWaiting: self._on_inbound,
            PreviewDecided: self._on_preview_decided,
            StartRequested: self._on_start,
            PauseRequested: self._on_pause,
            StopRequested: self._on_stop,
            ContactsAdded: self._on_contacts_added,
            TimerFired: lambda _event, _now: None,
        }

    # ------------------------------------------------------------------ the surface

    @property
    def state(self) -> RunState:
        return self._state

    def handle(self, event: DialerEvent, now: float) -> list[DialerCommand]:
        """Run due timers, apply `event`, pace; the commands to carry out, in order."""
        self._advance(now)
        self._run_timers(now)
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"not a dialer event: {event!r}")
        handler(event, now)
        self._pace(now)
        self._check_finished()
        self._out.extend(self.campaign.take_writes())
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When to call `handle(TimerFired(), now)` next; None: only on the next event."""
        times = [
            line.waiting_since + self.config.drop_after_s
            for line in self._lines.values()
            if line.state is L.WAITING and line.waiting_since is not None
        ]
        times += self._previews.values()
        if self._state is RunState.RUNNING and not self._inbound_hold:
            due = self.campaign.next_due_at()
            if due is not None and due > self._last_now:
                times.append(due)
        return min(times) if times else None

    def stats(self) -> PacerStats:
        lines = list(self._lines.values())
        return PacerStats(
            campaign=self.config.name,
            mode=self.config.mode,
            state=str(self._state),
            paused_reason="inbound" if self._inbound_hold else "",
            dialling=sum(1 for x in lines if x.state in (L.DIALLING, L.DETECTING)),
            waiting=sum(1 for x in lines if x.state is L.WAITING),
            connected=sum(1 for x in lines if x.state is L.CONNECTED),
            previews=len(self._previews),
            attempts=self._attempts,
            answered=self._answered,
            connects=self._connects,
            drops=self._drops,
            machines=self._machines,
            abandon_rate=self.abandon_rate(),
            answer_rate=self.answer_rate(),
            ring_time_s=self._ring_s,
            handle_time_s=self._handle_s,
            margin=self._margin(),
            agent_occupancy=self._busy_time / self._staffed_time if self._staffed_time else 0.0,
        )

    def statistics(self) -> CampaignStatistics:
        """Live and contact statistics together."""
        live = self.stats()
        contacts: ContactStats = self.campaign.stats()
        return CampaignStatistics(
            campaign=self.config.name,
            state=live.state,
            attempts=contacts.attempts,
            connects=contacts.connects,
            drops=contacts.drops,
            abandon_rate=live.abandon_rate,
            contacts=contacts.contacts,
            contacts_left=contacts.contacts_left,
            agent_occupancy=live.agent_occupancy,
            by_state=contacts.by_state,
            results=contacts.results,
        )

    def abandon_rate(self) -> float:
        """Drops / (connects + drops) of the answered calls in the rolling window."""
        return self._window_drops / len(self._outcomes) if self._outcomes else 0.0

    def window_outcomes(self) -> int:
        """Answered calls (connected or dropped) in the rolling window."""
        return len(self._outcomes)

    def answer_rate(self) -> float:
        """The share of recent attempts that ended with a customer needing an agent."""
        if not self._needs_agent:
            return 0.0
        return sum(self._needs_agent) / len(self._needs_agent)

    # ------------------------------------------------------------------ events

    def _on_agents(self, event: AgentsChanged, now: float) -> None:
        self._free, self._busy = max(0, event.free), max(0, event.busy)

    def _on_start(self, _event: StartRequested, now: float) -> None:
        if self._state in (RunState.IDLE, RunState.PAUSED, RunState.STOPPED):
            was_paused = self._state is RunState.PAUSED
            self._state = RunState.RUNNING
            if was_paused and not self._inbound_hold:
                self._out.append(DialingResumed(self.config.name))

    def _on_pause(self, _event: PauseRequested, now: float) -> None:
        if self._state is RunState.RUNNING:
            self._state = RunState.PAUSED
            self._out.append(DialingPaused(self.config.name, "operator"))

    def _on_stop(self, _event: StopRequested, now: float) -> None:
        if self._state in (RunState.FINISHED, RunState.STOPPED):
            return
        self._state = RunState.STOPPED
        for customer_no in list(self._previews):
            del self._previews[customer_no]
            self._out.append(CancelPreview(self.config.name, customer_no))
            self.campaign.skip_previewed(customer_no, now, released=True)

    def _on_contacts_added(self, event: ContactsAdded, now: float) -> None:
        # A running campaign dials the new contacts as they come due; a finished one is
        # stopped again (it dials them once a supervisor starts it: it never restarts itself).
        added = self.campaign.add_customers(event.customers)
        if added and self._state is RunState.FINISHED:
            self._state = RunState.STOPPED

    def _on_inbound(self, event: InboundWaiting, now: float) -> None:
        blending = self.config.blending
        resume = blending.resume_threshold_s
        if blending.pause_above_s is None or resume is None:
            return
        if not self._inbound_hold and event.longest_wait_s > blending.pause_above_s:
            self._inbound_hold = True
            self._announce_pause("inbound")
        elif self._inbound_hold and event.longest_wait_s <= resume:
            self._inbound_hold = False
            if self._state is RunState.RUNNING:
                self._out.append(DialingResumed(self.config.name))

    def _on_preview_decided(self, event: PreviewDecided, now: float) -> None:
        if self._previews.pop(event.customer_no, None) is None:
            self._out.append(EventIgnored(event, "no preview of this contact is open"))
            return
        if not event.dial:
            self.campaign.skip_previewed(event.customer_no, now)
            return
        self._dial_previewed(event.customer_no, event.agent, now)

    def _on_answered(self, event: CallAnswered, now: float) -> None:
        line = self._line(event, L.DIALLING)
        if line is None:
            return
        self._answered += 1
        line.answered_at = now
        self._ring_s += SMOOTHING * ((now - line.dialled_at) - self._ring_s)
        self.campaign.answered(line.customer_no)
        if self.config.amd.enabled:
            self._set_line(line, L.DETECTING)
        else:
            self._needs_agent.append(True)
            self._to_agent(line, now)

    def _on_amd(self, event: AmdDecided, now: float) -> None:
        line = self._line(event, L.DETECTING)
        if line is None:
            return
        amd = self.config.amd
        self._human.append(event.verdict != "machine" or amd.action == "pass_to_agent")
        if event.verdict != "machine" or amd.action == "pass_to_agent":
            self._needs_agent.append(True)
            self._to_agent(line, now)
            return
        self._needs_agent.append(False)
        self._machines += 1
        if amd.action == "leave_message" and amd.message_prompt is not None:
            self._set_line(line, L.MESSAGE)
            self._out.append(LeaveMessage(line.call, amd.message_prompt, line.language))
        else:
            self._set_line(line, L.HANGING_UP)
            self._out.append(HangUpCall(line.call, "answering_machine"))

    def _on_connected(self, event: AgentConnected, now: float) -> None:
        line = self._line(event, L.WAITING)
        if line is None:
            return
        self._set_line(line, L.CONNECTED)
        line.connected_at = now
        line.connected_agent = event.agent
        self._connects += 1
        self._record_outcome(now, dropped=False)
        self.campaign.connected(line.customer_no)

    def _on_failed(self, event: CallFailed, now: float) -> None:
        line = self._line(event, L.DIALLING)
        if line is None:
            return
        del self._lines[line.call]
        self._needs_agent.append(False)
        self.campaign.finish(line.customer_no, event.result, now)

    def _on_ended(self, event: CallEnded, now: float) -> None:
        line = self._lines.pop(event.call, None)
        if line is None:
            self._out.append(EventIgnored(event, "no such call"))
            return
        if line.state is L.DIALLING:
            # Ended before an answer: the leg failed without a final status.
            self._needs_agent.append(False)
            self.campaign.finish(line.customer_no, "failed", now)
            return
        result = _ENDED_AS[line.state]
        if result == "dropped" and not line.counted_drop:
            self._count_drop(line, now)
        if line.state is L.CONNECTED and line.connected_at is not None:
            handle = now - line.connected_at + self._wrap_up_s
            self._handle_s += SMOOTHING * (handle - self._handle_s)
        self.campaign.finish(line.customer_no, result, now, line.connected_agent)

    # ------------------------------------------------------------------ timers

    def _run_timers(self, now: float) -> None:
        for line in list(self._lines.values()):
            if (
                line.state is L.WAITING
                and line.waiting_since is not None
                and now >= line.waiting_since + self.config.drop_after_s
            ):
                self._set_line(line, L.DROPPING)
                self._count_drop(line, now)
                self._out.append(DropCall(line.call, self.config.drop_prompt, line.language))
        for customer_no, deadline in list(self._previews.items()):
            if now < deadline:
                continue
            del self._previews[customer_no]
            self._out.append(CancelPreview(self.config.name, customer_no))
            if self.config.preview.on_timeout == "dial" and self._may_start():
                self._dial_previewed(customer_no, None, now)
            else:
                self.campaign.skip_previewed(customer_no, now)

    # ------------------------------------------------------------------ pacing

    def _may_start(self) -> bool:
        return self._state is RunState.RUNNING and not self._inbound_hold

    def _pace(self, now: float) -> None:
        if not self._may_start():
            return
        wanted = self._lines_wanted()
        preview = self.config.mode == "preview"
        for _ in range(wanted):
            contact = self.campaign.take_next(now, preview=preview)
            if contact is None:
                return
            if preview:
                timeout = self.config.preview.timeout_s
                self._previews[contact.customer_no] = now + timeout
                self._out.append(
                    ReserveAgentForPreview(self.config.name, contact.customer_no, contact.phone,
                                           contact.attempt, self.config.queue, self.config.form,
                                           timeout)
                )
            else:
                self._dial(contact.customer_no, contact.phone, contact.attempt,
                           contact.language, None, now)

    def _lines_wanted(self) -> int:
        """How many new lines (or previews) to start now."""
        lines = list(self._lines.values())
        ringing = sum(1 for x in lines if x.state is L.DIALLING)
        detecting = sum(1 for x in lines if x.state is L.DETECTING)
        waiting = sum(1 for x in lines if x.state is L.WAITING)
        available = self._free - waiting
        progressive = available - ringing - detecting - len(self._previews)
        if self.config.mode == "predictive" and self._predictive_ready():
            wanted = self._predictive_lines(max(available, 0), ringing, detecting)
        else:
            wanted = progressive
        if self.config.max_lines is not None:
            wanted = min(wanted, self.config.max_lines - len(lines))
        return max(wanted, 0)

    def _predictive_ready(self) -> bool:
        # Dial ahead only while one more drop would keep the window under SAFETY × cap.
        budget = SAFETY * self.config.max_abandon_rate * (len(self._outcomes) + 1)
        return (
            len(self._needs_agent) >= WARMUP_RESULTS
            and self._window_drops + 1 <= budget
            and self.answer_rate() > 0
        )

    def _margin(self) -> float:
        limit = SAFETY * self.config.max_abandon_rate
        if limit <= 0:
            return 0.0
        return max(MARGIN_MIN, 1.0 - self.abandon_rate() / limit)

    def _predictive_lines(self, available: int, ringing: int, detecting: int) -> int:
        p = self.answer_rate()
        q = sum(self._human) / len(self._human) if self._human else 1.0
        soon = self._busy * (1.0 - math.exp(-self._ring_s / max(self._handle_s, 1.0)))
        agents = available + soon
        ceiling = math.floor(self.config.max_dial_level * agents + 1e-9)
        target = self.config.max_abandon_rate * self._margin()
        lines = ringing
        while lines + detecting < ceiling:
            trial = lines + 1
            expected_answers = trial * p + detecting * q
            if expected_overflow(trial, p, agents, detecting, q) > target * expected_answers:
                break
            lines = trial
        # Never fewer than progressive would start.
        return max(lines - ringing, available - ringing - detecting)

    # ------------------------------------------------------------------ helpers

    def _dial(self, customer_no: str, phone: str, attempt: int, language: str,
              agent: str | None, now: float) -> None:
        call = self._new_call_id()
        self.campaign.set_call(customer_no, call)
        self._lines[call] = _Line(call, customer_no, language, now, agent=agent)
        self._attempts += 1
        config = self.config
        self._out.append(
            DialContact(call, config.name, customer_no, phone, attempt, config.caller_id,
                        config.caller_name, config.trunk, config.ring_timeout_s,
                        config.amd.enabled, agent)
        )

    def _dial_previewed(self, customer_no: str, agent: str | None, now: float) -> None:
        contact = self.campaign.dial_previewed(customer_no, now)
        if contact is not None:
            self._dial(customer_no, contact.phone, contact.attempt, contact.language, agent, now)

    def _to_agent(self, line: _Line, now: float) -> None:
        self._set_line(line, L.WAITING)
        line.waiting_since = now
        config = self.config
        self._out.append(
            ConnectAnsweredCall(line.call, config.name, line.customer_no, config.queue,
                                config.strategy, config.priority, config.form, line.agent)
        )

    def _count_drop(self, line: _Line, now: float) -> None:
        line.counted_drop = True
        self._drops += 1
        self._record_outcome(now, dropped=True)

    def _record_outcome(self, now: float, *, dropped: bool) -> None:
        self._outcomes.append((now, dropped))
        self._window_drops += dropped
        self._expire_outcomes(now)

    def _expire_outcomes(self, now: float) -> None:
        horizon = now - self.config.abandon_window_s
        while self._outcomes and self._outcomes[0][0] <= horizon:
            _, dropped = self._outcomes.popleft()
            self._window_drops -= dropped

    def _advance(self, now: float) -> None:
        # Agent occupancy: integrate busy and staffed agent-seconds between events.
        elapsed = max(0.0, now - self._last_now)
        self._busy_time += self._busy * elapsed
        self._staffed_time += (self._busy + self._free) * elapsed
        self._last_now = max(self._last_now, now)
        self._expire_outcomes(now)

    def _line(self, event: AgentConnected | CallAnswered | AmdDecided | CallFailed,
              state: LineState) -> _Line | None:
        line = self._lines.get(event.call)
        if line is None or line.state is not state:
            found = "no such call" if line is None else f"call is {line.state}"
            self._out.append(EventIgnored(event, found))
            return None
        return line

    def _set_line(self, line: _Line, state: LineState) -> None:
        if state not in _LINE_ALLOWED[line.state]:
            raise PacerStateError(f"line {line.call}: {line.state} -> {state} is not allowed")
        log.debug("line %s: %s -> %s", line.call, line.state, state)
        line.state = state

    def _announce_pause(self, reason: PauseReason) -> None:
        if self._state is RunState.RUNNING:
            self._out.append(DialingPaused(self.config.name, reason))

    def _check_finished(self) -> None:
        if (
            self._state in (RunState.RUNNING, RunState.PAUSED, RunState.STOPPED)
            and not self._lines
            and not self._previews
            and self.campaign.is_finished()
        ):
            self._state = RunState.FINISHED
            self._out.append(CampaignFinished(self.config.name))
