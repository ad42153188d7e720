"""What-if answers for admins (L2, pure): who would be hunted in which order for a sample
caller, and the text tables ``pbx simulate`` prints.

`hunt_order` assumes every logged-in seat is free, so it shows the *configured* order — the
pinned agents and the waiting rule of the caller's status, then the queue's members in the
order its strategy picks, tier by tier as escalation opens them — not a prediction of who is
free at a given moment. `random` orders come from the given seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING

from pbx.acd.model import Agent, AgentProfile, QueuedCall
from pbx.acd.schema import CustomerStatusConfig, PinningRule, QueueConfig
from pbx.acd.strategies import STRATEGIES, HuntContext, ring_mode

if TYPE_CHECKING:
    from pbx.acd.simulate import SimulationResult


@dataclass(frozen=True, slots=True)
class HuntStep:
    """From `at_s` seconds after joining, `agents` (in this order) may be offered the call."""

    at_s: float
    agents: tuple[str, ...]
    note: str


def hunt_order(
    queue: QueueConfig,
    agents: Sequence[AgentProfile],
    call: QueuedCall,
    statuses: Mapping[str, CustomerStatusConfig] | None = None,
    seed: int = 0,
) -> list[HuntStep]:
    """The hunt for `call` in `queue`, step by step, as if every agent were free."""
    profiles = {profile.extension: profile for profile in agents}
    status = (statuses or {}).get(call.customer_status)
    pinning = status.pinning if status is not None else PinningRule()
    steps: list[HuntStep] = []
    start = 0.0
    pinned = tuple(p for p in call.pinned_agents if p in profiles)
    if pinned:
        if pinning.fallback == "pinned_only":
            steps.append(HuntStep(0.0, pinned, "pinned agents only, one at a time"))
            return steps
        note = "pinned agents first"
        if pinning.wait_for_pinned_s > 0:
            start = pinning.wait_for_pinned_s
            note += f"; if busy, the caller waits up to {start:g} s for them"
            if pinning.reserve_pinned_agent:
                note += " (one finishing a call meanwhile is reserved)"
        steps.append(HuntStep(0.0, pinned, note))
    required = {**queue.skills, **call.skills}
    seats: dict[str, int] = {}
    penalties: dict[str, int] = {}
    eligible: list[Agent] = []
    lacking: list[Agent] = []
    for seat, member in enumerate(queue.members):
        profile = profiles.get(member.agent, AgentProfile(member.agent))
        agent = Agent(profile.extension, dict(profile.skills))
        seats[agent.extension], penalties[agent.extension] = seat, member.penalty
        (eligible if agent.has_skills(required) else lacking).append(agent)
    context = HuntContext(queue, call, seats, penalties, required)
    ordered = STRATEGIES[queue.strategy](context, eligible, 0.0, Random(seed))
    ordered.sort(key=lambda agent: penalties[agent.extension])
    how = _ring_note(queue)
    if not queue.escalation:
        steps.append(HuntStep(start, tuple(a.extension for a in ordered), how))
    else:
        windows = [(0.0, queue.start_max_penalty)]
        windows += [(step.after_s, step.max_penalty) for step in queue.escalation]
        floor = -1
        for at, limit in windows:
            tier = tuple(a.extension for a in ordered if floor < penalties[a.extension] <= limit)
            if tier:
                steps.append(HuntStep(max(at, start), tier, f"{how}; penalty <= {limit}"))
            floor = limit
    if lacking:
        need = ", ".join(f"{skill}>={level}" for skill, level in sorted(required.items()))
        names = tuple(a.extension for a in lacking)
        steps.append(HuntStep(float("inf"), names, f"never: lack the skills {need}"))
    return steps


def _ring_note(queue: QueueConfig) -> str:
    mode = ring_mode(queue.strategy)
    if mode == "all":
        return f"{queue.strategy}: the whole tier rings at once"
    if mode == "progressive":
        return f"{queue.strategy}: one more agent every {queue.ring_progressively_step_s:g} s"
    return f"{queue.strategy}: one at a time, {queue.ring_timeout_s:g} s each"


def format_hunt(steps: Sequence[HuntStep]) -> str:
    lines = []
    for step in steps:
        at = "   never" if step.at_s == float("inf") else f"{step.at_s:>6.0f} s"
        lines.append(f"  {at}  {', '.join(step.agents) or '(nobody)'}  — {step.note}")
    return "\n".join(lines)


def format_results(results: Sequence[SimulationResult]) -> str:
    """One line per strategy, then Erlang C for the same load."""
    header = (
        f"{'strategy':<19}{'calls':>7}{'answered':>9}{'abandon':>9}{'ASA s':>8}{'SL':>8}"
        f"{'occupancy':>10}{'no-ans':>8}{'calls/agent':>13}{'max wait#':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.strategy:<19}{r.calls:>7}{r.answered:>9}{r.abandon_rate:>9.1%}{r.asa_s:>8.1f}"
            f"{r.service_level:>8.1%}{r.occupancy:>10.1%}{r.no_answers:>8}"
            f"{r.calls_per_agent[0]:>6}–{r.calls_per_agent[1]:<6}{r.max_waiting:>10}"
        )
    if results:
        first = results[0]
        e = first.erlang
        lines.append(
            f"{'Erlang C':<19}{'':>7}{'':>9}{'—':>9}{e.asa_s:>8.1f}{e.service_level:>8.1%}"
            f"{e.occupancy:>10.1%}   ({e.agents} agents, {e.load_erlangs:.1f} Erlangs,"
            f" P(wait) {e.prob_wait:.1%}, SL within {e.service_level_s:g} s)"
        )
        if first.abandoned or first.no_answers:
            lines.append(
                "(Erlang C assumes callers never hang up and agents answer at once; with"
                " abandonment and missed rings the simulation is the better guide)"
            )
    return "\n".join(lines)
