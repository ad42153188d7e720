"""Alembic environment of the PBX database.

`pbx.storage.database` runs migrations programmatically: it builds an Alembic `Config` in code
and hands over an open connection in ``config.attributes["connection"]``; no alembic.ini is
needed. For a developer's ``alembic`` command line (``revision --autogenerate``) a URL in the
``sqlalchemy.url`` option works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from pbx.storage.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
