"""Storage on a real SQLite file: migrations, repositories, reopening, concurrency."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pbx.storage import Database, StorageError
from pbx.storage.database import head_revision
from pbx.storage.models import Base
from tests.unit.storage.storage_contract import CHECKS, agent, binding, cdr


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "pbx.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{db_path}")
    yield database
    database.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_contract(db: Database, check: Callable[[Database], None]) -> None:
    check(db)


def test_open_creates_directory_and_uses_wal(db: Database, db_path: Path) -> None:
    assert db_path.is_file()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"agents", "registrations", "cdr", "alembic_version"} <= tables
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_migrated_schema_matches_models(db: Database) -> None:
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_reopening_keeps_data_and_does_not_migrate_again(db_path: Path) -> None:
    first = Database.open(f"sqlite:///{db_path}")
    first.location_store().replace_bindings({"sip:1001@h": [binding("sip:1001@h", "sip:a@1")]})
    first.agent_directory().sync_agents([agent("1001")])
    first.cdr_sink().write_cdr(cdr("call-1"))
    first.close()

    again = Database.open(f"sqlite:///{db_path}")
    try:
        assert again.schema_revision() == head_revision()
        assert again.location_store().load_bindings() == [binding("sip:1001@h", "sip:a@1")]
        assert again.agent_directory().list_agents() == [agent("1001")]
        assert again.cdr_sink().recent_cdrs() == [cdr("call-1")]
    finally:
        again.close()


def test_relative_sqlite_path_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Database.open("sqlite:///var/pbx.db") as database:
        assert database.schema_revision() == head_revision()
    assert (tmp_path / "var" / "pbx.db").is_file()


def test_in_memory_database_works_across_threads() -> None:
    with Database.open("sqlite://") as database:
        store = database.location_store()
        worker = threading.Thread(
            target=store.replace_bindings, args=({"sip:1@h": [binding("sip:1@h", "sip:a@1")]},)
        )
        worker.start()
        worker.join()
        assert store.count() == 1


def test_concurrent_writers_from_worker_threads(db: Database) -> None:
    store = db.location_store()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for batch in range(20):
                aors = [f"sip:{worker}-{batch}-{n}@h" for n in range(50)]
                store.replace_bindings({aor: [binding(aor, "sip:x@1")] for aor in aors})
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 4 * 20 * 50


def test_failed_batch_writes_nothing(db: Database) -> None:
    store = db.location_store()
    store.replace_bindings({"sip:1@h": [binding("sip:1@h", "sip:a@1")]})
    broken = binding("sip:2@h", "sip:b@1", call_id=None)  # NOT NULL violation
    with pytest.raises(StorageError):
        store.replace_bindings({"sip:1@h": [], "sip:2@h": [broken]})
    assert store.load_bindings() == [binding("sip:1@h", "sip:a@1")]


def test_unreachable_database_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot create directory"):
        Database.open(f"sqlite:///{blocker}/pbx.db")


def test_not_a_database_file_is_a_storage_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StorageError, match="cannot open database"):
        Database.open(f"sqlite:///{junk}")


def test_invalid_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="invalid database URL"):
        Database.open("not a url")
