"""The discrete-event simulator against the real engine: invariants over a day of 10,000 calls,
agreement with Erlang C, strategy comparisons, the hunt-order preview and `pbx simulate`."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from pbx.acd import simulate as simulate_module
from pbx.acd.erlang import agents_for_service_level, erlang_b, erlang_c
from pbx.acd.model import AgentProfile, QueuedCall
from pbx.acd.report import HuntStep, hunt_order
from pbx.acd.simulate import SimulationSettings, compare_strategies, main, simulate
from pbx.acd.strategies import RING_MODES, STRATEGIES
from tests.unit.acd.acd_harness import queue, statuses

MESSY = SimulationSettings(
    aht_s=140,
    wrap_up_s=10,
    patience_s=240,
    answer_probability=0.9,
    answer_delay_s=6,
    race_probability=0.05,
    vip_share=0.05,
    auto_pause_after_misses=3,
    unpause_after_s=60,
)


def test_erlang_b_and_c_known_values() -> None:
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    e = erlang_c(2, calls_per_hour=1.0, aht_s=3600.0, service_level_s=0.0)
    assert e.load_erlangs == 1.0 and e.occupancy == 0.5
    assert e.prob_wait == pytest.approx(1 / 3)
    assert e.asa_s == pytest.approx(1200.0)
    assert e.service_level == pytest.approx(2 / 3)
    overloaded = erlang_c(2, calls_per_hour=3.0, aht_s=3600.0)
    assert overloaded.prob_wait == 1.0 and math.isinf(overloaded.asa_s)
    n = agents_for_service_level(417, 150, 0.8)
    assert erlang_c(n, 417, 150).service_level >= 0.8 > erlang_c(n - 1, 417, 150).service_level


def test_a_day_of_10000_calls_keeps_every_invariant() -> None:
    # Invariants are checked inside, after every step, by the engine and by the simulator.
    result = simulate(replace(MESSY, strategy="linear"))
    assert 9800 < result.calls < 10200
    assert result.answered + result.abandoned + result.overflowed == result.calls
    assert result.no_answers > 500 and result.stale_answers > 20 and result.abandoned > 100
    assert 0.7 < result.occupancy < 0.95
    assert result.engine_events > 3 * result.calls


@pytest.mark.parametrize("strategy", sorted(RING_MODES))
def test_multi_ring_strategies_keep_every_invariant(strategy: str) -> None:
    result = simulate(replace(MESSY, strategy=strategy, hours=4))
    assert result.answered + result.abandoned + result.overflowed == result.calls


def test_simulation_agrees_with_erlang_c() -> None:
    # M/M/20 at 87 % occupancy: ASA and service level over 6 days of ~10,000 calls each.
    runs = [
        simulate(SimulationSettings(strategy="random", seed=seed, check_invariants=False))
        for seed in range(1, 7)
    ]
    erlang = runs[0].erlang
    asa = statistics.mean(r.asa_s for r in runs)
    service_level = statistics.mean(r.service_level for r in runs)
    assert asa == pytest.approx(erlang.asa_s, rel=0.3)
    assert service_level == pytest.approx(erlang.service_level, abs=0.06)
    assert statistics.mean(r.occupancy for r in runs) == pytest.approx(erlang.occupancy, abs=0.02)
    assert all(r.abandoned == 0 and r.answered == r.calls for r in runs)


def test_light_load_hardly_waits() -> None:
    result = simulate(SimulationSettings(calls_per_hour=200, hours=8, check_invariants=False))
    assert result.erlang.service_level > 0.99 and result.service_level > 0.98
    assert result.asa_s < 2.0


def test_strategies_face_the_same_callers() -> None:
    settings = SimulationSettings(hours=6, check_invariants=False)
    results = {r.strategy: r for r in compare_strategies(settings, sorted(STRATEGIES))}
    # Identical agents and instant answers: who answers does not change how long callers wait.
    waits = {round(r.asa_s, 9) for r in results.values()}
    assert len(waits) == 1 and waits != {0.0}


def test_strategies_share_the_work_differently_at_light_load() -> None:
    settings = SimulationSettings(hours=6, calls_per_hour=200, check_invariants=False)
    results = {r.strategy: r for r in compare_strategies(settings, sorted(STRATEGIES))}
    spread = {name: r.calls_per_agent[1] - r.calls_per_agent[0] for name, r in results.items()}
    assert results["linear"].calls_per_agent[0] == 0  # the last seats are never reached
    assert spread["linear"] > 5 * spread["round_robin"]
    assert spread["fewest_calls"] <= 2 < spread["random"]


def test_same_seed_same_day() -> None:
    settings = replace(MESSY, hours=2)
    assert simulate(settings) == simulate(settings)
    assert simulate(settings) != simulate(replace(settings, seed=2))


def test_simulating_a_configured_queue() -> None:
    q = queue("billing", members=("1001", "1002", "1003"), strategy="skills", skills={"de": 1})
    agents = [AgentProfile(a, skills={"de": 2}) for a in ("1001", "1002", "1003")]
    settings = SimulationSettings(calls_per_hour=40, hours=4, aht_s=180)
    result = simulate(settings, q, agents, statuses(standard={}))
    assert result.strategy == "skills" and result.answered == result.calls > 100


def test_hunt_order_for_a_sample_caller() -> None:
    q = queue(
        members=("1001", ("1002", 1), ("1003", 1), "1004"),
        escalation=[{"after_s": 30, "max_penalty": 1}],
    )
    agents = [AgentProfile(a, skills={"fr": 3}) for a in ("1001", "1002", "1003")]
    agents.append(AgentProfile("1004"))
    rules = statuses(vip={"pinning": {"wait_for_pinned_s": 20, "reserve_pinned_agent": True}})
    call = QueuedCall(
        "s", "support", customer_status="vip", pinned_agents=("1003",), skills={"fr": 2}
    )
    steps = hunt_order(q, agents, call, rules)
    assert [(s.at_s, s.agents) for s in steps] == [
        (0.0, ("1003",)),
        (20.0, ("1001",)),
        (30.0, ("1002", "1003")),
        (math.inf, ("1004",)),
    ]
    assert "reserved" in steps[0].note and "fr>=2" in steps[-1].note
    only_pinned = statuses(vip={"pinning": {"fallback": "pinned_only"}})
    assert hunt_order(q, agents, call, only_pinned) == [
        HuntStep(0.0, ("1003",), "pinned agents only, one at a time")
    ]


def test_main_prints_a_comparison_and_a_hunt(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--strategy",
            "all",
            "--hours",
            "1",
            "--agents",
            "4",
            "--calls-per-hour",
            "60",
            "--sample-pinned",
            "2003",
            "--sample-status",
            "vip",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for name in STRATEGIES:
        assert name in out
    assert "Erlang C" in out and "pinned agents first" in out


def test_main_rejects_an_unknown_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--strategy", "nope"]) == 2
    assert "unknown strategy" in capsys.readouterr().err


def test_main_says_when_the_config_has_no_queues(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pbx.yaml"
    path.write_text(
        "sip: {domain: hotline.example}\nagents:\n"
        '  - {extension: "1001", name: Anna, password: "secret-1"}\n'
    )
    assert main(["--config", str(path)]) == 1
    assert "has no queues yet" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err


def test_main_takes_queues_and_agents_from_the_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Until the lead adds `queues` to PbxConfig, stand in a config object that has them.
    config = SimpleNamespace(
        queues=(queue("sales", members=("1001", "1002"), strategy="longest_idle"),),
        customer_statuses=statuses(standard={}),
        agents=[
            SimpleNamespace(extension=a, name=a, skills={}, enabled=True) for a in ("1001", "1002")
        ],
    )

    def load(path: str) -> Any:
        return config

    assert main(["--config", "x.yaml", "--hours", "1", "--calls-per-hour", "20"], load) == 0
    out = capsys.readouterr().out
    assert "queue 'sales' of x.yaml" in out and "longest_idle" in out
    assert main(["--config", "x.yaml", "--queue", "nope"], load) == 1
    assert "no queue named 'nope'" in capsys.readouterr().err


def test_the_module_is_the_cli_entry_point() -> None:
    assert simulate_module.main is main
