"""The ACD engine with injected time: hunting seat by seat, rounds, wrap-up, priorities, limits,
join/leave rules, agent requests, announcements and the zombie/double-offer rules."""

from __future__ import annotations

import pytest

from pbx.acd.events import (
    AgentDeviceAvailable,
    AgentDeviceUnavailable,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentStateChanged,
    AgentUnpaused,
    Announce,
    CallAbandoned,
    CallExitKeyPressed,
    CallJoinedQueue,
    CallLeftQueue,
    CancelOffer,
    ConnectCall,
    EventDeferred,
    EventRejected,
    OfferAnswered,
    OfferFailed,
    Overflow,
)
from pbx.acd.model import AgentState
from tests.unit.acd.acd_harness import desk, offered, only, queue, statuses

S = AgentState


def test_linear_rings_seat_one_first_and_rolls_over_on_ring_timeout() -> None:
    d = desk(queue(ring_timeout_s=15))
    out = d.enqueue("c1")
    joined = only(out, CallJoinedQueue)[0]
    assert (joined.position, joined.hold_program) == (1, "default")
    assert offered(out) == [("c1", ("1001",))]
    assert d.state("1001") is S.RINGING
    assert d.engine.next_deadline() == 15
    out = d.advance(15)
    assert only(out, CancelOffer) == [CancelOffer("c1", "1001", "ring_timeout")]
    assert offered(out) == [("c1", ("1002",))]
    assert d.state("1001") is S.AVAILABLE
    out = d.advance(3)
    out = d.answer("c1", "1002")
    assert only(out, ConnectCall) == [ConnectCall("c1", "1002", "support", 18.0)]
    assert only(out, CallLeftQueue) == [CallLeftQueue("c1", "support", "answered", 18.0)]
    assert d.state("1002") is S.ON_CALL
    assert d.engine.waiting_calls() == []


def test_linear_skips_busy_seats() -> None:
    d = desk()
    d.enqueue("c1")
    d.answer("c1", "1001")
    out = d.enqueue("c2")
    assert offered(out) == [("c2", ("1002",))]


def test_every_seat_missed_caller_waits_and_is_offered_again_after_retry_delay() -> None:
    d = desk(queue(members=("1001", "1002"), ring_timeout_s=10, retry_delay_s=5))
    d.enqueue("c1")
    d.advance(10)  # 1001 missed, 1002 rings
    out = d.advance(10)  # 1002 missed: round over
    assert offered(out) == []
    assert d.engine.waiting_calls()[0].call == "c1"
    assert d.engine.next_deadline() == 25
    out = d.advance(5)
    assert offered(out) == [("c1", ("1001",))]


def test_untried_agent_who_becomes_free_during_retry_delay_is_offered_at_once() -> None:
    d = desk(queue(ring_timeout_s=10, retry_delay_s=30))
    d.enqueue("c0")
    d.answer("c0", "1001")  # 1001 busy
    d.enqueue("c1")  # rings 1002
    d.advance(10)  # 1002 missed -> 1003
    d.advance(10)  # 1003 missed -> round over, retry at 50
    out = d.end("c0", "1001")  # 1001 free, never tried for c1
    assert offered(out) == [("c1", ("1001",))]


def test_busy_moves_on_without_counting_a_miss() -> None:
    d = desk(queue(auto_pause_after_misses=1))
    d.enqueue("c1")
    out = d.send(OfferFailed("c1", "1001", "busy"))
    assert offered(out) == [("c1", ("1002",))]
    assert d.state("1001") is S.AVAILABLE


def test_rejected_offer_counts_as_a_miss_and_auto_pauses() -> None:
    d = desk(queue(auto_pause_after_misses=2, ring_timeout_s=10))
    d.enqueue("c1")
    d.send(OfferFailed("c1", "1001", "rejected"))  # miss 1
    d.answer("c1", "1002")
    d.enqueue("c2")  # 1001 again (seat 1)
    out = d.advance(10)  # miss 2 -> auto-paused
    changes = [c for c in only(out, AgentStateChanged) if c.agent == "1001"]
    assert changes[-1].new is S.PAUSED and changes[-1].reason == "auto_pause"
    assert d.engine.agents["1001"].pause_reason == "auto_pause"
    d.send(AgentUnpaused("1001"))
    assert d.engine.agents["1001"].missed_in_a_row == 0


def test_answer_resets_the_miss_counter() -> None:
    d = desk(queue(auto_pause_after_misses=2, ring_timeout_s=10, members=("1001",)))
    d.enqueue("c1")
    d.advance(10)
    d.advance(5)  # retry
    d.answer("c1", "1001")
    assert d.engine.agents["1001"].missed_in_a_row == 0


