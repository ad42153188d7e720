"""Queue and agent statistics per 15-minute interval, from the ACD engine's real command
stream: counts where they happened, durations split at interval boundaries, ready time only
with a registered phone, pause time by reason, and `take` handing over what gathered."""

from __future__ import annotations

from typing import Any

import pytest

from pbx.acd.events import (
    AgentDeviceChanged,
    AgentLoggedIn,
    AgentPaused,
    AgentUnpaused,
    CallAbandoned,
)
from pbx.acd.intervals import (
    INTERVAL_S,
    AgentInterval,
    IntervalDeltas,
    IntervalStats,
    QueueInterval,
    interval_start,
)
from tests.unit.acd.acd_harness import Desk, desk, offered, queue


def recording(queues: Any, agents: tuple[str, ...] = ("1001",)) -> tuple[Desk, IntervalStats]:
    """A desk whose every command (timers included) also goes to an `IntervalStats`, with the
    agents' phones registered at 0 and the agents logged in."""
    d = desk(queues, agents=agents, login=False)
    stats = IntervalStats([queues] if not isinstance(queues, list) else queues, now=0.0)
    original = d.send

    def send(event: Any, at: float | None = None) -> Any:
        if at is not None:
            d.advance_to(at)
        out = original(event)
        for command in out:
            stats.observe(command, d.now)
        return out

    d.send = send  # type: ignore[method-assign]
    for agent in agents:
        stats.observe(AgentDeviceChanged(agent, True), 0.0)
        d.send(AgentLoggedIn(agent))
    return d, stats


def test_interval_start_is_a_quarter_hour_of_the_epoch() -> None:
    assert INTERVAL_S == 900
    assert interval_start(899.9) == 0 and interval_start(900) == 900
    assert interval_start(1_764_887_400 + 899) == 1_764_887_400  # 2025-12-04 22:30 UTC


def test_a_call_across_an_interval_boundary_and_a_lunch_break() -> None:
    d, stats = recording(queue(members=("1001",), wrap_up_s=10, service_level_s=20))
    d.enqueue("c1", at=850)
    d.answer("c1", "1001")  # rings and is answered at 850: waited 0 s
    d.advance_to(1000)
    d.end("c1", "1001")  # talk 850..1000, wrap-up to 1010
    d.advance_to(1010)
    d.send(AgentPaused("1001", "lunch"), at=1700)
    deltas = stats.take(2000)
    first, second, third = (deltas.agents[(start, "1001")] for start in (0, 900, 1800))
    assert (first.offers, first.calls, first.handled) == (1, 1, 0)
    assert first.ready_s == pytest.approx(850) and first.talk_s == pytest.approx(50)
    assert second.talk_s == pytest.approx(100) and second.wrap_up_s == pytest.approx(10)
    assert second.ready_s == pytest.approx(690)
    assert (second.handled, second.handle_s) == (1, pytest.approx(160))
    assert second.paused_s == pytest.approx(100) and second.pauses == {"lunch": pytest.approx(100)}
    assert third.paused_s == pytest.approx(200) and third.pauses == {"lunch": pytest.approx(200)}
    assert third.calls == 0 and third.ready_s == 0
    queue_first, queue_second = deltas.queues[(0, "support")], deltas.queues[(900, "support")]
    assert (queue_first.offered, queue_first.answered, queue_first.answered_in_sl) == (1, 1, 1)
    assert queue_first.wait_answered_s == 0 and queue_first.handled == 0
    assert (queue_second.handled, queue_second.handle_s) == (1, pytest.approx(160))
    assert queue_second.offered == 0 and (1800, "support") not in deltas.queues


def test_take_hands_over_once_and_counts_a_running_state_up_to_now() -> None:
    d, stats = recording(queue(members=("1001",)))
    d.send(AgentPaused("1001", "break"), at=100)
    first = stats.take(400)
    assert first.agents[(0, "1001")].pauses == {"break": pytest.approx(300)}
    second = stats.take(500)
    assert second.agents[(0, "1001")].pauses == {"break": pytest.approx(100)}
    assert second.agents[(0, "1001")].ready_s == 0  # the ready time went with the first take
    d.send(AgentUnpaused("1001"), at=600)
    assert not stats.take(600).queues
    assert stats.take(600).agents == {}  # nothing happened since


def test_ready_time_needs_a_registered_phone() -> None:
    d, stats = recording(queue(members=("1001",)))
    stats.observe(AgentDeviceChanged("1001", False), 100.0)
    stats.observe(AgentDeviceChanged("1001", True), 400.0)
    sums = stats.take(500).agents[(0, "1001")]
    assert sums.ready_s == pytest.approx(100 + 100)


def test_abandoned_overflowed_and_turned_away_calls() -> None:
    d, stats = recording(queue(members=("1001",), max_length=1, max_wait_s=60,
                               service_level_s=5))
    d.send(AgentPaused("1001", "meeting"))  # nobody answers
    d.enqueue("c1", at=10)
    d.enqueue("c2", at=11)  # turned away: max_length 1
    d.send(CallAbandoned("c1"), at=40)  # waited 30 s
    d.enqueue("c3", at=50)
    d.advance_to(120)  # c3 leaves after max_wait 60 s
    sums = stats.take(120).queues[(0, "support")]
    assert (sums.offered, sums.answered, sums.abandoned, sums.overflowed) == (3, 0, 1, 2)
    assert sums.wait_abandoned_s == pytest.approx(30) and sums.answered_in_sl == 0


def test_service_level_uses_each_queues_target_and_a_default_for_unknown_ones() -> None:
    d, stats = recording([queue(members=("1001",), service_level_s=5),
                          queue("sales", members=("1001",), service_level_s=60)])
    d.send(AgentPaused("1001", "x"))
    d.enqueue("a", at=0)
    d.enqueue("b", "sales", at=0)
    d.send(AgentUnpaused("1001"), at=30)
    call, _ = offered(d.log)[-1]
    d.answer(call, "1001")
    deltas = stats.take(31)
    answered = {q: s for (_, q), s in deltas.queues.items() if s.answered}
    [(name, sums)] = answered.items()
    assert sums.wait_answered_s == pytest.approx(30)
    assert sums.answered_in_sl == (1 if name == "sales" else 0)


def test_merged_adds_up_and_leaves_both_alone() -> None:
    a = IntervalDeltas({(0, "q"): QueueInterval(offered=1, handle_s=2.0)},
                       {(0, "1001"): AgentInterval(calls=1, pauses={"lunch": 5.0})})
    b = IntervalDeltas({(0, "q"): QueueInterval(offered=2), (900, "q"): QueueInterval(answered=1)},
                       {(0, "1001"): AgentInterval(pauses={"lunch": 1.0, "break": 2.0})})
    both = a.merged(b)
    assert both.queues[(0, "q")] == QueueInterval(offered=3, handle_s=2.0)
    assert both.queues[(900, "q")].answered == 1
    assert both.agents[(0, "1001")].pauses == {"lunch": 6.0, "break": 2.0}
    assert a.queues[(0, "q")].offered == 1 and a.agents[(0, "1001")].pauses == {"lunch": 5.0}
    assert not IntervalDeltas({}, {}) and both
