"""Queue and agent reports from the stored 15-minute intervals (L2, pure).

`parse_range` turns a request's ``from``, ``to`` and ``interval`` into a `ReportRange` (or a
`ReportRequestError` that says what is wrong); `queue_lines` / `agent_lines` add the stored
intervals up per reporting period (15 minutes, an hour or a day of the report's time zone, or
the whole range), and `queue_figures` / `agent_figures` turn a line's sums into the figures a
supervisor reads:

- *ASA*: wait of the answered calls / answered. *AHT*: (talk + wrap-up) / calls handled.
- *service level*: answered within the queue's ``service_level_s`` / every call that left the
  queue (answered, abandoned or overflowed) — the strict form of `pbx.acd.stats`.
- *abandon rate*: abandoned / left. *occupancy*: (talk + wrap-up + reserved) / (those + ready +
  ringing); paused and direct-call time do not count.

A report covers the intervals that overlap ``[from, to)`` (``from`` is moved back to the start
of its interval); periods without any activity are left out. Times without a zone are read in
the report's time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from pbx.acd.intervals import INTERVAL_S, AgentInterval, QueueInterval, interval_start

ReportInterval = Literal["15m", "hour", "day", "total"]
INTERVALS: tuple[ReportInterval, ...] = ("15m", "hour", "day", "total")
_PERIOD_S = {"15m": INTERVAL_S, "hour": 3600, "day": 86400}
MAX_PERIODS = 10_000


class ReportRequestError(ValueError):
    """A report's parameters are wrong; the message says which and why (an HTTP 400)."""


@dataclass(frozen=True, slots=True)
class ReportRange:
    """What a report covers: intervals starting in [`start`, `end`) (epoch seconds), added up
    per `interval`, with periods and times in `tz`."""

    start: float
    end: float
    interval: ReportInterval
    tz: tzinfo


def parse_time(text: str, tz: tzinfo, name: str) -> float:
    """An ISO 8601 date (midnight) or date and time; without a zone it is in `tz`."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0))
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReportRequestError(
            f"'{name}' is not an ISO 8601 date or date and time (e.g. 2026-12-04 or "
            f"2026-12-04T08:00:00+01:00): {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def parse_range(
    from_text: str | None, to_text: str | None, interval: str | None, tz: tzinfo, now: float,
    *, align: bool = True,
) -> ReportRange:
    """The range a report request asks for. Defaults: from midnight today (in `tz`) to now,
    one total per queue or agent. With `align`, the start moves back to the start of its
    15-minute interval (the finest the statistics are kept in)."""
    chosen = interval or "total"
    if chosen not in INTERVALS:
        raise ReportRequestError(
            f"'interval' must be one of {', '.join(INTERVALS)}, not {chosen!r}"
        )
    today = datetime.fromtimestamp(now, tz).date()
    start = (parse_time(from_text, tz, "from") if from_text
             else datetime.combine(today, time(0), tz).timestamp())
    end = parse_time(to_text, tz, "to") if to_text else now
    if start >= end:
        raise ReportRequestError(
            f"'from' ({_iso(start, tz)}) must be before 'to' ({_iso(end, tz)})"
        )
    if chosen != "total":
        periods = (end - start) / _PERIOD_S[chosen]
        if periods > MAX_PERIODS:
            raise ReportRequestError(
                f"{int(periods)} periods of {chosen} from {_iso(start, tz)} to "
                f"{_iso(end, tz)} are too many (at most {MAX_PERIODS}): choose a shorter "
                "range or a longer interval"
            )
    if align:
        start = float(interval_start(start))
    return ReportRange(start, end, chosen, tz)


def _iso(epoch: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds")


def period_of(start: int, report: ReportRange) -> tuple[float, float]:
    """The reporting period (start, end) the interval starting at `start` belongs to."""
    if report.interval == "total":
        return report.start, report.end
    if report.interval == "15m":
        return float(start), float(start + INTERVAL_S)
    local = datetime.fromtimestamp(start, report.tz)
    if report.interval == "hour":
        top = local.replace(minute=0, second=0, microsecond=0).timestamp()
        return top, top + 3600
    day = local.date()
    return (datetime.combine(day, time(0), report.tz).timestamp(),
            datetime.combine(day + timedelta(days=1), time(0), report.tz).timestamp())


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch [`start`, `end`) of a report in which the database can add the intervals up
    per period by itself: each interval belongs to the period starting at
    ``t - ((t + offset_s) % period_s)`` (the zone's UTC offset is `offset_s` throughout), or,
    when `key` is given, all of them to the period starting at `key` (a period with a change
    of the UTC offset inside, or the whole range)."""

    start: int
    end: int
    offset_s: int = 0
    period_s: int = INTERVAL_S
    key: int | None = None


