"""Queue and customer-status settings: defaults, field checks, consistency rules, and the checks
that span queues, statuses and agents."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pbx.acd.schema import CustomerStatusConfig, QueueConfig, check_acd_config


def _queue(**fields: Any) -> QueueConfig:
    return QueueConfig.model_validate({"name": "support", **fields})


def _violations(**fields: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        _queue(**fields)
    errors = caught.value.errors()
    out = []
    for error in errors:
        if error["type"] == "config_rules":
            out += list(error["ctx"]["violations"])
        else:
            out.append((tuple(error["loc"]), error["msg"]))
    return out


def test_defaults() -> None:
    q = _queue()
    assert (q.strategy, q.ring_timeout_s, q.retry_delay_s, q.wrap_up_s) == ("linear", 15, 5, 10)
    assert (q.max_wait_s, q.max_length, q.overflow) == (None, None, None)
    assert (q.join_when, q.leave_when, q.service_level_s) == ("always", "never", 20)
    assert q.announce.hold_program == "default" and q.announce.position_every_s is None
    assert q.members == () and q.escalation == () and q.max_penalty() == 0
    status = CustomerStatusConfig()
    assert (status.priority, status.pinning.wait_for_pinned_s, status.pinning.fallback) == (
        0,
        0,
        "any",
    )
    assert status.pinning.reserve_pinned_agent is False


def test_a_full_queue() -> None:
    q = _queue(
        strategy="ring_progressively",
        members=[{"agent": "1001"}, {"agent": "1002", "penalty": 2}],
        escalation=[{"after_s": 30, "max_penalty": 1}, {"after_s": 90, "max_penalty": 2}],
        overflow="agent:1009",
        exit_key="#",
        exit_target="flow:callback",
        announce={"position_every_s": 45, "ewt": True, "periodic_prompts": ["de/ad-1"]},
        auto_pause_after_misses=3,
        max_length=50,
    )
    assert q.max_penalty() == 2 and q.members[1].penalty == 2


def test_frozen_and_strict() -> None:
    q = _queue()
    with pytest.raises(ValidationError):
        q.ring_timeout_s = 3  # type: ignore[misc]
    assert _violations(ringtimeout=5)[0][0] == ("ringtimeout",)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"strategy": "rrmemory"}, ("strategy",)),
        ({"ring_timeout_s": 0}, ("ring_timeout_s",)),
        ({"overflow": "voicemail"}, ("overflow",)),
        ({"overflow": "agent:abc"}, ("overflow",)),
        ({"members": [{"agent": "10a"}]}, ("members", 0, "agent")),
        ({"members": [{"agent": "1001", "penalty": -1}]}, ("members", 0, "penalty")),
        ({"exit_key": "x", "exit_target": "flow:a"}, ("exit_key",)),
        ({"name": "no spaces"}, ("name",)),
    ],
)
def test_field_checks(fields: dict[str, Any], where: tuple[Any, ...]) -> None:
    assert [loc for loc, _ in _violations(**fields)] == [where]


def test_consistency_rules_are_reported_together() -> None:
    found = dict(
        _violations(
            members=[{"agent": "1001"}, {"agent": "1001"}],
            escalation=[{"after_s": 30, "max_penalty": 2}, {"after_s": 20, "max_penalty": 1}],
            exit_key="9",
            overflow="queue:support",
        )
    )
    assert found == {
        ("members", 1, "agent"): "agent '1001' is already members[0]",
        ("escalation", 1, "after_s"): "20.0 is not after the step before",
        ("escalation", 1, "max_penalty"): "1 does not widen the pool (already 2)",
        ("exit_target",): "required when exit_key is set",
        ("overflow",): "a queue cannot overflow into itself",
    }


def test_escalation_must_widen_beyond_the_start() -> None:
    found = dict(_violations(start_max_penalty=2, escalation=[{"after_s": 5, "max_penalty": 1}]))
    assert list(found) == [("escalation", 0, "max_penalty")]


def test_exit_target_without_key() -> None:
    found = dict(_violations(exit_target="flow:x"))
    assert found == {("exit_key",): "required when exit_target is set"}


def test_checks_across_queues_statuses_and_agents() -> None:
    queues = [
        _queue(members=[{"agent": "1001"}, {"agent": "1999"}], overflow="queue:nowhere"),
        QueueConfig.model_validate(
            {
                "name": "support",
                "overflow": "agent:1998",
                "exit_key": "0",
                "exit_target": "queue:support",
            }
        ),
    ]
    statuses = {"vip": CustomerStatusConfig(), "bad name": CustomerStatusConfig()}
    found = dict(check_acd_config(queues, statuses, ["1001"]))
    assert found == {
        ("queues", 1, "name"): "duplicate name 'support' (first at queues[0])",
        ("queues", 0, "overflow"): "no queue named 'nowhere'",
        ("queues", 0, "members", 1, "agent"): "no agent with extension '1999'",
        ("queues", 1, "overflow"): "no agent with extension '1998'",
        ("customer_statuses", "bad name"): "'bad name' is not a name",
    }
    assert check_acd_config(queues[:1], {}, None) == [
        (("queues", 0, "overflow"), "no queue named 'nowhere'")
    ]


def test_status_priority_bounds() -> None:
    with pytest.raises(ValidationError):
        CustomerStatusConfig(priority=1000)
    with pytest.raises(ValidationError):
        CustomerStatusConfig.model_validate({"pinning": {"fallback": "nobody"}})
