"""Call detail records in the database: `CdrSink` (L3). Rows are only ever added; the one
change a row gets is the agent's disposition and notes, when the agent sets them after the
call ended (wrap-up)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Engine, func, insert, or_, select, update

from pbx.repositories import AgentDisposition, CallDetailRecord
from pbx.storage.errors import storage_errors
from pbx.storage.models import CdrRow

log = structlog.get_logger("pbx.storage")

_FIELDS = tuple(field.name for field in dataclasses.fields(CallDetailRecord))
_COLUMNS = tuple(getattr(CdrRow, name) for name in _FIELDS)


@dataclass(frozen=True, slots=True)
class CdrFilter:
    """Which records an export wants: started in [`start`, `end`) (epoch seconds), and each
    other field, when given, equal to the record's."""

    start: float | None = None
    end: float | None = None
    queue: str | None = None
    agent: str | None = None
    disposition: str | None = None
    agent_disposition: str | None = None
    direction: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.start is not None:
            where.append(CdrRow.started_at >= self.start)
        if self.end is not None:
            where.append(CdrRow.started_at < self.end)
        for name in ("queue", "agent", "disposition", "agent_disposition", "direction"):
            value = getattr(self, name)
            if value is not None:
                where.append(getattr(CdrRow, name) == value)
        return where


class SqlCdrSink:
    """`CdrSink` on the ``cdr`` table. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def write_cdr(self, record: CallDetailRecord) -> None:
        self.write_cdrs([record])

    def write_cdrs(self, records: Sequence[CallDetailRecord | AgentDisposition]) -> None:
        """Write several records in one transaction (for callers that batch). An
        `AgentDisposition` among them goes into its call's newest record, written before it
        (in this batch or an earlier one)."""
        rows: list[dict[str, Any]] = []
        dispositions: list[AgentDisposition] = []
        for record in records:
            if isinstance(record, AgentDisposition):
                dispositions.append(record)
                continue
            row = dataclasses.asdict(record)
            row["ivr_path"] = list(record.ivr_path)
            row["variables"] = dict(record.variables)
            rows.append(row)
        if not rows and not dispositions:
            return
        with storage_errors("cannot write call detail records"), self._writer.begin() as conn:
            if rows:
                conn.execute(insert(CdrRow), rows)
            for item in dispositions:
                newest = (select(func.max(CdrRow.id)).where(CdrRow.call_id == item.call_id)
                          .scalar_subquery())
                done = conn.execute(
                    update(CdrRow).where(CdrRow.id == newest).values(
                        agent_disposition=item.disposition[:64], agent_notes=item.notes)
                )
                if not done.rowcount:
                    log.warning("cdr_for_disposition_missing", call_id=item.call_id,
                                agent=item.agent, disposition=item.disposition)

    def recent_cdrs(self, limit: int = 100) -> list[CallDetailRecord]:
        """The `limit` most recently written records, newest first."""
        query = select(*_COLUMNS).order_by(CdrRow.id.desc()).limit(limit)
        with storage_errors("cannot read call detail records"), self._engine.connect() as conn:
            return [_record(row._asdict()) for row in conn.execute(query)]

    def find_cdrs(self, where: CdrFilter, limit: int = 100, offset: int = 0
                  ) -> tuple[list[CallDetailRecord], int]:
        """One page of the records `where` selects, oldest first, and how many it selects
        in all."""
        conditions = where.conditions()
        query = (select(*_COLUMNS).where(*conditions)
                 .order_by(CdrRow.started_at, CdrRow.id).limit(limit).offset(offset))
        count = select(func.count()).select_from(CdrRow).where(*conditions)
        with storage_errors("cannot read call detail records"), self._engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            return [_record(row._asdict()) for row in conn.execute(query)], total

    def calls_of(self, phone_numbers: Sequence[str], limit: int = 20) -> list[CallDetailRecord]:
        """The newest `limit` records from or to any of `phone_numbers`, newest first (a
        customer's call history)."""
        if not phone_numbers:
            return []
        phones = list(phone_numbers)
        query = (
            select(*_COLUMNS)
            .where(or_(CdrRow.caller.in_(phones), CdrRow.callee.in_(phones)))
            .order_by(CdrRow.started_at.desc(), CdrRow.id.desc())
            .limit(limit)
        )
        with storage_errors("cannot read the call history"), self._engine.connect() as conn:
            return [_record(row._asdict()) for row in conn.execute(query)]


def _record(row: dict[str, Any]) -> CallDetailRecord:
    row["ivr_path"] = tuple(row.get("ivr_path") or ())
    row["variables"] = dict(row.get("variables") or {})
    row["agent_disposition"] = row.get("agent_disposition") or ""
    row["agent_notes"] = row.get("agent_notes") or ""
    return CallDetailRecord(**row)
