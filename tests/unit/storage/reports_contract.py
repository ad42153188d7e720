"""Storage behaviour of records and reports every backend must show (SQLite here, PostgreSQL
in tests/integration/test_postgres_storage.py, through `storage_contract.CHECKS`): the agent's
disposition written into the CDR after the call, CDR filters and paging, and interval
statistics added up by upsert."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime

from pbx.acd.interval_report import (
    ReportRange,
    Segment,
    agent_lines,
    parse_range,
    queue_lines,
    segments,
)
from pbx.acd.intervals import AgentInterval, IntervalDeltas, QueueInterval
from pbx.repositories import AgentDisposition, CallDetailRecord
from pbx.storage import Database
from pbx.storage.cdr import CdrFilter

NOW = 1_700_000_100.0  # inside the interval starting at 1_700_000_100 - 100


def _cdr(call_id: str, started: float, **fields: object) -> CallDetailRecord:
    values: dict[str, object] = {
        "call_id": call_id, "direction": "inbound", "caller": "+4930111", "callee": "1001",
        "started_at": started, "answered_at": started + 5, "ended_at": started + 65,
        "disposition": "answered", "queue": "support", "agent": "1001",
    }
    values.update(fields)
    return CallDetailRecord(**values)  # type: ignore[arg-type]


def check_disposition_goes_into_the_newest_cdr_of_the_call(db: Database) -> None:
    sink = db.cdr_sink()
    sink.write_cdrs([_cdr("sip-1", NOW), _cdr("sip-2", NOW + 1, agent_disposition="sale",
                                              agent_notes="during the call")])
    # Written after the CDR (the agent chose it in wrap-up), in the same batch as another CDR.
    sink.write_cdrs([_cdr("sip-3", NOW + 2),
                     AgentDisposition("sip-1", "resolved", "Rechnung erklärt", "1001"),
                     AgentDisposition("sip-1", "callback", "changed my mind", "1001"),
                     AgentDisposition("unknown", "resolved")])  # logged, nothing written
    by_id = {record.call_id: record for record in sink.recent_cdrs()}
    assert (by_id["sip-1"].agent_disposition, by_id["sip-1"].agent_notes) == (
        "callback", "changed my mind")
    assert (by_id["sip-2"].agent_disposition, by_id["sip-2"].agent_notes) == (
        "sale", "during the call")
    assert by_id["sip-3"].agent_disposition == "" and len(by_id) == 3


def check_cdr_filters_and_paging(db: Database) -> None:
    sink = db.cdr_sink()
    sink.write_cdrs([
        _cdr("a", NOW), _cdr("b", NOW + 10, queue="sales", agent="1002"),
        _cdr("c", NOW + 20, disposition="abandoned", agent="", answered_at=None),
        _cdr("d", NOW + 30, agent_disposition="resolved"), _cdr("e", NOW + 40),
    ])

    def ids(where: CdrFilter, limit: int = 100, offset: int = 0) -> tuple[list[str], int]:
        found, total = sink.find_cdrs(where, limit, offset)
        return [record.call_id for record in found], total

    assert ids(CdrFilter()) == (["a", "b", "c", "d", "e"], 5)
    assert ids(CdrFilter(start=NOW + 10, end=NOW + 40)) == (["b", "c", "d"], 3)
    assert ids(CdrFilter(queue="support", agent="1001")) == (["a", "d", "e"], 3)
    assert ids(CdrFilter(disposition="abandoned")) == (["c"], 1)
    assert ids(CdrFilter(agent_disposition="resolved")) == (["d"], 1)
    assert ids(CdrFilter(), limit=2, offset=2) == (["c", "d"], 5)
    assert ids(CdrFilter(), limit=2, offset=10) == ([], 5)


def check_intervals_add_up_across_writes(db: Database) -> None:
    store = db.interval_store()
    start = 1_700_000_100 - 1_700_000_100 % 900
    store.add_intervals(IntervalDeltas(
        {(start, "support"): QueueInterval(offered=2, answered=1, wait_answered_s=4.5),
         (start + 900, "support"): QueueInterval(offered=1)},
        {(start, "1001"): AgentInterval(calls=1, talk_s=60.0, paused_s=30.0,
                                        pauses={"lunch": 30.0})},
    ))
    # A second run of the PBX adds to the same interval.
    store.add_intervals(IntervalDeltas(
        {(start, "support"): QueueInterval(offered=1, abandoned=1, wait_abandoned_s=3.0),
         (start, "sales"): QueueInterval(offered=1)},
        {(start, "1001"): AgentInterval(talk_s=15.0, paused_s=20.0,
                                        pauses={"lunch": 5.0, "x" * 80: 15.0})},
    ))
    quarters = [Segment(start, start + 1800)]
    rows = {(s, q): sums for s, q, sums in store.queue_periods(quarters)}
    assert rows[(start, "support")] == QueueInterval(offered=3, answered=1, abandoned=1,
                                                     wait_answered_s=4.5, wait_abandoned_s=3.0)
    assert rows[(start + 900, "support")].offered == 1 and len(rows) == 3
    assert [q for _, q, _ in store.queue_periods([Segment(start, start + 900)], ["sales"])
            ] == ["sales"]
    total = {q: sums for _, q, sums in store.queue_periods([Segment(start, start + 1800,
                                                                    key=start)])}
    assert total["support"].offered == 4 and total["sales"].offered == 1
    [(_, agent, sums)] = store.agent_periods([Segment(start, start + 900)])
    assert agent == "1001" and (sums.calls, sums.talk_s, sums.paused_s) == (1, 75.0, 50.0)
    assert sums.pauses == {"lunch": 35.0, "x" * 64: 15.0}  # a long reason is cut to 64
    [(_, _, summed)] = store.agent_periods([Segment(start, start + 1800, key=start)], ["1001"])
    assert summed.pauses == sums.pauses and summed.calls == 1
    assert store.agent_periods(quarters, ["1002"]) == []
    assert store.queue_periods([Segment(start + 1800, start + 3600)]) == []


def check_periods_are_added_up_by_the_database(db: Database) -> None:
    # Hours and days of Europe/Berlin around the end of summer time (2026-10-25 03:00 CEST).
    store = db.interval_store()
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    first = int(datetime(2026, 10, 24, 22, 0, tzinfo=berlin).timestamp())
    last = int(datetime(2026, 10, 26, 2, 0, tzinfo=berlin).timestamp())
    store.add_intervals(IntervalDeltas(
        {(t, "q"): QueueInterval(offered=1) for t in range(first, last, 900)},
        {(t, "1001"): AgentInterval(paused_s=900.0, pauses={"lunch": 900.0})
         for t in range(first, last, 900)},
    ))
    report = parse_range("2026-10-24T22:00", "2026-10-26T02:00", "day", berlin, 2e9)
    days = queue_lines(store.queue_periods(segments(report)), report)
    assert [line.sums.offered for line in days] == [8, 100, 8]
    agent_days = agent_lines(store.agent_periods(segments(report)), report)
    assert [line.sums.pauses["lunch"] for line in agent_days] == [7200.0, 90000.0, 7200.0]
    hours = ReportRange(report.start, report.end, "hour", berlin)
    assert [line.sums.offered for line in queue_lines(store.queue_periods(segments(hours)),
                                                      hours)] == [4] * 29


REPORT_CHECKS: list[Callable[[Database], None]] = [
    check_disposition_goes_into_the_newest_cdr_of_the_call,
    check_cdr_filters_and_paging,
    check_intervals_add_up_across_writes,
    check_periods_are_added_up_by_the_database,
]
