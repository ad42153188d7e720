"""Every hunting strategy, as a function and driven through the engine with injected time."""

from __future__ import annotations

import typing
from random import Random

import pytest

from pbx.acd.events import AgentPaused, AgentUnpaused, CancelOffer, OfferFailed
from pbx.acd.model import Agent, AgentProfile, AgentState, QueuedCall
from pbx.acd.schema import StrategyName
from pbx.acd.strategies import RING_MODES, STRATEGIES, HuntContext
from tests.unit.acd.acd_harness import desk, offered, queue

S = AgentState
FOUR = ("1001", "1002", "1003", "1004")


def test_the_registry_matches_the_configuration_names() -> None:
    assert set(STRATEGIES) == set(typing.get_args(StrategyName))
    assert set(RING_MODES) <= set(STRATEGIES)


def _context(last: str | None = None, skills: dict[str, int] | None = None) -> HuntContext:
    q = queue(members=FOUR)
    return HuntContext(
        queue=q,
        call=QueuedCall("c", "support"),
        seats={a: i for i, a in enumerate(FOUR)},
        penalties=dict.fromkeys(FOUR, 0),
        required_skills=skills or {},
        last_offered=last,
    )


def _agents(**attrs: dict[str, object]) -> list[Agent]:
    agents = []
    for extension in reversed(FOUR):  # hand them over out of seat order
        agent = Agent(extension, {})
        for name, values in attrs.items():
            setattr(agent, name, values[extension])  # type: ignore[index]
        agents.append(agent)
    return agents


def _names(agents: list[Agent]) -> list[str]:
    return [a.extension for a in agents]


@pytest.mark.parametrize("name", ["linear", "ring_all", "ring_progressively"])
def test_seat_order_strategies(name: str) -> None:
    result = STRATEGIES[name](_context(), _agents(), 0.0, Random(1))
    assert _names(result) == list(FOUR)


def test_round_robin_starts_after_the_last_offered_seat() -> None:
    assert _names(STRATEGIES["round_robin"](_context("1002"), _agents(), 0, Random(1))) == [
        "1003",
        "1004",
        "1001",
        "1002",
    ]
    assert _names(STRATEGIES["round_robin"](_context(None), _agents(), 0, Random(1))) == list(FOUR)


def test_longest_idle_fewest_calls_least_talk_time() -> None:
    idle = {"1001": 50.0, "1002": 10.0, "1003": 30.0, "1004": 10.0}
    calls = {"1001": 1, "1002": 3, "1003": 0, "1004": 3}
    talk = {"1001": 500.0, "1002": 20.0, "1003": 90.0, "1004": 20.0}
    agents = _agents(idle_since=idle, calls_answered=calls, talk_time_s=talk)
    ctx = _context()
    assert _names(STRATEGIES["longest_idle"](ctx, agents, 60, Random(1))) == [
        "1002",
        "1004",
        "1003",
        "1001",
    ]
    assert _names(STRATEGIES["fewest_calls"](ctx, agents, 60, Random(1))) == [
        "1003",
        "1001",
        "1002",
        "1004",
    ]
    assert _names(STRATEGIES["least_talk_time"](ctx, agents, 60, Random(1))) == [
        "1002",
        "1004",
        "1003",
        "1001",
    ]


def test_random_is_a_reproducible_permutation() -> None:
    first = _names(STRATEGIES["random"](_context(), _agents(), 0, Random(7)))
    again = _names(STRATEGIES["random"](_context(), _agents(), 0, Random(7)))
    assert first == again and sorted(first) == list(FOUR)
    seen = {
        tuple(_names(STRATEGIES["random"](_context(), _agents(), 0, Random(s)))) for s in range(30)
    }
    assert len(seen) > 5


def test_skills_best_level_first_then_longest_idle() -> None:
    levels = {
        "1001": {"de": 2, "billing": 5},
        "1002": {"de": 5, "billing": 5},
        "1003": {"de": 5, "billing": 5},
        "1004": {"billing": 9},
    }
    agents = _agents(skills=levels, idle_since={"1001": 0, "1002": 9, "1003": 3, "1004": 0})
    ctx = _context(skills={"de": 1, "billing": 1})
    # Sums 7, 10, 10, 9; the engine has already filtered out agents below a required level.
    assert _names(STRATEGIES["skills"](ctx, agents, 10, Random(1))) == [
        "1003",
        "1002",
        "1004",
        "1001",
    ]


# ------------------------------------------------------------------ through the engine


def test_engine_linear_always_starts_at_seat_one() -> None:
    d = desk(queue(members=FOUR), agents=FOUR)
    for n in range(3):
        out = d.enqueue(f"c{n}")
        assert offered(out) == [(f"c{n}", ("1001",))]
        d.send(OfferFailed(f"c{n}", "1001", "busy"))
        d.send(OfferFailed(f"c{n}", "1002", "busy"))
        d.answer(f"c{n}", "1003")
        d.end(f"c{n}", "1003")


