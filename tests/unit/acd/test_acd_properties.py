"""Random event sequences against the engine (hypothesis): after every step the engine's own
invariants hold, and an independent model of the phones, built only from the commands, sees
no double offer, no ringing for a call that left, no connection without an offer, no offer to
a phone busy with a call the ACD did not route, and no agent shown available or paused while
on one."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.acd.events import (
    AcdCommand,
    AgentCallEnded,
    AgentCallStarted,
    AgentDeviceAvailable,
    AgentDeviceUnavailable,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentStateChanged,
    AgentUnpaused,
    CallAbandoned,
    CallEnded,
    CallExitKeyPressed,
    CallJoinedQueue,
    CallLeftQueue,
    CancelOffer,
    ConnectCall,
    OfferAnswered,
    OfferCall,
    OfferFailed,
)
from pbx.acd.model import AgentState
from pbx.acd.strategies import RING_MODES, STRATEGIES
from tests.unit.acd.acd_harness import Desk, desk, queue, statuses

AGENTS = ("1001", "1002", "1003", "1004")
CALLS = tuple(f"c{n}" for n in range(8))
OPS = (
    "enqueue",
    "enqueue",
    "enqueue",
    "abandon",
    "login",
    "logout",
    "pause",
    "unpause",
    "device_off",
    "device_on",
    "answer",
    "answer",
    "fail",
    "end",
    "end",
    "wait",
    "wait",
    "stale_answer",
    "exit",
    "direct_start",
    "direct_start",
    "direct_end",
    "direct_end",
)
DIRECTIONS = ("internal", "outbound", "consultation", "transfer")
FAILURES = ("busy", "no_answer", "rejected", "unavailable")


class Phones:
    """What the switch would see: which agent leg rings for which call, who talks to whom."""

    def __init__(self, multi: bool) -> None:
        self.multi = multi
        self.ringing: dict[str, str] = {}  # agent -> call
        self.talking: dict[str, str] = {}  # agent -> call
        self.direct: dict[str, set[str]] = {}  # agent -> calls the ACD did not route
        self.gone: set[str] = set()

    def apply(self, commands: list[AcdCommand]) -> None:
        for command in commands:
            if isinstance(command, OfferCall):
                assert command.call not in self.gone, f"offer for a call that left: {command}"
                if not self.multi:
                    assert len(command.agents) == 1
                    assert command.call not in self.ringing.values(), f"second ring: {command}"
                for agent in command.agents:
                    assert agent not in self.ringing, f"{agent} offered two calls"
                    assert agent not in self.talking, f"{agent} offered while talking"
                    assert not self.direct.get(agent), f"{agent} offered on a direct call"
                    self.ringing[agent] = command.call
            elif isinstance(command, CancelOffer):
                if command.reason == "stale_answer":
                    assert self.ringing.get(command.agent) != command.call
                else:
                    assert self.ringing.pop(command.agent) == command.call, command
            elif isinstance(command, ConnectCall):
                assert self.ringing.pop(command.agent) == command.call
                self.talking[command.agent] = command.call
            elif isinstance(command, AgentStateChanged):
                if self.direct.get(command.agent):
                    assert command.new not in (AgentState.AVAILABLE, AgentState.PAUSED), command
                else:
                    assert command.new is not AgentState.BUSY_DIRECT, command
            elif isinstance(command, CallLeftQueue):
                self.gone.add(command.call)
            elif isinstance(command, CallJoinedQueue):
                self.gone.discard(command.call)  # the same caller may queue again later
                for agent, call in list(self.talking.items()):
                    if call == command.call:
                        del self.talking[agent]  # transferred back into the queue
        # After a whole batch a call that left the queue rings nobody (no zombie offers).
        assert not set(self.ringing.values()) & self.gone

    def failed(self, agent: str) -> None:
        self.ringing.pop(agent, None)

    def ended(self, agent: str) -> None:
        self.talking.pop(agent, None)

    def direct_started(self, agent: str, call: str) -> None:
        self.direct.setdefault(agent, set()).add(call)

    def direct_ended(self, agent: str, call: str) -> None:
        self.direct.get(agent, set()).discard(call)


def _run(d: Desk, phones: Phones, event: Any) -> None:
    phones.apply(d.send(event))


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    wrap_up=st.sampled_from([0, 5]),
    retry=st.sampled_from([0, 3]),
    auto_pause=st.sampled_from([None, 1, 2]),
    escalate=st.booleans(),
    pinning=st.sampled_from(["any", "pinned_only"]),
    reserve=st.booleans(),
    ops=st.lists(
        st.tuples(st.sampled_from(OPS), st.integers(0, 7), st.integers(0, 3), st.integers(0, 25)),
        min_size=10,
        max_size=80,
    ),
)
def test_random_event_sequences_keep_every_invariant(
    strategy: str,
    wrap_up: int,
    retry: int,
    auto_pause: int | None,
    escalate: bool,
    pinning: str,
    reserve: bool,
    ops: list[tuple[str, int, int, int]],
) -> None:
    members = ("1001", ("1002", 1), "1003", ("1004", 2))
    q = queue(
        strategy=strategy,
        members=members,
        wrap_up_s=wrap_up,
        retry_delay_s=retry,
        ring_timeout_s=10,
        ring_progressively_step_s=4,
        auto_pause_after_misses=auto_pause,
        escalation=[{"after_s": 8, "max_penalty": 2}] if escalate else [],
        max_wait_s=120,
        max_length=6,
        exit_key="9",
        exit_target="flow:callback",
        announce={"position_every_s": 7, "ewt": True, "periodic_every_s": 11},
    )
    rules = statuses(
        vip={
            "priority": 5,
            "pinning": {
                "wait_for_pinned_s": 12,
                "fallback": pinning,
                "reserve_pinned_agent": reserve,
            },
        }
    )
    d = desk(q, agents=AGENTS, customer_statuses=rules, seed=len(ops))
    phones = Phones(multi=strategy in RING_MODES)
    for op, n, k, dt in ops:
        _step(d, phones, AGENTS, op, n, k, dt)
    _drain(d, phones)


DIRECT_OPS = (
    "direct_start",
    "direct_start",
    "direct_end",
    "direct_end",
    "login",
    "logout",
    "pause",
    "unpause",
    "enqueue",
    "enqueue",
    "answer",
    "end",
    "fail",
    "wait",
    "wait",
    "device_off",
    "device_on",
)


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    strategy=st.sampled_from(["linear", "ring_all", "fewest_calls", "least_talk_time"]),
    wrap_up=st.sampled_from([0, 5, 20]),
    auto_pause=st.sampled_from([None, 1]),
    leave_when=st.sampled_from(["never", "unstaffed"]),
    ops=st.lists(
        st.tuples(
            st.sampled_from(DIRECT_OPS), st.integers(0, 7), st.integers(0, 1), st.integers(0, 25)
        ),
        min_size=5,
        max_size=60,
    ),
)
def test_direct_calls_among_agent_requests_keep_every_invariant(
    strategy: str,
    wrap_up: int,
    auto_pause: int | None,
    leave_when: str,
    ops: list[tuple[str, int, int, int]],
) -> None:
    # Two seats, so that direct calls meet every agent state often: logins and pauses during
    # direct calls, rings and wrap-ups they outlast, reservations for pinned callers.
    agents = AGENTS[:2]
    q = queue(
        strategy=strategy,
        members=agents,
        wrap_up_s=wrap_up,
        retry_delay_s=3,
        ring_timeout_s=10,
        auto_pause_after_misses=auto_pause,
        leave_when=leave_when,
        max_wait_s=120,
    )
    rules = statuses(
        vip={"pinning": {"wait_for_pinned_s": 30, "reserve_pinned_agent": True}},
    )
    d = desk(q, agents=agents, customer_statuses=rules, seed=len(ops))
    phones = Phones(multi=strategy in RING_MODES)
    for op, n, k, dt in ops:
        _step(d, phones, agents, op, n, k, dt)
    _drain(d, phones)


def _step(
    d: Desk, phones: Phones, agents: tuple[str, ...], op: str, n: int, k: int, dt: int
) -> None:
    call, agent = CALLS[n], agents[k % len(agents)]
    ringing = sorted(phones.ringing.items())
    talking = sorted(phones.talking.items())
    if op == "enqueue":
        pins = (agent,) if n % 3 == 0 else ()
        status = "vip" if pins else "standard"
        _run(d, phones, _enqueue(call, pins, status, n))
    elif op == "abandon":
        _run(d, phones, CallAbandoned(call))
    elif op == "exit":
        _run(d, phones, CallExitKeyPressed(call, "9" if k % 2 else "1"))
    elif op == "login":
        _run(d, phones, AgentLoggedIn(agent, paused=n % 4 == 0))
    elif op == "logout":
        _run(d, phones, AgentLoggedOut(agent))
    elif op == "pause":
        _run(d, phones, AgentPaused(agent, "break"))
    elif op == "unpause":
        _run(d, phones, AgentUnpaused(agent))
    elif op == "device_off":
        _run(d, phones, AgentDeviceUnavailable(agent))
    elif op == "device_on":
        _run(d, phones, AgentDeviceAvailable(agent))
    elif op == "answer" and ringing:
        agent, call = ringing[n % len(ringing)]
        _run(d, phones, OfferAnswered(call, agent))
    elif op == "stale_answer":
        _run(d, phones, OfferAnswered(call, agent))
    elif op == "fail" and ringing:
        agent, call = ringing[n % len(ringing)]
        phones.failed(agent)
        _run(d, phones, OfferFailed(call, agent, FAILURES[k]))  # type: ignore[arg-type]
    elif op == "end" and talking:
        agent, call = talking[n % len(talking)]
        phones.ended(agent)
        _run(d, phones, CallEnded(call, agent))
    elif op == "direct_start":
        # A call the ACD did not route; sometimes a repeat, sometimes a second one.
        direct = f"d{n % 3}"
        phones.direct_started(agent, direct)
        _run(d, phones, AgentCallStarted(agent, direct, DIRECTIONS[dt % len(DIRECTIONS)]))
    elif op == "direct_end":
        direct = f"d{n % 3}"  # sometimes one that never started, or ended already
        phones.direct_ended(agent, direct)
        _run(d, phones, AgentCallEnded(agent, direct))
    elif op == "wait":
        phones.apply(d.advance(dt))
    _check_direct(d, phones)


def _drain(d: Desk, phones: Phones) -> None:
    # However it ended, time alone drains the queue (max_wait) and releases every ring.
    phones.apply(d.advance(1000))
    assert d.engine.waiting_calls() == []
    assert phones.ringing == {}
    # Once every direct call has ended nobody is left busy_direct.
    for agent, calls in sorted(phones.direct.items()):
        for direct in sorted(calls):
            phones.direct_ended(agent, direct)
            _run(d, phones, AgentCallEnded(agent, direct))
    _check_direct(d, phones)
    assert all(a.state is not AgentState.BUSY_DIRECT for a in d.engine.agents.values())


def _check_direct(d: Desk, phones: Phones) -> None:
    # The engine's view of the direct calls is the switch's, whatever came in between.
    for extension, agent in d.engine.agents.items():
        assert set(agent.direct_calls) == phones.direct.get(extension, set())


def _enqueue(call: str, pins: tuple[str, ...], status: str, n: int) -> Any:
    from pbx.acd.events import CallEnqueued
    from pbx.acd.model import QueuedCall

    return CallEnqueued(
        QueuedCall(
            call,
            "support",
            pinned_agents=pins,
            customer_status=status,
            priority=None if n % 2 else n,
        )
    )
