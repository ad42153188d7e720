"""A config reload reaching the ACD engine (`ConfigChanged`): waiting callers and calls in
progress keep going, the new queues and agents take effect at once (invariants checked after
every step by the harness)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.acd.events import (
    AgentDeviceAvailable,
    AgentLoggedIn,
    AgentStateChanged,
    CallJoinedQueue,
    CallLeftQueue,
    CancelOffer,
    ConfigChanged,
    ConnectCall,
    EventRejected,
    Overflow,
)
from pbx.acd.model import AgentProfile, AgentState
from pbx.acd.schema import QueueConfig
from pbx.acd.strategies import STRATEGIES
from tests.unit.acd.acd_harness import desk, offered, only, queue
from tests.unit.acd.test_acd_properties import AGENTS, OPS, Phones, _drain, _step

S = AgentState


def changed(queues: list[QueueConfig], agents: tuple[str, ...] = ("1001", "1002", "1003"),
            targets: dict[str, str] | None = None,
            skills: dict[str, dict[str, int]] | None = None) -> ConfigChanged:
    profiles = tuple(AgentProfile(a, skills=(skills or {}).get(a, {})) for a in agents)
    return ConfigChanged(tuple(queues), profiles, {}, targets or {})


def test_a_new_member_is_offered_the_waiting_caller_at_once() -> None:
    d = desk(queue(members=["1001"]))
    d.answer(*offered(d.enqueue("c1"))[0][:1], "1001")  # 1001 talks to c1
    d.enqueue("c2")
    assert d.engine.waiting_calls()[0].call == "c2"
    out = d.send(changed([queue(members=["1001", "1002"])]))
    assert offered(out) == [("c2", ("1002",))]
    assert d.state("1001") is S.ON_CALL  # the call in progress goes on
    d.answer("c2", "1002")
    d.end("c1", "1001")
    assert d.state("1001") is S.AVAILABLE


def test_a_changed_strategy_and_ring_timeout_apply_to_the_waiting_caller() -> None:
    d = desk(queue(ring_timeout_s=10), login=False)
    d.send(AgentLoggedIn("1003"))
    d.enqueue("c1")
    d.send(changed([queue(ring_timeout_s=30, strategy="ring_all")]))
    out = d.send(AgentLoggedIn("1001")) + d.send(AgentLoggedIn("1002"))
    assert offered(out) == [("c1", ("1001",)), ("c1", ("1002",))]  # ring_all now
    assert set(d.engine.ringing("c1")) == {"1001", "1002", "1003"}
    out = d.advance(10)  # the old offer to 1003 times out under the old timer
    assert only(out, CancelOffer) == [CancelOffer("c1", "1003", "ring_timeout")]
    assert d.engine.next_deadline() == 30  # the new ring timeout of the new offers


def test_a_removed_queue_sends_its_callers_to_the_overflow_target() -> None:
    d = desk([queue(), queue("sales")], login=False)
    d.enqueue("c1", queue="sales")
    out = d.send(changed([queue()], targets={"sales": "queue:support"}))
    assert only(out, CallLeftQueue) == [CallLeftQueue("c1", "sales", "queue_removed", 0.0)]
    assert only(out, Overflow) == [Overflow("c1", "sales", "queue:support", "queue_removed")]
    assert "sales" not in d.engine.queues
    assert d.engine.stats.queues() == ["support"]


def test_a_removed_queue_without_target_keeps_its_caller_until_answered() -> None:
    d = desk([queue(), queue("sales", members=["1003"])], login=False)
    d.enqueue("c1", queue="sales")
    out = d.send(changed([queue()]))
    assert only(out, CallLeftQueue) == []
    assert [c.call for c in d.engine.waiting_calls()] == ["c1"]
    # nobody new joins the retired queue
    rejected = only(d.enqueue("c2", queue="sales"), EventRejected)
    assert rejected and "no queue" in rejected[0].reason
    out = d.send(AgentLoggedIn("1003"))  # its old member still serves it
    assert offered(out) == [("c1", ("1003",))]
    out = d.answer("c1", "1003")
    assert only(out, ConnectCall) == [ConnectCall("c1", "1003", "sales", 0.0)]
    assert "sales" not in d.engine.queues  # dropped with its last caller


def test_a_removed_agent_leaves_the_hunt_and_a_ringing_offer_moves_on() -> None:
    d = desk()
    out = d.enqueue("c1")
    assert offered(out) == [("c1", ("1001",))]
    out = d.send(changed([queue(members=["1002", "1003"])], agents=("1002", "1003")))
    assert CancelOffer("c1", "1001", "agent_logged_out") in only(out, CancelOffer)
    assert offered(out) == [("c1", ("1002",))]
    assert "1001" not in d.engine.agents
    assert [c.new for c in only(out, AgentStateChanged) if c.agent == "1001"] == [S.LOGGED_OUT]


def test_a_removed_agent_on_a_call_finishes_it_then_goes() -> None:
    d = desk(queue(wrap_up_s=5))
    d.enqueue("c1")
    d.answer("c1", "1001")
    d.send(changed([queue(members=["1002"], wrap_up_s=5)], agents=("1002", "1003")))
    assert d.state("1001") is S.ON_CALL
    d.enqueue("c2")
    assert d.engine.ringing("c2") == ("1002",)
    out = d.end("c1", "1001")
    assert [c.new for c in only(out, AgentStateChanged) if c.agent == "1001"] == [S.LOGGED_OUT]
    assert "1001" not in d.engine.agents
    d.advance(10)  # no wrap-up timer trips over the forgotten agent


def test_a_new_agent_starts_logged_out_and_new_skills_apply() -> None:
    d = desk(queue(skills={"french": 1}), agents=["1001"])
    d.enqueue("c1")
    assert d.engine.waiting_calls()[0].call == "c1"
    d.send(changed([queue(members=["1001", "1004"], skills={"french": 1})],
                   agents=("1001", "1004"), skills={"1004": {"french": 2}}))
    assert d.state("1004") is S.LOGGED_OUT
    d.send(AgentDeviceAvailable("1004"))  # the switchboard says when its phone registers
    out = d.send(AgentLoggedIn("1004"))
    assert offered(out) == [("c1", ("1004",))]
    out = d.send(changed([queue(members=["1001", "1004"], skills={"french": 1})],
                         agents=("1001", "1004"), skills={"1001": {"french": 1}}))
    joined = d.enqueue("c2")
    assert only(joined, CallJoinedQueue)
    assert offered(joined) == [("c2", ("1001",))]


# ------------------------------------------------------------------ random reloads among events

RELOAD_OPS = (*OPS, "reload", "reload", "reload")
STRATEGY_NAMES = sorted(STRATEGIES)


def _random_config(n: int, k: int, dt: int) -> ConfigChanged:
    # From three small numbers: which agents exist, which are members, the strategy, whether
    # the queue exists at all and where its callers go when it does not.
    agents = tuple(a for i, a in enumerate(AGENTS) if (n + 1) >> (i % 3) & 1 or i == k)
    members = [a if i % 2 else (a, i % 3) for i, a in enumerate(agents) if (dt >> i) & 1]
    queues = []
    if dt % 5:
        queues.append(queue(strategy=STRATEGY_NAMES[(n * 7 + dt) % len(STRATEGY_NAMES)],
                            members=members, wrap_up_s=dt % 2 * 5, retry_delay_s=k % 2 * 3,
                            ring_timeout_s=5 + dt % 10, max_wait_s=120, max_length=6,
                            auto_pause_after_misses=k % 2 or None))
    targets = {"support": "flow:goodbye"} if not queues and n % 2 else {}
    return ConfigChanged(tuple(queues), tuple(AgentProfile(a) for a in agents), {}, targets)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(
    st.tuples(st.sampled_from(RELOAD_OPS), st.integers(0, 7), st.integers(0, 3),
              st.integers(0, 25)),
    min_size=10, max_size=80))
def test_random_reloads_among_calls_keep_every_invariant(
    ops: list[tuple[str, int, int, int]],
) -> None:
    d = desk(queue(members=AGENTS, wrap_up_s=5, max_wait_s=120, ring_timeout_s=10),
             agents=AGENTS, seed=len(ops))
    phones = Phones(multi=True)
    for op, n, k, dt in ops:
        agent = AGENTS[k % len(AGENTS)]
        if op == "reload":
            phones.apply(d.send(_random_config(n, k, dt)))
            continue
        if op.startswith("direct") and agent not in d.engine.agents:
            continue  # the switch tells the ACD only about its agents' calls
        _step(d, phones, AGENTS, op, n, k, dt)
    # A last reload back to the full configuration, then time drains every queue.
    phones.apply(d.send(changed([queue(members=AGENTS, max_wait_s=120)], agents=AGENTS)))
    _drain(d, phones)
    assert set(d.engine.queues) == {"support"}
