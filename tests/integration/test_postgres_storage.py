"""Storage on a real PostgreSQL server, started in a temporary directory for this module.

The server runs as the ``postgres`` user when the tests run as root (PostgreSQL refuses root),
listens on 127.0.0.1 on a port picked at run time plus a Unix socket in its directory, and is
stopped afterwards. Every test gets a fresh database on it and runs the same contract as the
SQLite unit tests (tests/unit/storage/storage_contract.py).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pbx.storage import Database, StorageError
from pbx.storage.database import head_revision
from pbx.storage.models import Base
from tests.unit.storage.storage_contract import CHECKS, agent, binding, cdr

pytestmark = pytest.mark.integration

_database_numbers = itertools.count(1)


def _postgres_bindir() -> Path | None:
    # Debian installs each major version side by side; take the newest.
    found = list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        return None

    def major(path: Path) -> int:
        version = path.parent.parent.name
        return int(version) if version.isdigit() else 0

    return max(found, key=major).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster; `url(db)` gives a SQLAlchemy URL for one database."""

    bindir: Path
    workdir: Path
    port: int = 0
    as_user: tuple[str, ...] = ()

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def run(self, *args: str) -> None:
        result = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            detail = result.stderr or result.stdout
            server_log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {detail}\n{server_log}")

    def init(self) -> None:
        self.run(
            str(self.bindir / "initdb"),
            "-D", str(self.datadir),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        # A port picked now may be taken before the server binds it; try a few.
        for _attempt in range(5):
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.workdir}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self.run(
                    str(self.bindir / "pg_ctl"),
                    "-D", str(self.datadir),
                    "-l", str(self.log),
                    "-o", options,
                    "-w", "-t", "60",
                    "start",
                )  # fmt: skip
                return
            except RuntimeError as exc:
                if "could not bind" not in str(exc) and "in use" not in str(exc):
                    raise
        raise RuntimeError("no free port for PostgreSQL")

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "stop")

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"pbx_test_{next(_database_numbers)}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


def _start_server() -> PostgresServer:
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (`make system-deps` installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="pbx-pg-"))
    server = PostgresServer(bindir, workdir)
    if os.geteuid() == 0:
        # PostgreSQL will not run as root: hand the directory to the postgres user.
        owner = pwd.getpwnam("postgres")
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
        server.as_user = ("runuser", "-u", "postgres", "--")
    try:
        server.init()
        server.start()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = _start_server()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def db_url(postgres: PostgresServer) -> str:
    return postgres.url(postgres.create_database())


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.open(db_url)
    yield database
    database.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_contract(db: Database, check: Callable[[Database], None]) -> None:
    check(db)


def test_uses_postgresql_with_psycopg(db: Database) -> None:
    assert db.dialect == "postgresql"
    assert db.engine.url.drivername == "postgresql+psycopg"


def test_migrated_schema_matches_models(db: Database) -> None:
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_reopening_keeps_data(db_url: str) -> None:
    with Database.open(db_url) as first:
        first.location_store().replace_bindings({"sip:1@h": [binding("sip:1@h", "sip:a@1")]})
        first.agent_directory().sync_agents([agent("1001")])
        first.cdr_sink().write_cdr(cdr("call-1"))
    with Database.open(db_url) as again:
        assert again.schema_revision() == head_revision()
        assert again.location_store().load_bindings() == [binding("sip:1@h", "sip:a@1")]
        assert again.agent_directory().list_agents() == [agent("1001")]
        assert again.cdr_sink().recent_cdrs() == [cdr("call-1")]


def test_nodes_starting_together_migrate_once(db_url: str) -> None:
    opened: list[Database] = []
    errors: list[BaseException] = []

    def open_database() -> None:
        try:
            opened.append(Database.open(db_url))
        except BaseException as exc:  # collected and asserted in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=open_database) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert {database.schema_revision() for database in opened} == {head_revision()}
    finally:
        for database in opened:
            database.close()


def test_unreachable_server_is_a_storage_error(postgres: PostgresServer) -> None:
    url = f"postgresql://postgres@127.0.0.1:{postgres.port}/no_such_database"
    with pytest.raises(StorageError, match=re.escape("cannot open database")):
        Database.open(url)
