"""A discrete-event simulation of a call center around the real `AcdEngine` (L2, pure).

Theory of operation: callers arrive as a Poisson stream; each brings a talk time (exponential
or lognormal) and, optionally, a patience after which they hang up. The simulated agents'
phones answer an offer after a random delay, or not at all, and hang up after the talk time;
an agent the engine auto-pauses comes back after a while. One event heap holds these
happenings; the engine's `next_deadline()` is merged in, so the engine sees exactly the events
and timer calls a live PBX would give it. All randomness comes from `Random`s seeded from
`seed`, one per purpose, so every strategy of a comparison faces the same callers with the same
talk times (common random numbers) and a run is reproducible.

After every step the engine's `check_invariants()` runs, and the simulator checks on its own,
from the commands alone, that no phone is offered two calls, that no call rings twice (except
ring_all/ring_progressively), that nothing rings for a caller who left, and that every ring and
conversation it sees matches the engine's agent states.

`main(argv)` is the ``pbx simulate`` command; `pbx.acd.report` formats its output.
"""

from __future__ import annotations

import argparse
import heapq
import importlib
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from random import Random
from typing import Any, Literal

from pbx.acd.engine import AcdEngine
from pbx.acd.erlang import ErlangC, erlang_c
from pbx.acd.events import (
    AcdCommand,
    AcdEvent,
    AgentLoggedIn,
    AgentUnpaused,
    CallAbandoned,
    CallEnded,
    CallEnqueued,
    CallJoinedQueue,
    CallLeftQueue,
    CancelOffer,
    ConnectCall,
    OfferAnswered,
    OfferCall,
    TimerFired,
)
from pbx.acd.model import AgentProfile, AgentState, AgentStateChanged, QueuedCall
from pbx.acd.schema import CustomerStatusConfig, QueueConfig
from pbx.acd.strategies import RING_MODES
from pbx.errors import PbxError

HandleDistribution = Literal["exponential", "lognormal"]
_ARRIVAL, _ANSWER, _HANGUP, _ABANDON, _UNPAUSE, _STALE = range(6)


class SimulationError(AssertionError):
    """The simulator saw the engine break a rule (double offer, zombie ring …)."""


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    """Load, staffing and agent behaviour of one simulated day (times in seconds)."""

    calls_per_hour: float = 417.0
    agents: int = 20
    aht_s: float = 150.0  # mean talk time
    handle_distribution: HandleDistribution = "exponential"
    handle_cv: float = 1.0  # lognormal: standard deviation / mean
    wrap_up_s: float = 0.0
    hours: float = 24.0
    strategy: str = "random"
    patience_s: float | None = None  # mean (exponential) patience; None: nobody abandons
    answer_probability: float = 1.0
    answer_delay_s: float = 0.0  # answer after uniform(0, answer_delay_s)
    ring_timeout_s: float = 15.0
    retry_delay_s: float = 5.0
    service_level_s: float = 20.0
    auto_pause_after_misses: int | None = None
    unpause_after_s: float = 120.0
    race_probability: float = 0.0  # a cancelled phone still answers (a stale answer)
    vip_share: float = 0.0  # callers pinned to agent seat 1 with status "vip"
    seed: int = 1
    check_invariants: bool = True
    max_calls: int | None = None


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What a run measured, plus Erlang C's prediction for the same load."""

    strategy: str
    calls: int
    answered: int
    abandoned: int
    overflowed: int
    asa_s: float
    service_level: float
    abandon_rate: float
    occupancy: float
    max_waiting: int
    agent_offers: int
    no_answers: int
    stale_answers: int
    calls_per_agent: tuple[int, int]  # fewest, most
    engine_events: int
    engine_commands: int
    simulated_s: float
    erlang: ErlangC


@dataclass(slots=True)
class _Caller:
    talk_s: float
    patience_s: float | None
    state: str = "waiting"  # waiting | talking | gone


