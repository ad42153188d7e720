"""Collecting digits: terminator, length, inter-digit timeout, validation, read-back."""

from __future__ import annotations

import pytest

from pbx.call.events import Hangup, Play
from tests.unit.ivr.ivr_driver import Caller

COLLECT = """
start: number
nodes:
  number:
    type: collect
    prompt: de/enter_customer_number
    variable: customer_no
    min_digits: 4
    max_digits: 6
    terminator: "#"
    first_digit_timeout_s: 8
    inter_digit_timeout_s: 3
    pattern: "[1-9][0-9]*"
    invalid_prompt: de/invalid_entry
    timeout_prompt: de/please_hold
    max_retries: 1
    on_failure: failed
    next: done
  done: {type: hangup}
  failed: {type: hangup, cause: no_number}
"""

READ_BACK = COLLECT.replace("max_retries: 1", "max_retries: 1\n    confirm: true")


def entered(caller: Caller) -> str | None:
    return caller.session.variables.get("customer_no")


def test_terminator_ends_the_entry() -> None:
    caller = Caller(COLLECT)
    caller.start()
    caller.play_out()
    assert caller.session.next_deadline() == caller.now + 8  # first-digit timeout
    caller.press("1234")
    assert caller.session.next_deadline() == caller.now + 3  # inter-digit timeout
    assert caller.press("#") == [Hangup("c1", "normal")]
    assert entered(caller) == "1234"
    assert caller.session.path == ("number", "done")


def test_max_digits_ends_the_entry() -> None:
    caller = Caller(COLLECT)
    caller.start()
    caller.play_out()
    caller.press("12345")
    assert entered(caller) is None
    caller.press("6")
    # Complete at max_digits, after a moment for the terminator the caller may still press
    # (test_terminator_after_a_full_entry_belongs_to_it).
    assert entered(caller) is None
    caller.wait(1.5)
    assert entered(caller) == "123456"


def test_inter_digit_timeout_ends_a_long_enough_entry() -> None:
    caller = Caller(COLLECT)
    caller.start()
    caller.play_out()
    caller.press("98765")
    assert caller.wait(2.9) == []
    assert caller.wait(0.1) == [Hangup("c1", "normal")]
    assert entered(caller) == "98765"


def test_inter_digit_timeout_on_a_short_entry_is_invalid() -> None:
    caller = Caller(COLLECT)
    caller.start()
    caller.play_out()
    caller.press("12")
    (play,) = caller.wait(3)
    assert isinstance(play, Play)
    assert play.prompts == ("de/invalid_entry", "de/enter_customer_number")
    caller.play_out()
    caller.press("4711#")
    assert entered(caller) == "4711"


def test_no_digit_at_all_plays_the_timeout_prompt_then_fails() -> None:
    caller = Caller(COLLECT)
    caller.start()
    caller.play_out()
    (play,) = caller.wait(8)
    assert isinstance(play, Play)
    assert play.prompts == ("de/please_hold", "de/enter_customer_number")
    caller.play_out()
    assert caller.wait(8) == [Hangup("c1", "no_number")]
    assert caller.session.path == ("number", "failed")


@pytest.mark.parametrize("keys", ["0123#", "12#", "12*"], ids=["pattern", "short", "star"])
def test_invalid_entries_are_retried(keys: str) -> None:
    caller = Caller(COLLECT)
    caller.start()
    caller.play_out()
    caller.press(keys)
    assert caller.now_playing() == ("de/invalid_entry", "de/enter_customer_number")
    assert caller.session.stats.invalid_entries == 1
    assert entered(caller) is None


def test_entry_typed_during_the_prompt_is_kept_whole() -> None:
    caller = Caller(COLLECT)
    caller.start()
    caller.press("5555#")  # the first key barges in, the rest follow
    assert entered(caller) == "5555"


