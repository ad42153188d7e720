"""Flow, DID and customer models: what is rejected at load, and where it is reported."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from pbx.ivr.hooks import HookCall, HookResult, load_hooks
from pbx.ivr.schema import CustomerSeed, DidRoute, FlowConfig, Loc
from pbx.ivr.validation import hook_specs, validate_customers, validate_dids, validate_flows

BASE = """
start: menu
nodes:
  menu:
    type: menu
    prompt: "{lang}/main_menu"
    options: {"1": collect, "2": bye}
  collect:
    type: collect
    prompt: de/enter_customer_number
    variable: customer_no
    next: bye
  bye: {type: hangup, prompt: "{lang}/goodbye"}
"""


def problems(model: type[BaseModel], data: Any) -> list[tuple[Loc, str]]:
    """The errors of `data` as the config loader sees them: (key path, message)."""
    try:
        model.model_validate(yaml.safe_load(data) if isinstance(data, str) else data)
    except ValidationError as exc:
        out: list[tuple[Loc, str]] = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if error["type"] == "config_rules":
                for sub, message in error["ctx"]["violations"]:
                    out.append(((*loc, *sub), message))
            else:
                out.append((loc, str(error.get("ctx", {}).get("error", error["msg"]))))
        # Like the config loader: a list that is too short only because an item failed is
        # not reported on its own.
        return [
            (loc, message)
            for loc, message in out
            if "at least 1 item" not in message
            or not any(len(other) > len(loc) and other[: len(loc)] == loc for other, _ in out)
        ]
    return []


def flow_problems(text: str) -> list[tuple[Loc, str]]:
    return problems(FlowConfig, text)


def test_base_flow_is_valid() -> None:
    assert flow_problems(BASE) == []


def test_unknown_target_with_a_suggestion() -> None:
    text = BASE.replace('"2": bye', '"2": bey').replace("start: menu", "start: menux")
    assert flow_problems(text) == [
        (("start",), "unknown node 'menux'; did you mean 'menu'?"),
        (("nodes", "menu", "options", "2"), "unknown node 'bey'; did you mean 'bye'?"),
    ]


def test_unreachable_node() -> None:
    text = BASE + "  orphan: {type: hangup}\n"
    assert flow_problems(text) == [
        (("nodes", "orphan"), "unreachable: no path from start node 'menu' leads here")
    ]


def test_on_max_duration_makes_a_node_reachable() -> None:
    text = "on_max_duration: orphan\n" + BASE + "  orphan: {type: hangup}\n"
    assert flow_problems(text) == []


def test_loop_without_a_wait() -> None:
    text = BASE.replace('"2": bye', '"2": a') + (
        "  a: {type: set, variables: {x: '1'}, next: b}\n"
        "  b:\n"
        "    type: branch\n"
        "    cases: [{when: {var: x, equals: '1'}, next: a}]\n"
        "    default: c\n"
        "  c: {type: lookup, found: c, not_found: bye}\n"
    )
    assert flow_problems(text) == [
        (
            ("nodes", "a"),
            "loop without a wait: a -> b -> a (none of these nodes plays a prompt or waits for"
            " keys)",
        ),
        (
            ("nodes", "c"),
            "loop without a wait: c -> c (none of these nodes plays a prompt or waits for keys)",
        ),
    ]


def test_loops_through_a_waiting_node_are_fine() -> None:
    text = BASE.replace('"2": bye', '"2": again') + (
        "  again: {type: set, variables: {round: '2'}, next: menu}\n"
    )
    assert flow_problems(text) == []


def test_loop_through_a_hook_is_found() -> None:
    text = BASE.replace('"2": bye', '"2": h') + (
        "  h: {type: hook, function: 'x.y:z', targets: [h2]}\n"
        "  h2: {type: hook, function: 'x.y:z', targets: [h, bye]}\n"
    )
    ((loc, message),) = flow_problems(text)
    assert loc == ("nodes", "h") and "h -> h2 -> h" in message


@pytest.mark.parametrize(
    ("fragment", "where", "message"),
    [
        ("pattern: '[0-9'", ("nodes", "collect", "pattern"), "is not a valid regular expression"),
        ("min_digits: 5\n    max_digits: 4", ("nodes", "collect", "max_digits"), "below min"),
        ("terminator: '5'", ("nodes", "collect", "terminator"), "must be * or #"),
        ("confirm: {confirm_digit: '2'}", ("nodes", "collect", "confirm", "reenter_digit"), "also"),
        ("colour: red", ("nodes", "collect", "colour"), "Extra inputs are not permitted"),
        ("timeout_s: 0", ("nodes", "collect", "timeout_s"), "Extra inputs"),
        ("first_digit_timeout_s: 0", ("nodes", "collect", "first_digit_timeout_s"), "greater"),
        ("variable: 'not a name'", ("nodes", "collect", "variable"), "is not a variable name"),
        ("prompt: 'de/a b'", ("nodes", "collect", "prompt", 0), "is not a prompt name"),
        ("prompt: 'a{b}}'", ("nodes", "collect", "prompt", 0), "malformed placeholder"),
    ],
)
def test_field_errors_point_at_the_field(fragment: str, where: Loc, message: str) -> None:
    text = BASE.replace(
        "    variable: customer_no\n", f"    variable: customer_no\n    {fragment}\n"
    )
    found = flow_problems(text)
    assert len(found) == 1, found
    assert found[0][0] == where
    assert message in found[0][1]


def test_node_type_errors() -> None:
    text = BASE.replace("type: hangup", "type: hangpu")
    assert flow_problems(text) == [
        (
            ("nodes", "bye", "type"),
            "'hangpu' is not a node type (play, menu, collect, lookup, set, branch, queue,"
            " transfer, hangup, hook); did you mean 'hangup'?",
        )
    ]
    missing = flow_problems(BASE.replace("{type: hangup, ", "{"))
    assert missing[0][0] == ("nodes", "bye") and "field 'type' required" in missing[0][1]
    assert "expected a mapping" in flow_problems(BASE + "  x: 3\n")[0][1]


@pytest.mark.parametrize(
    ("condition", "where", "message"),
    [
        ("{var: x}", ("var",), "expected exactly one test"),
        ("{var: x, equals: a, in: [a]}", ("var",), "got equals, in"),
        ("{equals: a}", (), "expected exactly one of var, open"),
        ("{open: hotline, var: x, equals: a}", (), "got var, open"),
        ("{time: {start: '10:00', end: '09:00'}}", ("time", "end"), "is not after start"),
        ("{time: {start: 8:00, end: '09:00'}}", ("time", "start"), "write times in quotes"),
        ("{time: {start: '25:00', end: '23:00'}}", ("time", "start"), "is not a time of day"),
        ("{time: {days: mon-fry, start: '08:00', end: '09:00'}}", ("time", "days"), "weekday"),
        ("{var: x, matches: '(('}", ("matches",), "not a valid regular expression"),
        ("{open: nope}", ("open",), "unknown schedule 'nope' (hotline)"),
        ("{not: {any: [{holiday: hotlin}]}}", ("not", "any", 0, "holiday"), "did you mean"),
    ],
)
def test_condition_errors(condition: str, where: Loc, message: str) -> None:
    text = f"""