@dataclass(slots=True)
class _Phones:
    """The agents' phones as the switch sees them, built from the commands only."""

    multi: bool
    ringing: dict[str, tuple[str, int]] = field(default_factory=dict)  # agent -> (call, token)
    talking: dict[str, str] = field(default_factory=dict)
    calls_ringing: dict[str, int] = field(default_factory=dict)


def synthetic_queue(settings: SimulationSettings, strategy: str | None = None) -> QueueConfig:
    """One queue with `settings.agents` members, 2001, 2002, … in seat order."""
    return QueueConfig.model_validate(
        {
            "name": "sim",
            "strategy": strategy or settings.strategy,
            "members": [{"agent": str(2001 + n)} for n in range(settings.agents)],
            "ring_timeout_s": settings.ring_timeout_s,
            "retry_delay_s": settings.retry_delay_s,
            "wrap_up_s": settings.wrap_up_s,
            "service_level_s": settings.service_level_s,
            "auto_pause_after_misses": settings.auto_pause_after_misses,
            "handle_time_estimate_s": settings.aht_s,
        }
    )


class Simulation:
    """One run. Driven by `run()`, which returns a `SimulationResult`; raises
    `SimulationError` (or the engine's `AcdInvariantError`) when a rule is broken."""

    def __init__(
        self,
        settings: SimulationSettings,
        queue: QueueConfig,
        agents: Sequence[AgentProfile],
        statuses: Mapping[str, CustomerStatusConfig] | None = None,
        other_queues: Iterable[QueueConfig] = (),
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.agents = list(agents)
        rng = Random(settings.seed)
        # One generator per purpose: strategies compared on one seed see the same callers.
        self._arrivals, self._talk, self._patience, self._phone, self._engine_rng = (
            Random(rng.getrandbits(64)),
            Random(rng.getrandbits(64)),
            Random(rng.getrandbits(64)),
            Random(rng.getrandbits(64)),
            Random(rng.getrandbits(64)),
        )
        self.engine = AcdEngine(
            [queue, *other_queues],
            self.agents,
            statuses,
            rng=self._engine_rng,
            devices_available=True,
        )
        self.phones = _Phones(multi=queue.strategy in RING_MODES)
        self.callers: dict[str, _Caller] = {}
        self._heap: list[tuple[float, int, int, str, str, int]] = []
        self._seq = 0
        self.now = 0.0
        self.stale_answers = 0
        self.max_waiting = 0
        self._waiting = 0

    # ------------------------------------------------------------------ the loop

    def run(self) -> SimulationResult:
        settings = self.settings
        for profile in self.agents:
            self._feed(AgentLoggedIn(profile.extension), 0.0)
        end = settings.hours * 3600.0
        self._schedule(self._arrivals.expovariate(self._rate()), _ARRIVAL)
        arrived = 0
        budget = 1000 + 200 * int(settings.calls_per_hour * settings.hours + 1)
        while budget > 0:
            budget -= 1
            deadline = self.engine.next_deadline()
            upcoming = self._heap[0][0] if self._heap else math.inf
            if deadline is None and not self._heap:
                break
            if deadline is not None and deadline <= upcoming:
                self._feed(TimerFired(), deadline)
                continue
            when, _, kind, call, agent, token = heapq.heappop(self._heap)
            if kind == _ARRIVAL:
                if when > end or (settings.max_calls is not None and arrived >= settings.max_calls):
                    continue  # no more arrivals; the rest of the day drains
                arrived += 1
                self._arrive(f"call-{arrived}", when)
                self._schedule(when + self._arrivals.expovariate(self._rate()), _ARRIVAL)
            else:
                self._external(kind, call, agent, token, when)
        else:
            raise SimulationError("the simulation did not settle (events without end)")
        return self._result(arrived)

    def _rate(self) -> float:
        return self.settings.calls_per_hour / 3600.0

    def _schedule(
        self, when: float, kind: int, call: str = "", agent: str = "", token: int = 0
    ) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, kind, call, agent, token))

    def _arrive(self, call: str, now: float) -> None:
        settings = self.settings
        talk = self._draw_talk()
        patience = None
        if settings.patience_s is not None:
            patience = self._patience.expovariate(1.0 / settings.patience_s)
        self.callers[call] = _Caller(talk, patience)
        vip = settings.vip_share > 0 and self._patience.random() < settings.vip_share
        queued = QueuedCall(
            call,
            self.queue.name,
            customer_status="vip" if vip else "standard",
            pinned_agents=(self.agents[0].extension,) if vip else (),
        )
        self._feed(CallEnqueued(queued), now)
        if patience is not None and self.callers[call].state == "waiting":
            self._schedule(now + patience, _ABANDON, call)

    def _draw_talk(self) -> float:
        settings = self.settings
        if settings.handle_distribution == "lognormal":
            sigma2 = math.log(1.0 + settings.handle_cv**2)
            mu = math.log(settings.aht_s) - sigma2 / 2.0
            return self._talk.lognormvariate(mu, math.sqrt(sigma2))
        return self._talk.expovariate(1.0 / settings.aht_s)

    def _external(self, kind: int, call: str, agent: str, token: int, now: float) -> None:
        phones = self.phones
        if kind == _ANSWER:
            if phones.ringing.get(agent) == (call, token):
                self._feed(OfferAnswered(call, agent), now)
        elif kind == _STALE:
            self._feed(OfferAnswered(call, agent), now)
        elif kind == _HANGUP:
            if phones.talking.get(agent) == call:
                del phones.talking[agent]
                self.callers[call].state = "gone"
                self._feed(CallEnded(call, agent), now)
        elif kind == _ABANDON:
            if self.callers[call].state == "waiting":
                self._feed(CallAbandoned(call), now)
        elif kind == _UNPAUSE:
            if self.engine.agents[agent].state is AgentState.PAUSED:
                self._feed(AgentUnpaused(agent), now)

    def _feed(self, event: AcdEvent, now: float) -> None:
        self.now = now
        commands = self.engine.handle(event, now)
        for command in commands:
            self._carry_out(command, now)
        if self._waiting > self.max_waiting:
            self.max_waiting = self._waiting
        if self.settings.check_invariants:
            self.engine.check_invariants()
            self._check_phones()

    # ------------------------------------------------------------------ the phones

    def _carry_out(self, command: AcdCommand, now: float) -> None:
        phones = self.phones
        if isinstance(command, OfferCall):
            self._ring(command, now)
        elif isinstance(command, CancelOffer):
            if command.reason == "stale_answer":
                self.stale_answers += 1
                return
            rung = phones.ringing.pop(command.agent, None)
            if rung is None or rung[0] != command.call:
                raise SimulationError(f"cancel for a phone that is not ringing: {command}")
            self._calls_ringing(command.call, -1)
            if (
                self.settings.race_probability
                and self._phone.random() < self.settings.race_probability
            ):
                self._schedule(now, _STALE, command.call, command.agent)
        elif isinstance(command, ConnectCall):
            rung = phones.ringing.pop(command.agent, None)
            if rung is None or rung[0] != command.call:
                raise SimulationError(f"connected without an offer: {command}")
            self._calls_ringing(command.call, -1)
            phones.talking[command.agent] = command.call
            caller = self.callers[command.call]
            caller.state = "talking"
            self._schedule(now + caller.talk_s, _HANGUP, command.call, command.agent)
        elif isinstance(command, CallJoinedQueue):
            self._waiting += 1
        elif isinstance(command, CallLeftQueue):
            caller = self.callers[command.call]
            if command.reason != "max_length" and command.reason != "join_empty":
                self._waiting -= 1
            if command.reason != "answered":
                caller.state = "gone"
            if phones.calls_ringing.get(command.call):
                raise SimulationError(f"{command.call} left the queue but still rings")
        elif isinstance(command, AgentStateChanged):
            if command.new is AgentState.PAUSED and command.reason == "auto_pause":
                self._schedule(now + self.settings.unpause_after_s, _UNPAUSE, "", command.agent)

    def _ring(self, command: OfferCall, now: float) -> None:
        phones, settings = self.phones, self.settings
        if self.callers[command.call].state != "waiting":
            raise SimulationError(f"offer for a caller who is not waiting: {command}")
        if not phones.multi and (
            len(command.agents) != 1 or phones.calls_ringing.get(command.call)
        ):
            raise SimulationError(f"a second agent rings for {command.call}: {command}")
        for agent in command.agents:
            if agent in phones.ringing or agent in phones.talking:
                raise SimulationError(f"{agent} is offered {command.call} while busy")
            self._seq += 1
            phones.ringing[agent] = (command.call, self._seq)
            self._calls_ringing(command.call, +1)
            if self._phone.random() < settings.answer_probability:
                delay = self._phone.uniform(0.0, settings.answer_delay_s)
                self._schedule(now + delay, _ANSWER, command.call, agent, self._seq)

    def _calls_ringing(self, call: str, change: int) -> None:
        count = self.phones.calls_ringing.get(call, 0) + change
        if count:
            self.phones.calls_ringing[call] = count
        else:
            self.phones.calls_ringing.pop(call, None)

    def _check_phones(self) -> None:
        for extension, agent in self.engine.agents.items():
            rung = self.phones.ringing.get(extension)
            if (agent.state is AgentState.RINGING) != (rung is not None):
                raise SimulationError(f"{extension} is {agent.state}; the phone says {rung}")
            if rung is not None and agent.offered_call != rung[0]:
                raise SimulationError(f"{extension} rings for {rung[0]}, not {agent.offered_call}")
            talking = self.phones.talking.get(extension)
            if (agent.state is AgentState.ON_CALL) != (talking is not None):
                raise SimulationError(f"{extension} is {agent.state}; the phone talks {talking}")

    # ------------------------------------------------------------------ the result

    def _result(self, arrived: int) -> SimulationResult:
        settings, engine = self.settings, self.engine
        snap = engine.stats.queue(self.queue.name, self.now)
        agents = [engine.stats.agent(a.extension, self.now) for a in self.agents]
        occupancies = [a.occupancy for a in agents if a.occupancy is not None]
        calls = [a.calls for a in agents]
        handle = settings.aht_s + settings.wrap_up_s
        return SimulationResult(
            strategy=self.queue.strategy,
            calls=arrived,
            answered=snap.answered,
            abandoned=snap.abandoned,
            overflowed=snap.overflowed,
            asa_s=snap.asa_s or 0.0,
            service_level=snap.service_level or 0.0,
            abandon_rate=snap.abandon_rate or 0.0,
            occupancy=sum(occupancies) / len(occupancies) if occupancies else 0.0,
            max_waiting=self.max_waiting,
            agent_offers=snap.agent_offers,
            no_answers=snap.no_answers,
            stale_answers=self.stale_answers,
            calls_per_agent=(min(calls, default=0), max(calls, default=0)),
            engine_events=engine.counters.events,
            engine_commands=engine.counters.commands,
            simulated_s=self.now,
            erlang=erlang_c(
                max(1, len(self.agents)), settings.calls_per_hour, handle, settings.service_level_s
            ),
        )


