"""The branch node: variable tests, time of day, business hours and holidays (no clock reads)."""

from __future__ import annotations

from datetime import UTC

import pytest

from pbx.ivr.conditions import evaluate, is_open
from pbx.ivr.schema import Condition, Schedule
from tests.unit.ivr.ivr_driver import BERLIN, Caller, at

HOURS = """
start: check
timezone: Europe/Berlin
schedules:
  hotline:
    hours:
      - {days: mon-fri, start: "08:00", end: "18:00"}
      - {days: sat, start: "10:00", end: "14:00"}
    holidays: ["12-25", 2026-04-03]
nodes:
  check:
    type: branch
    cases: [{when: {open: hotline}, next: open}]
    default: closed
  open: {type: hangup, cause: open}
  closed: {type: hangup, prompt: de/closed, cause: closed}
"""

SCHEDULE = Schedule.model_validate(
    {
        "hours": [{"days": "mon-fri", "start": "08:00", "end": "18:00"}],
        "holidays": ["12-25", "2026-04-03"],
    }
)


def branch_to(now: float) -> str | None:
    caller = Caller(HOURS, now=now)
    caller.start()
    caller.play_all()
    return caller.session.path[-1]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(2026, 3, 10, 10, 0), "open"),  # Tuesday morning
        (at(2026, 3, 10, 7, 59), "closed"),  # before opening
        (at(2026, 3, 10, 18, 0), "closed"),  # the end is exclusive
        (at(2026, 3, 14, 11, 0), "open"),  # Saturday hours
        (at(2026, 3, 14, 15, 0), "closed"),
        (at(2026, 3, 15, 11, 0), "closed"),  # Sunday
        (at(2026, 4, 3, 10, 0), "closed"),  # Good Friday 2026: a dated holiday
        (at(2026, 12, 25, 10, 0), "closed"),  # Christmas, every year ("12-25")
        (at(2027, 12, 24, 10, 0), "open"),  # Christmas Eve 2027 is a Friday, not a holiday
    ],
)
def test_business_hours_and_holidays(when: float, expected: str) -> None:
    assert branch_to(when) == expected


def test_schedule_time_zone_overrides_the_runner_time_zone() -> None:
    new_york = SCHEDULE.model_copy(update={"timezone": "America/New_York"})
    moment = at(2026, 3, 10, 15, 0)  # 15:00 in Berlin is 10:00 in New York
    assert is_open(SCHEDULE, moment, BERLIN)
    assert is_open(new_york, moment, BERLIN)
    late = at(2026, 3, 10, 17, 30)  # 12:30 in New York: open there, open in Berlin
    evening = at(2026, 3, 10, 23, 30)  # 18:30 in New York: closed
    assert is_open(new_york, late, BERLIN)
    assert not is_open(new_york, evening, UTC)


def test_runner_time_zone_applies_without_a_schedule_zone() -> None:
    moment = at(2026, 3, 10, 8, 30)  # 07:30 UTC
    assert is_open(SCHEDULE, moment, BERLIN)
    assert not is_open(SCHEDULE, moment, UTC)


VARIABLES = {"status": "gold", "concern": "billing", "customer_no": "100004", "empty": ""}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"var": "status", "equals": "gold"}, True),
        ({"var": "status", "equals": "vip"}, False),
        ({"var": "status", "not_equals": "vip"}, True),
        ({"var": "missing", "not_equals": "vip"}, True),
        ({"var": "missing", "equals": "vip"}, False),
        ({"var": "status", "in": ["vip", "gold"]}, True),
        ({"var": "customer_no", "matches": "1[0-9]{5}"}, True),
        ({"var": "customer_no", "matches": "1000"}, False),  # the whole value must match
        ({"var": "status", "exists": True}, True),
        ({"var": "empty", "exists": True}, False),
        ({"var": "missing", "exists": False}, True),
        ({"all": [{"var": "status", "equals": "gold"}, {"var": "concern", "equals": "x"}]}, False),
        ({"any": [{"var": "status", "equals": "gold"}, {"var": "concern", "equals": "x"}]}, True),
        ({"not": {"var": "status", "equals": "gold"}}, False),
        ({"time": {"days": "tue", "start": "09:00", "end": "11:00"}}, True),
        ({"time": {"days": "wed", "start": "09:00", "end": "11:00"}}, False),
        ({"time": {"start": "12:00", "end": "13:00"}}, False),
        ({"open": "hotline"}, True),
        ({"holiday": "hotline"}, False),
    ],
)
def test_conditions(condition: dict[str, object], holds: bool) -> None:
    parsed = Condition.model_validate(condition)
    assert evaluate(parsed, VARIABLES, {"hotline": SCHEDULE}, at(2026, 3, 10, 10), BERLIN) is holds


def test_holiday_condition() -> None:
    parsed = Condition.model_validate({"holiday": "hotline"})
    schedules = {"hotline": SCHEDULE}
    assert evaluate(parsed, {}, schedules, at(2030, 12, 25, 3, 0), BERLIN)
    assert not evaluate(parsed, {}, schedules, at(2030, 12, 26, 3, 0), BERLIN)


def test_branch_on_customer_status_in_a_flow() -> None:
    flow = """
start: route
nodes:
  route:
    type: branch
    cases:
      - {when: {var: customer.status, equals: vip}, next: vip}
      - {when: {var: customer.status, in: [gold, silver]}, next: gold}
    default: normal
  vip: {type: hangup, cause: vip}
  gold: {type: hangup, cause: gold}
  normal: {type: hangup, cause: normal}
"""
    for status, expected in (("vip", "vip"), ("silver", "gold"), ("standard", "normal")):
        caller = Caller(flow, {"customer.status": status})
        caller.start()
        assert caller.session.path == ("route", expected)


def test_flow_time_zone_overrides_the_runner_time_zone() -> None:
    flow = """
start: check
timezone: UTC
nodes:
  check:
    type: branch
    cases: [{when: {time: {start: "07:00", end: "08:00"}}, next: early}]
    default: late
  early: {type: hangup}
  late: {type: hangup}
"""
    caller = Caller(flow, now=at(2026, 3, 10, 8, 30))  # 07:30 UTC; the runner's zone is Berlin
    caller.start()
    assert caller.session.path == ("check", "early")
