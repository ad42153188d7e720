"""Erlang C: what queueing theory predicts for a queue, to check the simulator against (L2).

The M/M/c model: calls arrive as a Poisson stream (`calls_per_hour`), each keeps an agent busy
for an exponentially distributed time with mean `aht_s`, `agents` serve one queue in arrival
order, nobody abandons. With the offered load A = calls_per_hour x aht_s / 3600 (in Erlangs)
and N agents (A < N):

    B(0) = 1,  B(k) = A B(k-1) / (k + A B(k-1))        Erlang B, by the stable recursion
    C = N B(N) / (N - A (1 - B(N)))                     probability that a caller waits
    ASA = C x aht_s / (N - A)                           mean wait of all callers
    P(wait <= t) = 1 - C exp(-(N - A) t / aht_s)        the service level for threshold t
    occupancy = A / N

At A >= N the queue grows without bound: every caller waits, ASA is infinite, the service
level tends to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErlangC:
    """Erlang C's predictions for one staffing level."""

    agents: int
    load_erlangs: float
    prob_wait: float
    asa_s: float
    service_level: float
    service_level_s: float
    occupancy: float


def erlang_b(agents: int, load_erlangs: float) -> float:
    """Blocking probability of `agents` servers offered `load_erlangs` (no queue)."""
    if agents < 0 or load_erlangs < 0:
        raise ValueError("agents and load must not be negative")
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load_erlangs * blocking / (k + load_erlangs * blocking)
    return blocking


def erlang_c(
    agents: int, calls_per_hour: float, aht_s: float, service_level_s: float = 20.0
) -> ErlangC:
    """Erlang C for `agents` serving `calls_per_hour` calls of mean handle time `aht_s`."""
    if agents < 1 or calls_per_hour < 0 or aht_s <= 0:
        raise ValueError("need at least one agent, a non-negative rate and a positive AHT")
    load = calls_per_hour * aht_s / 3600.0
    if load >= agents:
        return ErlangC(agents, load, 1.0, math.inf, 0.0, service_level_s, 1.0)
    blocking = erlang_b(agents, load)
    prob_wait = agents * blocking / (agents - load * (1.0 - blocking))
    drain_rate = (agents - load) / aht_s  # how fast the queue empties, per second
    return ErlangC(
        agents=agents,
        load_erlangs=load,
        prob_wait=prob_wait,
        asa_s=prob_wait / drain_rate,
        service_level=1.0 - prob_wait * math.exp(-drain_rate * service_level_s),
        service_level_s=service_level_s,
        occupancy=load / agents,
    )


def agents_for_service_level(
    calls_per_hour: float, aht_s: float, target: float, service_level_s: float = 20.0
) -> int:
    """The fewest agents whose Erlang C service level reaches `target` (0..1)."""
    if not 0 < target < 1:
        raise ValueError("target must lie between 0 and 1")
    agents = max(1, math.floor(calls_per_hour * aht_s / 3600.0) + 1)
    while erlang_c(agents, calls_per_hour, aht_s, service_level_s).service_level < target:
        agents += 1
    return agents
