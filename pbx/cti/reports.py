"""The report endpoints (L3): queue and agent statistics from the stored 15-minute intervals,
and the call records export — as JSON or CSV, and who may read them.

=========================  =================================================  ===========
path                       what                                               token scope
=========================  =================================================  ===========
``/api/reports/queues``    offered, answered, abandoned, ASA, AHT, service    reports
                           level … per queue and period
``/api/reports/agents``    calls, talk, wrap-up, ready and pause time (by     reports
                           reason), occupancy … per agent and period
``/api/reports/cdrs``      call records with filters and paging               cdrs
=========================  =================================================  ===========

Readers as for the operations endpoints (`pbx.cti.operations.OperationsAccess`): a supervisor's
or admin's session, or an API token with the scope; no credentials 401, an agent's session or a
token without the scope 403. Call records never carry what a form hides from the reader — in
CSV the hidden columns are left out of the header too.

Parameters: ``from`` and ``to`` (ISO 8601 dates or times; without a zone in ``reports.timezone``;
default midnight today to now; the reports cover the 15-minute intervals that overlap the
range, and say so in their ``from``), ``interval`` (``15m``, ``hour``, ``day`` or ``total``, the
default), ``queue`` / ``agent`` (repeatable) for the reports; for call records also
``disposition`` (the call's outcome: answered, abandoned …), ``agent_disposition`` (what the
agent chose in the desk), ``direction``, ``limit`` (1..10000, default 100) and ``offset``.
``format=csv`` or ``Accept: text/csv`` answers CSV. Unknown or malformed parameters are a 400
that says what is wrong. Times in answers are ISO 8601 with the offset of ``reports.timezone``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pbx.acd.interval_report import (
    AgentLine,
    QueueLine,
    ReportRange,
    ReportRequestError,
    agent_figures,
    agent_lines,
    parse_range,
    queue_figures,
    queue_lines,
    segments,
)
from pbx.acd.intervals import AgentInterval, QueueInterval
from pbx.config.schema import PbxConfig
from pbx.cti import rest
from pbx.cti.forms import hidden_sources
from pbx.cti.operations import OperationsAccess, visible_cdr
from pbx.cti.rest import ApiError, endpoint
from pbx.storage import Database
from pbx.storage.cdr import CdrFilter

MAX_CDR_PAGE = 10_000
_FILTER_TEXT = re.compile(r"^[^\x00-\x1f]{1,64}$")
_REPORT_PARAMS = ("from", "to", "interval", "format")
_CDR_PARAMS = ("from", "to", "queue", "agent", "disposition", "agent_disposition",
               "direction", "limit", "offset", "format")
_TIME_COLUMNS = ("started_at", "answered_at", "ended_at")
# A cell a spreadsheet would run as a formula (OWASP "CSV injection"); a phone number such as
# +4930123456 or -5 stays as it is.
_FORMULA = re.compile(r"^[=@\t\r]|^[+-](?![0-9 ().]*$)")


class IntervalFlush(Protocol):
    """Writes the statistics gathered so far (`pbx.switchboard.intervals.IntervalRecorder`)."""

    async def flush(self) -> None: ...


def report_zone(config: PbxConfig) -> tzinfo:
    return zoneinfo.ZoneInfo(config.reports.timezone)


def iso(epoch: float | None, tz: tzinfo) -> str | None:
    """`epoch` as ISO 8601 with the zone's offset (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds")


