"""Menus: valid keys, invalid keys and silence with their retry counts and prompts."""

from __future__ import annotations

from pbx.call.events import Hangup, Play, StopPlayback
from pbx.ivr.events import IvrOutcome
from pbx.ivr.runner import IvrState
from tests.unit.ivr.ivr_driver import Caller

MENU = """
start: menu
nodes:
  menu:
    type: menu
    prompt: "{lang}/main_menu"
    options: {"1": one, "2": two, "*": menu}
    variable: choice
    timeout_s: 5
    max_retries: 2
    invalid_prompt: "{lang}/invalid_entry"
    timeout_prompt: "{lang}/please_hold"
    on_failure: failed
  one: {type: hangup, prompt: de/goodbye}
  two: {type: hangup}
  failed: {type: hangup, cause: menu_failed}
"""


def test_valid_key_goes_to_its_node_and_is_stored() -> None:
    caller = Caller(MENU)
    assert caller.start() == [Play("c1", ("de/main_menu",), playback="c1/1", barge_in=True)]
    caller.play_out()
    assert caller.session.state is IvrState.AWAITING_DIGITS
    assert caller.session.next_deadline() == caller.now + 5
    assert caller.press("2") == [Hangup("c1", "normal")]
    assert caller.session.path == ("menu", "two")
    assert caller.session.variables["choice"] == "2"
    assert caller.session.outcome == IvrOutcome("completed", cause="normal")
    assert caller.session.finished and caller.session.next_deadline() is None


def test_key_during_the_prompt_barges_in() -> None:
    caller = Caller(MENU)
    caller.start()
    out = caller.press("1")
    assert out == [StopPlayback("c1"), Play("c1", ("de/goodbye",), playback="c1/2")]
    assert caller.session.path == ("menu", "one")


def test_invalid_key_plays_the_invalid_prompt_then_the_menu_again() -> None:
    caller = Caller(MENU)
    caller.start()
    caller.play_out()
    (play,) = caller.press("7")
    assert isinstance(play, Play) and play.prompts == ("de/invalid_entry", "de/main_menu")
    caller.play_out()
    caller.press("1")
    assert caller.session.path == ("menu", "one")
    assert caller.session.stats.invalid_entries == 1


def test_silence_plays_the_timeout_prompt_then_the_menu_again() -> None:
    caller = Caller(MENU)
    caller.start()
    caller.play_out()
    assert caller.wait(4.9) == []
    (play,) = caller.wait(0.1)
    assert isinstance(play, Play) and play.prompts == ("de/please_hold", "de/main_menu")
    caller.play_out()
    caller.press("2")
    assert caller.session.path == ("menu", "two")
    assert caller.session.stats.timeouts == 1


def test_retries_exhausted_go_to_on_failure() -> None:
    caller = Caller(MENU)
    caller.start()
    caller.play_out()
    caller.press("9")  # failure 1
    caller.play_out()
    caller.wait(5)  # failure 2
    caller.play_out()
    assert caller.press("8") == [Hangup("c1", "menu_failed")]  # failure 3 > max_retries 2
    assert caller.session.path == ("menu", "failed")


def test_retries_exhausted_without_on_failure_hang_up() -> None:
    caller = Caller("""
start: menu
nodes:
  menu: {type: menu, prompt: de/main_menu, options: {"1": one}, max_retries: 0}
  one: {type: hangup}
""")
    caller.start()
    caller.play_out()
    assert caller.press("9") == [Hangup("c1", "ivr_failure")]
    assert caller.session.outcome == IvrOutcome("failed", cause="ivr_failure")


def test_a_key_leading_back_to_the_menu_starts_it_afresh() -> None:
    caller = Caller(MENU)
    caller.start()
    caller.play_out()
    caller.press("9")
    caller.play_out()
    caller.press("9")
    caller.play_out()
    caller.press("*")  # repeat: the retry count starts again
    assert caller.now_playing() == ("de/main_menu",)
    caller.play_out()
    caller.press("9")
    caller.play_out()
    caller.press("9")
    caller.play_out()
    caller.press("1")
    assert caller.session.path == ("menu", "menu", "one")


def test_keys_outside_a_keypad_are_ignored() -> None:
    caller = Caller(MENU)
    caller.start()
    caller.play_out()
    assert caller.press("x") == []
    assert caller.session.stats.digits == 0
    caller.press("1")
    assert caller.session.path == ("menu", "one")
