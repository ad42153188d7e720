"""The dialer's storage on a real SQLite file: target selection by the declarative filter,
contact states, attempts, statistics and the do-not-call list."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import Any

import pytest

from pbx.dialer.campaign import Campaign, RecordAttempt, SaveContact
from pbx.dialer.records import AttemptRecord, ContactRecord, ContactState, DialerStore
from pbx.dialer.schema import CustomerFilter
from pbx.dialer.simulate import DialerSimulationSettings, Outcome, simulate_day
from pbx.repositories import Customer
from pbx.storage import Database, SqlDialerStore
from pbx.storage.database import head_revision
from tests.unit.dialer.dialer_harness import MONDAY_10, campaign_config, customer

S = ContactState


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    yield database
    database.close()


@pytest.fixture
def people() -> list[Customer]:
    rng = Random(3)
    out = []
    for i in range(1, 121):
        out.append(
            customer(
                f"{i:04d}",
                groups=rng.sample(["berlin", "hamburg", "munich", "vip"], rng.randint(0, 2)),
                status=rng.choice(["standard", "gold", "vip"]),
                language=rng.choice(["de", "en"]),
                contract=rng.choice(["L-17", "L-18", "M-1"]),
                **({"region": rng.choice(["north", "south"])} if i % 3 else {}),
            )
        )
    return out


@pytest.fixture
def store(db: Database, people: list[Customer]) -> SqlDialerStore:
    db.customer_directory().upsert_customers(people)
    return db.dialer_store()


def test_tables_and_revision(db: Database, tmp_path: Path) -> None:
    assert db.schema_revision() == head_revision()
    with sqlite3.connect(tmp_path / "pbx.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"campaign_contacts", "dialer_attempts", "dnc"} <= tables
    store: DialerStore = db.dialer_store()
    assert isinstance(store, SqlDialerStore)


FILTERS: list[dict[str, Any]] = [
    {},
    {"groups": ["berlin"]},
    {"groups": ["berlin", "vip"]},
    {"statuses": ["gold"]},
    {"languages": ["en"]},
    {"fields": [{"key": "contract", "equals": "L-17"}]},
    {"fields": [{"key": "contract", "in": ["L-17", "M-1"]}, {"key": "region",
                                                             "equals": "north"}]},
    {"groups": ["hamburg"], "statuses": ["gold", "vip"], "languages": ["de"]},
    {"fields": [{"key": "missing", "equals": "x"}]},
    {"groups": ["nobody"]},
]


@pytest.mark.parametrize("settings", FILTERS)
def test_selection_matches_the_filter(store: SqlDialerStore, people: list[Customer],
                                      settings: dict[str, Any]) -> None:
    target = CustomerFilter.model_validate(settings)
    selected = store.select_targets(target)
    expected = [p for p in people if target.matches(p)]
    assert [c.customer_no for c in selected] == [p.customer_no for p in expected]
    assert selected == expected  # whole records, lists in order
    assert store.count_targets(target) == len(expected)


def test_filter_values_are_bound_not_spliced(store: SqlDialerStore) -> None:
    nasty = CustomerFilter.model_validate(
        {"groups": ["x' OR '1'='1"], "fields": [{"key": "contract", "equals": "' OR 1=1 --"}]}
    )
    assert store.select_targets(nasty) == []


def test_group_selection_dials_exactly_the_group(store: SqlDialerStore,
                                                 people: list[Customer]) -> None:
    config = campaign_config(target={"groups": ["hamburg"]})
    targets = store.select_targets(config.target)
    group = {p.customer_no for p in people if "hamburg" in p.groups}
    assert group and {c.customer_no for c in targets} == group

    def answers(_customer: Customer, _attempt: int, _rng: Random) -> tuple[Outcome, float]:
        return "human", 5.0

    report = simulate_day(config, targets, DialerSimulationSettings(
        agents=4, hours=3, start_at=MONDAY_10), carrier=answers)
    assert {number for _, number, _, _ in report.dialled} == group
    assert all(r.state is S.DONE for r in report.final_records)


def test_contacts_round_trip_and_update(store: SqlDialerStore) -> None:
    first = ContactRecord("renewals", "0001", S.PENDING, attempts=1, next_attempt_at=100.5,
                          last_result="busy", result_counts={"busy": 1})
    other = ContactRecord("winback", "0001")
    store.save_contacts([first, other])
    assert store.load_contacts("renewals") == {"0001": first}
    done = ContactRecord("renewals", "0001", S.DONE, attempts=2, last_result="connected",
                         locked_until=5.0, result_counts={"busy": 1, "connected": 1})
    store.save_contacts([ContactRecord("renewals", "0002"), first, done])  # last one wins
    loaded = store.load_contacts("renewals")
    assert loaded["0001"] == done and loaded["0002"].state is S.PENDING
    assert store.load_contacts("winback") == {"0001": other}
    assert store.delete_contacts("renewals") == 2
    assert store.load_contacts("renewals") == {}


def test_attempts_and_stored_statistics(store: SqlDialerStore) -> None:
    attempts = [
        AttemptRecord("renewals", "0001", "+491", 1, 10.0, "busy", 3.0),
        AttemptRecord("renewals", "0001", "+491", 2, 200.0, "connected", 95.5, "1001", "c-2"),
        AttemptRecord("renewals", "0002", "+492", 1, 20.0, "dropped", 12.0),
        AttemptRecord("winback", "0003", "+493", 1, 30.0, "busy", 2.0),
    ]
    store.record_attempts(attempts)
    assert store.attempts_of("renewals", "0001") == attempts[:2]
    assert len(store.attempts_of("renewals")) == 3
    store.save_contacts([
        ContactRecord("renewals", "0001", S.DONE, attempts=2),
        ContactRecord("renewals", "0002", S.PENDING, attempts=1),
        ContactRecord("renewals", "0003", S.DNC),
    ])
    stats = store.campaign_stats("renewals")
    assert stats.contacts == 3 and stats.contacts_left == 1
    assert stats.attempts == 3 and stats.connects == 1 and stats.drops == 1
    assert stats.by_state == {"done": 1, "pending": 1, "dnc": 1}


def test_dnc_list(store: SqlDialerStore) -> None:
    assert store.add_dnc("+4930111", "customer asked", at=5.0)
    assert not store.add_dnc("+4930111", "again")
    assert store.is_dnc("+4930111") and not store.is_dnc("+4930222")
    assert store.add_dnc_numbers(["+4930111", "+4930222", "+4930222", "+4930333"],
                                 "config", at=7.0) == 2
    entries = store.list_dnc()
    assert [e.phone for e in entries] == ["+4930111", "+4930222", "+4930333"]
    assert entries[0].reason == "customer asked" and entries[0].added_at == 5.0
    assert store.dnc_numbers() == {"+4930111", "+4930222", "+4930333"}
    assert store.remove_dnc("+4930333") and not store.remove_dnc("+4930333")


def test_a_campaign_survives_a_restart(store: SqlDialerStore) -> None:
    config = campaign_config(target={"groups": ["berlin"]}, retry={"busy": {"delay_s": 60}})
    store.add_dnc_numbers([])
    targets = store.select_targets(config.target)
    book = Campaign(config, targets, store.load_contacts(config.name), store.dnc_numbers())
    first = book.take_next(MONDAY_10)
    second = book.take_next(MONDAY_10)
    assert first is not None and second is not None
    book.finish(first.customer_no, "busy", MONDAY_10 + 3)
    writes = book.take_writes()
    store.save_contacts([w.record for w in writes if isinstance(w, SaveContact)])
    store.record_attempts([w.attempt for w in writes if isinstance(w, RecordAttempt)])
    # restart: the busy one waits for its retry, the one in a call is pending again
    again = Campaign(config, store.select_targets(config.target),
                     store.load_contacts(config.name), store.dnc_numbers())
    assert again.record(first.customer_no).next_attempt_at == MONDAY_10 + 63
    assert again.record(second.customer_no).state is S.PENDING
    assert again.record(second.customer_no).attempts == 1
    assert store.attempts_of(config.name)[0].result == "busy"
