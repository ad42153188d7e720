"""The customer directory in the database: `CustomerDirectory` over SQLAlchemy (L3).

A customer is one ``customers`` row plus three ordered lists in their own tables (phone numbers,
groups, pinned agents), so the IVR can find a caller by number with an index. Reads load a set
of customers with four queries (rows, then each list for the same ids), whatever their number;
`upsert_customers` writes a batch in one transaction and touches only customers that changed,
so ``updated_at`` keeps meaning "last changed".

The configuration's seed goes through `seed`, which inserts what is missing and never overwrites
an edit: it remembers the digest of what it wrote (``seed_digest``) and updates a record from a
changed seed only while the record still is exactly what the seed wrote. The admin API and the
CSV import go through `apply_patches` (merge with `pbx.customers.records.apply`, one
transaction, a dry run writes nothing), `create_customer` and `replace_customer`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from pbx.customers import records
from pbx.customers.records import CustomerPatch, ImportOutcome, RecordRefused
from pbx.repositories import Customer
from pbx.storage.errors import storage_errors
from pbx.storage.models import (
    CustomerGroupRow,
    CustomerPhoneRow,
    CustomerPinnedAgentRow,
    CustomerRow,
)

# Bound parameters per IN (…) list; far below SQLite's and PostgreSQL's limits.
_CHUNK = 500

_COLUMNS = (
    CustomerRow.id,
    CustomerRow.customer_no,
    CustomerRow.name,
    CustomerRow.status,
    CustomerRow.language,
    CustomerRow.fields,
)
# (table, column holding the value, Customer attribute)
_LISTS: tuple[tuple[type[Any], str, str], ...] = (
    (CustomerPhoneRow, "phone", "phone_numbers"),
    (CustomerGroupRow, "group_name", "groups"),
    (CustomerPinnedAgentRow, "extension", "pinned_agents"),
)


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    """What `SqlCustomerDirectory.seed` did: customer numbers inserted, updated from a changed
    seed, and kept because someone edited them since the seed wrote them (or they did not
    come from the seed)."""

    inserted: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


class CustomerExists(Exception):
    """`create_customer` found the customer number taken."""


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _row(customer: Customer) -> dict[str, Any]:
    return {
        "customer_no": customer.customer_no,
        "name": customer.name,
        "status": customer.status,
        "language": customer.language,
        "fields": dict(customer.fields),
    }


def _normalised(customer: Customer) -> Customer:
    # What a read gives back: plain dict fields, tuples for the lists.
    return Customer(
        customer_no=customer.customer_no,
        name=customer.name,
        phone_numbers=tuple(customer.phone_numbers),
        status=customer.status,
        language=customer.language,
        groups=tuple(customer.groups),
        pinned_agents=tuple(customer.pinned_agents),
        fields=dict(customer.fields),
    )


class SqlCustomerDirectory:
    """`CustomerDirectory` on the ``customers`` tables. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    # ------------------------------------------------------------------ reads

    def by_number(self, customer_no: str) -> Customer | None:
        ids = select(CustomerRow.id).where(CustomerRow.customer_no == customer_no)
        with storage_errors("cannot look up a customer"), self._engine.connect() as conn:
            found = self._load(conn, ids)
        return found[0] if found else None

    def by_phone(self, phone: str) -> Customer | None:
        """The customer with this phone number; None when no customer, or several, have it
        (a shared number must not show one customer's data for another's call)."""
        ids = select(CustomerPhoneRow.customer_id).where(CustomerPhoneRow.phone == phone)
        with storage_errors("cannot look up a customer"), self._engine.connect() as conn:
            found = self._load(conn, ids.distinct())
        return found[0] if len(found) == 1 else None

    def list_customers(self, group: str | None = None) -> list[Customer]:
        """Every customer (or those in `group`), by customer number."""
        ids: Select[Any] = select(CustomerRow.id)
        if group is not None:
            ids = select(CustomerGroupRow.customer_id).where(CustomerGroupRow.group_name == group)
        with storage_errors("cannot list customers"), self._engine.connect() as conn:
            return self._load(conn, ids)

    def search_customers(
        self, text: str, limit: int = 20,
        match: Collection[str] = ("customer_no", "phone", "name"),
    ) -> list[Customer]:
        """Customers whose number or phone number starts with `text`, or whose name contains
        it (case-insensitive), by customer number; at most `limit`. `match` narrows which of
        the three are compared (the CTI passes only what the asking agent may see)."""
        needle = text.strip()
        if not needle or not match:
            return []
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        by_phone = select(CustomerPhoneRow.customer_id).where(
            CustomerPhoneRow.phone.like(f"{escaped}%", escape="\\")
        )
        tests: list[ColumnElement[bool]] = []
        if "customer_no" in match:
            tests.append(CustomerRow.customer_no.like(f"{escaped}%", escape="\\"))
        if "name" in match:
            tests.append(func.lower(CustomerRow.name).like(f"%{escaped.lower()}%", escape="\\"))
        if "phone" in match:
            tests.append(CustomerRow.id.in_(by_phone))
        if not tests:
            return []
        ids: Select[Any] = (
            select(CustomerRow.id)
            .where(or_(*tests))
            .order_by(CustomerRow.customer_no)
            .limit(limit)
        )
        with storage_errors("cannot search customers"), self._engine.connect() as conn:
            return self._load(conn, ids)

    def count(self) -> int:
        with storage_errors("cannot count customers"), self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(CustomerRow)).scalar_one())

    # ------------------------------------------------------------------ writes

    def upsert_customers(self, customers: Sequence[Customer]) -> None:
        """Insert new customers and replace changed ones (matched by customer number), in one
        transaction. Customers not in `customers` stay. Raises ValueError when two records
        share a customer number."""
        wanted = {customer.customer_no: _normalised(customer) for customer in customers}
        if len(wanted) != len(customers):
            raise ValueError("two customer records share a customer number")
        if not wanted:
            return
        now = datetime.now(UTC)
        with storage_errors("cannot store customers"), self._writer.begin() as conn:
            stored = self._stored(conn, list(wanted))
            new = [c for no, c in wanted.items() if no not in stored]
            changed = {
                stored[no][0]: c for no, c in wanted.items() if no in stored and stored[no][1] != c
            }
            self._write(conn, new, changed, now)

    def seed(self, customers: Sequence[Customer]) -> SeedOutcome:
        """Bring the configuration's customers in (see the module docstring), in one
        transaction. Raises ValueError when two share a customer number."""
        wanted = {customer.customer_no: _normalised(customer) for customer in customers}
        if len(wanted) != len(customers):
            raise ValueError("two customer records share a customer number")
        if not wanted:
            return SeedOutcome()
        now = datetime.now(UTC)
        inserted: list[str] = []
        updated: list[str] = []
        kept: list[str] = []
        with storage_errors("cannot store customers"), self._writer.begin() as conn:
            stored = self._stored(conn, list(wanted))
            digests = self._seed_digests(conn, list(stored))
            new = [c for no, c in wanted.items() if no not in stored]
            changed: dict[int, Customer] = {}
            adopt: dict[int, str] = {}
            for no, seed in wanted.items():
                if no not in stored:
                    continue
                row_id, current = stored[no]
                seeded, now_digest = records.digest(seed), records.digest(current)
                if now_digest == seeded:
                    if digests.get(no) != seeded:
                        adopt[row_id] = seeded  # identical: from now on the seed's record
                elif digests.get(no) == now_digest:
                    changed[row_id] = seed  # untouched since seeded: the new seed applies
                    updated.append(no)
                else:
                    kept.append(no)
            ids = self._write(conn, new, changed, now)
            inserted = [c.customer_no for c in new]
            marks = {ids[c.customer_no]: records.digest(c) for c in new}
            marks.update({i: records.digest(c) for i, c in changed.items()})
            marks.update(adopt)
            if marks:
                conn.execute(
                    update(CustomerRow).where(CustomerRow.id == bindparam("row_id")),
                    [{"row_id": i, "seed_digest": d} for i, d in marks.items()],
                )
        return SeedOutcome(tuple(inserted), tuple(updated), tuple(kept))

    def apply_patches(self, patches: Sequence[tuple[int, CustomerPatch]], *,
                      extra_groups: Sequence[str] = (), dry_run: bool = False) -> ImportOutcome:
        """Merge each patch (with the line it came from) into the stored customer, or create
        it, in one transaction; nothing is written when `dry_run`. A patch that cannot apply
        (a new customer without a name) is rejected with its line, the others go on."""
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        rejected: list[tuple[int, str, str]] = []
        now = datetime.now(UTC)
        numbers = [patch.customer_no for _, patch in patches]
        if len(set(numbers)) != len(numbers):
            raise ValueError("two records share a customer number")
        with storage_errors("cannot store customers"), self._writer.begin() as conn:
            stored = self._stored(conn, numbers)
            new: list[Customer] = []
            changed: dict[int, Customer] = {}
            for line, patch in patches:
                row_id, current = stored.get(patch.customer_no, (None, None))
                try:
                    merged = _normalised(records.apply(current, patch, extra_groups))
                except RecordRefused as exc:
                    rejected.append((line, patch.customer_no, str(exc)))
                    continue
                if current is None:
                    new.append(merged)
                    created.append(merged.customer_no)
                elif records.same(current, merged):
                    unchanged.append(merged.customer_no)
                else:
                    assert row_id is not None
                    changed[row_id] = merged
                    updated.append(merged.customer_no)
            if not dry_run:
                self._write(conn, new, changed, now)
        return ImportOutcome(tuple(created), tuple(updated), tuple(unchanged), tuple(rejected))

    def create_customer(self, customer: Customer) -> None:
        """Insert a new customer; `CustomerExists` when the number is taken."""
        customer = _normalised(customer)
        with storage_errors("cannot store a customer"), self._writer.begin() as conn:
            if self._stored(conn, [customer.customer_no]):
                raise CustomerExists(customer.customer_no)
            self._write(conn, [customer], {}, datetime.now(UTC))

    def replace_customer(self, customer: Customer) -> bool:
        """Store `customer` whole (created or replaced); True when it was created."""
        customer = _normalised(customer)
        with storage_errors("cannot store a customer"), self._writer.begin() as conn:
            stored = self._stored(conn, [customer.customer_no])
            if not stored:
                self._write(conn, [customer], {}, datetime.now(UTC))
                return True
            row_id, current = stored[customer.customer_no]
            if not records.same(current, customer):
                self._write(conn, [], {row_id: customer}, datetime.now(UTC))
            return False

    def _write(self, conn: Connection, new: list[Customer], changed: dict[int, Customer],
               now: datetime) -> dict[str, int]:
        # Insert `new`, replace `changed` (row id -> record); the new rows' ids by number.
        ids = self._insert(conn, new, now)
        if changed:
            conn.execute(
                update(CustomerRow).where(CustomerRow.id == bindparam("row_id")),
                [{**_row(c), "row_id": i, "updated_at": now} for i, c in changed.items()],
            )
            for table, _, _ in _LISTS:
                conn.execute(delete(table).where(table.customer_id.in_(list(changed))))
        self._insert_lists(conn, {**{ids[c.customer_no]: c for c in new}, **changed})
        return ids

    @staticmethod
    def _seed_digests(conn: Connection, customer_nos: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for chunk in _chunks(customer_nos):
            query = select(CustomerRow.customer_no, CustomerRow.seed_digest).where(
                CustomerRow.customer_no.in_(chunk))
            out.update({no: d for no, d in conn.execute(query)})
        return out

    def delete_customers(self, customer_nos: Sequence[str]) -> int:
        """Delete these customers (and their lists); returns how many existed."""
        deleted = 0
        with storage_errors("cannot delete customers"), self._writer.begin() as conn:
            for chunk in _chunks(list(dict.fromkeys(customer_nos))):
                ids = [
                    row.id
                    for row in conn.execute(
                        select(CustomerRow.id).where(CustomerRow.customer_no.in_(chunk))
                    )
                ]
                # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign_keys on.
                for table, _, _ in _LISTS:
                    conn.execute(delete(table).where(table.customer_id.in_(ids)))
                conn.execute(delete(CustomerRow).where(CustomerRow.id.in_(ids)))
                deleted += len(ids)
        return deleted

    # ------------------------------------------------------------------ helpers

    def _stored(self, conn: Connection, customer_nos: list[str]) -> dict[str, tuple[int, Customer]]:
        out: dict[str, tuple[int, Customer]] = {}
        for chunk in _chunks(customer_nos):
            ids = select(CustomerRow.id).where(CustomerRow.customer_no.in_(chunk))
            for row_id, customer in self._load_with_ids(conn, ids):
                out[customer.customer_no] = (row_id, customer)
        return out

    @staticmethod
    def _insert(conn: Connection, customers: list[Customer], now: datetime) -> dict[str, int]:
        # Customer number -> new row id (RETURNING works with executemany on both backends).
        if not customers:
            return {}
        rows = [{**_row(customer), "updated_at": now} for customer in customers]
        statement = insert(CustomerRow).returning(CustomerRow.customer_no, CustomerRow.id)
        return {customer_no: row_id for customer_no, row_id in conn.execute(statement, rows)}

    @staticmethod
    def _insert_lists(conn: Connection, customers: dict[int, Customer]) -> None:
        for table, column, attribute in _LISTS:
            rows = [
                {"customer_id": row_id, "position": position, column: value}
                for row_id, customer in customers.items()
                for position, value in enumerate(getattr(customer, attribute))
            ]
            if rows:
                conn.execute(insert(table), rows)

    def _load(self, conn: Connection, ids: Select[Any]) -> list[Customer]:
        return [customer for _, customer in self._load_with_ids(conn, ids)]

    @staticmethod
    def _load_with_ids(conn: Connection, ids: Select[Any]) -> list[tuple[int, Customer]]:
        # `ids` selects customer ids; it is used as a subquery, so no id list crosses the wire.
        query = select(*_COLUMNS).where(CustomerRow.id.in_(ids)).order_by(CustomerRow.customer_no)
        found = {row.id: row for row in conn.execute(query)}
        lists: dict[str, dict[int, list[str]]] = {}
        for table, column, attribute in _LISTS:
            by_customer: dict[int, list[str]] = {}
            list_query = (
                select(table.customer_id, getattr(table, column))
                .where(table.customer_id.in_(ids))
                .order_by(table.customer_id, table.position)
            )
            for customer_id, value in conn.execute(list_query):
                by_customer.setdefault(customer_id, []).append(value)
            lists[attribute] = by_customer
        return [
            (
                row_id,
                Customer(
                    customer_no=row.customer_no,
                    name=row.name,
                    phone_numbers=tuple(lists["phone_numbers"].get(row_id, ())),
                    status=row.status,
                    language=row.language,
                    groups=tuple(lists["groups"].get(row_id, ())),
                    pinned_agents=tuple(lists["pinned_agents"].get(row_id, ())),
                    fields=dict(row.fields or {}),
                ),
            )
            for row_id, row in found.items()
        ]
