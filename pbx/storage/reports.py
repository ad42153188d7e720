"""Queue and agent statistics per 15-minute interval in the database (L3).

`SqlIntervalStore.add_intervals` adds the sums `pbx.acd.intervals.IntervalStats.take` handed
over to what is stored for the same interval (one upsert per row: ``INSERT … ON CONFLICT DO
UPDATE SET x = x + excluded.x`` on SQLite and PostgreSQL alike), so the figures of one interval
may come from several takes, and from several runs of the PBX. The readers return the stored
intervals of a range for `pbx.acd.interval_report`, or their sums when a report wants one total.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

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

    def queue_intervals(self, start: float, end: float, queues: Sequence[str] = (),
                        total: bool = False) -> list[tuple[int, str, QueueInterval]]:
        """The stored intervals starting in [start, end) (of `queues`, when given); with
        `total`, one sum per queue (its interval start is `start`)."""
        table = _QUEUES
        where = [table.c.interval_start >= start, table.c.interval_start < end]
        if queues:
            where.append(table.c.queue.in_(list(queues)))
        if total:
            query = (select(table.c.queue, *(func.sum(table.c[n]).label(n) for n in QUEUE_FIELDS))
                     .where(*where).group_by(table.c.queue))
        else:
            query = select(table).where(*where)
        with storage_errors("cannot read interval statistics"), self._engine.connect() as conn:
            return [
                (int(start) if total else int(row.interval_start), row.queue,
                 QueueInterval(**{n: _number(getattr(row, n), n) for n in QUEUE_FIELDS}))
                for row in conn.execute(query)
            ]

    def agent_intervals(self, start: float, end: float, agents: Sequence[str] = (),
                        total: bool = False) -> list[tuple[int, str, AgentInterval]]:
        """As `queue_intervals`, for agents (with their pause time by reason)."""
        table, pause = _AGENTS, _PAUSES
        where = [table.c.interval_start >= start, table.c.interval_start < end]
        pause_where = [pause.c.interval_start >= start, pause.c.interval_start < end]
        if agents:
            where.append(table.c.agent.in_(list(agents)))
            pause_where.append(pause.c.agent.in_(list(agents)))
        if total:
            query = (select(table.c.agent, *(func.sum(table.c[n]).label(n) for n in AGENT_FIELDS))
                     .where(*where).group_by(table.c.agent))
            pause_query = (select(pause.c.agent, pause.c.reason,
                                  func.sum(pause.c.paused_s).label("paused_s"))
                           .where(*pause_where).group_by(pause.c.agent, pause.c.reason))
        else:
            query = select(table).where(*where)
            pause_query = select(pause).where(*pause_where)
        with storage_errors("cannot read interval statistics"), self._engine.connect() as conn:
            out: dict[tuple[int, str], AgentInterval] = {}
            for row in conn.execute(query):
                key = (int(start) if total else int(row.interval_start), row.agent)
                out[key] = AgentInterval(**{n: _number(getattr(row, n), n) for n in AGENT_FIELDS})
            for row in conn.execute(pause_query):
                key = (int(start) if total else int(row.interval_start), row.agent)
                sums = out.setdefault(key, AgentInterval())
                sums.pauses[row.reason] = float(row.paused_s)
        return [(key[0], key[1], sums) for key, sums in out.items()]


def _number(value: Any, name: str) -> Any:
    # SUM over an Integer column comes back as int (or Decimal on some drivers): keep the
    # dataclass's types.
    if value is None:
        return 0
    return float(value) if name.endswith("_s") else int(value)