def test_ring_all_first_answer_wins_and_the_rest_are_cancelled() -> None:
    d = desk(queue(strategy="ring_all"))
    out = d.enqueue("c1")
    assert offered(out) == [("c1", ("1001", "1002", "1003"))]
    out = d.answer("c1", "1003")
    assert {(c.agent, c.reason) for c in only(out, CancelOffer)} == {
        ("1001", "answered_elsewhere"),
        ("1002", "answered_elsewhere"),
    }
    assert [d.state(a) for a in ("1001", "1002", "1003")] == [S.AVAILABLE, S.AVAILABLE, S.ON_CALL]
    # The phones crossed the cancel: a second answer is told to hang up, not connected.
    out = d.answer("c1", "1001")
    assert out == [CancelOffer("c1", "1001", "stale_answer")]
    assert d.state("1001") is S.AVAILABLE


def test_ring_all_adds_an_agent_who_becomes_free_while_ringing() -> None:
    d = desk(queue(strategy="ring_all"))
    d.send(AgentPaused("1003", "lunch"))
    d.enqueue("c1")
    out = d.send(AgentUnpaused("1003"))
    assert offered(out) == [("c1", ("1003",))]
    assert set(d.engine.ringing("c1")) == {"1001", "1002", "1003"}


def test_ring_all_rings_the_lowest_tier_only() -> None:
    d = desk(queue(strategy="ring_all", members=("1001", ("1002", 1), "1003")))
    out = d.enqueue("c1")
    assert offered(out) == [("c1", ("1001", "1003"))]


def test_abandon_while_ringing_cancels_the_offer_at_once() -> None:
    d = desk()
    d.enqueue("c1")
    out = d.send(CallAbandoned("c1"), at=4)
    assert only(out, CancelOffer) == [CancelOffer("c1", "1001", "abandoned")]
    assert only(out, CallLeftQueue) == [CallLeftQueue("c1", "support", "abandoned", 4.0)]
    assert d.state("1001") is S.AVAILABLE
    assert d.engine.next_deadline() is None
    assert d.answer("c1", "1001") == [CancelOffer("c1", "1001", "stale_answer")]


def test_device_unavailable_takes_the_agent_out_of_the_hunt_until_it_returns() -> None:
    d = desk()
    d.send(AgentDeviceUnavailable("1001"))
    out = d.enqueue("c1")
    assert offered(out) == [("c1", ("1002",))]
    out = d.send(AgentDeviceUnavailable("1002"))  # unregisters while ringing
    assert CancelOffer("c1", "1002", "device_unavailable") in out
    assert offered(out) == [("c1", ("1003",))]
    d.answer("c1", "1003")
    out = d.enqueue("c2")
    assert offered(out) == []
    out = d.send(AgentDeviceAvailable("1001"))
    assert offered(out) == [("c2", ("1001",))]


def test_offer_failed_unavailable_marks_the_device_down() -> None:
    d = desk()
    d.enqueue("c1")
    out = d.send(OfferFailed("c1", "1001", "unavailable"))
    assert offered(out) == [("c1", ("1002",))]
    assert not d.engine.agents["1001"].device_available
    assert d.state("1001") is S.AVAILABLE


def test_wrap_up_after_each_call() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=20))
    d.enqueue("c1")
    d.answer("c1", "1001")
    d.enqueue("c2")
    out = d.end("c1", "1001")
    assert only(out, AgentStateChanged)[-1].new is S.WRAP_UP
    assert offered(out) == []
    assert d.engine.next_deadline() == 20
    out = d.advance(20)
    assert offered(out) == [("c2", ("1001",))]


def test_ready_during_wrap_up_ends_it_early_and_takes_the_next_call() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=20))
    d.enqueue("c1")
    d.answer("c1", "1001")
    d.send(AgentPaused("1001", "lunch"))  # asked during the call, then changed their mind
    d.enqueue("c2")
    d.end("c1", "1001")
    assert d.state("1001") is S.WRAP_UP
    out = d.send(AgentUnpaused("1001"), at=5)
    changes = only(out, AgentStateChanged)
    assert (changes[0].new, changes[0].reason) == (S.AVAILABLE, "wrap_up_ended")
    assert offered(out) == [("c2", ("1001",))]
    d.answer("c2", "1001")
    d.advance(20)  # past the first wrap-up's end: its timer changes nothing
    assert d.state("1001") is S.ON_CALL


