"""Calls the ACD did not route (`AgentCallStarted` / `AgentCallEnded`): every agent state with a
direct call starting and ending, the hunt never offering a seat on a direct call, pauses and
logouts asked for meanwhile, staffing, and the statistics."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pbx.acd.events import (
    AcdCommand,
    AgentCallEnded,
    AgentCallStarted,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentStateChanged,
    AgentUnpaused,
    CallAbandoned,
    CallEnded,
    CallJoinedQueue,
    CallLeftQueue,
    CancelOffer,
    EventDeferred,
    EventRejected,
    OfferFailed,
)
from pbx.acd.model import AgentState
from tests.unit.acd.acd_harness import Desk, desk, offered, only, queue, statuses

S = AgentState
A = "1001"
STARTED_AT, ENDED_AT = 10.0, 20.0


def _changed(
    old: AgentState,
    new: AgentState,
    reason: str,
    at: float,
    call: str | None = None,
    queue: str | None = None,
) -> AgentStateChanged:
    return AgentStateChanged(A, old, new, reason, at, call, queue)


# ------------------------------------------------------------------ the table


def _one_seat(wrap_up_s: float = 60) -> Desk:
    # One agent, long timers: nothing fires between the setup and the end of the direct call.
    rules = statuses(
        vip={"pinning": {"fallback": "pinned_only", "reserve_pinned_agent": True}},
    )
    q = queue(members=(A,), wrap_up_s=wrap_up_s, ring_timeout_s=60)
    return desk(q, agents=(A,), customer_statuses=rules)


def _logged_out(d: Desk) -> None:
    d.send(AgentLoggedOut(A))


def _available(d: Desk) -> None:
    pass


def _ringing(d: Desk) -> None:
    d.enqueue("c1")


def _on_call(d: Desk) -> None:
    d.enqueue("c1")
    d.answer("c1", A)


def _wrap_up(d: Desk) -> None:
    _on_call(d)
    d.end("c1", A)


def _reserved(d: Desk) -> None:
    _on_call(d)
    d.enqueue("vip", customer_status="vip", pinned_agents=(A,))
    d.end("c1", A)


def _paused(d: Desk) -> None:
    d.send(AgentPaused(A, "lunch"))


def _busy_direct(d: Desk) -> None:
    d.send(AgentCallStarted(A, "d0"))


Setup = Callable[[Desk], None]
# prior state, setup, state after the start, its commands, state after the end, its commands
TABLE: list[tuple[AgentState, Setup, AgentState, list[AcdCommand], AgentState, list[AcdCommand]]]
TABLE = [
    (S.LOGGED_OUT, _logged_out, S.LOGGED_OUT, [], S.LOGGED_OUT, []),
    (
        S.AVAILABLE,
        _available,
        S.BUSY_DIRECT,
        [_changed(S.AVAILABLE, S.BUSY_DIRECT, "direct_call:outbound", STARTED_AT, "d1")],
        S.AVAILABLE,  # no wrap-up after a call the ACD did not route
        [_changed(S.BUSY_DIRECT, S.AVAILABLE, "direct_call_ended", ENDED_AT, "d1")],
    ),
    # The offer stays: the ACD's ring timeout or the answer decides (see below).
    (S.RINGING, _ringing, S.RINGING, [], S.RINGING, []),
    (S.ON_CALL, _on_call, S.ON_CALL, [], S.ON_CALL, []),
    (S.WRAP_UP, _wrap_up, S.WRAP_UP, [], S.WRAP_UP, []),
    (
        S.RESERVED,  # the reservation would become an offer: released, wrap-up goes on
        _reserved,
        S.WRAP_UP,
        [_changed(S.RESERVED, S.WRAP_UP, "reservation_released", STARTED_AT, "c1", "support")],
        S.RESERVED,  # still wrapping up and pinned for the VIP: held again
        [_changed(S.WRAP_UP, S.RESERVED, "reserved_for_pinned", ENDED_AT, "vip")],
    ),
    (
        S.PAUSED,
        _paused,
        S.BUSY_DIRECT,
        [_changed(S.PAUSED, S.BUSY_DIRECT, "direct_call:outbound", STARTED_AT, "d1")],
        S.PAUSED,  # with the same reason
        [_changed(S.BUSY_DIRECT, S.PAUSED, "lunch", ENDED_AT, "d1")],
    ),
    # A second direct call (consultation + original): busy until the last one ends.
    (S.BUSY_DIRECT, _busy_direct, S.BUSY_DIRECT, [], S.BUSY_DIRECT, []),
]


@pytest.mark.parametrize(
    ("prior", "setup", "during", "start_commands", "after", "end_commands"),
    TABLE,
    ids=[row[0].value for row in TABLE],
)
def test_direct_call_in_each_state(
    prior: AgentState,
    setup: Setup,
    during: AgentState,
    start_commands: list[AcdCommand],
    after: AgentState,
    end_commands: list[AcdCommand],
) -> None:
    d = _one_seat()
    setup(d)
    assert d.state(A) is prior
    agent = d.engine.agents[A]
    assert d.send(AgentCallStarted(A, "d1", "outbound"), at=STARTED_AT) == start_commands
    assert d.state(A) is during
    assert not agent.huntable
    assert offered(d.enqueue("late")) == []  # whatever the state: no offer on a direct call
    d.send(CallAbandoned("late"))
    assert d.send(AgentCallEnded(A, "d1"), at=ENDED_AT) == end_commands
    assert d.state(A) is after
    assert agent.direct_calls == ({"d0": "internal"} if prior is S.BUSY_DIRECT else {})
    if prior is S.PAUSED:
        assert agent.pause_reason == "lunch"


# ------------------------------------------------------------------ the hunt


def test_a_queue_call_is_never_offered_to_an_agent_on_a_direct_call() -> None:
    d = desk(queue(strategy="ring_all"))
    d.send(AgentCallStarted("1001", "d1", "internal"))
    d.send(AgentCallStarted("1003", "d2", "consultation"))
    out = d.enqueue("c1")
    assert offered(out) == [("c1", ("1002",))]
    d.answer("c1", "1002")
    out = d.enqueue("c2")
    assert offered(out) == []
    assert [c.call for c in d.engine.waiting_calls()] == ["c2"]


def test_a_waiting_caller_is_offered_right_after_the_direct_call_ends() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=30), agents=("1001",))
    d.send(AgentCallStarted("1001", "d1", "outbound"), at=5)
    d.enqueue("c1", at=6)
    assert d.advance(100) == []  # waits: nothing to offer, no timer of the agent's
    out = d.send(AgentCallEnded("1001", "d1"))
    assert [(c.old, c.new) for c in only(out, AgentStateChanged)] == [
        (S.BUSY_DIRECT, S.AVAILABLE),
        (S.AVAILABLE, S.RINGING),
    ]
    assert offered(out) == [("c1", ("1001",))]


def test_busy_until_the_last_of_several_direct_calls_ends() -> None:
    d = desk(queue(members=("1001",)), agents=("1001",))
    d.send(AgentCallStarted("1001", "orig", "inbound"))
    d.send(AgentCallStarted("1001", "consult", "consultation"))
    d.enqueue("c1")
    assert offered(d.send(AgentCallEnded("1001", "orig"))) == []
    assert d.state("1001") is S.BUSY_DIRECT
    assert offered(d.send(AgentCallEnded("1001", "consult"))) == [("c1", ("1001",))]


def test_repeated_starts_and_ends_change_nothing() -> None:
    d = desk(queue(members=("1001",)), agents=("1001",))
    d.send(AgentCallStarted("1001", "d1"))
    assert d.send(AgentCallStarted("1001", "d1")) == []
    assert d.send(AgentCallStarted("1001", "d1", "outbound")) == []
    assert d.engine.agents["1001"].direct_calls == {"d1": "internal"}
    assert only(d.send(AgentCallEnded("1001", "d1")), AgentStateChanged)
    assert d.send(AgentCallEnded("1001", "d1")) == []
    assert d.send(AgentCallEnded("1001", "never-started")) == []
    assert d.state("1001") is S.AVAILABLE


@pytest.mark.parametrize("event", [AgentCallStarted("9999", "d1"), AgentCallEnded("9999", "d1")])
def test_events_for_unknown_agents_are_rejected(event: AgentCallStarted | AgentCallEnded) -> None:
    d = desk()
    out = d.send(event)
    assert out == [EventRejected(event, "no agent '9999'")]


def test_a_start_naming_the_acds_own_call_is_rejected() -> None:
    d = desk(queue(members=("1001",)), agents=("1001",))
    d.enqueue("c1")
    event = AgentCallStarted("1001", "c1")
    assert [type(c) for c in d.send(event)] == [EventRejected]
    d.answer("c1", "1001")
    assert [type(c) for c in d.send(event)] == [EventRejected]
    assert d.engine.agents["1001"].direct_calls == {}


# ------------------------------------------------------------------ ACD states that run on


def test_ring_timeout_during_a_direct_call_parks_the_agent_in_busy_direct() -> None:
    d = desk(queue(members=("1001",), ring_timeout_s=15, auto_pause_after_misses=2))
    d.enqueue("c1")
    d.send(AgentCallStarted("1001", "d1", "outbound"), at=3)
    assert d.state("1001") is S.RINGING and d.engine.ringing("c1") == ("1001",)
    out = d.advance_to(15)
    assert CancelOffer("c1", "1001", "ring_timeout") in out
    assert only(out, AgentStateChanged) == [
        AgentStateChanged("1001", S.RINGING, S.BUSY_DIRECT, "no_answer", 15, "c1", "support")
    ]
    assert d.engine.stats.agent("1001", 15).missed == 1
    assert offered(d.advance(100)) == []  # retries find nobody while the direct call lasts
    assert offered(d.send(AgentCallEnded("1001", "d1"))) == [("c1", ("1001",))]


def test_auto_pause_during_a_direct_call_becomes_pending() -> None:
    d = desk(queue(members=("1001",), ring_timeout_s=15, auto_pause_after_misses=1))
    d.enqueue("c1")
    d.send(AgentCallStarted("1001", "d1"))
    d.advance_to(15)
    agent = d.engine.agents["1001"]
    assert (agent.state, agent.pending, agent.pending_reason) == (
        S.BUSY_DIRECT,
        S.PAUSED,
        "auto_pause",
    )
    d.send(AgentCallEnded("1001", "d1"))
    assert (agent.state, agent.pause_reason) == (S.PAUSED, "auto_pause")


def test_busy_offer_failure_caused_by_the_direct_call() -> None:
    d = desk(queue(members=("1001", "1002")))
    d.enqueue("c1")
    d.send(AgentCallStarted("1001", "d1", "inbound"))
    out = d.send(OfferFailed("c1", "1001", "busy"))
    assert d.state("1001") is S.BUSY_DIRECT
    assert offered(out) == [("c1", ("1002",))]


def test_answering_the_offer_during_a_direct_call_then_the_queue_call_ends() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=0), agents=("1001",))
    d.enqueue("c1")
    d.send(AgentCallStarted("1001", "d1"))
    d.answer("c1", "1001")
    assert d.state("1001") is S.ON_CALL
    d.enqueue("c2")
    out = d.end("c1", "1001")  # no wrap-up configured, but the direct call goes on
    assert [c.new for c in only(out, AgentStateChanged)] == [S.BUSY_DIRECT]
    assert offered(out) == []
    assert offered(d.send(AgentCallEnded("1001", "d1"))) == [("c2", ("1001",))]


def test_wrap_up_continues_during_a_direct_call_and_ends_in_busy_direct() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=20), agents=("1001",))
    d.enqueue("c1")
    d.answer("c1", "1001")
    d.send(AgentCallStarted("1001", "consult", "consultation"), at=5)
    d.end("c1", "1001")  # wrap-up until 25
    d.send(AgentCallEnded("1001", "consult"), at=10)
    assert d.state("1001") is S.WRAP_UP  # the direct call ending does not cut wrap-up short
    d.send(AgentCallStarted("1001", "d2", "outbound"), at=15)
    d.enqueue("c2")
    out = d.advance_to(25)
    assert only(out, AgentStateChanged) == [
        AgentStateChanged("1001", S.WRAP_UP, S.BUSY_DIRECT, "wrap_up_done", 25, "c1", "support")
    ]
    assert offered(out) == []
    assert offered(d.send(AgentCallEnded("1001", "d2"), at=30)) == [("c2", ("1001",))]


def test_reservation_is_not_taken_by_an_agent_on_a_direct_call() -> None:
    rules = statuses(vip={"pinning": {"fallback": "pinned_only", "reserve_pinned_agent": True}})
    d = desk(queue(members=("1001",), wrap_up_s=20), agents=("1001",), customer_statuses=rules)
    d.enqueue("c1")
    d.answer("c1", "1001")
    d.send(AgentCallStarted("1001", "d1"))
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    d.end("c1", "1001")
    assert d.state("1001") is S.WRAP_UP
    out = d.advance(20)
    assert [c.new for c in only(out, AgentStateChanged)] == [S.BUSY_DIRECT]
    assert offered(d.send(AgentCallEnded("1001", "d1"))) == [("vip", ("1001",))]


# ------------------------------------------------------------------ requests during the call


@pytest.mark.parametrize("was_paused", [False, True])
def test_pause_during_a_direct_call_is_deferred(was_paused: bool) -> None:
    d = desk(queue(members=("1001",)), agents=("1001",))
    if was_paused:
        d.send(AgentPaused("1001", "lunch"))
    d.send(AgentCallStarted("1001", "d1"))
    out = d.send(AgentPaused("1001", "meeting"))
    assert [type(c) for c in out] == [EventDeferred]
    assert d.state("1001") is S.BUSY_DIRECT
    d.send(AgentCallEnded("1001", "d1"))
    assert (d.state("1001"), d.engine.agents["1001"].pause_reason) == (S.PAUSED, "meeting")


def test_unpause_during_a_direct_call_returns_to_available_afterwards() -> None:
    d = desk(queue(members=("1001",)), agents=("1001",))
    d.send(AgentPaused("1001", "lunch"))
    d.send(AgentCallStarted("1001", "d1"))
    assert d.send(AgentUnpaused("1001")) == []
    d.enqueue("c1")
    out = d.send(AgentCallEnded("1001", "d1"))
    assert offered(out) == [("c1", ("1001",))]


@pytest.mark.parametrize("was_paused", [False, True])
def test_logout_during_a_direct_call_happens_when_it_ends(was_paused: bool) -> None:
    d = desk(queue(members=("1001",)), agents=("1001",))
    if was_paused:
        d.send(AgentPaused("1001", "lunch"))
    d.send(AgentCallStarted("1001", "d1"))
    assert [type(c) for c in d.send(AgentLoggedOut("1001"))] == [EventDeferred]
    out = d.send(AgentCallEnded("1001", "d1"))
    assert [(c.new, c.reason) for c in only(out, AgentStateChanged)] == [(S.LOGGED_OUT, "logout")]


@pytest.mark.parametrize("request_", [AgentPaused("1001", "lunch"), AgentLoggedOut("1001")])
def test_pause_or_logout_while_ringing_during_a_direct_call(
    request_: AgentPaused | AgentLoggedOut,
) -> None:
    d = desk(queue(members=("1001", "1002")))
    d.enqueue("c1")
    d.send(AgentCallStarted("1001", "d1"))
    out = d.send(request_)
    assert [(c.call, c.agent) for c in only(out, CancelOffer)] == [("c1", "1001")]
    assert d.state("1001") is S.BUSY_DIRECT
    assert only(out, EventDeferred)
    assert offered(out) == [("c1", ("1002",))]
    d.send(AgentCallEnded("1001", "d1"))
    expected = S.PAUSED if isinstance(request_, AgentPaused) else S.LOGGED_OUT
    assert d.state("1001") is expected


def test_logout_in_wrap_up_during_a_direct_call_is_deferred() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=30), agents=("1001",))
    d.enqueue("c1")
    d.answer("c1", "1001")
    d.end("c1", "1001")
    d.send(AgentCallStarted("1001", "d1"))
    out = d.send(AgentLoggedOut("1001"))  # cuts wrap-up short, as without a direct call
    assert [c.new for c in only(out, AgentStateChanged)] == [S.BUSY_DIRECT]
    assert only(out, EventDeferred)
    d.send(AgentCallEnded("1001", "d1"))
    assert d.state("1001") is S.LOGGED_OUT


@pytest.mark.parametrize("paused", [False, True])
def test_login_during_a_direct_call_lands_in_busy_direct(paused: bool) -> None:
    d = desk(queue(members=("1001",)), agents=("1001",), login=False)
    assert d.send(AgentCallStarted("1001", "d1", "outbound")) == []
    out = d.send(AgentLoggedIn("1001", paused=paused, reason="setup"))
    assert [(c.old, c.new, c.call) for c in only(out, AgentStateChanged)] == [
        (S.LOGGED_OUT, S.BUSY_DIRECT, "d1")
    ]
    d.enqueue("c1")
    out = d.send(AgentCallEnded("1001", "d1"))
    assert d.state("1001") is (S.PAUSED if paused else S.RINGING)


def test_logged_out_agent_ending_a_direct_call_stays_logged_out() -> None:
    d = desk(queue(members=("1001",)), agents=("1001",), login=False)
    d.send(AgentCallStarted("1001", "d1"))
    assert d.send(AgentCallEnded("1001", "d1")) == []
    assert d.state("1001") is S.LOGGED_OUT


# ------------------------------------------------------------------ staffing


@pytest.mark.parametrize(
    ("paused", "join_when", "joins"),
    [
        (False, "staffed", True),  # will take calls again when the direct call ends
        (False, "available", False),  # but is not free now
        (True, "staffed", False),  # returns to the pause: does not staff the queue
    ],
)
def test_staffing_of_an_agent_on_a_direct_call(paused: bool, join_when: str, joins: bool) -> None:
    d = desk(queue(members=("1001",), join_when=join_when), agents=("1001",))
    if paused:
        d.send(AgentPaused("1001", "lunch"))
    d.send(AgentCallStarted("1001", "d1"))
    out = d.enqueue("c1")
    assert bool(only(out, CallJoinedQueue)) is joins
    if joins:
        assert d.engine.estimated_wait("c1") is not None


def test_pause_asked_on_a_direct_call_unstaffs_the_queue() -> None:
    d = desk(queue(members=("1001",), leave_when="unstaffed"), agents=("1001",))
    d.send(AgentCallStarted("1001", "d1"))
    d.enqueue("c1")
    out = d.send(AgentPaused("1001", "lunch"))
    assert [c.reason for c in only(out, CallLeftQueue)] == ["leave_empty"]


# ------------------------------------------------------------------ statistics


def test_direct_call_time_is_shown_apart_from_acd_talk_time() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=0), agents=("1001",))
    d.send(AgentCallStarted("1001", "d1", "outbound"), at=10)
    d.send(AgentCallEnded("1001", "d1"), at=70)
    d.enqueue("c1", at=80)
    d.answer("c1", "1001")
    snap = d.engine.stats.agent("1001", 100)
    assert snap.state is S.ON_CALL
    assert snap.direct_call_time_s == 60
    assert snap.time_by_state[S.BUSY_DIRECT] == 60
    assert snap.talk_time_s == 20
    assert snap.calls == 1
    assert snap.occupancy == pytest.approx(20 / (20 + 10 + 10))  # direct time is left out
    assert d.engine.agents["1001"].calls_answered == 1


@pytest.mark.parametrize(
    ("strategy", "first"),
    [
        ("fewest_calls", "1001"),  # no ACD call yet: the direct call is not counted
        ("least_talk_time", "1001"),  # no ACD talk time: 290 s on a direct call not counted
        ("longest_idle", "1002"),  # but the direct call did keep 1001 busy until 300
    ],
)
def test_strategies_do_not_count_direct_calls_as_acd_work(strategy: str, first: str) -> None:
    d = desk(queue(members=("1002", "1001"), strategy=strategy, wrap_up_s=0))
    d.send(AgentCallStarted("1001", "d1", "outbound"), at=1)
    d.enqueue("c1", at=2)
    d.answer("c1", "1002")
    d.send(CallEnded("c1", "1002"), at=12)
    d.send(AgentCallEnded("1001", "d1"), at=300)
    agent = d.engine.agents["1001"]
    assert (agent.calls_answered, agent.talk_time_s) == (0, 0)
    assert offered(d.enqueue("c2", at=301)) == [("c2", (first,))]
