"""Reports from stored 15-minute intervals: the request's range (and what is wrong with a bad
one), periods of an hour or a day in the report's time zone across a DST change, and the
figures (ASA, AHT, service level, occupancy, pause time by reason)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest

from pbx.acd.interval_report import (
    MAX_PERIODS,
    ReportRange,
    ReportRequestError,
    agent_figures,
    agent_lines,
    parse_range,
    queue_figures,
    queue_lines,
)
from pbx.acd.intervals import AgentInterval, QueueInterval

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 4, 15, 7, tzinfo=UTC).timestamp()  # 16:07 in Berlin


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_defaults_are_today_in_the_zone_until_now_in_one_total() -> None:
    report = parse_range(None, None, None, BERLIN, NOW)
    assert report.start == at("2026-12-04T00:00:00+01:00") and report.end == NOW
    assert report.interval == "total"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-04", "2026-12-04T00:00:00+01:00"),  # a date: midnight in the zone
    ("2026-12-04T08:00", "2026-12-04T08:00:00+01:00"),  # no zone: the report's
    ("2026-12-04T08:00:00Z", "2026-12-04T08:00:00+00:00"),
    ("2026-07-01T08:00:00+02:00", "2026-07-01T08:00:00+02:00"),
    ("2026-12-04T08:07:30+01:00", "2026-12-04T08:00:00+01:00"),  # back to its quarter hour
])
def test_from_is_read_in_the_zone_and_aligned(text: str, expected: str) -> None:
    assert parse_range(text, "2027-01-01", "hour", BERLIN, NOW).start == at(expected)


def test_call_records_keep_the_exact_from() -> None:
    report = parse_range("2026-12-04T08:07:30", "2026-12-05", None, BERLIN, NOW, align=False)
    assert report.start == at("2026-12-04T08:07:30+01:00")


@pytest.mark.parametrize(("args", "message"), [
    (("yesterday", None, None), "'from' is not an ISO 8601 date"),
    ((None, "2026-02-30", None), "'to' is not an ISO 8601 date"),
    (("2026-12-05", "2026-12-04", None), "'from' (2026-12-05T00:00:00+01:00) must be before "
                                         "'to' (2026-12-04T00:00:00+01:00)"),
    (("2026-12-04", "2026-12-04", None), "must be before"),
    ((None, None, "week"), "'interval' must be one of 15m, hour, day, total, not 'week'"),
    (("2020-01-01", "2026-01-01", "15m"), f"are too many (at most {MAX_PERIODS})"),
])
def test_bad_requests_say_what_is_wrong(args: tuple[str | None, ...], message: str) -> None:
    with pytest.raises(ReportRequestError) as caught:
        parse_range(*args, BERLIN, NOW)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_a_long_range_is_fine_in_days_or_in_total() -> None:
    assert parse_range("2020-01-01", "2026-01-01", "day", BERLIN, NOW).interval == "day"
    assert parse_range("2000-01-01", "2026-01-01", "total", BERLIN, NOW).interval == "total"


def test_hours_and_days_follow_the_zone_across_the_end_of_summer_time() -> None:
    # 2026-10-25: clocks go back from 03:00 CEST to 02:00 CET; the day has 25 hours.
    report = parse_range("2026-10-24T23:00", "2026-10-26", "day", BERLIN, NOW)
    starts = range(int(at("2026-10-24T23:00:00+02:00")), int(at("2026-10-26T00:00:00+01:00")),
                   900)
    rows = [(start, "support", QueueInterval(offered=1)) for start in starts]
    days = queue_lines(rows, report)
    assert [(line.period_start, line.period_end, line.sums.offered) for line in days] == [
        (at("2026-10-24T00:00:00+02:00"), at("2026-10-25T00:00:00+02:00"), 4),
        (at("2026-10-25T00:00:00+02:00"), at("2026-10-26T00:00:00+01:00"), 25 * 4),
    ]
    hours = queue_lines(rows, ReportRange(report.start, report.end, "hour", BERLIN))
    assert len(hours) == 26 and all(line.sums.offered == 4 for line in hours)
    repeated = [line for line in hours if datetime.fromtimestamp(line.period_start, BERLIN)
                .strftime("%H") == "02"]
    assert len(repeated) == 2  # 02:00 CEST and 02:00 CET are two hours
    assert len(queue_lines(rows, ReportRange(report.start, report.end, "15m", BERLIN))) == 104


def test_half_hour_zones_get_their_own_hours() -> None:
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")  # +05:30
    report = parse_range("2026-12-04T10:00", "2026-12-04T12:00", "hour", kolkata, NOW)
    rows = [(int(at("2026-12-04T10:45:00+05:30")), "q", QueueInterval(offered=1)),
            (int(at("2026-12-04T11:00:00+05:30")), "q", QueueInterval(offered=2))]
    assert [(line.period_start, line.sums.offered) for line in queue_lines(rows, report)] == [
        (at("2026-12-04T10:00:00+05:30"), 1), (at("2026-12-04T11:00:00+05:30"), 2)]


def test_queue_figures() -> None:
    report = parse_range("2026-12-04", "2026-12-05", "total", BERLIN, NOW)
    rows = [(0, "support", QueueInterval(offered=6, answered=3, abandoned=1, overflowed=1,
                                         answered_in_sl=2, wait_answered_s=30.0,
                                         wait_abandoned_s=12.0, handled=2, handle_s=400.0)),
            (900, "support", QueueInterval(offered=1, answered=1, answered_in_sl=1,
                                           wait_answered_s=10.0)),
            (0, "empty", QueueInterval())]
    [line] = queue_lines(rows, report)
    assert (line.period_start, line.period_end) == (report.start, report.end)
    assert queue_figures(line) == {
        "queue": "support", "offered": 7, "answered": 4, "abandoned": 1, "overflowed": 1,
        "answered_in_sl": 3, "service_level": 0.5, "abandon_rate": round(1 / 6, 4),
        "asa_s": 10.0, "aht_s": 200.0, "avg_abandon_wait_s": 12.0, "handled": 2,
    }


def test_agent_figures_with_nothing_to_divide_by() -> None:
    report = parse_range("2026-12-04", "2026-12-05", "total", BERLIN, NOW)
    [line] = agent_lines([(0, "1001", AgentInterval(paused_s=60.0, pauses={"lunch": 60.0}))],
                         report)
    figures = agent_figures(line)
    assert figures["occupancy"] is None and figures["aht_s"] is None
    assert figures["pause_by_reason"] == {"lunch": 60.0}


def test_agent_figures() -> None:
    report = parse_range("2026-12-04", "2026-12-05", "total", BERLIN, NOW)
    sums = AgentInterval(offers=3, missed=1, calls=2, handled=2, handle_s=300.0, talk_s=240.0,
                         wrap_up_s=60.0, ready_s=500.0, ringing_s=100.0, paused_s=90.0,
                         pauses={"lunch": 60.0, "break": 30.0})
    [line] = agent_lines([(0, "1001", sums)], report)
    figures = agent_figures(line)
    assert figures | {"calls": 2, "missed": 1, "aht_s": 150.0, "occupancy": 0.3333,
                      "pause_by_reason": {"break": 30.0, "lunch": 60.0}} == figures
    # pause codes flagged productive (cti.pause_codes) are summed apart
    split = agent_figures(line, frozenset({"lunch", "training"}))
    assert (split["paused_productive_s"], split["paused_unproductive_s"]) == (60.0, 30.0)
    assert (figures["paused_productive_s"], figures["paused_unproductive_s"]) == (0.0, 90.0)
