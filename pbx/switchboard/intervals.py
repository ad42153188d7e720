"""The interval statistics beside the ACD, written behind to the database — L3.

`IntervalRecorder` feeds every ACD command to `pbx.acd.intervals.IntervalStats` (from
`Queueing.acd_handle`, on the event loop) and adds the sums to the database
(`pbx.storage.reports.SqlIntervalStore`) every `FLUSH_S` seconds, before a report is read, and
when the PBX stops. A write that fails is logged and its sums are kept for the next one, so the
database being away for a while loses nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import structlog

from pbx.acd.intervals import IntervalDeltas, IntervalStats
from pbx.acd.schema import QueueConfig
from pbx.storage.reports import SqlIntervalStore

log = structlog.get_logger("pbx.reports")

FLUSH_S = 5.0


class IntervalRecorder:
    """See the module docstring. `clock` is wall time (intervals are wall-clock quarters)."""

    def __init__(self, queues: Iterable[QueueConfig], store: SqlIntervalStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.stats = IntervalStats(queues, now=clock())
        self.store = store
        self._pending = IntervalDeltas({}, {})
        self._next_flush = clock() + FLUSH_S
        self._lock = asyncio.Lock()
        self.writes = 0

    def observe(self, commands: Iterable[object], now: float) -> None:
        for command in commands:
            self.stats.observe(command, now)  # type: ignore[arg-type]

    def _take(self) -> IntervalDeltas:
        self._pending = self._pending.merged(self.stats.take(self.clock()))
        batch, self._pending = self._pending, IntervalDeltas({}, {})
        return batch

    async def flush(self) -> None:
        """Write everything up to now (a report is about to read it). Raises `StorageError`;
        what failed is kept for the next write."""
        async with self._lock:
            self._next_flush = self.clock() + FLUSH_S
            batch = self._take()
            if not batch:
                return
            try:
                await asyncio.to_thread(self.store.add_intervals, batch)
            except Exception:
                self._pending = batch.merged(self._pending)
                raise
            self.writes += 1

    async def flush_due(self) -> None:
        """`flush` when `FLUSH_S` have passed since the last one (housekeeping calls this)."""
        if self.clock() >= self._next_flush:
            try:
                await self.flush()
            except Exception:
                log.exception("interval_write_failed")
