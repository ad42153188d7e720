"""The customer directory on SQLite: seeding, change tracking, errors, concurrency.

The behaviour every backend shares is in storage_contract.py (run here by
test_storage_sqlite.py and against PostgreSQL by the integration tests).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from pbx.ivr.schema import CustomerSeed
from pbx.repositories import Customer, CustomerDirectory
from pbx.storage import Database, SqlCustomerDirectory, StorageError
from pbx.storage.models import CustomerRow
from tests.unit.storage.storage_contract import customer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    yield database
    database.close()


def test_directory_satisfies_the_protocol(db: Database) -> None:
    directory: CustomerDirectory = db.customer_directory()
    assert isinstance(directory, SqlCustomerDirectory)


def test_tables_exist(db: Database, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "pbx.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"customers", "customer_phones", "customer_groups", "customer_pinned_agents"} <= tables


def test_seeds_from_the_configuration_round_trip(db: Database) -> None:
    seed = CustomerSeed.model_validate(
        {
            "customer_no": "100001",
            "name": "Erika Mustermann",
            "phones": ["+4930111222"],
            "status": "gold",
            "language": "de",
            "groups": ["berlin"],
            "pinned_agents": ["1001"],
            "fields": {"contract": "L-17", "since": 2019},
        }
    )
    directory = db.customer_directory()
    directory.upsert_customers([seed.to_customer()])
    found = directory.by_phone("+4930111222")
    assert found == seed.to_customer()
    assert found is not None and found.fields == {"contract": "L-17", "since": "2019"}


def _updated_at(db: Database) -> dict[str, object]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(CustomerRow.customer_no, CustomerRow.updated_at))
        return {row.customer_no: row.updated_at for row in rows}


def test_unchanged_customers_are_not_rewritten(db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([customer("1"), customer("2")])
    before = _updated_at(db)
    directory.upsert_customers([customer("1"), customer("2", status="vip")])
    after = _updated_at(db)
    assert after["1"] == before["1"]
    assert after["2"] != before["2"]
    assert directory.by_number("2") == customer("2", status="vip")


def test_fields_compare_by_value_whatever_mapping_type(db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([customer("1", fields={"a": "1"}, groups=["g"])])
    assert directory.by_number("1") == customer("1", fields={"a": "1"}, groups=("g",))


def test_duplicate_customer_numbers_in_one_batch_are_rejected(db: Database) -> None:
    directory = db.customer_directory()
    with pytest.raises(ValueError, match="share a customer number"):
        directory.upsert_customers([customer("1"), customer("1", name="Other")])
    assert directory.list_customers() == []


def test_failed_batch_writes_nothing(db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([customer("1")])
    broken = Customer(customer_no="2", name=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(StorageError, match="cannot store customers"):
        directory.upsert_customers([customer("1", name="Changed"), broken])
    assert directory.list_customers() == [customer("1")]


def test_empty_batch_and_unknown_group(db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([])
    directory.upsert_customers([customer("1", groups=("a",))])
    assert directory.list_customers(group="nobody") == []
    assert directory.delete_customers([]) == 0


def test_deleting_a_customer_deletes_its_lists(db: Database, tmp_path: Path) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([customer("1", groups=("a",), pinned_agents=("1001",))])
    assert directory.delete_customers(["1"]) == 1
    with sqlite3.connect(tmp_path / "pbx.db") as conn:
        for table in ("customer_phones", "customer_groups", "customer_pinned_agents"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)


def test_lookups_from_worker_threads_while_seeding(db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([customer(str(n)) for n in range(100)])
    errors: list[BaseException] = []

    def look_up() -> None:
        try:
            for n in range(100):
                assert directory.by_phone(f"+49301{n}") == customer(str(n))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    def seed() -> None:
        try:
            for round_ in range(5):
                directory.upsert_customers([customer(str(n)) for n in range(100, 200 + round_)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(3)] + [threading.Thread(target=seed)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert directory.count() == 204


def test_example_customers_seed_and_are_found_by_caller_id(db: Database) -> None:
    root = Path(__file__).resolve().parents[3]
    data = yaml.safe_load((root / "config" / "pbx.yaml").read_text("utf-8"))
    seeds = [CustomerSeed.model_validate(item) for item in data["customers"]]
    directory = db.customer_directory()
    directory.upsert_customers([seed.to_customer() for seed in seeds])
    directory.upsert_customers([seed.to_customer() for seed in seeds])  # every start: no change
    assert directory.count() == len(seeds)
    vip = directory.by_phone("+4940123987")
    assert vip is not None and (vip.status, vip.pinned_agents) == ("vip", ("1002", "1001"))
    assert [c.customer_no for c in directory.list_customers(group="key-accounts")] == [
        "100002",
        "100004",
        "100006",
    ]


def test_the_seed_inserts_missing_and_never_overwrites_an_edit(db: Database) -> None:
    directory = db.customer_directory()
    first = directory.seed([customer("1"), customer("2"), customer("3")])
    assert first.inserted == ("1", "2", "3")
    # Customer 2 edited since (the live test edits over the API and the desk).
    directory.upsert_customers([customer("2", name="Edited by an admin")])
    assert directory.seed([customer("1"), customer("2"), customer("3")]) == \
        type(first)((), (), ("2",))
    # A changed seed applies to records nobody touched, never to edited ones.
    again = directory.seed([customer("1", status="vip"), customer("2", status="vip"),
                            customer("3")])
    assert again.updated == ("1",) and again.kept == ("2",)
    assert directory.by_number("1") == customer("1", status="vip")
    assert directory.by_number("2") == customer("2", name="Edited by an admin")


def test_records_stored_before_the_seed_digest_are_adopted_only_when_identical(
        db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([customer("1"), customer("2", name="Imported")])
    outcome = directory.seed([customer("1"), customer("2")])
    assert outcome.kept == ("2",) and outcome.updated == ()
    assert directory.seed([customer("1", status="gold")]).updated == ("1",)  # adopted


def test_apply_patches_creates_updates_and_dry_runs(db: Database) -> None:
    from pbx.customers import records

    rules = records.CustomerRules(frozenset({"standard"}), frozenset(), "49")
    directory = db.customer_directory()
    directory.upsert_customers([customer("1")])

    def patches(*rows: dict[str, object]) -> list[tuple[int, records.CustomerPatch]]:
        return [(n + 2, records.validate(r, rules)) for n, r in enumerate(rows)]

    rows = patches({"customer_no": "1", "name": "Eins"}, {"customer_no": "2", "name": "Zwei"},
                   {"customer_no": "3"})
    dry = directory.apply_patches(rows, dry_run=True)
    assert (dry.created, dry.updated, dry.rejected) == (
        ("2",), ("1",), ((4, "3", "name is required for a new customer"),))
    assert directory.count() == 1 and directory.by_number("1") == customer("1")
    done = directory.apply_patches(rows, extra_groups=("herbst",))
    assert done.created == ("2",) and done.updated == ("1",)
    assert directory.by_number("2") == Customer("2", "Zwei", groups=("herbst",))
    assert directory.apply_patches(rows, extra_groups=("herbst",)).unchanged == ("1", "2")
    assert directory.count() == 2