def default_statuses() -> dict[str, CustomerStatusConfig]:
    """The statuses of a synthetic run: "vip" callers (see `vip_share`) jump the line and wait
    up to 30 s for their pinned agent."""
    vip = {"priority": 10, "pinning": {"wait_for_pinned_s": 30, "reserve_pinned_agent": True}}
    return {
        "standard": CustomerStatusConfig(),
        "vip": CustomerStatusConfig.model_validate(vip),
    }


def simulate(
    settings: SimulationSettings,
    queue: QueueConfig | None = None,
    agents: Sequence[AgentProfile] | None = None,
    statuses: Mapping[str, CustomerStatusConfig] | None = None,
) -> SimulationResult:
    """Run one simulated day: the given queue and agents, or a synthetic queue of
    `settings.agents` agents using `settings.strategy`."""
    if queue is None:
        queue = synthetic_queue(settings)
    if agents is None:
        agents = [AgentProfile(m.agent) for m in queue.members]
    if statuses is None:
        statuses = default_statuses()
    return Simulation(settings, queue, agents, statuses).run()


def compare_strategies(
    settings: SimulationSettings,
    strategies: Iterable[str],
    queue: QueueConfig | None = None,
    agents: Sequence[AgentProfile] | None = None,
    statuses: Mapping[str, CustomerStatusConfig] | None = None,
) -> list[SimulationResult]:
    """The same day (same seed, same callers) under each strategy."""
    results = []
    for strategy in strategies:
        if queue is None:
            chosen = synthetic_queue(settings, strategy)
        else:
            chosen = queue.model_copy(update={"strategy": strategy})
        results.append(simulate(replace(settings, strategy=strategy), chosen, agents, statuses))
    return results


