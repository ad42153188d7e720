"""Registrar bindings in the database: `LocationStore` over SQLAlchemy (L3).

The registrar keeps its bindings in memory and writes changes behind, in batches of whole AORs:
`replace_bindings` deletes the stored rows of every AOR in the batch and inserts the new ones,
all in one transaction, with chunked ``DELETE … WHERE aor IN (…)`` statements and one
executemany ``INSERT`` — a few statements per thousand AORs, whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from pbx.repositories import Binding
from pbx.storage.errors import storage_errors
from pbx.storage.models import RegistrationRow

# Bound parameters per DELETE; far below SQLite's and PostgreSQL's limits.
_DELETE_CHUNK = 500

_COLUMNS = (
    RegistrationRow.aor,
    RegistrationRow.contact,
    RegistrationRow.expires_at,
    RegistrationRow.call_id,
    RegistrationRow.cseq,
    RegistrationRow.q,
    RegistrationRow.source_transport,
    RegistrationRow.source_host,
    RegistrationRow.source_port,
    RegistrationRow.user_agent,
    RegistrationRow.instance_id,
    RegistrationRow.reg_id,
    RegistrationRow.path,
)


def _row(binding: Binding) -> dict[str, Any]:
    return {column.key: getattr(binding, column.key) for column in _COLUMNS}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqlLocationStore:
    """`LocationStore` on the ``registrations`` table. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def load_bindings(self) -> list[Binding]:
        """Every stored binding (expired ones too: the caller knows what time it is)."""
        query = select(*_COLUMNS).order_by(RegistrationRow.aor, RegistrationRow.id)
        with storage_errors("cannot load registrations"), self._engine.connect() as conn:
            return [Binding(**row._asdict()) for row in conn.execute(query)]

    def replace_bindings(self, changes: Mapping[str, Sequence[Binding]]) -> None:
        """Make the stored bindings of each AOR in `changes` exactly the given ones.

        An empty sequence deletes the AOR's bindings. Raises ValueError, before writing
        anything, when a binding's `aor` is not the key it is filed under.
        """
        rows = []
        for aor, bindings in changes.items():
            for binding in bindings:
                if binding.aor != aor:
                    raise ValueError(f"binding of {binding.aor!r} filed under {aor!r}")
                rows.append(_row(binding))
        if not changes:
            return
        with storage_errors("cannot store registrations"), self._writer.begin() as conn:
            for chunk in _chunks(list(changes), _DELETE_CHUNK):
                conn.execute(delete(RegistrationRow).where(RegistrationRow.aor.in_(chunk)))
            if rows:
                conn.execute(insert(RegistrationRow), rows)

    def count(self) -> int:
        """How many bindings are stored (for stats and tests)."""
        with storage_errors("cannot count registrations"), self._engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(RegistrationRow)) or 0
