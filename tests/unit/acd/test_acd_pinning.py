"""VIP pinning with each rule, and tier escalation, with injected time."""

from __future__ import annotations

from pbx.acd.events import (
    AgentLoggedOut,
    AgentPaused,
    AgentStateChanged,
    AgentUnpaused,
    CallAbandoned,
    CallEnded,
    OfferFailed,
)
from pbx.acd.model import AgentState
from tests.unit.acd.acd_harness import Desk, desk, offered, only, queue, statuses

S = AgentState


def _vip_desk(wrap_up_s: float = 0, **pinning: object) -> Desk:
    rules = statuses(
        vip={"priority": 10, "pinning": pinning},
        standard={"priority": 0},
    )
    return desk(queue(wrap_up_s=wrap_up_s, ring_timeout_s=15), customer_statuses=rules)


def _busy(d: Desk, call: str, agent: str) -> None:
    """Put `agent` on a call `call` (whoever linear offers first is made busy elsewhere)."""
    d.enqueue(call)
    for _ in range(3):
        ringing = d.engine.ringing(call)
        if ringing == (agent,):
            d.answer(call, agent)
            return
        d.send(OfferFailed(call, ringing[0], "busy"))
    raise AssertionError(f"{agent} was never offered {call}")


def test_pinned_agent_free_is_offered_at_once_ahead_of_every_waiting_call() -> None:
    d = _vip_desk()
    for agent in ("1001", "1002"):
        d.send(AgentPaused(agent))
    _busy(d, "c0", "1003")
    d.enqueue("urgent", priority=50)  # higher priority than the VIP, but not pinned
    d.enqueue("vip", customer_status="vip", pinned_agents=("1002",))
    out = d.send(AgentUnpaused("1002"))
    assert offered(out) == [("vip", ("1002",))]


def test_pinned_call_skips_the_line_when_its_agent_frees_up() -> None:
    d = _vip_desk()
    _busy(d, "c0", "1001")
    _busy(d, "c1", "1002")
    _busy(d, "c2", "1003")
    d.enqueue("early", at=1)
    d.enqueue("vip", customer_status="vip", pinned_agents=("1003",), at=2)
    out = d.end("c2", "1003")
    assert offered(out) == [("vip", ("1003",))]


def test_wait_for_pinned_then_any_agent() -> None:
    d = _vip_desk(wait_for_pinned_s=30, fallback="any")
    _busy(d, "c0", "1001")
    out = d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    assert offered(out) == []  # 1002 and 1003 are free but the VIP waits for 1001
    assert offered(d.advance(29.9)) == []
    out = d.advance(0.1)
    assert offered(out) == [("vip", ("1002",))]


def test_wait_for_pinned_connects_when_the_pinned_agent_finishes_in_time() -> None:
    d = _vip_desk(wait_for_pinned_s=30)
    _busy(d, "c0", "1001")
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    out = d.send(CallEnded("c0", "1001"), at=20)
    assert offered(out) == [("vip", ("1001",))]


def test_pinned_only_never_goes_to_another_agent() -> None:
    d = _vip_desk(wait_for_pinned_s=10, fallback="pinned_only")
    _busy(d, "c0", "1001")
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    assert offered(d.advance(600)) == []
    out = d.end("c0", "1001")
    assert offered(out) == [("vip", ("1001",))]
    d.advance(15)  # the pinned agent does not answer: round over, retry, pinned again
    out = d.advance(5)
    assert offered(out) == [("vip", ("1001",))]


def test_no_waiting_for_a_pinned_agent_who_is_not_logged_in() -> None:
    d = _vip_desk(wait_for_pinned_s=60)
    d.send(AgentLoggedOut("1001"))
    out = d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    assert offered(out) == [("vip", ("1002",))]


def test_reserve_holds_the_pinned_agent_through_wrap_up() -> None:
    d = _vip_desk(wrap_up_s=20, wait_for_pinned_s=30, reserve_pinned_agent=True)
    _busy(d, "c0", "1001")
    _busy(d, "c1", "1002")
    _busy(d, "c2", "1003")
    d.enqueue("early")
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",), at=25)
    out = d.end("c0", "1001")
    changes = [(c.old, c.new) for c in only(out, AgentStateChanged) if c.agent == "1001"]
    assert changes == [(S.ON_CALL, S.WRAP_UP), (S.WRAP_UP, S.RESERVED)]
    assert d.state("1001") is S.RESERVED
    # The window (joined 25 + 30 = 55) passes while 1001 wraps up (until 45): still held.
    out = d.advance(20)
    assert offered(out) == [("vip", ("1001",))]
    assert d.state("1001") is S.RINGING