# ------------------------------------------------------------------ pbx simulate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pbx simulate",
        description="Simulate a day of the ACD with Poisson arrivals and compare with Erlang C.",
    )
    add = parser.add_argument
    add("--config", metavar="FILE", help="take the queue and agents from this PBX configuration")
    add("--queue", help="the queue to simulate (default: the first in --config)")
    add("--calls-per-hour", type=float, default=417.0, help="offered calls per hour")
    add("--agents", type=int, default=20, help="agents (without --config)")
    add("--aht", type=float, default=150.0, help="mean talk time, seconds")
    add("--handle", choices=["exponential", "lognormal"], default="exponential")
    add("--handle-cv", type=float, default=1.0, help="lognormal: std deviation / mean")
    add("--wrap-up", type=float, default=0.0, help="wrap-up seconds (without --config)")
    add("--hours", type=float, default=24.0, help="how long calls arrive")
    add("--strategy", default=None, help="a strategy name, or 'all' to compare them")
    add("--patience", type=float, default=None, help="mean caller patience, seconds")
    add("--answer-probability", type=float, default=1.0)
    add("--answer-delay", type=float, default=0.0, help="agents answer within this many s")
    add("--ring-timeout", type=float, default=15.0)
    add("--retry-delay", type=float, default=5.0)
    add("--service-level", type=float, default=20.0, help="service-level threshold, seconds")
    add("--vip-share", type=float, default=0.0, help="share of callers pinned to seat 1")
    add("--seed", type=int, default=1)
    add("--no-check", action="store_true", help="skip the invariant checks (faster)")
    add("--sample-status", default="standard", help="customer status of the sample caller")
    add("--sample-pinned", default="", help="comma-separated pinned agents of the sample")
    add("--sample-skills", default="", help="required skills of the sample, like de=2,billing=1")
    return parser


