"""Hunting strategies: who is offered a waiting call first (L2, pure).

Each strategy is a plain function with one signature, `Strategy`:

    (context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random) -> list[Agent]

It receives only agents that may be offered this call right now (logged in, available, phone
registered, member of the queue within the current tier, having the required skills, not yet
tried in this round) and returns them in the order to try. It must not mutate anything. The
engine then stable-sorts the result by penalty (tier), so a strategy orders agents *within* a
tier, and decides how many agents ring at once from `RING_MODES` (one at a time unless the
strategy is listed there). Strategies are registered by name in `STRATEGIES`, the names a
queue's ``strategy:`` accepts, like Kamailio's dispatcher algorithms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Literal

from pbx.acd.model import Agent, QueuedCall
from pbx.acd.schema import QueueConfig


@dataclass(frozen=True, slots=True)
class HuntContext:
    """What a strategy may look at besides the candidates: the queue's settings, the call, the
    members' seat numbers and penalties in this queue, the required skills (queue's and call's
    merged) and the round-robin memory (the agent this queue offered a call to last)."""

    queue: QueueConfig
    call: QueuedCall
    seats: Mapping[str, int]
    penalties: Mapping[str, int]
    required_skills: Mapping[str, int]
    last_offered: str | None = None


Strategy = Callable[[HuntContext, Sequence[Agent], float, Random], list[Agent]]
RingMode = Literal["one", "all", "progressive"]

_FAR = 1 << 30  # seat of a non-member (a pinned agent): after every member


def _seat(context: HuntContext, agent: Agent) -> int:
    return context.seats.get(agent.extension, _FAR)


def linear(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """Fixed seat order: the member list's order, seat 1 first (Asterisk ``linear``)."""
    return sorted(candidates, key=lambda agent: _seat(context, agent))


def ring_all(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """Every candidate of the lowest tier rings at once; the first answer wins."""
    return linear(context, candidates, now, rng)


def ring_progressively(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """Seat order; the engine adds the next seat every ``ring_progressively_step_s`` while the
    earlier ones keep ringing (FreeSWITCH ``ring-progressively``)."""
    return linear(context, candidates, now, rng)


def round_robin(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """Seat order, starting after the seat offered last (Asterisk ``rrmemory``)."""
    ordered = linear(context, candidates, now, rng)
    if context.last_offered is None:
        return ordered
    last = context.seats.get(context.last_offered, -1)
    after = [agent for agent in ordered if _seat(context, agent) > last]
    return after + [agent for agent in ordered if _seat(context, agent) <= last]


def longest_idle(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """The agent idle longest since their last call (or login/unpause) first; seat order
    breaks ties."""
    return sorted(candidates, key=lambda agent: (agent.idle_since, _seat(context, agent)))


def fewest_calls(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """The agent who answered the fewest calls first; then longest idle."""
    return sorted(
        candidates,
        key=lambda agent: (agent.calls_answered, agent.idle_since, _seat(context, agent)),
    )


def least_talk_time(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """The agent with the least talk time so far first; then longest idle."""
    return sorted(
        candidates,
        key=lambda agent: (agent.talk_time_s, agent.idle_since, _seat(context, agent)),
    )


def random(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """A random order, from the engine's injected random generator."""
    ordered = linear(context, candidates, now, rng)  # a stable start keeps runs reproducible
    rng.shuffle(ordered)
    return ordered


def skills(
    context: HuntContext, candidates: Sequence[Agent], now: float, rng: Random
) -> list[Agent]:
    """The best skilled first (sum of the agent's levels in the required skills; all its skills
    when none are required), then longest idle."""
    required = context.required_skills
    return sorted(
        candidates,
        key=lambda agent: (-agent.skill_score(required), agent.idle_since, _seat(context, agent)),
    )


STRATEGIES: Mapping[str, Strategy] = {
    "linear": linear,
    "ring_all": ring_all,
    "round_robin": round_robin,
    "longest_idle": longest_idle,
    "fewest_calls": fewest_calls,
    "least_talk_time": least_talk_time,
    "random": random,
    "skills": skills,
    "ring_progressively": ring_progressively,
}

# How many of the ordered agents ring at once; strategies not listed ring one at a time.
RING_MODES: Mapping[str, RingMode] = {"ring_all": "all", "ring_progressively": "progressive"}


def ring_mode(strategy: str) -> RingMode:
    return RING_MODES.get(strategy, "one")
