"""The dialer's tables: `DialerStore` over SQLAlchemy (L3).

- target selection: a campaign's declarative `CustomerFilter` becomes a SQLAlchemy expression
  over the customer tables (groups any-of, status in, language in, ``fields[key]`` in values),
  never a string of SQL; the customers are then loaded like the customer directory does;
- ``campaign_contacts``: the state of each customer in each campaign, upserted in batches;
- ``dialer_attempts``: one row per attempt, only ever added;
- ``dnc``: the do-not-call list.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    update,
)

from pbx.dialer.campaign import ContactStats
from pbx.dialer.records import FINAL_STATES, AttemptRecord, ContactRecord, ContactState, DncEntry
from pbx.dialer.schema import CustomerFilter
from pbx.repositories import Customer
from pbx.storage.customers import SqlCustomerDirectory
from pbx.storage.errors import storage_errors
from pbx.storage.models import (
    CampaignContactRow,
    CustomerGroupRow,
    CustomerRow,
    DialerAttemptRow,
    DncRow,
)

_CHUNK = 500


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def target_condition(target: CustomerFilter) -> ColumnElement[bool]:
    """The filter as a WHERE condition on ``customers`` (all criteria AND-ed)."""
    conditions: list[ColumnElement[bool]] = []
    if target.groups:
        members = select(CustomerGroupRow.customer_id).where(
            CustomerGroupRow.group_name.in_(list(target.groups))
        )
        conditions.append(CustomerRow.id.in_(members))
    if target.statuses:
        conditions.append(CustomerRow.status.in_(list(target.statuses)))
    if target.languages:
        conditions.append(CustomerRow.language.in_(list(target.languages)))
    for rule in target.fields:
        # JSON path access: json_extract on SQLite, ->> on PostgreSQL; key and values bound.
        conditions.append(CustomerRow.fields[rule.key].as_string().in_(list(rule.values())))
    return and_(true(), *conditions)


def target_ids(target: CustomerFilter) -> Select[Any]:
    """SELECT of the ids of the customers the filter matches."""
    return select(CustomerRow.id).where(target_condition(target))


def _contact_row(record: ContactRecord) -> dict[str, Any]:
    return {
        "campaign": record.campaign,
        "customer_no": record.customer_no,
        "state": str(record.state),
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at,
        "last_result": record.last_result,
        "locked_until": record.locked_until,
        "result_counts": dict(record.result_counts),
    }


def _contact(row: Any) -> ContactRecord:
    return ContactRecord(
        campaign=row.campaign,
        customer_no=row.customer_no,
        state=ContactState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_result=row.last_result,
        locked_until=row.locked_until,
        result_counts={str(k): int(v) for k, v in (row.result_counts or {}).items()},
    )


class SqlDialerStore:
    """`DialerStore` on the dialer tables. Thread-safe; raises `StorageError`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._engine = engine
        self._writer = writer

    # ------------------------------------------------------------------ targets

    def select_targets(self, target: CustomerFilter) -> list[Customer]:
        """The customers the campaign's filter matches, by customer number."""
        directory = SqlCustomerDirectory(self._engine, self._writer)
        with storage_errors("cannot select campaign targets"), self._engine.connect() as conn:
            return directory._load(conn, target_ids(target))

    def count_targets(self, target: CustomerFilter) -> int:
        query = select(func.count()).select_from(CustomerRow).where(target_condition(target))
        with storage_errors("cannot count campaign targets"), self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ contacts

    def load_contacts(self, campaign: str) -> dict[str, ContactRecord]:
        """The stored records of `campaign`, by customer number."""
        query = select(CampaignContactRow).where(CampaignContactRow.campaign == campaign)
        with storage_errors("cannot load campaign contacts"), self._engine.connect() as conn:
            return {row.customer_no: _contact(row) for row in conn.execute(query)}

    def save_contacts(self, records: Sequence[ContactRecord]) -> None:
        """Insert or replace these records in one transaction (the last of several records of
        one contact wins)."""
        latest = {(r.campaign, r.customer_no): r for r in records}
        if not latest:
            return
        with storage_errors("cannot save campaign contacts"), self._writer.begin() as conn:
            for campaign, numbers in self._by_campaign(list(latest)).items():
                existing = self._existing(conn, campaign, numbers)
                new = [_contact_row(latest[campaign, n]) for n in numbers if n not in existing]
                changed = [
                    {**_contact_row(latest[campaign, n]), "key_campaign": campaign,
                     "key_customer_no": n}
                    for n in numbers if n in existing
                ]
                if new:
                    conn.execute(insert(CampaignContactRow), new)
                if changed:
                    conn.execute(
                        update(CampaignContactRow).where(
                            (CampaignContactRow.campaign == bindparam("key_campaign"))
                            & (CampaignContactRow.customer_no == bindparam("key_customer_no"))
                        ),
                        changed,
                    )

    def delete_contacts(self, campaign: str) -> int:
        """Forget every contact state of `campaign` (its attempts stay); how many there were."""
        with storage_errors("cannot delete campaign contacts"), self._writer.begin() as conn:
            result = conn.execute(
                delete(CampaignContactRow).where(CampaignContactRow.campaign == campaign)
            )
            return int(result.rowcount)

    # ------------------------------------------------------------------ attempts

    def record_attempts(self, attempts: Sequence[AttemptRecord]) -> None:
        if not attempts:
            return
        rows = [
            {
                "campaign": a.campaign,
                "customer_no": a.customer_no,
                "phone": a.phone,
                "attempt": a.attempt,
                "started_at": a.started_at,
                "result": a.result,
                "duration": a.duration_s,
                "agent": a.agent,
                "call": a.call,
            }
            for a in attempts
        ]
        with storage_errors("cannot record dialer attempts"), self._writer.begin() as conn:
            conn.execute(insert(DialerAttemptRow), rows)

    def attempts_of(self, campaign: str, customer_no: str | None = None,
                    limit: int = 1000) -> list[AttemptRecord]:
        """The attempts of `campaign` (of one customer, if given), oldest first."""
        query = (
            select(DialerAttemptRow)
            .where(DialerAttemptRow.campaign == campaign)
            .order_by(DialerAttemptRow.id)
            .limit(limit)
        )
        if customer_no is not None:
            query = query.where(DialerAttemptRow.customer_no == customer_no)
        with storage_errors("cannot read dialer attempts"), self._engine.connect() as conn:
            return [
                AttemptRecord(r.campaign, r.customer_no, r.phone, r.attempt, r.started_at,
                              r.result, r.duration, r.agent, r.call)
                for r in conn.execute(query)
            ]

    def campaign_stats(self, campaign: str) -> ContactStats:
        """Stored statistics: contacts per state and left, attempts and their results."""
        by_state_query = (
            select(CampaignContactRow.state, func.count())
            .where(CampaignContactRow.campaign == campaign)
            .group_by(CampaignContactRow.state)
        )
        results_query = (
            select(DialerAttemptRow.result, func.count())
            .where(DialerAttemptRow.campaign == campaign)
            .group_by(DialerAttemptRow.result)
        )
        with storage_errors("cannot read campaign statistics"), self._engine.connect() as conn:
            by_state = {str(state): int(n) for state, n in conn.execute(by_state_query)}
            results = {str(result): int(n) for result, n in conn.execute(results_query)}
        final = {str(state) for state in FINAL_STATES}
        return ContactStats(
            contacts=sum(by_state.values()),
            contacts_left=sum(n for state, n in by_state.items() if state not in final),
            by_state=by_state,
            attempts=sum(results.values()),
            results=results,
        )

    # ------------------------------------------------------------------ do-not-call list

    def add_dnc(self, phone: str, reason: str = "", at: float | None = None) -> bool:
        """Put `phone` on the list; False when it already was (its entry is kept)."""
        with storage_errors("cannot add to the do-not-call list"), self._writer.begin() as conn:
            if conn.execute(select(DncRow.phone).where(DncRow.phone == phone)).first():
                return False
            conn.execute(
                insert(DncRow),
                {"phone": phone, "added_at": time.time() if at is None else at, "reason": reason},
            )
            return True

    def add_dnc_numbers(self, phones: Sequence[str], reason: str = "",
                        at: float | None = None) -> int:
        """Put every number not yet listed on the list; how many were new."""
        wanted = list(dict.fromkeys(phones))
        added_at = time.time() if at is None else at
        added = 0
        with storage_errors("cannot add to the do-not-call list"), self._writer.begin() as conn:
            for chunk in _chunks(wanted):
                listed = set(
                    conn.execute(select(DncRow.phone).where(DncRow.phone.in_(chunk))).scalars()
                )
                rows = [{"phone": p, "added_at": added_at, "reason": reason}
                        for p in chunk if p not in listed]
                if rows:
                    conn.execute(insert(DncRow), rows)
                added += len(rows)
        return added

    def remove_dnc(self, phone: str) -> bool:
        with storage_errors("cannot remove from the do-not-call list"), \
                self._writer.begin() as conn:
            return bool(conn.execute(delete(DncRow).where(DncRow.phone == phone)).rowcount)

    def is_dnc(self, phone: str) -> bool:
        with storage_errors("cannot read the do-not-call list"), self._engine.connect() as conn:
            found = conn.execute(select(DncRow.phone).where(DncRow.phone == phone)).first()
        return found is not None

    def list_dnc(self) -> list[DncEntry]:
        """The whole list, by number."""
        query = select(DncRow).order_by(DncRow.phone)
        with storage_errors("cannot read the do-not-call list"), self._engine.connect() as conn:
            return [DncEntry(r.phone, r.added_at, r.reason) for r in conn.execute(query)]

    def dnc_numbers(self) -> set[str]:
        """The listed numbers, for the campaigns' in-memory check."""
        with storage_errors("cannot read the do-not-call list"), self._engine.connect() as conn:
            return set(conn.execute(select(DncRow.phone)).scalars())

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _by_campaign(keys: list[tuple[str, str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for campaign, customer_no in keys:
            out.setdefault(campaign, []).append(customer_no)
        return out

    @staticmethod
    def _existing(conn: Connection, campaign: str, numbers: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(numbers):
            query = select(CampaignContactRow.customer_no).where(
                (CampaignContactRow.campaign == campaign)
                & CampaignContactRow.customer_no.in_(chunk)
            )
            found.update(conn.execute(query).scalars())
        return found