def segments(report: ReportRange) -> list[Segment]:
    """`report`'s range cut into `Segment`s: one for a total or 15-minute periods; for hours
    and days one per stretch of constant UTC offset, and one per period with a change of the
    offset (summer time) inside."""
    start, end = int(report.start), int(-(-report.end // 1))
    if report.interval == "total":
        return [Segment(start, end, key=start)]
    if report.interval == "15m":
        return [Segment(start, end)]
    period_s = _PERIOD_S[report.interval]
    out: list[Segment] = []
    p_start, p_end = period_of(interval_start(start), report)
    while p_start < end:
        low, high = max(int(p_start), start), min(int(p_end), end)
        offset = _offset(p_start, report.tz)
        if offset != _offset(p_end - 1, report.tz):
            out.append(Segment(low, high, key=int(p_start)))
        elif out and out[-1].key is None and out[-1].offset_s == offset and out[-1].end == low:
            out[-1] = Segment(out[-1].start, high, offset, period_s)
        else:
            out.append(Segment(low, high, offset, period_s))
        p_start, p_end = period_of(int(p_end), report)
    return out


def _offset(epoch: float, tz: tzinfo) -> int:
    delta = datetime.fromtimestamp(epoch, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@dataclass(frozen=True, slots=True)
class QueueLine:
    """One queue's sums in one reporting period."""

    period_start: float
    period_end: float
    queue: str
    sums: QueueInterval


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One agent's sums in one reporting period."""

    period_start: float
    period_end: float
    agent: str
    sums: AgentInterval


def queue_lines(rows: Iterable[tuple[int, str, QueueInterval]], report: ReportRange
                ) -> list[QueueLine]:
    """Stored intervals (start, queue, sums) added up per period and queue, in order."""
    grouped: dict[tuple[float, float, str], QueueInterval] = {}
    for start, queue, sums in rows:
        period = period_of(start, report)
        total = grouped.setdefault((*period, queue), QueueInterval())
        total.add(sums)
    return [QueueLine(a, b, queue, sums) for (a, b, queue), sums in sorted(grouped.items())
            if not sums.is_empty()]


def agent_lines(rows: Iterable[tuple[int, str, AgentInterval]], report: ReportRange
                ) -> list[AgentLine]:
    """Stored intervals (start, agent, sums) added up per period and agent, in order."""
    grouped: dict[tuple[float, float, str], AgentInterval] = {}
    for start, agent, sums in rows:
        period = period_of(start, report)
        total = grouped.setdefault((*period, agent), AgentInterval())
        total.add(sums)
    return [AgentLine(a, b, agent, sums) for (a, b, agent), sums in sorted(grouped.items())
            if not sums.is_empty()]


def _ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def queue_figures(line: QueueLine) -> dict[str, object]:
    """A queue line's figures (counts, seconds rounded to 0.1 s, ratios 0..1 or None)."""
    s = line.sums
    left = s.answered + s.abandoned + s.overflowed
    return {
        "queue": line.queue,
        "offered": s.offered,
        "answered": s.answered,
        "abandoned": s.abandoned,
        "overflowed": s.overflowed,
        "answered_in_sl": s.answered_in_sl,
        "service_level": _ratio(s.answered_in_sl, left),
        "abandon_rate": _ratio(s.abandoned, left),
        "asa_s": _ratio(s.wait_answered_s, s.answered, 1),
        "aht_s": _ratio(s.handle_s, s.handled, 1),
        "avg_abandon_wait_s": _ratio(s.wait_abandoned_s, s.abandoned, 1),
        "handled": s.handled,
    }


def agent_figures(line: AgentLine,
                  productive: frozenset[str] = frozenset()) -> dict[str, object]:
    """An agent line's figures (counts, seconds rounded to 0.1 s, ratios 0..1 or None).
    `productive`: the pause codes that count as work (``cti.pause_codes[].productive``:
    training, back office), summed apart from the others (break, lunch)."""
    s = line.sums
    busy = s.talk_s + s.wrap_up_s + s.reserved_s
    working = sum(seconds for reason, seconds in s.pauses.items() if reason in productive)
    return {
        "agent": line.agent,
        "offers": s.offers,
        "missed": s.missed,
        "calls": s.calls,
        "handled": s.handled,
        "aht_s": _ratio(s.handle_s, s.handled, 1),
        "talk_s": round(s.talk_s, 1),
        "wrap_up_s": round(s.wrap_up_s, 1),
        "ready_s": round(s.ready_s, 1),
        "ringing_s": round(s.ringing_s, 1),
        "reserved_s": round(s.reserved_s, 1),
        "paused_s": round(s.paused_s, 1),
        "paused_productive_s": round(working, 1),
        "paused_unproductive_s": round(s.paused_s - working, 1),
        "direct_s": round(s.direct_s, 1),
        "occupancy": _ratio(busy, busy + s.ready_s + s.ringing_s),
        "pause_by_reason": {reason: round(seconds, 1)
                            for reason, seconds in sorted(s.pauses.items())},
    }
