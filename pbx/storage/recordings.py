"""Call recordings on disk and their links in the CDR (L3).

`RecordingFiles` owns the directory (``data_dir/recordings``): it names new files
(``YYYY/MM/DD/HHMMSS-<call>-<random>.wav``, UTC dates), turns a CDR's stored relative path
back into a file — only ever inside the directory, whatever the database holds — and deletes
what is older than the retention. `SqlRecordingStore` reads the ``cdr`` rows that have a
recording (by the row's id: no path from a request ever reaches the file system) and marks the
ones whose file the retention deleted (``recording_expired_at``).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import Engine, and_, select, update

from pbx.config.schema import PbxConfig
from pbx.storage.errors import storage_errors
from pbx.storage.models import CdrRow

log = structlog.get_logger("pbx.recordings")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_RELATIVE = re.compile(r"^[0-9]{4}/[0-9]{2}/[0-9]{2}/[A-Za-z0-9_-]{1,120}\.wav$")


@dataclass(frozen=True, slots=True)
class RecordingRef:
    """A CDR that links a recording."""

    cdr_id: int
    call_id: str
    caller: str
    agent: str
    queue: str
    started_at: float
    ended_at: float
    path: str  # relative to the recordings directory
    expired_at: float | None = None

    def describe(self) -> dict[str, object]:
        return {"id": self.cdr_id, "call_id": self.call_id, "caller": self.caller,
                "agent": self.agent, "queue": self.queue, "started_at": self.started_at,
                "ended_at": self.ended_at, "expired": self.expired_at is not None}


class RecordingFiles:
    """The recordings directory. Paths handed out and taken back are relative to `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_path(self, call: str, wall: float) -> str:
        """A fresh relative path for a recording of `call` started at `wall` (Unix time)."""
        day = time.strftime("%Y/%m/%d", time.gmtime(wall))
        stamp = time.strftime("%H%M%S", time.gmtime(wall))
        name = _UNSAFE.sub("_", call)[:60] or "call"
        return f"{day}/{stamp}-{name}-{secrets.token_hex(4)}.wav"

    def prepare(self, relative: str) -> Path:
        """The absolute path for `relative`, its directories made (owner only). Raises
        OSError when they cannot be (disk full, not writable, not a directory)."""
        path = self.resolve(relative)
        if path is None:
            raise OSError(f"not a recording path: {relative!r}")
        self.root.parent.mkdir(parents=True, exist_ok=True)
        directory = self.root
        for part in ("", *Path(relative).parent.parts):
            directory = directory / part if part else directory
            directory.mkdir(exist_ok=True, mode=0o700)  # recordings are personal data
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(f"{path.parent} is not writable")
        return path

    def resolve(self, relative: str) -> Path | None:
        """The file of a stored relative path, or None when it is not one of ours (wrong
        shape, or it would lead outside the directory)."""
        if not _RELATIVE.match(relative):
            return None
        root = self.root.resolve()
        path = (root / relative).resolve()
        return path if path.is_relative_to(root) else None

    def sweep(self, cutoff: float) -> int:
        """Delete recordings last written before `cutoff` (Unix time), and day directories
        left empty; returns how many files went. Errors on single files are skipped."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for path in sorted(self.root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]/*.wav")):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        for depth in ("*/*/*", "*/*", "*"):
            for directory in self.root.glob(depth):
                try:
                    if directory.is_dir() and not any(directory.iterdir()):
                        directory.rmdir()
                except OSError:
                    continue
        return removed


_COLUMNS = (CdrRow.id, CdrRow.call_id, CdrRow.caller, CdrRow.agent, CdrRow.queue,
            CdrRow.started_at, CdrRow.ended_at, CdrRow.recording, CdrRow.recording_expired_at)


class SqlRecordingStore:
    """The CDRs' recording links. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def recording(self, cdr_id: int) -> RecordingRef | None:
        """The recording linked from CDR `cdr_id`, or None when that CDR has none."""
        query = select(*_COLUMNS).where(and_(CdrRow.id == cdr_id, CdrRow.recording != ""))
        with storage_errors("cannot read the recording"), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _ref(row) if row is not None else None

    def recordings(self, limit: int = 50, agent: str | None = None) -> list[RecordingRef]:
        """The newest `limit` CDRs with a recording (only `agent`'s when given)."""
        query = select(*_COLUMNS).where(CdrRow.recording != "")
        if agent is not None:
            query = query.where(CdrRow.agent == agent)
        query = query.order_by(CdrRow.id.desc()).limit(limit)
        with storage_errors("cannot read the recordings"), self._engine.connect() as conn:
            return [_ref(row) for row in conn.execute(query)]

    def recordings_of_calls(self, call_ids: Sequence[str]) -> list[RecordingRef]:
        """The recordings linked from the CDRs of `call_ids` (by the indexed Call-ID; a call
        that was transferred may have several)."""
        if not call_ids:
            return []
        query = select(*_COLUMNS).where(and_(CdrRow.call_id.in_(list(set(call_ids))),
                                             CdrRow.recording != ""))
        with storage_errors("cannot read the recordings"), self._engine.connect() as conn:
            return [_ref(row) for row in conn.execute(query)]

    def expire(self, before: float, now: float) -> list[str]:
        """Mark the recordings of calls that started before `before` as expired (deleted by
        the retention); returns their relative paths. (By the start: that column is indexed.)"""
        condition = and_(CdrRow.started_at < before, CdrRow.recording != "",
                         CdrRow.recording_expired_at.is_(None))
        with storage_errors("cannot expire recordings"), self._writer.begin() as conn:
            paths = [row[0] for row in conn.execute(select(CdrRow.recording).where(condition))]
            if paths:
                conn.execute(update(CdrRow).where(condition).values(recording_expired_at=now))
        return paths


def _ref(row: object) -> RecordingRef:
    values = row._asdict()  # type: ignore[attr-defined]
    return RecordingRef(values["id"], values["call_id"], values["caller"], values["agent"],
                        values["queue"], values["started_at"], values["ended_at"],
                        values["recording"], values["recording_expired_at"])


def enforce_retention(files: RecordingFiles, store: SqlRecordingStore, days: int,
                      now: float) -> tuple[int, int]:
    """Delete recordings older than `days` and mark their CDRs; (CDRs marked, files
    deleted). `days` 0 keeps everything."""
    if days <= 0:
        return 0, 0
    cutoff = now - days * 86400.0
    expired = store.expire(cutoff, now)
    deleted = 0
    for relative in expired:
        path = files.resolve(relative)
        if path is not None and path.is_file():
            try:
                path.unlink()
                deleted += 1
            except OSError:
                continue
    return len(expired), deleted + files.sweep(cutoff)


async def retention_loop(files: RecordingFiles, store: SqlRecordingStore, days: int,
                         interval_s: float) -> None:
    """`enforce_retention` now and every `interval_s`, in a thread; failures are logged and
    tried again next time."""
    while True:
        try:
            marked, deleted = await asyncio.to_thread(enforce_retention, files, store, days,
                                                      time.time())
            if marked or deleted:
                log.info("recordings_expired", cdrs=marked, files=deleted, retention_days=days)
        except Exception:  # storage or disk trouble: the next round tries again
            log.exception("recording_retention_failed")
        await asyncio.sleep(interval_s)


def recording_files(config: PbxConfig) -> RecordingFiles:
    """The recordings directory of `config`: ``data_dir/recordings``."""
    return RecordingFiles(Path(config.pbx.data_dir) / "recordings")