def main(argv: list[str], load_config: Callable[[str], Any] | None = None) -> int:
    """``pbx simulate``: print the per-strategy results, Erlang C and a sample hunt order.

    `load_config` reads ``--config FILE`` into a `PbxConfig`; the CLI (L4) passes
    `pbx.config.loader.load_config`. Without it the loader is imported on demand.
    """
    from pbx.acd.report import format_hunt, format_results, hunt_order
    from pbx.acd.strategies import STRATEGIES

    args = _parser().parse_args(argv)
    if args.strategy not in (None, "all") and args.strategy not in STRATEGIES:
        print(
            f"unknown strategy {args.strategy!r}; one of: all, {', '.join(STRATEGIES)}",
            file=sys.stderr,
        )
        return 2
    settings = SimulationSettings(
        calls_per_hour=args.calls_per_hour,
        agents=args.agents,
        aht_s=args.aht,
        handle_distribution=args.handle,
        handle_cv=args.handle_cv,
        wrap_up_s=args.wrap_up,
        hours=args.hours,
        strategy=args.strategy if args.strategy not in (None, "all") else "random",
        patience_s=args.patience,
        answer_probability=args.answer_probability,
        answer_delay_s=args.answer_delay,
        ring_timeout_s=args.ring_timeout,
        retry_delay_s=args.retry_delay,
        service_level_s=args.service_level,
        vip_share=args.vip_share,
        seed=args.seed,
        check_invariants=not args.no_check,
    )
    queue: QueueConfig | None = None
    agents: list[AgentProfile] | None = None
    statuses: Mapping[str, CustomerStatusConfig] | None = None
    if args.config:
        loaded = _from_config(args.config, args.queue, load_config)
        if isinstance(loaded, str):
            print(loaded, file=sys.stderr)
            return 1
        queue, agents, statuses = loaded
        settings = replace(
            settings,
            agents=len(agents),
            wrap_up_s=queue.wrap_up_s,
            service_level_s=queue.service_level_s,
            strategy=queue.strategy,
        )
    if args.strategy == "all":
        strategies: list[str] = list(STRATEGIES)
    else:
        strategies = [args.strategy or (queue.strategy if queue else "random")]
    results = compare_strategies(settings, strategies, queue, agents, statuses)
    where = f"queue {queue.name!r} of {args.config}" if queue else "a synthetic queue"
    print(
        f"{where}: {settings.calls_per_hour:g} calls/h for {settings.hours:g} h, "
        f"{results[0].erlang.agents} agents, talk {settings.aht_s:g} s "
        f"({settings.handle_distribution}), wrap-up {settings.wrap_up_s:g} s, seed {settings.seed}"
    )
    print(format_results(results))
    statuses = statuses if statuses is not None else default_statuses()
    sample_queue = queue or synthetic_queue(settings, strategies[0])
    sample_agents = agents or [AgentProfile(m.agent) for m in sample_queue.members]
    sample = QueuedCall(
        "sample",
        sample_queue.name,
        customer_status=args.sample_status,
        pinned_agents=tuple(p for p in args.sample_pinned.split(",") if p),
        skills=_skills(args.sample_skills),
    )
    print(f"\nhunt order for a sample {args.sample_status} caller ({sample_queue.strategy}):")
    print(format_hunt(hunt_order(sample_queue, sample_agents, sample, statuses, args.seed)))
    return 0


