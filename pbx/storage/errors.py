"""The one error the storage package raises (L3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from pbx.errors import PbxError


class StorageError(PbxError):
    """The database could not be opened, migrated, read or written."""


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Turn SQLAlchemy's errors into a `StorageError` that says what we were doing."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"{action}: {_reason(exc)}") from exc


def _reason(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    lines = str(original if original is not None else exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
