"""The customer directory in the database: `CustomerDirectory` over SQLAlchemy (L3).

A customer is one ``customers`` row plus three ordered lists in their own tables (phone numbers,
groups, pinned agents), so the IVR can find a caller by number with an index. Reads load a set
of customers with four queries (rows, then each list for the same ids), whatever their number;
`upsert_customers` writes a batch in one transaction and touches only customers that changed,
so seeding the same customers at every start changes nothing and keeps ``updated_at`` meaning
"last changed".
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
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
            ids = self._insert(conn, new, now)
            if changed:
                conn.execute(
                    update(CustomerRow).where(CustomerRow.id == bindparam("row_id")),
                    [{**_row(c), "row_id": i, "updated_at": now} for i, c in changed.items()],
                )
                for table, _, _ in _LISTS:
                    conn.execute(delete(table).where(table.customer_id.in_(list(changed))))
            self._insert_lists(conn, {**{ids[c.customer_no]: c for c in new}, **changed})

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
