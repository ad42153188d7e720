"""Live statistics from the engine's command stream: ASA, AHT, service level, abandon rate,
agent time per state, occupancy; and the EWT they feed."""

from __future__ import annotations

import pytest

from pbx.acd.events import AgentPaused, CallAbandoned, CallEnqueued
from pbx.acd.model import AgentState, QueuedCall
from pbx.acd.stats import AcdStats
from tests.unit.acd.acd_harness import desk, queue

S = AgentState


def test_queue_figures() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=10, service_level_s=20, max_length=3))
    d.enqueue("c1")  # answered at once
    d.answer("c1", "1001")
    d.enqueue("c2", at=5)
    d.enqueue("c3", at=6)
    d.enqueue("c4", at=7)
    d.enqueue("c5", at=8)  # turned away: max_length
    d.send(CallAbandoned("c4"), at=9)
    d.advance_to(60)
    d.end("c1", "1001")  # talk 60, wrap 10 -> handle 70; c2 offered at 70
    d.advance_to(70)
    d.answer("c2", "1001")  # waited 65 s
    snap = d.engine.stats.queue("support", 71)
    assert (snap.offered, snap.answered, snap.abandoned, snap.overflowed) == (5, 2, 1, 1)
    assert snap.waiting == 1 and snap.longest_wait_s == 65
    assert snap.asa_s == pytest.approx(65 / 2)
    assert snap.aht_s == pytest.approx(70)
    assert snap.service_level == pytest.approx(1 / 4)  # 1 of 4 that left within 20 s
    assert snap.abandon_rate == pytest.approx(1 / 4)
    assert snap.agent_offers == 2


def test_agent_figures_and_occupancy() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=10, ring_timeout_s=5), agents=("1001",))
    d.enqueue("c1", at=10)  # idle 0..10
    d.advance(5)  # ringing 10..15, missed -> available
    d.advance(5)  # retry at 20 -> rings again
    d.answer("c1", "1001")  # on call from 20
    d.end("c1", "1001")  # ...
    d.send(AgentPaused("1001", "lunch"), at=100)
    snap = d.engine.stats.agent("1001", 130)
    assert snap.calls == 1 and snap.offers == 2 and snap.missed == 1
    assert snap.state is S.PAUSED and snap.time_in_state_s == 30
    assert snap.talk_time_s == 0  # answered and ended at 20
    assert snap.wrap_up_time_s == 10
    by_state = snap.time_by_state
    assert by_state[S.AVAILABLE] == pytest.approx(10 + 5 + 70)
    assert by_state[S.RINGING] == pytest.approx(5 + 0)
    assert snap.occupancy == pytest.approx(10 / 100)


def test_handle_time_estimate_starts_at_the_configured_value_then_follows_calls() -> None:
    q = queue(members=("1001",), handle_time_estimate_s=240)
    stats = AcdStats([q], ["1001"])
    assert stats.handle_time_estimate("support") == 240
    d = desk(q, agents=("1001",))
    d.enqueue("c1")
    d.answer("c1", "1001")
    d.advance(30)
    d.end("c1", "1001")
    assert d.engine.stats.handle_time_estimate("support") == 30
    d.send(CallEnqueued(QueuedCall("c2", "support")))
    d.answer("c2", "1001")
    d.advance(90)
    d.end("c2", "1001")
    assert d.engine.stats.handle_time_estimate("support") == 60


def test_time_in_the_first_state_counts_from_when_the_figures_start() -> None:
    # Was: the first state was counted from the epoch (1.8e9 s "logged out" in /api/stats).
    from pbx.acd.model import AgentStateChanged

    stats = AcdStats([queue(members=("1001",))], ["1001"], now=1_000_000.0)
    stats.observe(AgentStateChanged("1001", S.LOGGED_OUT, S.AVAILABLE, "login", 1_000_005.0),
                  1_000_005.0)
    snap = stats.agent("1001", 1_000_065.0)
    assert snap.time_by_state[S.LOGGED_OUT] == pytest.approx(5.0)
    assert snap.time_by_state[S.AVAILABLE] == pytest.approx(60.0)
