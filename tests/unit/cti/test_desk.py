"""The desk: who receives which event, pops per viewer, wrap-up, queue figures, housekeeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pbx.cti.auth import Session
from pbx.cti.control import ControlRefused, QueueStatus
from pbx.cti.desk import CLIENT_QUEUE_SIZE, ENDED_CALL_KEEP_S, CtiDesk, DeskClient
from tests.unit.cti.fakes import FakeAgentControl, FakeCallControl, FakeClock, config, customer

CONFIG = config()


def session(extension: str) -> Session:
    agent = CONFIG.agent(extension)
    assert agent is not None
    return Session(f"hash-{extension}", "csrf", extension, agent.name, agent.role,
                   tuple(agent.groups), 0.0, 1e12)


def make_desk(clock: FakeClock | None = None, **options: Any) -> CtiDesk:
    return CtiDesk(CONFIG, FakeCallControl(), FakeAgentControl(), clock=clock or FakeClock(),
                   **options)


def drain(client: DeskClient) -> list[dict[str, Any]]:
    out = []
    while not client.queue.empty():
        message = client.queue.get_nowait()
        assert message is not None
        out.append(message)
    return out


def run(body: Callable[[CtiDesk, dict[str, DeskClient]], Any], desk: CtiDesk | None = None) -> Any:
    """Run `body` with clients for 1001 (agent), 1002 (agent), 1003 (supervisor)."""
    desk = desk or make_desk()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        clients = {ext: desk.connect(session(ext), loop) for ext in ("1001", "1002", "1003")}
        result = body(desk, clients)
        await asyncio.sleep(0)  # deliver what call_soon_threadsafe scheduled
        return result, {ext: drain(client) for ext, client in clients.items()}

    return asyncio.run(main())


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def test_an_agent_gets_only_its_own_calls_and_a_supervisor_all() -> None:
    def body(desk: CtiDesk, clients: dict[str, DeskClient]) -> None:
        desk.on_call_queued("c1", "billing", caller="+4930111222", at=1.0)
        desk.on_call_presented("c1", "1001", {"concern": "invoice"}, customer())
        desk.on_call_answered("c1", "1001")
        desk.on_call_held("c1")
        desk.on_call_resumed("c1")
        desk.on_call_ended("c1", "normal")

    _, got = run(body)
    assert types(got["1001"]) == ["offered", "answered", "held", "resumed", "ended"]
    assert got["1002"] == []
    assert types(got["1003"]) == ["queued", "offered", "answered", "held", "resumed", "ended"]


def test_the_pop_is_rendered_with_each_viewers_permissions() -> None:
    def body(desk: CtiDesk, clients: dict[str, DeskClient]) -> None:
        desk.on_call_presented("c1", "1001", {"concern": "invoice"}, customer(), queue="q")

    _, got = run(body)
    anna = {f["name"]: f for f in got["1001"][0]["pop"]["form"]["fields"]}
    clara = {f["name"]: f for f in got["1003"][0]["pop"]["form"]["fields"]}
    assert "secret" not in anna and clara["secret"]["value"] == "s3cret"
    assert anna["concern"] == anna["concern"] | {"value": "invoice", "access": "read_write"}
    assert clara["name"]["access"] == "read_write" and anna["name"]["access"] == "read_only"
    assert got["1001"][0]["pop"]["customer_no"] == "100001"


def test_agent_state_and_wrap_up_events() -> None:
    def body(desk: CtiDesk, clients: dict[str, DeskClient]) -> None:
        desk.on_agent_state("1001", "available", "login")
        desk.on_agent_state("1001", "on_call", "answered", call="c1", queue="q")
        desk.on_agent_state("1001", "wrap_up", "call_ended", call="c1", queue="q")
        desk.on_agent_state("1001", "available", "wrap_up_done", call="c1")
        desk.on_agent_state("1099", "available")  # unknown: dropped
        desk.on_agent_device("1002", True)
        desk.on_agent_device("1002", True)  # no change: no event

    _, got = run(body)
    assert types(got["1001"]) == ["agent_state", "agent_state", "agent_state",
                                  "wrapup_started", "agent_state", "wrapup_ended"]
    assert got["1001"][3]["call_id"] == "c1"
    assert types(got["1002"]) == ["agent_state"]
    assert got["1002"][0]["agent"]["device_available"] is True
    assert len(got["1003"]) == 7


def test_transfer_to_another_agent_moves_the_call() -> None:
    def body(desk: CtiDesk, clients: dict[str, DeskClient]) -> None:
        desk.on_call_presented("c1", "1001", {}, None)
        desk.on_call_answered("c1")
        desk.on_call_transferred("c1", "agent:1002", agent="1002")

    result, got = run(body)
    assert types(got["1001"]) == ["offered", "answered", "transferred"]
    assert types(got["1002"]) == ["offered"]
    assert types(got["1003"]) == ["offered", "answered", "transferred"]


def test_cancelled_offer_leaves_the_agents_view() -> None:
    def body(desk: CtiDesk, clients: dict[str, DeskClient]) -> list[str]:
        desk.on_call_queued("c1", "q")
        desk.on_call_presented("c1", "1001", {}, None)
        desk.on_offer_cancelled("c1", "1002")  # not this agent's offer: ignored
        desk.on_offer_cancelled("c1", "1001", "ring_timeout")
        return [c.call_id for c in desk.calls_for(session("1001"))]

    visible, got = run(body)
    assert visible == []
    assert types(got["1001"]) == ["offered", "offer_cancelled"]


def test_visibility_and_request_checks() -> None:
    desk = make_desk()
    desk.on_call_presented("c1", "1001", {}, None)
    assert desk.visible_call(session("1001"), "c1").call_id == "c1"
    assert desk.visible_call(session("1003"), "c1").agent == "1001"
    for call_id, who in (("c1", "1002"), ("nope", "1003")):
        with pytest.raises(ControlRefused) as caught:
            desk.visible_call(session(who), call_id)
        assert caught.value.status == 404
    with pytest.raises(ControlRefused) as caught:
        desk.check_state(desk.calls["c1"], ("connected",), "hold")
    assert caught.value.status == 409 and "offered" in caught.value.message
    desk.may_act_for(session("1003"), "1001")
    with pytest.raises(ControlRefused):
        desk.may_act_for(session("1002"), "1001")
    with pytest.raises(ControlRefused):
        desk.may_act_for(session("1003"), "1099")


def test_queue_figures_without_a_source() -> None:
    clock = FakeClock(1000.0)
    desk = make_desk(clock)
    desk.on_call_queued("a", "billing", at=1000.0)
    desk.on_call_queued("b", "billing", at=1005.0)
    desk.on_call_queued("c", "tech", at=1006.0)
    clock.now = 1010.0
    desk.on_call_presented("a", "1001", {}, None)
    desk.on_call_answered("a")  # waited 10 s: within the 20 s service level
    desk.on_call_ended("c", "abandoned")
    clock.now = 1030.0
    figures = {q.name: q for q in desk.queue_list()}
    assert figures["billing"] == QueueStatus("billing", waiting=1, longest_wait_s=25.0,
                                             answered=1, abandoned=0, service_level=1.0)
    assert figures["tech"].abandoned == 1 and figures["tech"].service_level == 0.0
    assert desk.calls_per_interval() == [{"start": 960.0, "calls": 3}]
    board: dict[str, Any] = desk.wallboard()
    # every configured queue, also one without a call yet (matrix)
    assert [q["name"] for q in board["queues"]] == ["billing", "matrix", "tech"]
    assert board["queues"][1]["waiting"] == 0 and board["queues"][1]["service_level"] is None
    assert {a["extension"] for a in board["agents"]} == {"1001", "1002", "1003", "1004"}
    assert [c["call_id"] for c in board["calls"]] == ["a", "b"]


def test_calls_per_interval_buckets() -> None:
    desk = make_desk()
    for at in (60.0, 61.0, 119.9, 120.0, 300.0):
        desk.on_call_queued(f"c{at}", "q", at=at)
    assert desk.calls_per_interval() == [
        {"start": 60.0, "calls": 3}, {"start": 120.0, "calls": 1}, {"start": 300.0, "calls": 1}
    ]


def test_queue_source_wins_when_wired() -> None:
    class Source:
        def queue_status(self) -> list[QueueStatus]:
            return [QueueStatus("vip", waiting=3, longest_wait_s=12.0)]

    desk = make_desk(queue_status=Source())
    desk.on_call_queued("a", "billing")
    assert [q.name for q in desk.queue_list()] == ["vip"]


def test_ended_calls_are_forgotten_after_a_while() -> None:
    clock = FakeClock(1000.0)
    desk = make_desk(clock)
    desk.on_call_presented("old", "1001", {}, None)
    desk.on_call_ended("old")
    clock.now += ENDED_CALL_KEEP_S + 1
    desk.on_call_presented("new", "1001", {}, None)
    desk.on_call_ended("new")
    assert list(desk.calls) == ["new"]
    desk.on_call_ended("new")  # twice: ignored
    desk.on_call_answered("unknown")  # unknown calls are dropped, never raise


def test_a_client_that_does_not_read_is_cut_off() -> None:
    def body(desk: CtiDesk, clients: dict[str, DeskClient]) -> None:
        for n in range(CLIENT_QUEUE_SIZE + 5):
            desk.on_agent_state("1001", "paused", f"r{n}")

    desk = make_desk()

    async def main() -> DeskClient:
        client = desk.connect(session("1001"), asyncio.get_running_loop())
        body(desk, {})
        await asyncio.sleep(0)
        return client

    client = asyncio.run(main())
    assert client.overflowed
    assert client.queue.qsize() == CLIENT_QUEUE_SIZE
    items = [client.queue.get_nowait() for _ in range(CLIENT_QUEUE_SIZE)]
    assert items[-1] is None  # the sentinel that ends the connection


def test_snapshot_for_agent_and_supervisor() -> None:
    desk = make_desk()
    desk.on_call_presented("c1", "1001", {}, customer())
    desk.on_call_presented("c2", "1002", {}, None)
    anna: dict[str, Any] = desk.snapshot_for(session("1001"))
    assert [a["extension"] for a in anna["agents"]] == ["1001"]
    assert [c["call"]["call_id"] for c in anna["calls"]] == ["c1"]
    clara: dict[str, Any] = desk.snapshot_for(session("1003"))
    assert len(clara["calls"]) == 2 and len(clara["agents"]) == 4


def test_who_listens_in_is_told_to_supervisors_only_and_ends_with_the_call() -> None:
    def body(desk: CtiDesk, clients: dict[str, DeskClient]) -> dict[str, object]:
        desk.on_call_presented("c1", "1001", {}, None)
        desk.on_call_answered("c1", "1001")
        desk.on_call_monitored("c1", "1003", "listen", ringing=True)
        desk.on_call_monitored("c1", "1003", "whisper")
        watching = dict(desk.wallboard()["monitors"])  # type: ignore[call-overload]
        desk.on_call_ended("c1", "normal")
        return watching

    desk = make_desk()
    watching, got = run(body, desk)
    assert watching == {"c1": {"supervisor": "1003", "mode": "whisper", "ringing": False}}
    assert desk.monitors == {}
    assert "monitor" not in types(got["1001"]) and got["1002"] == []
    monitors = [m for m in got["1003"] if m["type"] == "monitor"]
    assert [(m["mode"], m["ringing"]) for m in monitors] == [("listen", True), ("whisper", False)]
