"""The example hotline in config/pbx.yaml (dids, flows, customers): valid, and callers walk
through it as the comments promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from pbx.call.events import Hangup, Play, Transfer
from pbx.ivr.events import EnqueueCall, IvrOutcome
from pbx.ivr.schema import CustomerSeed, DidRoute, FlowConfig
from pbx.ivr.validation import validate_customers, validate_dids, validate_flows
from tests.unit.ivr.ivr_driver import Caller, InMemoryDirectory, at

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "pbx.yaml"
AGENTS = {str(extension) for extension in range(1001, 1011)}
QUEUES = {"billing", "technik", "first-level", "vip"}
# Prompts the example needs beyond those media/build_prompts.py made so far.
NEW_PROMPTS = {
    "de/language_menu",
    "de/concern_menu",
    "en/concern_menu",
    "de/you_entered",
    "en/you_entered",
    "de/confirm_entry",
    "en/confirm_entry",
}


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


FLOWS = TypeAdapter(dict[str, FlowConfig]).validate_python(load()["flows"])
DIDS = TypeAdapter(tuple[DidRoute, ...]).validate_python(load()["dids"])
SEEDS = TypeAdapter(tuple[CustomerSeed, ...]).validate_python(load()["customers"])
DIRECTORY = InMemoryDirectory([seed.to_customer() for seed in SEEDS])


def prompt_files() -> set[str]:
    prompts = ROOT / "prompts"
    return {str(path.relative_to(prompts).with_suffix("")) for path in prompts.rglob("*.wav")}


def test_example_is_valid_against_the_installation() -> None:
    assert validate_flows(FLOWS, prompt_files() | NEW_PROMPTS, QUEUES, AGENTS) == []
    assert validate_dids(DIDS, FLOWS, QUEUES, AGENTS) == []
    assert validate_customers(SEEDS, AGENTS) == []
    assert [d.number for d in DIDS][:2] == ["+4930123456", "+4930123457"]
    assert {s.status for s in SEEDS} == {"standard", "gold", "vip"}


def call(did: str, caller: str, now: float = at(2026, 3, 10, 10, 0)) -> Caller:
    route = next(d for d in DIDS if d.number == did)
    variables = {"caller": caller, "did": did}
    if route.language:
        variables["language"] = route.language
    assert route.flow is not None
    return Caller(FLOWS[route.flow], variables, now=now, directory=DIRECTORY)


def test_known_vip_on_the_german_number_queues_with_priority() -> None:
    caller = call("+4930123456", "+4940123987")  # Dr. Hans Weber, vip
    assert caller.start()[0] == Play("c1", ("de/greeting",), playback="c1/1", barge_in=True)
    caller.play_out()
    caller.answer_lookup()
    assert caller.now_playing() == ("de/concern_menu",)
    caller.press("1")
    assert caller.now_playing() == ("de/connecting",)
    (enqueue,) = caller.play_out()
    assert isinstance(enqueue, EnqueueCall)
    assert (enqueue.queue, enqueue.priority, enqueue.skills, enqueue.pinned_agents) == (
        "billing",
        10,
        ("billing", "german"),
        ("1002", "1001"),
    )
    assert caller.session.path == (
        "language_check", "german", "greeting", "opening_hours", "identify", "concern",
        "billing", "known_customer", "route", "priority_queue",
    )  # fmt: skip


def test_unknown_caller_on_the_english_number_enters_the_customer_number() -> None:
    caller = call("+4930123457", "+4930555")
    caller.start()
    caller.play_out()
    caller.answer_lookup()
    caller.press("2")
    assert caller.now_playing() == ("en/enter_customer_number",)
    caller.press("100003#")  # as the prompt says: the number, then the hash key
    assert (
        caller.now_playing()[0] == "en/you_entered"
        and caller.now_playing()[-1] == "en/confirm_entry"
    )
    caller.press("1")
    caller.answer_lookup()
    assert caller.session.variables["customer.name"] == "John Smith"
    assert caller.now_playing() == ("en/please_hold",)
    (enqueue,) = caller.play_out()
    assert isinstance(enqueue, EnqueueCall)
    assert (enqueue.queue, enqueue.priority, enqueue.skills) == (
        "technik",
        0,
        ("technik", "english"),
    )
    assert enqueue.variables["customer_no"] == "100003"


def test_unknown_customer_number_still_gets_through() -> None:
    caller = call("+4930123456", "+4930555")
    caller.start()
    caller.press("3")  # barges into the greeting; the look-up by caller ID comes first
    caller.answer_lookup()
    caller.press("999999#")
    caller.press("1")
    caller.answer_lookup()
    assert caller.now_playing() == ("de/customer_not_found",)
    caller.play_out()
    (enqueue,) = caller.play_out()
    assert isinstance(enqueue, EnqueueCall) and enqueue.queue == "first-level"


@pytest.mark.parametrize(
    "when",
    [at(2026, 12, 25, 10, 0), at(2026, 4, 3, 11, 0), at(2026, 3, 10, 19, 0), at(2026, 3, 14, 11)],
    ids=["christmas", "good-friday", "evening", "saturday"],
)
def test_closed_plays_the_message_and_hangs_up(when: float) -> None:
    caller = call("+4930123456", "+4930555", now=when)
    caller.start()
    caller.play_out()
    assert caller.now_playing() == ("de/closed", "de/goodbye")
    assert caller.play_out() == [Hangup("c1", "normal")]
    assert caller.session.outcome == IvrOutcome("completed", cause="normal")


def test_language_menu_on_the_number_without_a_language() -> None:
    caller = call("+4930123458", "+4930555")
    assert caller.start()[0] == Play("c1", ("de/language_menu",), playback="c1/1", barge_in=True)
    caller.press("2")
    assert caller.now_playing() == ("en/greeting",)
    assert caller.session.variables["language"] == "en"


def test_silence_at_the_language_menu_means_german() -> None:
    caller = call("+4930123458", "+4930555")
    caller.start()
    caller.play_out()
    caller.wait(4)
    caller.play_out()
    caller.wait(4)
    assert caller.now_playing() == ("de/greeting",)


def test_zero_transfers_to_the_operator() -> None:
    caller = call("+4930123456", "+4930555")
    caller.start()
    caller.play_out()
    caller.answer_lookup()
    caller.press("0")
    assert caller.now_playing() == ("de/transferring",)
    assert caller.play_out() == [Transfer("c1", "agent:1009")]


def test_three_wrong_keys_go_to_the_operator() -> None:
    caller = call("+4930123456", "+4930555")
    caller.start()
    caller.play_out()
    caller.answer_lookup()
    for _ in range(3):
        assert caller.session.current_node == "concern"
        caller.press("7")
    assert caller.session.current_node == "operator"


def test_five_minutes_in_the_ivr_go_to_the_operator() -> None:
    caller = call("+4930123456", "+4930555")
    caller.start()
    out = caller.wait(300)  # the greeting never ends
    assert caller.session.path[-1] == "operator"
    assert out[-1] == Play("c1", ("de/transferring",), playback="c1/2", barge_in=False)
