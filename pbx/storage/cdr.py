"""Call detail records in the database: `CdrSink` (L3). Rows are only ever added."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, insert, or_, select

from pbx.repositories import CallDetailRecord
from pbx.storage.errors import storage_errors
from pbx.storage.models import CdrRow

_FIELDS = tuple(field.name for field in dataclasses.fields(CallDetailRecord))
_COLUMNS = tuple(getattr(CdrRow, name) for name in _FIELDS)


class SqlCdrSink:
    """`CdrSink` on the ``cdr`` table. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def write_cdr(self, record: CallDetailRecord) -> None:
        self.write_cdrs([record])

    def write_cdrs(self, records: list[CallDetailRecord]) -> None:
        """Write several records in one transaction (for callers that batch)."""
        if not records:
            return
        rows: list[dict[str, Any]] = []
        for record in records:
            row = dataclasses.asdict(record)
            row["ivr_path"] = list(record.ivr_path)
            row["variables"] = dict(record.variables)
            rows.append(row)
        with storage_errors("cannot write call detail records"), self._writer.begin() as conn:
            conn.execute(insert(CdrRow), rows)

    def recent_cdrs(self, limit: int = 100) -> list[CallDetailRecord]:
        """The `limit` most recently written records, newest first."""
        query = select(*_COLUMNS).order_by(CdrRow.id.desc()).limit(limit)
        with storage_errors("cannot read call detail records"), self._engine.connect() as conn:
            return [_record(row._asdict()) for row in conn.execute(query)]

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
    return CallDetailRecord(**row)
