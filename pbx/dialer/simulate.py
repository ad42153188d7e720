"""A campaign day around the real `Pacer` and `Campaign` (L2, pure discrete-event simulation).

Theory of operation: a simulated carrier answers each dialled number after a random ring time
with a known probability (or rings out, is busy, fails, or reaches an answering machine); the
simulated ACD connects an answered customer to a free agent at once or as soon as one frees
up; agents talk for a random handle time (lognormal or exponential) and wrap up. One event heap
holds these happenings; the pacer's `next_deadline()` is merged in, so the pacer sees exactly
the events and timer calls a live PBX would give it. All randomness comes from `Random`s
seeded from `seed`, one per purpose, so two dial modes face the same customers with the same
behaviour draws where possible and a run is reproducible.

While it runs the simulator checks, from the commands alone, that no number on the
do-not-call list is dialled, that every dial is within the customer's calling hours, that no
contact has two calls at once and that attempt numbers count up by one. `compare_modes`
runs the same day under several modes; `format_report` prints the figures.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, Literal

from pbx.dialer.campaign import Campaign, customer_zone, within_calling_hours
from pbx.dialer.events import (
    AgentConnected,
    AgentsChanged,
    AmdDecided,
    AmdVerdict,
    CallAnswered,
    CallEnded,
    CallFailed,
    ConnectAnsweredCall,
    DialContact,
    DialerCommand,
    DialerEvent,
    DropCall,
    HangUpCall,
    LeaveMessage,
    PreviewDecided,
    ReserveAgentForPreview,
    StartRequested,
    StopRequested,
    TimerFired,
)
from pbx.dialer.pacing import Pacer
from pbx.dialer.records import ContactRecord
from pbx.dialer.schema import CampaignConfig
from pbx.repositories import Customer

Outcome = Literal["human", "machine", "busy", "no_answer", "failed"]
HandleDistribution = Literal["exponential", "lognormal"]
# What the carrier does with one attempt: (outcome, seconds until it happens).
Carrier = Callable[[Customer, int, Random], tuple[Outcome, float]]


# The rolling abandon rate is reported once the window holds this many answered calls.
MIN_WINDOW_OUTCOMES = 100


class SimulationError(AssertionError):
    """The dialer broke a rule the simulator checks (DNC, calling hours, double call)."""


@dataclass(frozen=True, slots=True)
class DialerSimulationSettings:
    """Agents, carrier behaviour and handle times of one simulated day (times in seconds)."""

    agents: int = 20
    hours: float = 8.0
    start_at: float = 0.0  # wall-clock epoch seconds of the start
    human_rate: float = 0.30  # an answering person
    machine_rate: float = 0.10
    busy_rate: float = 0.10
    failed_rate: float = 0.02  # the rest rings out (no answer)
    ring_min_s: float = 4.0
    ring_max_s: float = 16.0
    aht_s: float = 120.0  # mean talk time
    handle_distribution: HandleDistribution = "lognormal"
    handle_cv: float = 0.6
    wrap_up_s: float = 10.0
    amd_delay_s: float = 2.0  # time the detector needs (it is assumed always right)
    drop_prompt_s: float = 3.0
    message_s: float = 20.0
    preview_think_s: float = 6.0
    seed: int = 1


@dataclass(slots=True)
class DialerSimulationReport:
    """The day's figures for one mode."""

    mode: str
    agents: int
    hours: float
    attempts: int = 0
    answered: int = 0
    connects: int = 0
    drops: int = 0
    machines: int = 0
    abandon_rate: float = 0.0  # drops / (connects + drops) over the day
    max_window_abandon_rate: float = 0.0  # the pacer's rolling rate (>= 100 calls in it)
    agent_occupancy: float = 0.0  # busy (talk + wrap-up + preview) / staffed agent time
    connects_per_agent_hour: float = 0.0
    final_records: list[ContactRecord] = field(default_factory=list)
    dialled: list[tuple[float, str, str, int]] = field(default_factory=list)


def default_carrier(settings: DialerSimulationSettings) -> Carrier:
    """The carrier of `settings`: independent draws per attempt."""

    def carrier(_customer: Customer, _attempt: int, rng: Random) -> tuple[Outcome, float]:
        draw = rng.random()
        ring = rng.uniform(settings.ring_min_s, settings.ring_max_s)
        s = settings
        if draw < s.human_rate:
            return "human", ring
        if draw < s.human_rate + s.machine_rate:
            return "machine", ring
        if draw < s.human_rate + s.machine_rate + s.busy_rate:
            return "busy", 2.0
        if draw < s.human_rate + s.machine_rate + s.busy_rate + s.failed_rate:
            return "failed", 1.0
        return "no_answer", math.inf

    return carrier


