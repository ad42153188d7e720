"""CTI storage on a real SQLite file: credentials, sessions, form saves with audit, search,
call history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.repositories import CallDetailRecord
from pbx.storage import Database
from pbx.storage.cti import CtiSessionRecord, FieldChange
from tests.unit.cti.fakes import customer

AT = 1_800_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    database.customer_directory().upsert_customers([
        customer("100001"),
        customer("100002", name="Max Mustermann", phone_numbers=("+4930999000",)),
        customer("200003", name="Ana_Percent%", phone_numbers=()),
    ])
    yield database
    database.close()


def test_credentials_are_replaced_and_removed_agents_lose_their_sessions(db: Database) -> None:
    store = db.cti_store()
    store.replace_credentials({"1001": "h1", "1002": "h2"})
    store.add_session(CtiSessionRecord("t2", "1002", "agent", "c", AT, AT + 60))
    store.replace_credentials({"1001": "h1-new"})
    assert store.credential_hashes() == {"1001": "h1-new"}
    assert store.credential_hash("1002") is None
    assert store.session("t2") is None


def test_a_changed_credential_takes_its_sessions_along(db: Database) -> None:
    store = db.cti_store()
    store.replace_credentials({"1001": "h1", "1002": "h2"})
    for token, ext in (("t1", "1001"), ("t2", "1002")):
        store.add_session(CtiSessionRecord(token, ext, "agent", "c", AT, AT + 60))
    store.replace_credentials({"1001": "h1-changed", "1002": "h2"})
    assert store.session("t1") is None and store.session("t2") is not None
    assert not store.set_credential("1002", "h2")  # unchanged: sessions stay
    assert store.session("t2") is not None
    assert store.set_credential("1002", "h2-changed")
    assert store.session("t2") is None and store.credential_hash("1002") == "h2-changed"
    assert not store.set_credential("1003", "h3")  # a new row replaces nothing
    assert store.credential_hash("1003") == "h3"


def test_a_new_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "pbx.db"
    Database.open(f"sqlite:///{path}").close()
    assert path.stat().st_mode & 0o777 == 0o600
    existing = tmp_path / "shared.db"
    existing.touch(mode=0o640)
    existing.chmod(0o640)
    Database.open(f"sqlite:///{existing}").close()
    assert existing.stat().st_mode & 0o777 == 0o640  # the admin's choice is kept


def test_sessions_round_trip_and_expire(db: Database) -> None:
    store = db.cti_store()
    record = CtiSessionRecord("tok", "1001", "agent", "csrf", AT, AT + 60)
    store.add_session(record)
    store.add_session(CtiSessionRecord("old", "1001", "agent", "csrf", AT - 90, AT - 30))
    assert store.session("tok") == record
    assert store.delete_expired_sessions(AT) == 1
    assert store.session("old") is None
    assert store.delete_session("tok") and not store.delete_session("tok")


def test_save_updates_the_customer_and_audits_each_changed_field(db: Database) -> None:
    forms = db.form_store()
    entries = forms.save(
        [
            FieldChange("contract", "customer.fields.contract", "AB1234"),
            FieldChange("name", "customer.name", "Erika Beispiel"),
            FieldChange("tier", "customer.fields.tier", "silver"),  # unchanged: not audited
            FieldChange("brand_new", "customer.fields.brand_new", "x"),
            FieldChange("concern", "concern", "tariff", old_value="invoice"),
        ],
        agent="1001", form="default", at=AT, customer_no="100001", call_id="call-1",
    )
    assert [(e.field, e.old_value, e.new_value) for e in entries] == [
        ("contract", "DE1234", "AB1234"),
        ("name", "Erika Muster", "Erika Beispiel"),
        ("brand_new", None, "x"),
        ("concern", "invoice", "tariff"),
    ]
    stored = db.customer_directory().by_number("100001")
    assert stored is not None and stored.name == "Erika Beispiel"
    assert stored.fields["contract"] == "AB1234" and stored.fields["brand_new"] == "x"
    assert stored.phone_numbers == ("+4930111222",)  # the lists are untouched
    audit = forms.audit_entries(customer_no="100001")
    assert [e.field for e in audit] == ["concern", "brand_new", "name", "contract"]
    assert audit[0].agent == "1001" and audit[0].call_id == "call-1" and audit[0].at == AT
    assert forms.audit_entries(call_id="other") == []


def test_save_for_a_missing_customer_changes_nothing(db: Database) -> None:
    forms = db.form_store()
    with pytest.raises(LookupError):
        forms.save([FieldChange("concern", "concern", "x"),
                    FieldChange("contract", "customer.fields.contract", "AB1234")],
                   agent="1001", form="default", at=AT, customer_no="999999", call_id="c")
    assert forms.audit_entries() == []


def test_save_refuses_an_unwritable_customer_attribute_whole(db: Database) -> None:
    forms = db.form_store()
    with pytest.raises(ValueError):
        forms.save([FieldChange("contract", "customer.fields.contract", "AB1234"),
                    FieldChange("no", "customer.customer_no", "1")],
                   agent="1001", form="default", at=AT, customer_no="100001")
    stored = db.customer_directory().by_number("100001")
    assert stored is not None and stored.fields["contract"] == "DE1234"
    assert forms.audit_entries() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000", ["100001", "100002"]),
        ("+4930999", ["100002"]),
        ("muster", ["100001", "100002"]),
        ("MAX", ["100002"]),
        ("%", ["200003"]),  # LIKE wildcards are matched literally
        ("_", ["200003"]),
        ("nobody", []),
        ("  ", []),
    ],
)
def test_search_customers(db: Database, text: str, expected: list[str]) -> None:
    found = db.customer_directory().search_customers(text)
    assert [c.customer_no for c in found] == expected


@pytest.mark.parametrize(
    ("text", "match", "expected"),
    [
        ("1000", ("customer_no",), ["100001", "100002"]),
        ("1000", ("name", "phone"), []),
        ("+4930999", ("customer_no", "name"), []),
        ("+4930999", ("phone",), ["100002"]),
        ("muster", ("customer_no", "phone"), []),
        ("muster", ("name",), ["100001", "100002"]),
        ("muster", (), []),
    ],
)
def test_search_compares_only_what_it_is_told(db: Database, text: str, match: tuple[str, ...],
                                              expected: list[str]) -> None:
    found = db.customer_directory().search_customers(text, match=match)
    assert [c.customer_no for c in found] == expected


def test_search_is_limited(db: Database) -> None:
    assert len(db.customer_directory().search_customers("muster", limit=1)) == 1


def test_calls_of_phone_numbers(db: Database) -> None:
    sink = db.cdr_sink()
    for n, (caller, callee) in enumerate([("+4930111222", "+49800"), ("+4930555", "+49800"),
                                          ("1001", "+4930111222")]):
        sink.write_cdr(CallDetailRecord(f"c{n}", "inbound", caller, callee, AT + n, None,
                                        AT + n + 5, "answered"))
    assert [r.call_id for r in sink.calls_of(["+4930111222"])] == ["c2", "c0"]
    assert [r.call_id for r in sink.calls_of(["+4930111222"], limit=1)] == ["c2"]
    assert sink.calls_of([]) == []
