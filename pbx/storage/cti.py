"""What the CTI keeps in the database (L3): desktop credentials, sessions, form-save audit.

- `SqlCtiStore` holds the agents' desktop password hashes (``cti_credentials``) and the
  logged-in sessions (``cti_sessions``, by the SHA-256 of their token, so a stolen database
  holds no usable token).
- `SqlFormStore` applies a screen-pop form save: the changed customer attributes and fields
  and one ``form_audit`` row per changed field, all in one transaction, so a save is stored
  whole or not at all. It also reads the audit trail.

Records crossing the boundary are frozen dataclasses defined here. Every method is
synchronous and thread-safe (its own short transaction); raises `StorageError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from pbx.storage.errors import storage_errors
from pbx.storage.models import (
    CtiCredentialRow,
    CtiSessionRow,
    CustomerRow,
    FormAuditRow,
)

# Customer attributes a form save may write, by column (see pbx.config.schema).
_CUSTOMER_COLUMNS = {"name": CustomerRow.name, "status": CustomerRow.status,
                     "language": CustomerRow.language}


@dataclass(frozen=True, slots=True)
class CtiSessionRecord:
    """A stored desktop session (hashes only; times in seconds since the epoch)."""

    token_hash: str
    extension: str
    role: str
    csrf_hash: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field a form save writes. `target` is the field's source (``customer.name``,
    ``customer.fields.contract``, an IVR variable, or ``""`` for a value kept with the call);
    `old_value` is what the caller saw for targets not stored in the customer record (the
    store reads customer values itself, inside the transaction)."""

    field: str
    target: str
    new_value: str
    old_value: str | None = None


@dataclass(frozen=True, slots=True)
class FormAuditEntry:
    """One audited change: who (`agent`), when (`at`), which field, old -> new."""

    at: float
    agent: str
    form: str
    field: str
    target: str
    customer_no: str
    call_id: str
    old_value: str | None
    new_value: str | None


class SqlCtiStore:
    """Credentials and sessions of the agent desktop."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    # ------------------------------------------------------------------ credentials

    def credential_hashes(self) -> dict[str, str]:
        """Extension -> stored password hash."""
        query = select(CtiCredentialRow.extension, CtiCredentialRow.password_hash)
        with storage_errors("cannot read CTI credentials"), self._engine.connect() as conn:
            return {row.extension: row.password_hash for row in conn.execute(query)}

    def credential_hash(self, extension: str) -> str | None:
        query = select(CtiCredentialRow.password_hash).where(
            CtiCredentialRow.extension == extension
        )
        with storage_errors("cannot read CTI credentials"), self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def replace_credentials(self, hashes: Mapping[str, str]) -> None:
        """Make the table hold exactly `hashes` (extension -> hash): changed rows are updated,
        missing ones inserted, others deleted (an agent removed from the configuration can no
        longer log in). The sessions of deleted and of changed rows go with them: a session
        never outlives the password it was opened with."""
        now = datetime.now(UTC)
        with storage_errors("cannot store CTI credentials"), self._writer.begin() as conn:
            stored = {
                row.extension: row.password_hash
                for row in conn.execute(
                    select(CtiCredentialRow.extension, CtiCredentialRow.password_hash)
                )
            }
            gone = [ext for ext in stored if ext not in hashes]
            if gone:
                conn.execute(delete(CtiCredentialRow).where(CtiCredentialRow.extension.in_(gone)))
                conn.execute(delete(CtiSessionRow).where(CtiSessionRow.extension.in_(gone)))
            new = [
                {"extension": ext, "password_hash": value, "updated_at": now}
                for ext, value in hashes.items()
                if ext not in stored
            ]
            if new:
                conn.execute(insert(CtiCredentialRow), new)
            changed = [ext for ext, value in hashes.items()
                       if ext in stored and stored[ext] != value]
            for ext in changed:
                conn.execute(
                    update(CtiCredentialRow)
                    .where(CtiCredentialRow.extension == ext)
                    .values(password_hash=hashes[ext], updated_at=now)
                )
            if changed:
                conn.execute(delete(CtiSessionRow).where(CtiSessionRow.extension.in_(changed)))

    def set_credential(self, extension: str, value: str) -> bool:
        """Store `value` as the hash of `extension` (insert or replace). A replaced hash takes
        the agent's sessions with it, in the same transaction. True when a row was replaced."""
        now = datetime.now(UTC)
        with storage_errors("cannot store CTI credentials"), self._writer.begin() as conn:
            stored = conn.execute(
                select(CtiCredentialRow.password_hash)
                .where(CtiCredentialRow.extension == extension)
            ).scalar_one_or_none()
            if stored is None:
                conn.execute(insert(CtiCredentialRow), [
                    {"extension": extension, "password_hash": value, "updated_at": now}])
                return False
            if stored == value:
                return False
            conn.execute(
                update(CtiCredentialRow)
                .where(CtiCredentialRow.extension == extension)
                .values(password_hash=value, updated_at=now)
            )
            conn.execute(delete(CtiSessionRow).where(CtiSessionRow.extension == extension))
            return True

    # ------------------------------------------------------------------ sessions

    def add_session(self, record: CtiSessionRecord) -> None:
        values = {
            "token_hash": record.token_hash,
            "extension": record.extension,
            "role": record.role,
            "csrf_hash": record.csrf_hash,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
        }
        with storage_errors("cannot store a CTI session"), self._writer.begin() as conn:
            conn.execute(insert(CtiSessionRow), [values])

    def session(self, token_hash: str) -> CtiSessionRecord | None:
        query = select(
            CtiSessionRow.token_hash,
            CtiSessionRow.extension,
            CtiSessionRow.role,
            CtiSessionRow.csrf_hash,
            CtiSessionRow.created_at,
            CtiSessionRow.expires_at,
        ).where(CtiSessionRow.token_hash == token_hash)
        with storage_errors("cannot read a CTI session"), self._engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else CtiSessionRecord(**row._asdict())

    def delete_session(self, token_hash: str) -> bool:
        """Delete one session; True when it existed."""
        statement = delete(CtiSessionRow).where(CtiSessionRow.token_hash == token_hash)
        with storage_errors("cannot delete a CTI session"), self._writer.begin() as conn:
            return bool(conn.execute(statement).rowcount)

    def delete_expired_sessions(self, now: float) -> int:
        statement = delete(CtiSessionRow).where(CtiSessionRow.expires_at <= now)
        with storage_errors("cannot delete CTI sessions"), self._writer.begin() as conn:
            return int(conn.execute(statement).rowcount or 0)


