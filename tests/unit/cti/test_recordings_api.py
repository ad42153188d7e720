"""Who may list and play recordings (`pbx.cti.recordings`), over real sessions and tokens on a
SQLite file: agents are refused unless ``recording.agents_may_listen``, and then hear only their
own calls; tokens need the ``recordings`` scope; an expired recording is 410."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pbx.config import PbxConfig
from pbx.cti.auth import CtiAuth
from pbx.cti.recordings import RecordingAccess, recording_routes
from pbx.cti.tokens import load_api_tokens
from pbx.repositories import CallDetailRecord
from pbx.storage import Database
from pbx.storage.recordings import RecordingFiles
from tests.unit.cti.fakes import config as make_config

NOW = 1_790_000_000.0
REC = "2026/12/04/120000-in-abcd.wav"


def client(tmp_path: Path, agents_may_listen: bool) -> tuple[TestClient, Database, int]:
    base = make_config()
    data = base.model_dump()
    data["recording"] = {"agents_may_listen": agents_may_listen}
    data["http"]["api_tokens"] = [
        {"name": "player", "scopes": ["recordings"],
         "token_sha256": hashlib.sha256(b"player-token").hexdigest()},
        {"name": "reporter", "scopes": ["cdrs"],
         "token_sha256": hashlib.sha256(b"reporter-token").hexdigest()},
    ]
    config = PbxConfig.model_validate(data)
    db = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    files = RecordingFiles(tmp_path / "rec")
    files.prepare(REC).write_bytes(b"RIFF....WAVE")
    db.cdr_sink().write_cdr(CallDetailRecord(
        call_id="c1", direction="inbound", caller="+4917", callee="1001", started_at=NOW,
        answered_at=NOW, ended_at=NOW + 60, disposition="answered", agent="1001",
        queue="support", recording=REC))
    (ref,) = db.recording_store().recordings()
    auth = CtiAuth(config, db.cti_store(), lambda: NOW)
    access = RecordingAccess(config, auth, load_api_tokens(config))
    app = Starlette(routes=recording_routes(config, db.recording_store(), files, access))
    return TestClient(app), db, ref.cdr_id


def session_of(test: TestClient, db: Database, extension: str, password: str) -> dict[str, str]:
    config = make_config()
    auth = CtiAuth(config, db.cti_store(), lambda: NOW)
    issued = auth.login(extension, password, "10.0.0.1")
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def open_to_agents(tmp_path: Path):  # type: ignore[no-untyped-def]
    test, db, cdr_id = client(tmp_path, agents_may_listen=True)
    yield test, db, cdr_id
    db.close()


def test_who_may_listen_when_agents_may(open_to_agents) -> None:  # type: ignore[no-untyped-def]
    test, db, cdr_id = open_to_agents
    url = f"/api/recordings/{cdr_id}"
    assert test.get(url).status_code == 401
    assert test.get(url, headers={"Authorization": "Bearer reporter-token"}).status_code == 403
    answer = test.get(url, headers={"Authorization": "Bearer player-token"})
    assert answer.status_code == 200 and answer.content == b"RIFF....WAVE"
    assert answer.headers["content-type"] == "audio/wav"
    assert test.get(url, headers=session_of(test, db, "1001", "pw-anna-1001")).status_code == 200
    ben = session_of(test, db, "1002", "pw-ben-1002")
    assert test.get(url, headers=ben).status_code == 404  # not Ben's call
    assert test.get("/api/recordings", headers=ben).json() == {"recordings": []}
    clara = session_of(test, db, "1003", "pw-clara-1003")  # a supervisor
    assert test.get(url, headers=clara).status_code == 200
    (row,) = test.get("/api/recordings", headers=clara).json()["recordings"]
    assert row["url"] == url and row["agent"] == "1001"


def test_agents_are_refused_unless_allowed(tmp_path: Path) -> None:
    test, db, cdr_id = client(tmp_path, agents_may_listen=False)
    try:
        anna = session_of(test, db, "1001", "pw-anna-1001")
        assert test.get(f"/api/recordings/{cdr_id}", headers=anna).status_code == 403
        assert test.get("/api/recordings", headers=anna).status_code == 403
        dora = session_of(test, db, "1004", "pw-dora-1004")  # an admin
        assert test.get(f"/api/recordings/{cdr_id}", headers=dora).status_code == 200
    finally:
        db.close()


def test_bad_ids_missing_files_and_expired_recordings(open_to_agents) -> None:  # type: ignore[no-untyped-def]
    test, db, cdr_id = open_to_agents
    player = {"Authorization": "Bearer player-token"}
    for bad in ("abc", "-1", "1e3", "..%2Fpbx.db", "9" * 30, "%C2%B2", str(cdr_id + 1)):
        assert test.get(f"/api/recordings/{bad}", headers=player).status_code == 404, bad
    assert test.post(f"/api/recordings/{cdr_id}", headers=player).status_code == 405
    db.recording_store().expire(NOW + 3600, NOW + 3600)
    answer = test.get(f"/api/recordings/{cdr_id}", headers=player)
    assert answer.status_code == 410 and "retention" in answer.json()["error"]
    (row,) = test.get("/api/recordings", headers=player).json()["recordings"]
    assert row["url"] is None and row["expired"] is True