def test_higher_priority_first_equal_priority_in_arrival_order() -> None:
    d = desk(queue(members=("1001",)), customer_statuses=statuses(gold={"priority": 5}))
    d.enqueue("c0")
    d.answer("c0", "1001")
    d.enqueue("low1", at=1)
    d.enqueue("gold", customer_status="gold", at=2)
    d.enqueue("low2", at=3)
    d.enqueue("urgent", priority=9, at=4)
    assert [c.call for c in d.engine.waiting_calls()] == ["urgent", "gold", "low1", "low2"]
    assert d.engine.position("low1") == 3
    served = []
    agent_call = "c0"
    for _ in range(4):
        out = d.end(agent_call, "1001")
        agent_call = offered(out)[0][0]
        served.append(agent_call)
        d.answer(agent_call, "1001")
    assert served == ["urgent", "gold", "low1", "low2"]


def test_kept_enqueue_time_keeps_the_place_in_line() -> None:
    d = desk(queue(members=("1001",)))
    d.enqueue("c0")
    d.answer("c0", "1001")
    d.enqueue("c1", at=10)
    d.enqueue("callback", enqueued_at=5.0, at=20)  # came back from an overflow / callback
    assert [c.call for c in d.engine.waiting_calls()] == ["callback", "c1"]


def test_max_wait_overflows() -> None:
    d = desk(queue(members=("1001",), max_wait_s=60, overflow="flow:voicemail"))
    d.send(AgentPaused("1001"))
    d.enqueue("c1")
    out = d.advance(60)
    assert only(out, CallLeftQueue) == [CallLeftQueue("c1", "support", "max_wait", 60.0)]
    assert only(out, Overflow) == [Overflow("c1", "support", "flow:voicemail", "max_wait")]


def test_max_wait_while_ringing_cancels_the_ring() -> None:
    d = desk(queue(members=("1001",), max_wait_s=10, ring_timeout_s=30))
    d.enqueue("c1")
    out = d.advance(10)
    assert CancelOffer("c1", "1001", "left_queue") in out
    assert d.state("1001") is S.AVAILABLE


def test_max_length_turns_callers_away() -> None:
    d = desk(queue(max_length=2, overflow="queue:backup"), login=False)
    d.enqueue("c1")
    d.enqueue("c2")
    out = d.enqueue("c3")
    assert only(out, CallLeftQueue) == [CallLeftQueue("c3", "support", "max_length", 0.0)]
    assert only(out, Overflow) == [Overflow("c3", "support", "queue:backup", "max_length")]
    assert len(d.engine.waiting_calls()) == 2


@pytest.mark.parametrize(
    ("rule", "setup", "joins"),
    [
        ("always", "none", True),
        ("staffed", "none", False),
        ("staffed", "paused", False),
        ("staffed", "on_call", True),
        ("available", "on_call", False),
        ("available", "one_free", True),
    ],
)
def test_join_when(rule: str, setup: str, joins: bool) -> None:
    d = desk(queue(members=("1001",), join_when=rule), login=setup != "none")
    if setup == "paused":
        d.send(AgentPaused("1001"))
    if setup == "on_call":
        d.enqueue("c0")
        d.answer("c0", "1001")
    out = d.enqueue("c1")
    left = only(out, CallLeftQueue)
    assert (left == []) is joins
    if not joins:
        assert left[0].reason == "join_empty"


def test_leave_when_unstaffed() -> None:
    d = desk(queue(members=("1001", "1002"), leave_when="unstaffed", overflow="flow:closed"))
    d.send(AgentPaused("1001"))
    d.enqueue("c0")
    d.answer("c0", "1002")
    d.enqueue("c1")
    out = d.end("c0", "1002")
    assert offered(out) == [("c1", ("1002",))]
    out = d.send(AgentLoggedOut("1002"))  # the last staffed agent leaves while ringing
    assert CancelOffer("c1", "1002", "agent_logged_out") in out
    assert only(out, CallLeftQueue)[0].reason == "leave_empty"
    assert only(out, Overflow) == [Overflow("c1", "support", "flow:closed", "leave_empty")]


def test_exit_key() -> None:
    d = desk(queue(exit_key="9", exit_target="flow:callback"), login=False)
    d.enqueue("c1")
    out = d.send(CallExitKeyPressed("c1", "5"))
    assert only(out, EventRejected)
    out = d.send(CallExitKeyPressed("c1", "9"))
    assert only(out, CallLeftQueue)[0].reason == "exit_key"
    assert only(out, Overflow) == [Overflow("c1", "support", "flow:callback", "exit_key")]