start: b
schedules:
  hotline: {{hours: [{{days: mon-fri, start: "08:00", end: "18:00"}}]}}
nodes:
  b: {{type: branch, cases: [{{when: {condition}, next: x}}], default: x}}
  x: {{type: hangup}}
"""
    found = flow_problems(text)
    assert len(found) == 1, found
    loc, text_ = found[0]
    assert loc == ("nodes", "b", "cases", 0, "when", *where)
    assert message in text_


def test_schedule_errors() -> None:
    text = """
start: x
schedules:
  s:
    timezone: Europe/Berlln
    hours: []
    holidays: ["2026-02-30", "13-01", 2026-12-24]
nodes:
  x: {type: hangup}
"""
    found = dict(flow_problems(text))
    assert "not a time zone name" in found[("schedules", "s", "timezone")]
    assert "at least 1 item" in found[("schedules", "s", "hours")]
    assert "not a date" in found[("schedules", "s", "holidays", 0)]
    assert "not a date" in found[("schedules", "s", "holidays", 1)]
    assert len(found) == 4


def test_weekday_ranges() -> None:
    from pbx.ivr.schema import TimeWindow

    def days(value: object) -> tuple[int, ...]:
        return TimeWindow.model_validate({"days": value, "start": "08:00", "end": "09:00"}).days

    assert days("mon-fri") == (0, 1, 2, 3, 4)
    assert days("Mon-Wed, sat") == (0, 1, 2, 5)
    assert days(["sat", "sun"]) == (5, 6)
    assert days("fri-mon") == (0, 4, 5, 6)


def test_language_a_set_node_chooses_must_be_a_flow_language() -> None:
    text = (
        BASE.replace("start: menu", "start: menu\nlanguages: [en]").replace('"2": bye', '"2": fr')
        + "  fr: {type: set, variables: {language: fr}, next: bye}\n"
    )
    assert flow_problems(text) == [
        (
            ("nodes", "fr", "variables", "language"),
            "'fr' is not one of the flow's languages (de, en); add it to languages",
        )
    ]


def test_transfer_needs_exactly_one_target() -> None:
    text = (
        BASE.replace('"2": bye', '"2": t')
        + "  t: {type: transfer, agent: '1001', number: '+4930'}\n"
    )
    assert flow_problems(text) == [
        (("nodes", "t"), "expected exactly one of agent, extension, number; got agent, number")
    ]


# ---------------------------------------------------------------- checks against the installation


def installation_flow() -> FlowConfig:
    text = (
        BASE.replace("start: menu", "start: menu\nlanguages: [de, en]")
        .replace('"2": bye', '"2": q')
        .replace('"1": collect', '"1": collect, "3": h, "4": dyn')
        .replace("next: bye", "next: t")
        + "  q: {type: queue, queue: suport}\n"
        + "  dyn: {type: queue, queue: '{concern}'}\n"
        + "  t: {type: transfer, agent: '1099', prompt: de/transferring}\n"
        + "  h: {type: hook, function: 'shop:gone', targets: [bye]}\n"
    )
    return FlowConfig.model_validate(yaml.safe_load(text))


PROMPTS = {"de/main_menu", "en/main_menu", "de/goodbye", "de/enter_customer_number"}


def test_validate_flows_reports_prompts_queues_agents_and_hooks() -> None:
    found = validate_flows(
        {"hotline": installation_flow()},
        PROMPTS,
        known_queues={"support"},
        known_agents={"1001"},
        hook_errors={
            "shop:gone": "cannot import shop: ModuleNotFoundError: No module named 'shop'"
        },
    )
    here = ("flows", "hotline", "nodes")
    assert found == [
        ((*here, "bye", "prompt", 0), "missing prompt en/goodbye; did you mean 'de/goodbye'?"),
        ((*here, "q", "queue"), "unknown queue 'suport'; did you mean 'support'?"),
        ((*here, "t", "prompt", 0), "missing prompt de/transferring"),
        ((*here, "t", "agent"), "unknown agent '1099'"),
        (
            (*here, "h", "function"),
            "cannot import shop: ModuleNotFoundError: No module named 'shop'",
        ),
    ]


def test_queue_named_by_a_variable_is_checked_where_the_variable_is_set() -> None:
    text = """