def test_reservation_outlives_the_window_and_other_agents() -> None:
    d = _vip_desk(wrap_up_s=40, wait_for_pinned_s=10, reserve_pinned_agent=True)
    _busy(d, "c0", "1001")
    d.send(AgentPaused("1002"))
    d.send(AgentPaused("1003"))
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    d.send(CallEnded("c0", "1001"), at=5)
    assert d.state("1001") is S.RESERVED
    out = d.send(AgentUnpaused("1002"), at=20)
    assert offered(out) == []  # reserved: the VIP waits for 1001's wrap-up (until 45)
    assert offered(d.advance_to(45)) == [("vip", ("1001",))]


def test_reservation_is_released_when_the_vip_hangs_up() -> None:
    d = _vip_desk(wrap_up_s=20, wait_for_pinned_s=30, reserve_pinned_agent=True)
    _busy(d, "c0", "1001")
    d.send(AgentPaused("1002"))
    d.send(AgentPaused("1003"))
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    d.end("c0", "1001")
    assert d.state("1001") is S.RESERVED
    out = d.send(CallAbandoned("vip"), at=5)
    assert [c.new for c in only(out, AgentStateChanged)] == [S.WRAP_UP]
    d.advance(15)
    assert d.state("1001") is S.AVAILABLE


def test_pause_releases_a_reservation_and_waits_for_the_wrap_up() -> None:
    d = _vip_desk(wrap_up_s=20, wait_for_pinned_s=30, reserve_pinned_agent=True)
    _busy(d, "c0", "1001")
    d.send(AgentPaused("1002"))
    d.send(AgentPaused("1003"))
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    d.end("c0", "1001")
    d.send(AgentPaused("1001", "lunch"), at=1)
    assert d.state("1001") is S.WRAP_UP
    d.advance(19)
    assert d.state("1001") is S.PAUSED


def test_without_reservation_the_wrapping_agent_is_not_held() -> None:
    d = _vip_desk(wrap_up_s=20, wait_for_pinned_s=30)
    _busy(d, "c0", "1001")
    d.enqueue("vip", customer_status="vip", pinned_agents=("1001",))
    d.end("c0", "1001")
    assert d.state("1001") is S.WRAP_UP


# ------------------------------------------------------------------ tier escalation


def _tiered(**settings: object) -> Desk:
    members = ("1001", ("1002", 1), ("1003", 2))
    return desk(queue(members=members, ring_timeout_s=100, **settings))


def test_escalation_widens_the_pool_after_waiting() -> None:
    steps = [{"after_s": 30, "max_penalty": 1}, {"after_s": 60, "max_penalty": 2}]
    d = _tiered(escalation=steps)
    _busy(d, "c0", "1001")
    out = d.enqueue("c1")
    assert offered(out) == []
    assert offered(d.advance(29)) == []
    assert offered(d.advance(1)) == [("c1", ("1002",))]


def test_escalation_reaches_the_last_tier() -> None:
    steps = [{"after_s": 30, "max_penalty": 1}, {"after_s": 60, "max_penalty": 2}]
    d = _tiered(escalation=steps)
    _busy(d, "c0", "1001")
    d.send(AgentPaused("1002"))
    d.enqueue("c1")
    assert offered(d.advance(59)) == []
    assert offered(d.advance(1)) == [("c1", ("1003",))]


def test_empty_tiers_are_skipped() -> None:
    d = _tiered(escalation=[{"after_s": 30, "max_penalty": 1}])
    d.send(AgentLoggedOut("1001"))
    assert offered(d.enqueue("c1")) == [("c1", ("1002",))]


def test_empty_tiers_are_waited_for_when_asked() -> None:
    d = _tiered(escalation=[{"after_s": 30, "max_penalty": 1}], skip_empty_tiers=False)
    d.send(AgentLoggedOut("1001"))
    assert offered(d.enqueue("c1")) == []


def test_without_escalation_penalties_only_order_the_hunt() -> None:
    d = _tiered()
    _busy(d, "c0", "1001")
    assert offered(d.enqueue("c1")) == [("c1", ("1002",))]


def test_pins_to_unknown_seats_are_dropped() -> None:
    d = _vip_desk(fallback="pinned_only")
    out = d.enqueue("vip", customer_status="vip", pinned_agents=("4711",))
    assert offered(out) == [("vip", ("1001",))]
