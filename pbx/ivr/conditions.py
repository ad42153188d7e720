"""Evaluating `branch` conditions: variables, time of day, business hours, holidays (L2, pure).

Time comes in as `now` (seconds since the epoch) with the time zone the PBX runs the IVR in; a
schedule with its own `timezone` is evaluated in that zone. Nothing here reads a clock.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, tzinfo
from functools import lru_cache

from pbx.ivr.public_holidays import is_public_holiday
from pbx.ivr.schema import Condition, Schedule, TimeWindow, minutes_of


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The time zone `name` (checked when the configuration was loaded)."""
    return zoneinfo.ZoneInfo(name)


def local_time(now: float, tz: tzinfo, name: str | None = None) -> datetime:
    """`now` as a local date and time in the zone `name`, or else in `tz`."""
    return datetime.fromtimestamp(now, zone(name) if name else tz)


def in_window(window: TimeWindow, moment: datetime) -> bool:
    """Whether the local `moment` falls on one of the window's days, start <= t < end."""
    minute = moment.hour * 60 + moment.minute
    start, end = minutes_of(window.start), minutes_of(window.end)
    return moment.weekday() in window.days and start <= minute < end


def is_holiday(schedule: Schedule, moment: datetime) -> bool:
    """Whether the local `moment` falls on one of the company's dates or, when the schedule
    names a country, on one of its (and its subdivision's) public holidays."""
    day = moment.date()
    calendar = schedule.holidays
    if day.isoformat() in calendar.dates or day.strftime("%m-%d") in calendar.dates:
        return True
    if calendar.country is None:
        return False
    return is_public_holiday(calendar.country, calendar.subdivision, day)


def is_open(schedule: Schedule, now: float, tz: tzinfo) -> bool:
    """Within the schedule's hours and not on one of its holidays."""
    moment = local_time(now, tz, schedule.timezone)
    if is_holiday(schedule, moment):
        return False
    return any(in_window(window, moment) for window in schedule.hours)


def evaluate(
    condition: Condition,
    variables: Mapping[str, str],
    schedules: Mapping[str, Schedule],
    now: float,
    tz: tzinfo,
) -> bool:
    """Whether `condition` holds. Schedule names were checked when the flow was loaded."""
    if condition.var is not None:
        return _test_variable(condition, variables.get(condition.var))
    if condition.open_ is not None:
        return is_open(schedules[condition.open_], now, tz)
    if condition.holiday is not None:
        schedule = schedules[condition.holiday]
        return is_holiday(schedule, local_time(now, tz, schedule.timezone))
    if condition.time is not None:
        return in_window(condition.time, local_time(now, tz))
    if condition.all_ is not None:
        return all(evaluate(item, variables, schedules, now, tz) for item in condition.all_)
    if condition.any_ is not None:
        return any(evaluate(item, variables, schedules, now, tz) for item in condition.any_)
    if condition.not_ is not None:
        return not evaluate(condition.not_, variables, schedules, now, tz)
    raise AssertionError("validated: a condition has exactly one form")


def _test_variable(condition: Condition, value: str | None) -> bool:
    if condition.exists is not None:
        return (value is not None and value != "") == condition.exists
    if value is None:
        return condition.not_equals is not None
    if condition.equals is not None:
        return value == condition.equals
    if condition.not_equals is not None:
        return value != condition.not_equals
    if condition.in_ is not None:
        return value in condition.in_
    if condition.matches is not None:
        return re.fullmatch(condition.matches, value) is not None
    raise AssertionError("validated: a variable condition has exactly one test")
