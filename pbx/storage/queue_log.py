"""The queue log in the database: `QueueLog` (L3). Rows are only ever added, in batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import Engine, insert, select

from pbx.repositories import QueueLogEntry
from pbx.storage.errors import storage_errors
from pbx.storage.models import QueueLogRow


class SqlQueueLog:
    """`QueueLog` on the ``queue_log`` table. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def write_queue_events(self, entries: Sequence[QueueLogEntry]) -> None:
        if not entries:
            return
        rows = []
        for entry in entries:
            row = dataclasses.asdict(entry)
            row["data"] = dict(entry.data)
            rows.append(row)
        with storage_errors("cannot write the queue log"), self._writer.begin() as conn:
            conn.execute(insert(QueueLogRow), rows)

    def recent_queue_events(self, limit: int = 100, queue: str | None = None
                            ) -> list[QueueLogEntry]:
        """The newest `limit` entries (of `queue`, if given), newest first."""
        query = select(QueueLogRow).order_by(QueueLogRow.id.desc()).limit(limit)
        if queue is not None:
            query = query.where(QueueLogRow.queue == queue)
        with storage_errors("cannot read the queue log"), self._engine.connect() as conn:
            return [
                QueueLogEntry(at=r.at, event=r.event, queue=r.queue, call=r.call,
                              agent=r.agent, data=dict(r.data or {}))
                for r in conn.execute(query)
            ]
