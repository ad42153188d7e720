"""Recording files and their CDR links: names, containment, retention (SQLite on a file)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pbx.repositories import CallDetailRecord
from pbx.storage import Database
from pbx.storage.recordings import RecordingFiles, enforce_retention

NOW = 1_790_000_000.0
DAY = 86400.0


def cdr(call_id: str, agent: str, recording: str, ended_at: float) -> CallDetailRecord:
    return CallDetailRecord(call_id=call_id, direction="inbound", caller="+4917", callee=agent,
                            started_at=ended_at - 60, answered_at=ended_at - 50,
                            ended_at=ended_at, disposition="answered", agent=agent,
                            queue="support", recording=recording)


def make(files: RecordingFiles, relative: str, age_days: float) -> Path:
    path = files.prepare(relative)
    path.write_bytes(b"RIFF")
    stamp = NOW - age_days * DAY
    os.utime(path, (stamp, stamp))
    return path


def test_new_paths_are_dated_safe_and_unique(tmp_path: Path) -> None:
    files = RecordingFiles(tmp_path / "rec")
    first = files.new_path("in/../../etc@x", NOW)
    assert first.startswith(time.strftime("%Y/%m/%d/", time.gmtime(NOW)))
    assert ".." not in first and "@" not in first and first.endswith(".wav")
    assert files.new_path("in", NOW) != files.new_path("in", NOW)
    path = files.prepare(first)
    assert path.parent.is_dir() and path.is_relative_to((tmp_path / "rec").resolve())
    for directory in (tmp_path / "rec", path.parent, path.parent.parent.parent):
        assert directory.stat().st_mode & 0o777 == 0o700, directory


@pytest.mark.parametrize("stored", [
    "../pbx.db", "/etc/passwd", "2026/12/04/../../../../etc/passwd.wav", "2026/12/04/x.txt",
    "2026/12/04/", "", "2026/12/04/a b.wav", "2026\\12\\04\\x.wav",
])
def test_stored_paths_that_are_not_ours_resolve_to_nothing(tmp_path: Path, stored: str) -> None:
    assert RecordingFiles(tmp_path / "rec").resolve(stored) is None


def test_a_symlink_out_of_the_directory_is_not_followed(tmp_path: Path) -> None:
    files = RecordingFiles(tmp_path / "rec")
    (tmp_path / "rec" / "2026" / "12").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "rec" / "2026" / "12" / "04").symlink_to(tmp_path / "outside")
    assert files.resolve("2026/12/04/x.wav") is None


def test_a_directory_that_cannot_be_made_is_an_oserror(tmp_path: Path) -> None:
    (tmp_path / "rec").write_text("a file where the directory should be")
    with pytest.raises(OSError):
        RecordingFiles(tmp_path / "rec").prepare("2026/12/04/x.wav")


def test_retention_deletes_old_files_and_marks_their_cdrs(tmp_path: Path) -> None:
    files = RecordingFiles(tmp_path / "rec")
    old = make(files, "2026/01/01/old.wav", age_days=40)
    stray = make(files, "2026/01/02/stray.wav", age_days=35)  # no CDR links it
    new = make(files, "2026/12/01/new.wav", age_days=2)
    with Database.open(f"sqlite:///{tmp_path / 'pbx.db'}") as db:
        db.cdr_sink().write_cdrs([
            cdr("old", "1001", "2026/01/01/old.wav", NOW - 40 * DAY),
            cdr("new", "1002", "2026/12/01/new.wav", NOW - 2 * DAY),
            cdr("none", "1001", "", NOW - 50 * DAY),
        ])
        store = db.recording_store()
        (newest, oldest) = store.recordings()
        assert (newest.call_id, oldest.call_id) == ("new", "old")
        assert [r.call_id for r in store.recordings(agent="1001")] == ["old"]
        assert store.recording(oldest.cdr_id) == oldest
        assert store.recording(oldest.cdr_id + 100) is None

        assert enforce_retention(files, store, 30, NOW) == (1, 2)
        assert not old.exists() and not stray.exists() and new.exists()
        assert not (tmp_path / "rec" / "2026" / "01").exists()  # empty day dirs go too
        expired = store.recording(oldest.cdr_id)
        assert expired is not None and expired.expired_at == NOW
        assert store.recording(newest.cdr_id).expired_at is None  # type: ignore[union-attr]
        assert enforce_retention(files, store, 30, NOW) == (0, 0)  # nothing twice
        assert enforce_retention(files, store, 0, NOW + 400 * DAY) == (0, 0)  # 0: keep all
        assert new.exists()