def _skills(text: str) -> dict[str, int]:
    out = {}
    for item in filter(None, text.split(",")):
        name, _, level = item.partition("=")
        out[name.strip()] = int(level or 1)
    return out


def _from_config(
    path: str, queue_name: str | None, load_config: Callable[[str], Any] | None
) -> tuple[QueueConfig, list[AgentProfile], Mapping[str, CustomerStatusConfig]] | str:
    if load_config is None:
        # The YAML loader is an adapter (L3): loaded only when the command line asks for a
        # file, never at import time (as pbx.config does for its own lazy names).
        load_config = importlib.import_module("pbx.config.loader").load_config
    try:
        config = load_config(path)
    except (PbxError, OSError) as exc:
        return f"{path}: {exc}"
    effective = getattr(config, "effective_queues", None)
    queues: Sequence[QueueConfig] = effective() if effective else getattr(config, "queues", ())
    if not queues:
        return f"{path} has no queues yet (a `queues:` section); nothing to simulate"
    chosen = next((q for q in queues if queue_name in (None, q.name)), None)
    if chosen is None:
        names = ", ".join(q.name for q in queues)
        return f"{path} has no queue named {queue_name!r} (it has: {names})"
    # Only the queue's members staff it (the Erlang C comparison counts them, not everyone).
    members = {member.agent for member in chosen.members}
    agents = [AgentProfile(a.extension, a.name, dict(a.skills)) for a in config.agents
              if a.enabled and a.extension in members]
    statuses: Mapping[str, CustomerStatusConfig] = getattr(config, "customer_statuses", {})
    return chosen, agents, statuses
