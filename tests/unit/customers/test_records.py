"""Validating customer records with the PBX's rules and merging them into stored ones."""

from __future__ import annotations

import pytest

from pbx.customers import records
from pbx.customers.records import CustomerRules, RecordRefused
from pbx.repositories import Customer

RULES = CustomerRules(statuses=frozenset({"standard", "vip"}), agents=frozenset({"1001"}),
                      country_code="49")


def test_phone_numbers_become_e164_like_the_dial_plan_reads_them() -> None:
    patch = records.validate({"customer_no": "1", "phones": ["030 123456", "+49 (0)30 123456",
                                                             "0049 170 1234567"]}, RULES)
    assert patch.phone_numbers == ("+4930123456", "+491701234567")
    assert patch.name is None and patch.groups is None  # not given: kept as stored


@pytest.mark.parametrize("record, message", [
    ({"customer_no": "a b"}, "is not a customer number"),
    ({"customer_no": "1", "phones": ["110"]}, "not a full phone number"),
    ({"customer_no": "1", "phones": ["030-abc"]}, "is not a phone number"),
    ({"customer_no": "1", "status": "gold"}, "status 'gold' is not configured"),
    ({"customer_no": "1", "language": "deu"}, "not a language code"),
    ({"customer_no": "1", "pinned_agents": ["1099"]}, "pinned agent '1099'"),
    ({"customer_no": "1", "groups": ["a|b"]}, "holds '|'"),
    ({"customer_no": "1", "fields": {"bad key": "x"}}, "field key 'bad key'"),
    ({"customer_no": "1", "colour": "red"}, "unknown attribute 'colour'"),
    ({"customer_no": "1", "name": ["x"]}, "name must be text"),
])
def test_refusals_say_which_value(record: dict[str, object], message: str) -> None:
    with pytest.raises(RecordRefused, match=message):
        records.validate(record, RULES)


def test_a_full_record_needs_a_name_and_takes_defaults() -> None:
    with pytest.raises(RecordRefused, match="name is required"):
        records.validate({"customer_no": "1"}, RULES, full=True)
    customer = records.replace(records.validate({"customer_no": "1", "name": " Anna  B "}, RULES,
                                                full=True))
    assert customer == Customer("1", "Anna B", status="standard")


def test_apply_keeps_what_the_patch_does_not_give_and_adds_groups() -> None:
    stored = Customer("1", "Anna", ("+491",), "vip", "de", ("a",), ("1001",),
                      {"contract": "X", "note": "n"})
    patch = records.validate({"customer_no": "1", "name": "Anna Neu",
                              "fields": {"contract": "Y", "note": None}}, RULES)
    merged = records.apply(stored, patch, extra_groups=("herbst",))
    assert merged == Customer("1", "Anna Neu", ("+491",), "vip", "de", ("a", "herbst"),
                              ("1001",), {"contract": "Y"})
    with pytest.raises(RecordRefused, match="name is required"):
        records.apply(None, records.validate({"customer_no": "2"}, RULES))


def test_digest_changes_with_any_attribute() -> None:
    base = Customer("1", "Anna", fields={"a": "1"})
    assert records.digest(base) == records.digest(Customer("1", "Anna", fields={"a": "1"}))
    assert records.digest(base) != records.digest(Customer("1", "Anna", fields={"a": "2"}))
    assert records.digest(base) != records.digest(Customer("1", "Anna", groups=("g",),
                                                           fields={"a": "1"}))