class SqlFormStore:
    """`FormStore`: applies form saves with their audit trail; reads the audit trail."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    def save(
        self,
        changes: Sequence[FieldChange],
        *,
        agent: str,
        form: str,
        at: float,
        customer_no: str = "",
        call_id: str = "",
    ) -> list[FormAuditEntry]:
        """Apply `changes` in one transaction and audit every field whose value changed.

        Customer targets (``customer.*``) need `customer_no`; their old values are read inside
        the transaction. Unchanged values are neither written nor audited. Returns the audit
        entries written. Raises LookupError (and changes nothing) when the customer does not
        exist, ValueError for a customer target that is not writable.
        """
        entries: list[FormAuditEntry] = []
        with storage_errors("cannot save the form"), self._writer.begin() as conn:
            customer: dict[str, Any] | None = None
            if any(change.target.startswith("customer.") for change in changes):
                row = conn.execute(
                    select(CustomerRow.id, *_CUSTOMER_COLUMNS.values(), CustomerRow.fields)
                    .where(CustomerRow.customer_no == customer_no)
                ).one_or_none()
                if row is None:
                    raise LookupError(f"no customer {customer_no!r}")
                customer = row._asdict()
                customer["fields"] = dict(customer["fields"] or {})
            updates: dict[str, Any] = {}
            for change in changes:
                old = change.old_value
                if change.target.startswith("customer."):
                    assert customer is not None
                    old = _apply_customer_change(customer, updates, change)
                if old == change.new_value:
                    continue
                entries.append(
                    FormAuditEntry(at, agent, form, change.field, change.target, customer_no,
                                   call_id, old, change.new_value)
                )
            if updates and customer is not None:
                updates["updated_at"] = datetime.fromtimestamp(at, UTC)
                conn.execute(
                    update(CustomerRow).where(CustomerRow.id == customer["id"]).values(**updates)
                )
            if entries:
                conn.execute(insert(FormAuditRow), [_audit_row(entry) for entry in entries])
        return entries

    def audit_entries(
        self, *, customer_no: str | None = None, call_id: str | None = None, limit: int = 100
    ) -> list[FormAuditEntry]:
        """Audit rows (of one customer and/or call), newest first."""
        query = select(
            FormAuditRow.at,
            FormAuditRow.agent,
            FormAuditRow.form,
            FormAuditRow.field,
            FormAuditRow.target,
            FormAuditRow.customer_no,
            FormAuditRow.call_id,
            FormAuditRow.old_value,
            FormAuditRow.new_value,
        )
        if customer_no is not None:
            query = query.where(FormAuditRow.customer_no == customer_no)
        if call_id is not None:
            query = query.where(FormAuditRow.call_id == call_id)
        query = query.order_by(FormAuditRow.id.desc()).limit(limit)
        with storage_errors("cannot read the form audit"), self._engine.connect() as conn:
            return [FormAuditEntry(**row._asdict()) for row in conn.execute(query)]


def _apply_customer_change(
    customer: dict[str, Any], updates: dict[str, Any], change: FieldChange
) -> str | None:
    # Record the new value in `updates` (column -> value) and return the old one.
    rest = change.target.removeprefix("customer.")
    if rest.startswith("fields."):
        key = rest.removeprefix("fields.")
        fields: dict[str, str] = customer["fields"]
        old = fields.get(key)
        fields[key] = change.new_value
        if old != change.new_value:
            updates["fields"] = dict(fields)
        return old
    if rest not in _CUSTOMER_COLUMNS:
        raise ValueError(f"{change.target} cannot be written")
    old_value: str = customer[rest]
    if old_value != change.new_value:
        customer[rest] = change.new_value
        updates[rest] = change.new_value
    return old_value


def _audit_row(entry: FormAuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "agent": entry.agent,
        "form": entry.form,
        "field": entry.field,
        "target": entry.target,
        "customer_no": entry.customer_no,
        "call_id": entry.call_id,
        "old_value": entry.old_value,
        "new_value": entry.new_value,
    }