start: menu
nodes:
  menu: {type: menu, prompt: de/main_menu, options: {"1": a, "2": b, "3": c}}
  a: {type: set, variables: {queue: biling}, next: q1}
  b: {type: set, variables: {queue: support}, next: q2}
  c: {type: set, variables: {queue: "{other}"}, next: q2}
  q1: {type: queue, queue: "{queue}", priority: 5}
  q2: {type: queue, queue: "{queue}"}
"""
    flow = FlowConfig.model_validate(yaml.safe_load(text))
    assert validate_flows({"f": flow}, None, {"support", "billing"}, None) == [
        (
            ("flows", "f", "nodes", "a", "variables", "queue"),
            "unknown queue 'biling'; did you mean 'billing'?",
        )
    ]


def test_validate_flows_skips_what_is_not_known() -> None:
    assert validate_flows({"hotline": installation_flow()}, None, None, None) == []


def test_read_back_prompts_are_checked() -> None:
    flow = FlowConfig.model_validate(
        yaml.safe_load(
            BASE.replace("variable: customer_no", "variable: customer_no\n    confirm: true")
        )
    )
    found = validate_flows({"f": flow}, PROMPTS | {"de/you_entered"}, None, None)
    here = ("flows", "f", "nodes", "collect", "confirm")
    assert found == [
        (
            (*here, "digit_prompt"),
            "missing prompts " + ", ".join(f"de/numbers/{d}" for d in range(10)),
        ),
        ((*here, "prompt", 0), "missing prompt de/confirm_entry; did you mean 'de/you_entered'?"),
    ]


# ---------------------------------------------------------------- DIDs and customers


def test_did_route_needs_exactly_one_target() -> None:
    assert problems(DidRoute, {"number": "+4930123456"}) == [
        ((), "expected exactly one of flow, queue, agent; got none")
    ]
    assert problems(DidRoute, {"number": "+4930123456", "flow": "a", "agent": "1001"}) == [
        ((), "expected exactly one of flow, queue, agent; got flow, agent")
    ]
    assert "is not a phone number" in problems(DidRoute, {"number": "030-123", "flow": "a"})[0][1]


def test_validate_dids() -> None:
    flows = {"hotline": installation_flow()}
    dids = [
        DidRoute(number="+4930123456", flow="hotline", language="de"),
        DidRoute(number="+4930123456", flow="hotlin"),
        DidRoute(number="+4930123457", flow="hotline", language="fr"),
        DidRoute(number="+4930123458", queue="nope"),
        DidRoute(number="+4930123459", agent="2000"),
    ]
    assert validate_dids(dids, flows, {"support"}, {"1001"}) == [
        (("dids", 1, "number"), "+4930123456 is already dids[0]"),
        (("dids", 1, "flow"), "unknown flow 'hotlin'; did you mean 'hotline'?"),
        (("dids", 2, "language"), "flow 'hotline' does not speak 'fr' (de, en)"),
        (("dids", 3, "queue"), "unknown queue 'nope'"),
        (("dids", 4, "agent"), "unknown agent '2000'"),
    ]


def test_customer_seed_values() -> None:
    seed = CustomerSeed.model_validate(
        {"customer_no": "1", "name": "A", "fields": {"since": 2019, "vip": True}}
    )
    assert seed.to_customer().fields == {"since": "2019", "vip": "true"}
    found = dict(
        problems(
            CustomerSeed,
            {"customer_no": 100001, "name": "", "phones": ["030 123"], "pinned_agents": ["x"]},
        )
    )
    assert set(found) == {("customer_no",), ("name",), ("phones", 0), ("pinned_agents", 0)}


def test_validate_customers() -> None:
    seeds = [
        CustomerSeed(customer_no="1", name="A", phones=("+491", "+492", "+491")),
        CustomerSeed(customer_no="1", name="B", phones=("+492",), pinned_agents=("1001", "1002")),
    ]
    assert validate_customers(seeds, {"1001"}) == [
        (("customers", 0, "phones", 2), "+491 is listed twice"),
        (("customers", 1, "customer_no"), "duplicate customer_no '1' (first at customers[0])"),
        (("customers", 1, "phones", 0), "+492 is also a phone of customers[0]"),
        (("customers", 1, "pinned_agents", 1), "unknown agent '1002'"),
    ]


# ---------------------------------------------------------------- hooks


def test_load_hooks_with_an_injected_importer() -> None:
    def good(call: HookCall) -> HookResult:
        return HookResult(next="x")

    modules = {"shop.hooks": type("M", (), {"check": staticmethod(good), "value": 3})}

    def import_module(name: str) -> object:
        if name not in modules:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return modules[name]

    found, failed = load_hooks(
        ["shop.hooks:check", "shop.hooks:value", "shop.hooks:nothing", "nope:f"], import_module
    )
    assert found == {"shop.hooks:check": good}
    assert failed == {
        "shop.hooks:value": "shop.hooks has no function 'value'",
        "shop.hooks:nothing": "shop.hooks has no function 'nothing'",
        "nope:f": "cannot import nope: ModuleNotFoundError: No module named 'nope'",
    }


def test_hook_specs_lists_every_hook_with_its_place() -> None:
    assert hook_specs({"hotline": installation_flow()}) == {
        "shop:gone": [("flows", "hotline", "nodes", "h", "function")]
    }
    assert problems(FlowConfig, BASE.replace("type: hangup", "type: hook, function: nocolon"))
