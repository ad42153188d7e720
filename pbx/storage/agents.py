"""Agents from the configuration, mirrored into the database: `AgentDirectory` (L3).

`sync_agents` makes the ``agents`` table equal to the configuration: new agents are inserted,
changed ones updated, agents no longer configured are kept but disabled (their CDRs still name
them). Rows are only touched when something changed, so ``updated_at`` says when an agent's
configuration last changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from pbx.repositories import AgentRecord
from pbx.storage.errors import storage_errors
from pbx.storage.models import AgentRow

_COLUMNS = (
    AgentRow.extension,
    AgentRow.name,
    AgentRow.role,
    AgentRow.ha1_md5,
    AgentRow.ha1_sha256,
    AgentRow.enabled,
)


def _values(agent: AgentRecord) -> dict[str, Any]:
    return {
        "extension": agent.extension,
        "name": agent.name,
        "role": agent.role,
        "ha1_md5": agent.password_ha1_md5,
        "ha1_sha256": agent.password_ha1_sha256,
        "enabled": agent.enabled,
    }


def _record(values: dict[str, Any]) -> AgentRecord:
    return AgentRecord(
        extension=values["extension"],
        name=values["name"],
        role=values["role"],
        password_ha1_md5=values["ha1_md5"],
        password_ha1_sha256=values["ha1_sha256"],
        enabled=bool(values["enabled"]),
    )


class SqlAgentDirectory:
    """`AgentDirectory` on the ``agents`` table. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def sync_agents(self, agents: Sequence[AgentRecord]) -> None:
        """Insert, update and disable rows so the table matches `agents`, in one transaction.

        Raises ValueError when two records share an extension.
        """
        wanted = {agent.extension: _values(agent) for agent in agents}
        if len(wanted) != len(agents):
            raise ValueError("two agent records share an extension")
        now = datetime.now(UTC)
        with storage_errors("cannot synchronise agents"), self._writer.begin() as conn:
            stored = {row["extension"]: row for row in self._rows(conn)}
            new = [
                {**values, "updated_at": now} for ext, values in wanted.items() if ext not in stored
            ]
            if new:
                conn.execute(insert(AgentRow), new)
            for extension, values in wanted.items():
                if extension in stored and stored[extension] != values:
                    self._update(conn, extension, {**values, "updated_at": now})
            for extension, values in stored.items():
                if extension not in wanted and values["enabled"]:
                    self._update(conn, extension, {"enabled": False, "updated_at": now})

    def list_agents(self) -> list[AgentRecord]:
        """Every agent ever configured, by extension; removed ones have enabled=False."""
        with storage_errors("cannot list agents"), self._engine.connect() as conn:
            return [_record(values) for values in self._rows(conn)]

    @staticmethod
    def _rows(conn: Connection) -> list[dict[str, Any]]:
        query = select(*_COLUMNS).order_by(AgentRow.extension)
        return [{**row._asdict(), "enabled": bool(row.enabled)} for row in conn.execute(query)]

    @staticmethod
    def _update(conn: Connection, extension: str, values: dict[str, Any]) -> None:
        conn.execute(update(AgentRow).where(AgentRow.extension == extension).values(**values))
