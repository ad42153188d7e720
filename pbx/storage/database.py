"""Opening the PBX database and bringing its schema up to date (L3).

`Database.open(url)` accepts any SQLAlchemy URL the config allows: a SQLite file (the embedded
default; its directory is created, WAL mode and a busy timeout are set on every connection) or
PostgreSQL (``postgresql://`` means the psycopg 3 driver). It then applies the Alembic migrations
shipped inside this package, on the same connection, so an installed PBX needs no alembic.ini.
The repositories it hands out are synchronous and thread-safe: each call uses its own short
transaction, so the asyncio layer calls them from a worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from pbx.storage.agents import SqlAgentDirectory
from pbx.storage.cdr import SqlCdrSink
from pbx.storage.cti import SqlCtiStore, SqlFormStore
from pbx.storage.customers import SqlCustomerDirectory
from pbx.storage.dialer import SqlDialerStore
from pbx.storage.errors import StorageError, storage_errors
from pbx.storage.location import SqlLocationStore
from pbx.storage.queue_log import SqlQueueLog
from pbx.storage.recordings import SqlRecordingStore
from pbx.storage.reports import SqlIntervalStore

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
# Any constant: serialises migrations of several PBX nodes sharing one PostgreSQL database.
_MIGRATION_LOCK_ID = 0x5058_4D49


def normalize_url(url: str) -> URL:
    """Parse `url`; a bare ``postgresql://`` selects psycopg 3 (the driver we install)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL: {exc}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    options: dict[str, Any] = {"echo": echo}
    if _is_sqlite_memory(url):
        # One shared connection, or every checkout would see a different empty database.
        options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        assert url.database is not None
        directory = Path(url.database).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create directory {directory}: {exc.strerror}") from None
        _create_private(Path(url.database).expanduser())
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _create_private(path: Path) -> None:
    # The file holds customer data, CDRs and password hashes: a new one is readable by the
    # PBX's user only (SQLite gives its -wal and -shm files the same mode). An existing file
    # keeps the mode its admin chose.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot create database file {path}: {exc.strerror}") from None


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module (it skips it before SELECT and DDL, so migrations
    # would not be transactional); `_begin_sqlite_transaction` emits it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed txn
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    # Writers take the write lock up front, so the busy timeout applies instead of an
    # immediate SQLITE_BUSY when a read transaction later tries to upgrade.
    immediate = connection.get_execution_options().get("pbx_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine_for(url: str, echo: bool = False) -> Engine:
    """An engine for `url` with the settings this package relies on."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo)
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration's revision: what `Database.open` brings every schema to."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade_schema(engine: Engine) -> None:
    """Apply every migration not yet applied, in one transaction."""
    with engine.execution_options(pbx_write=True).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        command.upgrade(alembic_config(connection), "head")


class Database:
    """The PBX database: opens, migrates and hands out the storage repositories.

    Raises `StorageError` when the database cannot be reached or migrated; the repositories
    raise it when a read or write fails.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(pbx_write=True)

    @classmethod
    def open(cls, url: str, *, echo: bool = False) -> Database:
        """Connect to `url` and migrate its schema to the newest revision."""
        engine = create_engine_for(url, echo)
        try:
            with storage_errors(f"cannot open database {_shown(engine)}"):
                upgrade_schema(engine)
        except StorageError:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        with storage_errors("cannot read the schema revision"), self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def location_store(self) -> SqlLocationStore:
        return SqlLocationStore(self._engine, self._writer)

    def agent_directory(self) -> SqlAgentDirectory:
        return SqlAgentDirectory(self._engine, self._writer)

    def queue_log(self) -> SqlQueueLog:
        return SqlQueueLog(self._engine, self._writer)

    def cdr_sink(self) -> SqlCdrSink:
        return SqlCdrSink(self._engine, self._writer)

    def interval_store(self) -> SqlIntervalStore:
        return SqlIntervalStore(self._engine, self._writer)

    def customer_directory(self) -> SqlCustomerDirectory:
        return SqlCustomerDirectory(self._engine, self._writer)

    def cti_store(self) -> SqlCtiStore:
        return SqlCtiStore(self._engine, self._writer)

    def form_store(self) -> SqlFormStore:
        return SqlFormStore(self._engine, self._writer)

    def dialer_store(self) -> SqlDialerStore:
        return SqlDialerStore(self._engine, self._writer)

    def recording_store(self) -> SqlRecordingStore:
        return SqlRecordingStore(self._engine, self._writer)

    def close(self) -> None:
        """Close every pooled connection. The repositories must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
