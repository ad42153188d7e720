"""The interval statistics written behind to a real SQLite database: every `FLUSH_S` seconds
(not more often), everything at once when asked, and nothing lost while the database fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pbx.acd.events import AgentDeviceChanged
from pbx.acd.interval_report import Segment
from pbx.acd.intervals import IntervalDeltas
from pbx.acd.model import AgentState, AgentStateChanged
from pbx.storage import Database, StorageError
from pbx.storage.reports import SqlIntervalStore
from pbx.switchboard.intervals import FLUSH_S, IntervalRecorder
from tests.unit.acd.acd_harness import queue


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FailingStore(SqlIntervalStore):
    """The real store, made to fail while `down` (the database away for a while)."""

    down = True

    def add_intervals(self, deltas: IntervalDeltas) -> None:
        if self.down:
            raise StorageError("cannot write interval statistics: database is locked")
        super().add_intervals(deltas)


def stored_ready(db: Database, agent: str = "1001") -> float:
    rows = db.interval_store().agent_periods([Segment(0, 10**10, key=0)], [agent])
    return rows[0][2].ready_s if rows else 0.0


def login(recorder: IntervalRecorder, at: float) -> None:
    recorder.observe([AgentDeviceChanged("1001", True),
                      AgentStateChanged("1001", AgentState.LOGGED_OUT, AgentState.AVAILABLE,
                                        "login", at)], at)


def test_writes_every_flush_interval_and_when_asked(tmp_path: Path) -> None:
    with Database.open(f"sqlite:///{tmp_path / 'pbx.db'}") as db:
        clock = Clock(1_800_000_000.0)
        recorder = IntervalRecorder([queue()], db.interval_store(), clock)
        login(recorder, clock.now)

        async def run() -> None:
            clock.now += FLUSH_S / 2
            await recorder.flush_due()
            assert recorder.writes == 0  # not yet due
            clock.now += FLUSH_S / 2
            await recorder.flush_due()
            assert recorder.writes == 1 and stored_ready(db) == pytest.approx(FLUSH_S)
            clock.now += 1.5
            await recorder.flush()  # a report is about to read
            assert recorder.writes == 2 and stored_ready(db) == pytest.approx(FLUSH_S + 1.5)

        asyncio.run(run())


def test_a_failed_write_is_kept_for_the_next(tmp_path: Path) -> None:
    with Database.open(f"sqlite:///{tmp_path / 'pbx.db'}") as db:
        clock = Clock(1_800_000_000.0)
        store = FailingStore(db.engine, db.engine.execution_options(pbx_write=True))
        recorder = IntervalRecorder([queue()], store, clock)
        login(recorder, clock.now)

        async def run() -> None:
            clock.now += 10
            with pytest.raises(StorageError):
                await recorder.flush()
            clock.now += FLUSH_S
            await recorder.flush_due()  # logged, not raised; still down
            assert stored_ready(db) == 0 and recorder.writes == 0
            store.down = False
            clock.now += 5
            await recorder.flush()
            assert stored_ready(db) == pytest.approx(10 + FLUSH_S + 5)

        asyncio.run(run())
