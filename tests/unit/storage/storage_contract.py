"""Behaviour every storage backend must show, as plain functions taking an open `Database`.

Run against SQLite by tests/unit/storage/test_storage_sqlite.py and against a real PostgreSQL
server by tests/integration/test_postgres_storage.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pbx.repositories import AgentRecord, Binding, CallDetailRecord, Customer
from pbx.storage import Database
from pbx.storage.database import head_revision
from tests.unit.storage.reports_contract import REPORT_CHECKS

NOW = 1_700_000_000.0


def binding(aor: str, contact: str, **fields: object) -> Binding:
    values: dict[str, object] = {
        "aor": aor,
        "contact": contact,
        "expires_at": NOW + 3600,
        "call_id": f"cid-{contact}",
        "cseq": 1,
    }
    values.update(fields)
    return Binding(**values)  # type: ignore[arg-type]


def agent(extension: str, **fields: object) -> AgentRecord:
    values: dict[str, object] = {
        "extension": extension,
        "name": f"Agent {extension}",
        "role": "agent",
        "password_ha1_md5": "0" * 32,
        "password_ha1_sha256": "1" * 64,
    }
    values.update(fields)
    return AgentRecord(**values)  # type: ignore[arg-type]


def cdr(call_id: str, **fields: object) -> CallDetailRecord:
    values: dict[str, object] = {
        "call_id": call_id,
        "direction": "inbound",
        "caller": "+4930111",
        "callee": "+4930222",
        "started_at": NOW,
        "answered_at": NOW + 5,
        "ended_at": NOW + 65,
        "disposition": "answered",
    }
    values.update(fields)
    return CallDetailRecord(**values)  # type: ignore[arg-type]


def customer(customer_no: str, **fields: object) -> Customer:
    values: dict[str, object] = {
        "customer_no": customer_no,
        "name": f"Customer {customer_no}",
        "phone_numbers": (f"+49301{customer_no}",),
    }
    values.update(fields)
    return Customer(**values)  # type: ignore[arg-type]


def check_schema_is_migrated(db: Database) -> None:
    assert db.schema_revision() == head_revision()


def check_bindings_round_trip_every_field(db: Database) -> None:
    store = db.location_store()
    full = binding(
        "sip:1001@hotline.example",
        "<sip:1001@[2001:db8::1]:5062;transport=tcp>",
        expires_at=NOW + 1234.5,
        cseq=4711,
        q=0.7,
        source_transport="tcp",
        source_host="2001:db8::1",
        source_port=5062,
        user_agent="Linphone/5.2 (Ubuntu)",
        instance_id='"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
        reg_id=2,
        path="<sip:edge.example;lr>",
    )
    store.replace_bindings({full.aor: [full]})
    assert store.load_bindings() == [full]


def check_replace_and_delete_bindings(db: Database) -> None:
    store = db.location_store()
    a1, a2 = binding("sip:1001@h", "sip:a@1"), binding("sip:1001@h", "sip:a@2")
    b1 = binding("sip:1002@h", "sip:b@1")
    store.replace_bindings({"sip:1001@h": [a1, a2], "sip:1002@h": [b1]})
    assert sorted(store.load_bindings(), key=lambda b: b.contact) == [a1, a2, b1]

    a3 = binding("sip:1001@h", "sip:a@3", cseq=2)
    store.replace_bindings({"sip:1001@h": [a3]})
    assert sorted(store.load_bindings(), key=lambda b: b.contact) == [a3, b1]

    store.replace_bindings({"sip:1002@h": []})
    assert store.load_bindings() == [a3]

    store.replace_bindings({})
    assert store.load_bindings() == [a3]


def check_bindings_batch_of_thousands(db: Database) -> None:
    store = db.location_store()
    aors = [f"sip:{n}@hotline.example" for n in range(5000)]
    store.replace_bindings({aor: [binding(aor, f"sip:{aor[4:]}:5060")] for aor in aors})
    started = time.perf_counter()
    store.replace_bindings(
        {aor: [binding(aor, f"sip:x@10.0.0.{k}", cseq=2) for k in (1, 2)] for aor in aors}
    )
    elapsed = time.perf_counter() - started
    assert store.count() == 10_000
    # Generous bound: this machine does it in ~0.1 s on SQLite; row-by-row would take minutes.
    assert elapsed < 10, f"replacing 5000 AORs took {elapsed:.1f} s"
    store.replace_bindings({aor: [] for aor in aors[:2500]})
    assert store.count() == 5000


def check_binding_filed_under_wrong_aor_is_rejected(db: Database) -> None:
    store = db.location_store()
    try:
        store.replace_bindings({"sip:1001@h": [binding("sip:1002@h", "sip:x@1")]})
    except ValueError:
        pass
    else:  # pragma: no cover - failure path
        raise AssertionError("expected ValueError")
    assert store.load_bindings() == []


def check_agents_sync(db: Database) -> None:
    directory = db.agent_directory()
    directory.sync_agents([agent("1001"), agent("1002"), agent("1003", role="supervisor")])
    assert [a.extension for a in directory.list_agents()] == ["1001", "1002", "1003"]

    renamed = agent("1002", name="Ben Müller", password_ha1_md5="f" * 32)
    directory.sync_agents([agent("1001", enabled=False), renamed, agent("1004")])
    by_extension = {a.extension: a for a in directory.list_agents()}
    assert by_extension == {
        "1001": agent("1001", enabled=False),
        "1002": renamed,
        "1003": agent("1003", role="supervisor", enabled=False),  # removed: kept, disabled
        "1004": agent("1004"),
    }
    # Configured again: enabled again.
    directory.sync_agents([agent("1003", role="supervisor")])
    assert [a for a in directory.list_agents() if a.enabled] == [agent("1003", role="supervisor")]


def check_agents_sync_is_idempotent(db: Database) -> None:
    directory = db.agent_directory()
    records = [agent(str(n)) for n in range(1001, 1011)]
    directory.sync_agents(records)
    directory.sync_agents(records)
    assert directory.list_agents() == records


def check_cdr_write_and_read(db: Database) -> None:
    sink = db.cdr_sink()
    first = cdr("call-1", agent="1001", queue="support", did="+4930123")
    second = cdr(
        "call-2",
        answered_at=None,
        disposition="abandoned",
        hangup_cause="caller hung up",
        direction="inbound",
    )
    sink.write_cdr(first)
    sink.write_cdr(second)
    assert sink.recent_cdrs() == [second, first]
    assert sink.recent_cdrs(limit=1) == [second]


def check_cdrs_survive_agent_removal(db: Database) -> None:
    db.agent_directory().sync_agents([agent("1001")])
    db.cdr_sink().write_cdr(cdr("call-1", agent="1001"))
    db.agent_directory().sync_agents([])
    assert db.cdr_sink().recent_cdrs()[0].agent == "1001"
    assert db.agent_directory().list_agents() == [agent("1001", enabled=False)]


def check_customers_round_trip_and_lookup(db: Database) -> None:
    directory = db.customer_directory()
    full = customer(
        "100001",
        name="Müller GmbH",
        phone_numbers=("+4930111", "+4917012345"),
        status="vip",
        language="de",
        groups=("key-accounts", "berlin"),
        pinned_agents=("1007", "1001"),
        fields={"contract": "L-2024-17", "note": "Ansprechpartnerin: Frau Özdemir"},
    )
    directory.upsert_customers([full, customer("100002")])
    assert directory.by_number("100001") == full
    assert directory.by_phone("+4917012345") == full
    assert directory.by_phone("+4930199") is None
    assert directory.by_number("999999") is None
    assert [c.customer_no for c in directory.list_customers()] == ["100001", "100002"]


def check_customers_upsert_replaces_changed_ones(db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers([customer("1", groups=("a",)), customer("2", groups=("a", "b"))])
    changed = customer("2", name="Renamed", phone_numbers=("+4940555",), groups=("b",))
    directory.upsert_customers([changed, customer("3")])
    assert directory.list_customers() == [customer("1", groups=("a",)), changed, customer("3")]
    assert directory.by_phone(customer("2").phone_numbers[0]) is None
    assert directory.by_phone("+4940555") == changed
    assert [c.customer_no for c in directory.list_customers(group="a")] == ["1"]
    assert [c.customer_no for c in directory.list_customers(group="b")] == ["2"]
    assert directory.delete_customers(["1", "404"]) == 1
    assert [c.customer_no for c in directory.list_customers()] == ["2", "3"]


def check_customers_shared_phone_is_ambiguous(db: Database) -> None:
    directory = db.customer_directory()
    directory.upsert_customers(
        [customer("1", phone_numbers=("+4930999",)), customer("2", phone_numbers=("+4930999",))]
    )
    assert directory.by_phone("+4930999") is None
    assert directory.by_number("2") == customer("2", phone_numbers=("+4930999",))


def check_customers_batch_of_thousands(db: Database) -> None:
    directory = db.customer_directory()
    batch = [customer(str(n), groups=("all",), pinned_agents=("1001",)) for n in range(3000)]
    started = time.perf_counter()
    directory.upsert_customers(batch)
    directory.upsert_customers(batch)  # unchanged: nothing rewritten
    elapsed = time.perf_counter() - started
    assert directory.count() == 3000
    assert elapsed < 10, f"upserting 3000 customers twice took {elapsed:.1f} s"
    assert len(directory.list_customers(group="all")) == 3000


def check_customers_seed_keeps_edits(db: Database) -> None:
    directory = db.customer_directory()
    assert directory.seed([customer("1"), customer("2")]).inserted == ("1", "2")
    directory.upsert_customers([customer("2", name="Edited")])
    outcome = directory.seed([customer("1", status="vip"), customer("2", status="vip"),
                              customer("3")])
    assert (outcome.inserted, outcome.updated, outcome.kept) == (("3",), ("1",), ("2",))
    assert directory.by_number("2") == customer("2", name="Edited")


def check_customers_import_batch_and_dry_run(db: Database) -> None:
    from pbx.customers import records

    rules = records.CustomerRules(frozenset({"standard"}), frozenset(), "49")
    directory = db.customer_directory()
    patches = [(n + 2, records.validate({"customer_no": str(n), "name": f"N {n}",
                                         "phones": [f"030 5{n:05d}"]}, rules))
               for n in range(1500)]
    assert len(directory.apply_patches(patches, dry_run=True).created) == 1500
    assert directory.count() == 0
    assert len(directory.apply_patches(patches, extra_groups=("g",)).created) == 1500
    assert len(directory.apply_patches(patches, extra_groups=("g",)).unchanged) == 1500
    assert directory.by_phone("+4930500007") == Customer("7", "N 7", ("+4930500007",),
                                                          groups=("g",))


CHECKS: list[Callable[[Database], None]] = [
    check_schema_is_migrated,
    check_bindings_round_trip_every_field,
    check_replace_and_delete_bindings,
    check_bindings_batch_of_thousands,
    check_binding_filed_under_wrong_aor_is_rejected,
    check_agents_sync,
    check_agents_sync_is_idempotent,
    check_cdr_write_and_read,
    check_cdrs_survive_agent_removal,
    check_customers_round_trip_and_lookup,
    check_customers_upsert_replaces_changed_ones,
    check_customers_shared_phone_is_ambiguous,
    check_customers_batch_of_thousands,
    *REPORT_CHECKS,
    check_customers_seed_keeps_edits,
    check_customers_import_batch_and_dry_run,
]
