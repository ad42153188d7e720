"""Screen-pop payloads and save checks (no I/O): values by source, permissions, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from pbx.acd.schema import QueueConfig
from pbx.cti.forms import (
    FormRejected,
    PopContext,
    build_pop,
    field_value,
    forms_open_to,
    hidden_sources,
    normalise_value,
    plan_save,
    searchable_attributes,
    select_form,
)
from pbx.cti.permissions import Principal
from tests.unit.cti.fakes import config, customer

CONFIG = config()
FORM = CONFIG.forms["default"]
ANNA = Principal("1001", "agent", ("billing",))
BEN = Principal("1002", "agent", ("matrix",))
CLARA = Principal("1003", "supervisor")
DORA = Principal("1004", "admin")


def ctx(**changes: Any) -> PopContext:
    values: dict[str, Any] = {
        "call_id": "call-1", "caller": "+4930111222", "queue": "billing", "agent": "1001",
        "waited_s": 42.4, "variables": {"concern": "invoice", "customer_no": "100001"},
        "customer": customer(),
    }
    values.update(changes)
    return PopContext(**values)


def fields(pop: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in pop["fields"]}


def test_form_is_chosen_by_queue_then_flow_then_default() -> None:
    forms = {"default": FORM, "billing": CONFIG.forms["matrix"], "hotline": FORM}
    assert select_form(forms, "billing", "hotline") == ("billing", CONFIG.forms["matrix"])
    assert select_form(forms, "other", "hotline") == ("hotline", FORM)
    assert select_form(forms, "other", "x") == ("default", FORM)
    assert select_form({}, "billing") is None


def test_values_come_from_customer_ivr_and_call() -> None:
    shown = fields(build_pop("default", FORM, ctx(), ANNA))
    assert shown["customer_no"]["value"] == "100001"
    assert shown["name"]["value"] == "Erika Muster"
    assert shown["contract"]["value"] == "DE1234"
    assert shown["concern"]["value"] == "invoice"
    assert shown["waited"]["value"] == "42"
    assert shown["callback"]["value"] is None
    assert shown["tier"]["options"] == ["bronze", "silver", "gold"]
    assert shown["contract"]["required"] and shown["contract"]["pattern"] == "[A-Z]{2}[0-9]{4}"


def test_customer_lists_are_joined_and_missing_values_are_none() -> None:
    form_field = FORM.fields[0].model_copy(update={"source": "customer.phone_numbers"})
    assert field_value(form_field, ctx()) == "+4930111222"
    assert field_value(form_field, ctx(customer=None)) is None
    computed = FORM.fields[0].model_copy(update={"source": "call.caller"})
    assert field_value(computed, ctx()) == "+4930111222"
    assert field_value(computed, PopContext()) is None


def test_permissions_per_viewer_and_hidden_fields_are_left_out() -> None:
    anna = fields(build_pop("default", FORM, ctx(), ANNA))
    assert "secret" not in anna  # hidden: neither the field nor its value
    assert anna["concern"]["access"] == "read_write"  # group billing
    assert anna["name"]["access"] == "read_only"
    ben = fields(build_pop("default", FORM, ctx(), BEN))
    assert ben["concern"]["access"] == "read_only" and ben["tier"]["access"] == "read_only"
    clara = fields(build_pop("default", FORM, ctx(), CLARA))
    assert clara["secret"] == clara["secret"] | {"access": "read_only", "value": "s3cret"}
    assert clara["name"]["access"] == "read_write"
    assert fields(build_pop("default", FORM, ctx(), DORA))["secret"]["access"] == "read_write"


def test_plan_save_returns_changes_with_old_call_values() -> None:
    changes = plan_save(FORM, ctx(), ANNA,
                        {"contract": "AB1234", "concern": "tariff", "callback": True})
    by_field = {c.field: c for c in changes}
    assert by_field["contract"].target == "customer.fields.contract"
    assert by_field["contract"].new_value == "AB1234" and by_field["contract"].old_value is None
    assert by_field["concern"].old_value == "invoice" and by_field["concern"].new_value == "tariff"
    assert by_field["callback"].target == "" and by_field["callback"].new_value == "true"


@pytest.mark.parametrize(
    ("who", "values", "status", "text"),
    [
        (ANNA, {"name": "X"}, 403, "name (read_only)"),
        (ANNA, {"secret": "X"}, 403, "secret (hidden)"),
        (ANNA, {"contract": "AB1234", "name": "X"}, 403, "name"),  # one refusal refuses all
        (BEN, {"concern": "x", "tier": "gold"}, 403, "concern (read_only), tier (read_only)"),
        (ANNA, {"waited": "1"}, 403, "waited (read_only)"),
        (ANNA, {"nope": "1"}, 400, "no such field in this form: nope"),
        (ANNA, {}, 400, "non-empty object"),
        (ANNA, ["contract"], 400, "non-empty object"),
        (ANNA, None, 400, "non-empty object"),
        (ANNA, {"contract": "bad"}, 422, "contract: 'bad' does not match"),
        (ANNA, {"contract": ""}, 422, "contract: required"),
        (ANNA, {"tier": "platinum"}, 422, "is not one of bronze, silver, gold"),
        (ANNA, {"notes": "x" * 201}, 422, "longer than 200"),
        (ANNA, {"callback": "yes"}, 422, "expected true or false"),
        (ANNA, {"notes": 5}, 422, "expected text, got int"),
    ],
)
def test_plan_save_refusals(who: Principal, values: object, status: int, text: str) -> None:
    with pytest.raises(FormRejected) as caught:
        plan_save(FORM, ctx(), who, values)
    assert caught.value.status == status
    assert text in caught.value.message


def test_customer_fields_need_a_customer_and_call_fields_a_call() -> None:
    with pytest.raises(FormRejected) as caught:
        plan_save(FORM, ctx(customer=None), ANNA, {"contract": "AB1234"})
    assert caught.value.status == 409
    with pytest.raises(FormRejected) as caught:
        plan_save(FORM, PopContext(customer=customer()), ANNA, {"callback": True})
    assert caught.value.status == 409 and "only a call" in caught.value.message


def test_invalid_values_are_reported_per_field() -> None:
    with pytest.raises(FormRejected) as caught:
        plan_save(FORM, ctx(), ANNA, {"contract": "x", "tier": "y", "notes": "fine"})
    assert set(caught.value.fields) == {"contract", "tier"}


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("number", 42, "42"),
        ("number", 2.5, "2.5"),
        ("number", "-3.25", "-3.25"),
        ("number", "3e5", None),
        ("number", True, None),
        ("date", "2026-12-24", "2026-12-24"),
        ("date", "24.12.2026", None),
        ("checkbox", False, "false"),
        ("checkbox", "true", "true"),
        ("text", "  padded  ", "padded"),
        ("textarea", "  kept  ", "  kept  "),
        ("text", None, ""),
    ],
)
def test_normalise_value(kind: str, raw: object, expected: str | None) -> None:
    form_field = FORM.fields[3].model_copy(update={"type": kind})
    value, problem = normalise_value(form_field, raw)
    assert value == expected
    assert bool(problem) == (expected is None)


# ================================================================== what follows from the rules


def test_forms_open_to_agents_by_queue_and_group_supervisors_all() -> None:
    assert forms_open_to(CONFIG, ANNA, sees_all=False) == ("default",)  # billing has none
    assert forms_open_to(CONFIG, BEN, sees_all=False) == ("default", "matrix")
    assert forms_open_to(CONFIG, CLARA, sees_all=True) == ("default", "matrix")
    with_queues = CONFIG.model_copy(update={"queues": (
        QueueConfig.model_validate({"name": "matrix", "members": [{"agent": "1001"}]}),)})
    assert forms_open_to(with_queues, ANNA, sees_all=False) == ("default", "matrix")
    assert forms_open_to(with_queues, Principal("1001", "agent"), sees_all=False) == (
        "default", "matrix")  # a queue member without the group


def test_hidden_sources_are_per_principal_across_forms() -> None:
    assert hidden_sources(CONFIG.forms, ANNA) == {"customer.fields.secret",
                                                   "customer.fields.hidden"}
    assert hidden_sources(CONFIG.forms, CLARA) == {"customer.fields.hidden"}
    assert hidden_sources(CONFIG.forms, Principal("", "admin")) == {"customer.fields.hidden"}


def test_search_compares_only_what_the_form_shows() -> None:
    form = CONFIG.forms["default"]
    assert searchable_attributes(form, ANNA) == ("customer_no", "name")  # no phone field
    assert searchable_attributes(None, ANNA) == ()
    hiding = form.model_copy(update={"fields": tuple(
        f.model_copy(update={"permissions": f.permissions.model_copy(
            update={"agents": {"1001": "hidden"}})}) if f.name == "name" else f
        for f in form.fields)})
    assert searchable_attributes(hiding, ANNA) == ("customer_no",)
    assert searchable_attributes(hiding, BEN) == ("customer_no", "name")
