"""Queue and agent statistics per 15-minute interval in the database (L3).

`SqlIntervalStore.add_intervals` adds the sums `pbx.acd.intervals.IntervalStats.take` handed
over to what is stored for the same interval (one upsert per row: ``INSERT … ON CONFLICT DO
UPDATE SET x = x + excluded.x`` on SQLite and PostgreSQL alike), so the figures of one interval
may come from several takes, and from several runs of the PBX. The readers return the stored
intervals of a report's range added up per reporting period by the database
(`pbx.acd.interval_report.segments` says how), so a report of a year reads a few rows per
period, not every quarter hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite

from pbx.acd.interval_report import Segment
from pbx.acd.intervals import (
    AGENT_FIELDS,
    QUEUE_FIELDS,
    AgentInterval,
    IntervalDeltas,
    QueueInterval,
)
from pbx.storage.errors import StorageError, storage_errors
from pbx.storage.models import AgentIntervalRow, AgentPauseIntervalRow, QueueIntervalRow

_QUEUES: Table = QueueIntervalRow.__table__  # type: ignore[assignment]
_AGENTS: Table = AgentIntervalRow.__table__  # type: ignore[assignment]
_PAUSES: Table = AgentPauseIntervalRow.__table__  # type: ignore[assignment]
_REASON_LENGTH = 64


def _upsert(conn: Connection, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]
            ) -> None:
    """Add `rows` to the stored rows with the same `keys` (insert those not there yet)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        statement: Any = sqlite.insert(table)
    elif dialect == "postgresql":
        statement = postgresql.insert(table)
    else:
        raise StorageError(f"interval statistics need SQLite or PostgreSQL, not {dialect}")
    values = [name for name in rows[0] if name not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in values},
    )
    conn.execute(statement, rows)


class SqlIntervalStore:
    """The ``queue_intervals``, ``agent_intervals`` and ``agent_pause_intervals`` tables.
    Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def add_intervals(self, deltas: IntervalDeltas) -> None:
        """Add what `IntervalStats.take` handed over, in one transaction."""
        queues = [{"interval_start": start, "queue": queue,
                   **{name: getattr(sums, name) for name in QUEUE_FIELDS}}
                  for (start, queue), sums in deltas.queues.items()]
        agents = [{"interval_start": start, "agent": agent,
                   **{name: getattr(sums, name) for name in AGENT_FIELDS}}
                  for (start, agent), sums in deltas.agents.items()]
        pauses: dict[tuple[int, str, str], float] = {}
        for (start, agent), sums in deltas.agents.items():
            for reason, seconds in sums.pauses.items():
                key = (start, agent, reason[:_REASON_LENGTH])
                pauses[key] = pauses.get(key, 0.0) + seconds
        pause_rows = [{"interval_start": start, "agent": agent, "reason": reason,
                       "paused_s": seconds} for (start, agent, reason), seconds in pauses.items()]
        if not (queues or agents):
            return
        with storage_errors("cannot write interval statistics"), self._writer.begin() as conn:
            _upsert(conn, _QUEUES, ("interval_start", "queue"), queues)
            _upsert(conn, _AGENTS, ("interval_start", "agent"), agents)
            _upsert(conn, _PAUSES, ("interval_start", "agent", "reason"), pause_rows)

    def queue_periods(self, segments: Sequence[Segment], queues: Sequence[str] = ()
                      ) -> list[tuple[int, str, QueueInterval]]:
        """The stored intervals of `segments` (of `queues`, when given) added up per period
        and queue, by the database: (period start, queue, sums)."""
        table = _QUEUES
        out: list[tuple[int, str, QueueInterval]] = []
        with storage_errors("cannot read interval statistics"), self._engine.connect() as conn:
            for segment in segments:
                period, where = _period(table, segment)
                if queues:
                    where.append(table.c.queue.in_(list(queues)))
                keys = [table.c.queue] if period is None else [period, table.c.queue]
                query = (select(*keys, *(func.sum(table.c[n]).label(n) for n in QUEUE_FIELDS))
                         .where(*where).group_by(*keys))
                for row in conn.execute(query):
                    key = segment.key if period is None else int(row[0])
                    sums = QueueInterval(**{n: _number(getattr(row, n), n) for n in QUEUE_FIELDS})
                    out.append((int(key or 0), row.queue, sums))
        return out

    def agent_periods(self, segments: Sequence[Segment], agents: Sequence[str] = ()
                      ) -> list[tuple[int, str, AgentInterval]]:
        """As `queue_periods`, for agents (with their pause time by reason)."""
        table, pause = _AGENTS, _PAUSES
        found: dict[tuple[int, str], AgentInterval] = {}
        with storage_errors("cannot read interval statistics"), self._engine.connect() as conn:
            for segment in segments:
                period, where = _period(table, segment)
                pause_period, pause_where = _period(pause, segment)
                if agents:
                    where.append(table.c.agent.in_(list(agents)))
                    pause_where.append(pause.c.agent.in_(list(agents)))
                keys = [table.c.agent] if period is None else [period, table.c.agent]
                query = (select(*keys, *(func.sum(table.c[n]).label(n) for n in AGENT_FIELDS))
                         .where(*where).group_by(*keys))
                for row in conn.execute(query):
                    key = int((segment.key if period is None else row[0]) or 0)
                    sums = AgentInterval(**{n: _number(getattr(row, n), n) for n in AGENT_FIELDS})
                    found.setdefault((key, row.agent), AgentInterval()).add(sums)
                pause_keys = [pause.c.agent, pause.c.reason]
                if pause_period is not None:
                    pause_keys.insert(0, pause_period)
                pause_query = (select(*pause_keys, func.sum(pause.c.paused_s).label("paused_s"))
                               .where(*pause_where).group_by(*pause_keys))
                for row in conn.execute(pause_query):
                    key = int((segment.key if pause_period is None else row[0]) or 0)
                    sums = found.setdefault((key, row.agent), AgentInterval())
                    sums.pauses[row.reason] = sums.pauses.get(row.reason, 0.0) + float(
                        row.paused_s)
        return [(key, agent, sums) for (key, agent), sums in found.items()]


def _period(table: Table, segment: Segment) -> tuple[Any, list[Any]]:
    """The SQL expression of an interval's period start in `segment` (None: the segment's
    `key`), and the segment's bounds as conditions. The offset and period are inlined as
    integer literals, so that the same expression in SELECT and GROUP BY is the same to
    PostgreSQL."""
    column = table.c.interval_start
    where = [column >= segment.start, column < segment.end]
    if segment.key is not None:
        return None, where
    offset: Any = literal_column(str(int(segment.offset_s)))
    period: Any = literal_column(str(int(segment.period_s)))
    return column - ((column + offset) % period), where


def _number(value: Any, name: str) -> Any:
    # SUM over an Integer column comes back as int (or Decimal on some drivers): keep the
    # dataclass's types.
    if value is None:
        return 0
    return float(value) if name.endswith("_s") else int(value)