class _Day:
    """One run: the event heap, the simulated ACD and agents, and the checks."""

    def __init__(self, config: CampaignConfig, customers: Sequence[Customer],
                 settings: DialerSimulationSettings, carrier: Carrier,
                 dnc: set[str]) -> None:
        self.settings = settings
        self.config = config
        self.carrier = carrier
        self.dnc = dnc
        self.campaign = Campaign(config, customers, dnc=dnc)
        self.pacer = Pacer(self.campaign, handle_time_estimate_s=settings.aht_s + 10,
                           wrap_up_s=settings.wrap_up_s, now=settings.start_at)
        self.customers = {c.customer_no: c for c in customers}
        self.rng_carrier = Random(settings.seed * 7919 + 1)
        self.rng_handle = Random(settings.seed * 7919 + 2)
        self.rng_preview = Random(settings.seed * 7919 + 3)
        self.heap: list[tuple[float, int, DialerEvent | str, Any]] = []
        self.seq = 0
        self.free = settings.agents
        self.busy = 0
        self.waiting: list[str] = []  # answered calls waiting for an agent, in order
        self.reserved: dict[str, int] = {}  # customer_no -> reserved agent number (preview)
        self.line_agent: dict[str, int] = {}  # call -> agent it is connected to
        self.line_customer: dict[str, str] = {}
        self.call_preview_agent: dict[str, int] = {}
        self.agent_pool = list(range(settings.agents))
        self.busy_time = 0.0
        self.last = settings.start_at
        self.report = DialerSimulationReport(config.mode, settings.agents, settings.hours)
        self.attempt_seen: dict[str, int] = {}

    # ------------------------------------------------------------------ plumbing

    def at(self, when: float, item: DialerEvent | str, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, item, payload))

    def feed(self, event: DialerEvent, now: float) -> None:
        for command in self.pacer.handle(event, now):
            self.carry_out(command, now)
        if self.pacer.window_outcomes() >= MIN_WINDOW_OUTCOMES:
            rate = self.pacer.abandon_rate()
            self.report.max_window_abandon_rate = max(self.report.max_window_abandon_rate, rate)

    def agents_changed(self, now: float) -> None:
        self.feed(AgentsChanged(self.free, self.busy), now)

    def advance(self, now: float) -> None:
        self.busy_time += self.busy * (now - self.last)
        self.last = now

    # ------------------------------------------------------------------ commands

    def carry_out(self, command: DialerCommand, now: float) -> None:
        if isinstance(command, DialContact):
            self.dial(command, now)
        elif isinstance(command, ConnectAnsweredCall):
            self.report.answered += 1
            if command.agent is not None:
                self.connect(command.call, int(command.agent), now)
            elif self.free > 0:
                agent = self.agent_pool.pop()
                self.free -= 1
                self.busy += 1
                self.agents_changed(now)
                self.connect(command.call, agent, now)
            else:
                self.waiting.append(command.call)
        elif isinstance(command, DropCall):
            self.report.drops += 1
            if command.call in self.waiting:
                self.waiting.remove(command.call)
            self.at(now + self.settings.drop_prompt_s, CallEnded(command.call))
        elif isinstance(command, HangUpCall):
            self.report.machines += 1
            self.at(now + 0.2, CallEnded(command.call))
        elif isinstance(command, LeaveMessage):
            self.report.machines += 1
            self.at(now + self.settings.message_s, CallEnded(command.call))
        elif isinstance(command, ReserveAgentForPreview):
            agent = self.agent_pool.pop()
            self.free -= 1
            self.busy += 1
            self.reserved[command.customer_no] = agent
            self.agents_changed(now)
            think = self.rng_preview.uniform(0.5, 2.0) * self.settings.preview_think_s
            decided = PreviewDecided(command.customer_no, str(agent), True)
            self.at(now + min(think, command.timeout_s * 0.9), decided)

    def dial(self, command: DialContact, now: float) -> None:
        customer = self.customers[command.customer_no]
        if command.phone in self.dnc:
            raise SimulationError(f"dialled {command.phone} on the do-not-call list")
        hours = self.config.calling_hours
        if not within_calling_hours(hours, customer_zone(hours, customer), now):
            raise SimulationError(f"dialled {command.customer_no} outside calling hours")
        if command.customer_no in self.line_customer.values():
            raise SimulationError(f"{command.customer_no} dialled twice at once")
        expected = self.attempt_seen.get(command.customer_no, 0) + 1
        if command.attempt != expected:
            raise SimulationError(f"{command.customer_no}: attempt {command.attempt}, "
                                  f"expected {expected}")
        self.attempt_seen[command.customer_no] = expected
        self.report.attempts += 1
        self.report.dialled.append((now, command.customer_no, command.phone, command.attempt))
        self.line_customer[command.call] = command.customer_no
        if command.agent is not None:
            self.call_preview_agent[command.call] = int(command.agent)
            self.reserved.pop(command.customer_no, None)
        outcome, delay = self.carrier(customer, command.attempt, self.rng_carrier)
        if outcome in ("human", "machine"):
            self.at(now + delay, CallAnswered(command.call), outcome)
        elif outcome == "no_answer":
            self.at(now + min(delay, command.timeout_s), CallFailed(command.call, "no_answer"))
        elif outcome == "busy":
            self.at(now + delay, CallFailed(command.call, "busy"))
        else:
            self.at(now + delay, CallFailed(command.call, "failed"))

    def connect(self, call: str, agent: int, now: float) -> None:
        self.line_agent[call] = agent
        self.report.connects += 1
        self.feed(AgentConnected(call, str(agent)), now)
        self.at(now + self.handle_time(), CallEnded(call), "talk_end")

    def handle_time(self) -> float:
        s = self.settings
        if s.handle_distribution == "exponential":
            return self.rng_handle.expovariate(1.0 / s.aht_s)
        sigma2 = math.log(1 + s.handle_cv**2)
        mu = math.log(s.aht_s) - sigma2 / 2
        return self.rng_handle.lognormvariate(mu, math.sqrt(sigma2))

    def release_agent(self, agent: int, now: float) -> None:
        # Wrap-up is over (or the preview's call failed): next waiting call, else free.
        if self.waiting:
            call = self.waiting.pop(0)
            self.connect(call, agent, now)
            return
        self.busy -= 1
        self.free += 1
        self.agent_pool.append(agent)
        self.agents_changed(now)

    # ------------------------------------------------------------------ the day

    def happen(self, now: float, item: DialerEvent | str, payload: Any) -> None:
        if isinstance(item, str):
            if item == "wrap_end":
                self.release_agent(int(payload), now)
            elif item == "stop":
                self.feed(StopRequested(), now)
            return
        if isinstance(item, CallAnswered):
            self.feed(item, now)
            if self.config.amd.enabled:
                verdict: AmdVerdict = "machine" if payload == "machine" else "human"
                self.at(now + self.settings.amd_delay_s, AmdDecided(item.call, verdict))
            # Without AMD a machine goes to an agent like a person.
            return
        if isinstance(item, CallFailed):
            self.line_customer.pop(item.call, None)
            self.feed(item, now)
            agent = self.call_preview_agent.pop(item.call, None)
            if agent is not None:
                self.release_agent(agent, now)
            return
        if isinstance(item, CallEnded):
            self.line_customer.pop(item.call, None)
            agent = self.line_agent.pop(item.call, None)
            preview_agent = self.call_preview_agent.pop(item.call, None)
            self.feed(item, now)
            if agent is not None:
                self.at(now + self.settings.wrap_up_s, "wrap_end", agent)
            elif preview_agent is not None:
                self.release_agent(preview_agent, now)
            return
        self.feed(item, now)

    def run(self) -> DialerSimulationReport:
        s = self.settings
        start = s.start_at
        end = start + s.hours * 3600
        self.at(end, "stop")
        self.agents_changed(start)
        self.feed(StartRequested(), start)
        while True:
            deadline = self.pacer.next_deadline()
            top = self.heap[0][0] if self.heap else math.inf
            if deadline is not None and deadline <= top and deadline < math.inf:
                now = max(deadline, self.last)
                self.advance(now)
                self.feed(TimerFired(), now)
                continue
            if not self.heap:
                break
            now, _, item, payload = heapq.heappop(self.heap)
            self.advance(now)
            self.happen(now, item, payload)
        report = self.report
        staffed = s.agents * (self.last - start)
        report.agent_occupancy = self.busy_time / staffed if staffed else 0.0
        resolved = report.connects + report.drops
        report.abandon_rate = report.drops / resolved if resolved else 0.0
        report.connects_per_agent_hour = report.connects / (s.agents * s.hours)
        report.final_records = self.campaign.records()
        return report