def test_read_back_then_confirm() -> None:
    caller = Caller(READ_BACK)
    caller.start()
    caller.play_out()
    (play,) = caller.press("4711#")
    assert isinstance(play, Play) and play.barge_in
    assert play.prompts == (
        "de/you_entered",
        "de/numbers/4",
        "de/numbers/7",
        "de/numbers/1",
        "de/numbers/1",
        "de/confirm_entry",
    )
    assert entered(caller) is None
    caller.play_out()
    assert caller.press("1") == [Hangup("c1", "normal")]
    assert entered(caller) == "4711"


def test_read_back_can_be_interrupted_by_the_confirm_key() -> None:
    caller = Caller(READ_BACK)
    caller.start()
    caller.press("4711#")
    caller.press("1")
    assert entered(caller) == "4711"


def test_read_back_then_re_enter() -> None:
    caller = Caller(READ_BACK)
    caller.start()
    caller.press("4711#")
    caller.play_out()
    (play,) = caller.press("2")
    assert isinstance(play, Play) and play.prompts == ("de/enter_customer_number",)
    caller.press("4712#")
    caller.press("1")
    assert entered(caller) == "4712"
    assert caller.session.stats.invalid_entries == 0


def test_wrong_key_or_silence_at_the_read_back_repeats_it_then_fails() -> None:
    caller = Caller(READ_BACK)
    caller.start()
    caller.press("4711#")
    caller.play_out()
    (play,) = caller.press("5")
    assert isinstance(play, Play)
    assert play.prompts[0] == "de/invalid_entry" and play.prompts[1] == "de/you_entered"
    caller.play_out()
    assert caller.wait(5) == [Hangup("c1", "no_number")]


def test_collect_without_terminator_treats_hash_as_invalid() -> None:
    caller = Caller(COLLECT.replace('terminator: "#"', "terminator: null"))
    caller.start()
    caller.play_out()
    caller.press("12#")
    assert caller.now_playing() == ("de/invalid_entry", "de/enter_customer_number")


def test_terminator_after_a_full_entry_belongs_to_it() -> None:
    # Told "enter your customer number followed by the hash key", the caller types all six
    # digits and then #: the # ends that entry and is not the answer to the read-back's
    # "press 1 to confirm" (which would be "invalid entry").
    caller = Caller(READ_BACK)
    caller.start()
    caller.play_out()
    assert caller.press("123456") == []
    (play,) = caller.press("#")
    assert play.prompts[0] == "de/you_entered"
    caller.play_out()
    assert caller.session.stats.invalid_entries == 0
    assert caller.press("1") == [Hangup("c1", "normal")]
    assert entered(caller) == "123456"


def test_a_full_entry_without_terminator_completes_after_a_moment() -> None:
    caller = Caller(READ_BACK)
    caller.start()
    caller.play_out()
    caller.press("123456")
    (play,) = caller.wait(1.5)
    assert play.prompts[0] == "de/you_entered"
    caller.play_out()
    caller.press("#")  # now the # is an answer to the read-back, and not a valid one
    assert caller.session.stats.invalid_entries == 1


def test_a_key_right_after_a_full_entry_answers_the_read_back() -> None:
    caller = Caller(READ_BACK)
    caller.start()
    caller.play_out()
    caller.press("123456")
    caller.press("1")  # typed ahead: the read-back plays, then "1" confirms
    assert caller.play_out() == [Hangup("c1", "normal")]
    assert entered(caller) == "123456"


def test_terminator_after_a_full_entry_is_not_typed_ahead_into_the_next_node() -> None:
    caller = Caller(COLLECT.replace("next: done", "next: menu") + """
  menu:
    type: menu
    prompt: de/main_menu
    options: {"1": done}
    invalid_prompt: de/invalid_entry
    max_retries: 0
    on_failure: failed
""")
    caller.start()
    caller.play_out()
    caller.press("123456#")
    caller.play_out()
    assert caller.session.stats.invalid_entries == 0
    assert caller.press("1") == [Hangup("c1", "normal")]