def csv_cell(value: object) -> str:
    """A value as a CSV cell that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


def csv_response(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str,
                 extra_headers: dict[str, str] | None = None) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    headers = {"Content-Disposition": f'attachment; filename="{filename}"',
               **(extra_headers or {})}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def wants_csv(request: Request) -> bool:
    chosen = request.query_params.get("format")
    if chosen is not None:
        if chosen not in ("csv", "json"):
            raise ApiError(400, f"'format' must be csv or json, not {chosen!r}")
        return chosen == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def check_params(request: Request, allowed: Sequence[str]) -> None:
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown parameter {', '.join(map(repr, unknown))} (known: "
                            f"{', '.join(allowed)})")


def names_param(request: Request, name: str) -> list[str]:
    """A repeatable (or comma-separated) filter such as ``queue=a&queue=b``."""
    values = [part.strip() for raw in request.query_params.getlist(name)
              for part in raw.split(",") if part.strip()]
    for value in values:
        if not _FILTER_TEXT.match(value):
            raise ApiError(400, f"'{name}' must be 1..64 printable characters")
    return values


def text_param(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"give '{name}' once")
    value = values[0] if values else None
    if value is not None and not _FILTER_TEXT.match(value):
        raise ApiError(400, f"'{name}' must be 1..64 printable characters")
    return value


def report_range(request: Request, tz: tzinfo, align: bool = True) -> ReportRange:
    params = request.query_params
    try:
        return parse_range(params.get("from"), params.get("to"), params.get("interval"), tz,
                           time.time(), align=align)
    except ReportRequestError as exc:
        raise ApiError(400, str(exc)) from None


def _range_json(report: ReportRange, tz_name: str) -> dict[str, object]:
    return {"from": iso(report.start, report.tz), "to": iso(report.end, report.tz),
            "interval": report.interval, "timezone": tz_name}


def report_routes(config: PbxConfig, db: Database, access: OperationsAccess,
                  intervals: IntervalFlush | None = None) -> list[BaseRoute]:
    """The three endpoints, each behind `access`. `intervals`: flushed before a report reads
    the database, so it counts everything up to the moment it was asked for."""
    tz = report_zone(config)
    tz_name = config.reports.timezone
    productive = frozenset(c.code for c in config.cti.pause_codes if c.productive)
    store = db.interval_store()
    cdrs = db.cdr_sink()
    forms = config.forms

    async def fresh() -> None:
        if intervals is not None:
            await intervals.flush()

    async def queues(request: Request) -> Response:
        await access.reader(request, "reports")
        check_params(request, (*_REPORT_PARAMS, "queue"))
        as_csv = wants_csv(request)
        report = report_range(request, tz)
        wanted = names_param(request, "queue")
        await fresh()
        rows = await asyncio.to_thread(store.queue_periods, segments(report), wanted)
        lines = [{"period_start": iso(line.period_start, tz),
                  "period_end": iso(line.period_end, tz), **queue_figures(line)}
                 for line in queue_lines(rows, report)]
        if as_csv:
            header = ["period_start", "period_end",
                      *queue_figures(QueueLine(0.0, 0.0, "", QueueInterval()))]
            return csv_response(header, ([line[k] for k in header] for line in lines),
                                "queues.csv")
        return JSONResponse({**_range_json(report, tz_name), "queues": lines})

    async def agents(request: Request) -> Response:
        await access.reader(request, "reports")
        check_params(request, (*_REPORT_PARAMS, "agent"))
        as_csv = wants_csv(request)
        report = report_range(request, tz)
        wanted = names_param(request, "agent")
        await fresh()
        rows = await asyncio.to_thread(store.agent_periods, segments(report), wanted)
        lines = [{"period_start": iso(line.period_start, tz),
                  "period_end": iso(line.period_end, tz), **agent_figures(line, productive)}
                 for line in agent_lines(rows, report)]
        if as_csv:
            return _agents_csv(lines)
        return JSONResponse({**_range_json(report, tz_name), "agents": lines})

    async def records(request: Request) -> Response:
        reader = await access.reader(request, "cdrs")
        check_params(request, _CDR_PARAMS)
        as_csv = wants_csv(request)
        report = report_range(request, tz, align=False)
        where = CdrFilter(
            start=report.start, end=report.end, queue=text_param(request, "queue"),
            agent=text_param(request, "agent"), disposition=text_param(request, "disposition"),
            agent_disposition=text_param(request, "agent_disposition"),
            direction=text_param(request, "direction"),
        )
        limit = rest.int_param(request, "limit", 100, 1, MAX_CDR_PAGE)
        offset = rest.int_param(request, "offset", 0, 0, 10**12)
        found, total = await asyncio.to_thread(cdrs.find_cdrs, where, limit, offset)
        hidden = hidden_sources(forms, reader)
        rows = []
        for record in found:
            row = visible_cdr(record, hidden)
            for column in _TIME_COLUMNS:
                row[column] = iso(row[column], tz)  # type: ignore[arg-type]
            rows.append(row)
        paging = {"total": total, "limit": limit, "offset": offset}
        if as_csv:
            return _cdrs_csv(rows, visible_cdr_columns(hidden),
                             {"X-Total-Count": str(total)})
        return JSONResponse({**_range_json(report, tz_name), **paging, "cdrs": rows})

    def route(path: str, handler: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(path, endpoint({"GET": handler}), methods=rest.ALL_METHODS)

    return [
        route("/api/reports/queues", queues),
        route("/api/reports/agents", agents),
        route("/api/reports/cdrs", records),
    ]


def visible_cdr_columns(hidden: frozenset[str]) -> list[str]:
    """The CSV columns of a call record for a reader from whom forms hide `hidden`."""
    from pbx.repositories import CallDetailRecord

    sample = visible_cdr(CallDetailRecord("", "", "", "", 0.0, None, 0.0, ""), hidden)
    return list(sample)


def _cdrs_csv(rows: list[dict[str, object]], columns: list[str],
              headers: dict[str, str]) -> Response:
    def cells(row: dict[str, object]) -> list[object]:
        out: list[object] = []
        for column in columns:
            value = row.get(column)
            if column == "ivr_path":
                value = " > ".join(str(step) for step in value or ())  # type: ignore[attr-defined]
            elif column == "variables":
                value = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
            out.append(value)
        return out

    return csv_response(columns, (cells(row) for row in rows), "cdrs.csv", headers)


def _agents_csv(lines: list[dict[str, object]]) -> Response:
    # One column per pause reason found, so a spreadsheet can sum them.
    reasons = sorted({reason for line in lines
                      for reason in line["pause_by_reason"]})  # type: ignore[attr-defined]
    base = ["period_start", "period_end",
            *(k for k in agent_figures(AgentLine(0.0, 0.0, "", AgentInterval()))
              if k != "pause_by_reason")]
    header = base + [f"paused_{reason}_s" for reason in reasons]

    def cells(line: dict[str, object]) -> list[object]:
        pauses: dict[str, float] = line["pause_by_reason"]  # type: ignore[assignment]
        return [line[k] for k in base] + [pauses.get(reason, 0.0) for reason in reasons]

    return csv_response(header, (cells(line) for line in lines), "agents.csv")