def simulate_day(config: CampaignConfig, customers: Sequence[Customer],
                 settings: DialerSimulationSettings | None = None, *,
                 carrier: Carrier | None = None,
                 dnc: Iterable[str] = ()) -> DialerSimulationReport:
    """Run one campaign day; raises `SimulationError` when the dialer breaks a rule."""
    settings = settings or DialerSimulationSettings()
    day = _Day(config, customers, settings, carrier or default_carrier(settings), set(dnc))
    return day.run()


def compare_modes(config: CampaignConfig, customers: Sequence[Customer],
                  settings: DialerSimulationSettings | None = None,
                  modes: Sequence[str] = ("progressive", "predictive"),
                  ) -> dict[str, DialerSimulationReport]:
    """The same day under each mode."""
    return {
        mode: simulate_day(config.model_copy(update={"mode": mode}), customers, settings)
        for mode in modes
    }


def format_report(reports: dict[str, DialerSimulationReport]) -> str:
    lines = [
        f"{'mode':<12} {'attempts':>8} {'connects':>8} {'drops':>6} {'abandon':>8} "
        f"{'max win':>8} {'occupancy':>9} {'conn/agent-h':>12}"
    ]
    for mode, r in reports.items():
        lines.append(
            f"{mode:<12} {r.attempts:>8} {r.connects:>8} {r.drops:>6} "
            f"{r.abandon_rate:>8.2%} {r.max_window_abandon_rate:>8.2%} "
            f"{r.agent_occupancy:>9.1%} {r.connects_per_agent_hour:>12.2f}"
        )
    return "\n".join(lines)