def test_engine_round_robin_remembers_where_it_stopped() -> None:
    d = desk(queue(strategy="round_robin", members=FOUR), agents=FOUR)
    first = []
    for n in range(6):
        out = d.enqueue(f"c{n}")
        first.append(offered(out)[0][1][0])
        d.answer(f"c{n}", first[-1])
        d.end(f"c{n}", first[-1])
    assert first == ["1001", "1002", "1003", "1004", "1001", "1002"]


def test_engine_longest_idle() -> None:
    d = desk(queue(strategy="longest_idle", members=FOUR), agents=FOUR)
    # Calls end at 10, 20, 30, 40 in the order 1003, 1001, 1004, 1002.
    for n, agent in enumerate(FOUR):
        d.enqueue(f"c{n}")
        d.answer(f"c{n}", agent)
    for at, (n, agent) in zip(
        (10, 20, 30, 40), ((2, "1003"), (0, "1001"), (3, "1004"), (1, "1002")), strict=True
    ):
        d.advance_to(at)
        d.end(f"c{n}", agent)
    out = d.enqueue("next", at=50)
    assert offered(out) == [("next", ("1003",))]


def test_engine_fewest_calls_and_least_talk_time() -> None:
    for strategy in ("fewest_calls", "least_talk_time"):
        d = desk(queue(strategy=strategy, members=("1001", "1002")), agents=("1001", "1002"))
        d.enqueue("a")
        d.answer("a", "1001")
        d.advance(100)
        d.end("a", "1001")
        out = d.enqueue("b")
        assert offered(out) == [("b", ("1002",))], strategy


def test_engine_random_uses_the_injected_generator() -> None:
    def first_offers(seed: int) -> list[str]:
        d = desk(queue(strategy="random", members=FOUR), agents=FOUR, seed=seed)
        picks = []
        for n in range(8):
            out = d.enqueue(f"c{n}")
            picks.append(offered(out)[0][1][0])
            d.answer(f"c{n}", picks[-1])
            d.end(f"c{n}", picks[-1])
        return picks

    assert first_offers(3) == first_offers(3)
    assert len(set(first_offers(3))) > 1


def test_engine_skills_filters_and_ranks() -> None:
    agents = [
        AgentProfile("1001", skills={"fr": 1}),
        AgentProfile("1002", skills={"fr": 4, "de": 3}),
        AgentProfile("1003", skills={"fr": 8}),
        AgentProfile("1004", skills={"de": 9}),
    ]
    d = desk(queue(strategy="skills", members=FOUR), agents=agents)
    out = d.enqueue("french", skills={"fr": 2})
    assert offered(out) == [("french", ("1003",))]
    d.send(OfferFailed("french", "1003", "busy"))
    assert d.engine.ringing("french") == ("1002",)
    d.send(OfferFailed("french", "1002", "busy"))
    assert d.engine.ringing("french") == ()  # 1001 is not skilled enough, 1004 speaks no French


def test_engine_queue_skills_apply_to_every_call() -> None:
    agents = [AgentProfile("1001"), AgentProfile("1002", skills={"billing": 3})]
    d = desk(queue(skills={"billing": 2}, members=("1001", "1002")), agents=agents)
    assert offered(d.enqueue("c1")) == [("c1", ("1002",))]


def test_engine_ring_progressively_adds_one_agent_per_step() -> None:
    d = desk(
        queue(
            strategy="ring_progressively",
            members=FOUR,
            ring_progressively_step_s=5,
            ring_timeout_s=30,
        ),
        agents=FOUR,
    )
    assert offered(d.enqueue("c1")) == [("c1", ("1001",))]
    assert offered(d.advance(5)) == [("c1", ("1002",))]
    assert offered(d.advance(5)) == [("c1", ("1003",))]
    assert set(d.engine.ringing("c1")) == {"1001", "1002", "1003"}
    out = d.answer("c1", "1002")
    assert {(c.agent, c.reason) for c in out if isinstance(c, CancelOffer)} == {
        ("1001", "answered_elsewhere"),
        ("1003", "answered_elsewhere"),
    }
    assert offered(d.advance(30)) == []


def test_engine_ring_progressively_keeps_adding_when_an_agent_frees_up_late() -> None:
    d = desk(
        queue(
            strategy="ring_progressively",
            members=("1001", "1002"),
            ring_progressively_step_s=5,
            ring_timeout_s=30,
        ),
        agents=("1001", "1002"),
    )
    d.send(AgentPaused("1002"))
    d.enqueue("c1")
    assert offered(d.advance(10)) == []  # the step is due, nobody to add
    assert offered(d.send(AgentUnpaused("1002"))) == [("c1", ("1002",))]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_prefers_the_lower_penalty(strategy: str) -> None:
    members = (("1001", 2), ("1002", 1), ("1003", 0), ("1004", 1))
    d = desk(queue(strategy=strategy, members=members), agents=FOUR)
    out = d.enqueue("c1")
    assert offered(out)[0][1][0] == "1003"
    assert d.state("1003") is S.RINGING