def test_pause_during_a_call_waits_for_the_wrap_up() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=10))
    d.enqueue("c1")
    d.answer("c1", "1001")
    out = d.send(AgentPaused("1001", "lunch"))
    assert only(out, EventDeferred)
    assert d.state("1001") is S.ON_CALL
    d.enqueue("c2")
    d.end("c1", "1001")
    out = d.advance(10)
    assert only(out, AgentStateChanged)[-1].new is S.PAUSED
    assert offered(out) == []
    assert d.engine.agents["1001"].pause_reason == "lunch"


def test_logout_during_a_call_happens_when_it_ends() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=10))
    d.enqueue("c1")
    d.answer("c1", "1001")
    assert only(d.send(AgentLoggedOut("1001")), EventDeferred)
    out = d.end("c1", "1001")
    assert only(out, AgentStateChanged)[-1].new is S.LOGGED_OUT


def test_pause_while_ringing_withdraws_the_offer_without_a_miss() -> None:
    d = desk(queue(auto_pause_after_misses=1))
    d.enqueue("c1")
    out = d.send(AgentPaused("1001", "meeting"))
    assert CancelOffer("c1", "1001", "agent_paused") in out
    assert offered(out) == [("c1", ("1002",))]
    assert d.engine.agents["1001"].pause_reason == "meeting"


def test_login_paused_never_rings_in_between() -> None:
    d = desk(login=False)
    d.enqueue("c1")
    out = d.send(AgentLoggedIn("1001", paused=True, reason="setup"))
    assert offered(out) == []
    assert d.state("1001") is S.PAUSED


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (AgentPaused("1001"), "not logged in"),
        (AgentUnpaused("1001"), "not paused"),
        (AgentLoggedOut("1001"), "not logged in"),
        (AgentPaused("9999"), "no agent"),
        (OfferAnswered("nope", "9999"), "no agent"),
        (OfferFailed("nope", "1001", "busy"), "no such offer"),
        (CallAbandoned("nope"), "not waiting"),
    ],
)
def test_events_that_do_not_fit_are_rejected_not_raised(event: object, reason: str) -> None:
    d = desk(login=False)
    out = d.send(event)  # type: ignore[arg-type]
    assert [reason in r.reason for r in only(out, EventRejected)] == [True]


def test_double_login_and_unknown_queue_are_rejected() -> None:
    d = desk()
    assert only(d.send(AgentLoggedIn("1001")), EventRejected)
    assert only(d.enqueue("c1", queue="nope"), EventRejected)
    d.enqueue("c2")
    assert only(d.enqueue("c2"), EventRejected)


def test_position_and_ewt_announcements_follow_live_handle_times() -> None:
    q = queue(
        members=("1001",),
        handle_time_estimate_s=100,
        announce={"position_every_s": 30, "ewt": True, "first_after_s": 5},
    )
    d = desk(q)
    d.enqueue("c0")
    d.answer("c0", "1001")
    d.enqueue("c1")
    d.enqueue("c2")
    out = d.advance(5)
    first = {a.call: a for a in only(out, Announce)}
    assert first["c1"] == Announce("c1", "support", "position", 1, 100.0)
    assert first["c2"].position == 2 and first["c2"].ewt_s == 200.0
    d.advance(5)
    d.end("c0", "1001")  # handled in 10 s: the estimate follows
    d.answer("c1", "1001")
    out = d.advance(25)
    assert [(a.call, a.position, a.ewt_s) for a in only(out, Announce)] == [("c2", 1, 10.0)]


def test_periodic_announcements() -> None:
    d = desk(queue(announce={"periodic_every_s": 20}), login=False)
    d.enqueue("c1")
    out = d.advance(45)
    assert [a.kind for a in only(out, Announce)] == ["periodic", "periodic"]


def test_customer_status_picks_the_hold_program() -> None:
    d = desk(customer_statuses=statuses(vip={"hold_program": "vip-music"}), login=False)
    out = d.enqueue("c1", customer_status="vip")
    assert only(out, CallJoinedQueue)[0].hold_program == "vip-music"


def test_agent_in_two_queues_serves_the_longest_waiting_caller() -> None:
    q1 = queue("sales", members=("1001",))
    q2 = queue("support", members=("1001",))
    d = desk([q1, q2], agents=("1001",))
    d.enqueue("c0", queue="sales")
    d.answer("c0", "1001")
    d.enqueue("s1", queue="support", at=1)
    d.enqueue("a1", queue="sales", at=2)
    out = d.end("c0", "1001")
    assert offered(out) == [("s1", ("1001",))]


def test_timers_that_lost_their_reason_do_not_fire() -> None:
    d = desk(queue(ring_timeout_s=15))
    d.enqueue("c1")
    d.answer("c1", "1001")
    assert d.engine.next_deadline() is None
    assert d.engine.counters.timers_fired == 0
