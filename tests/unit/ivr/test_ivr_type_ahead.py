"""Barge-in and the type-ahead buffer: keys typed early are never lost."""

from __future__ import annotations

from typing import Literal

import pytest

from pbx.call.events import DtmfReceived, Play, PlaybackFinished, StopPlayback
from pbx.ivr.runner import IvrState
from tests.unit.ivr.ivr_driver import Caller

TWO_LEVELS = """
start: greeting
nodes:
  greeting: {type: play, prompt: [de/greeting, de/ad_1], barge_in: BARGE, next: level1}
  level1:
    type: menu
    prompt: de/main_menu
    options: {"1": level2, "2": number}
    invalid_prompt: de/invalid_entry
  level2:
    type: menu
    prompt: de/main_menu
    options: {"3": info, "4": bye}
  info: {type: play, prompt: de/closed, barge_in: true, next: bye}
  number: {type: collect, prompt: de/enter_customer_number, variable: n, max_digits: 3, next: bye}
  bye: {type: hangup, prompt: de/goodbye}
"""

Order = Literal["dtmf_first", "stop_first"]


@pytest.mark.parametrize("order", ["dtmf_first", "stop_first"])
def test_a_key_during_a_barge_in_greeting_answers_the_next_menu(order: Order) -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "true"))
    caller.start()
    caller.press("1", order)  # stops the greeting; level1 takes it
    assert caller.session.path[1:] == ("level1", "level2")
    assert caller.now_playing() == ("de/main_menu",)  # level2's prompt
    caller.press("4", order)
    assert caller.session.path == ("greeting", "level1", "level2", "bye")
    if order == "dtmf_first":  # the media engine's order: level1's prompt never starts
        assert caller.played() == [("de/greeting", "de/ad_1"), ("de/main_menu",), ("de/goodbye",)]


def test_keys_during_a_prompt_without_barge_in_wait_for_its_end() -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "false"))
    caller.start()
    assert caller.press("14") == []
    assert caller.now_playing() == ("de/greeting", "de/ad_1")  # still playing
    assert caller.session.state is IvrState.PROMPTING
    caller.play_out()
    assert caller.session.path == ("greeting", "level1", "level2", "bye")
    assert caller.now_playing() == ("de/goodbye",)


def test_type_ahead_fills_a_collect_without_its_prompt() -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "false"))
    caller.start()
    caller.press("2123#")
    caller.play_out()
    assert caller.session.variables["n"] == "123"
    assert caller.played() == [("de/greeting", "de/ad_1"), ("de/goodbye",)]


def test_keys_typed_one_by_one_barge_into_each_prompt() -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "true"))
    caller.start()
    caller.press("2123#")
    assert caller.session.variables["n"] == "123"
    assert caller.played() == [
        ("de/greeting", "de/ad_1"),
        ("de/enter_customer_number",),
        ("de/goodbye",),
    ]


def test_a_barge_in_play_is_skipped_while_keys_wait_but_plays_otherwise() -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "false"))
    caller.start()
    caller.play_out()
    caller.press("1")
    caller.play_out()
    caller.press("3")
    assert caller.now_playing() == ("de/closed",)


def test_an_invalid_key_clears_what_was_typed_ahead() -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "false"))
    caller.start()
    caller.press("91")  # 9 is invalid in level1: the 1 typed after it is dropped
    caller.play_out()
    assert caller.session.path == ("greeting", "level1")
    assert caller.now_playing() == ("de/invalid_entry", "de/main_menu")


def test_stale_playback_end_is_ignored() -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "true"))
    caller.start()
    first = caller.playing
    assert first is not None
    caller.press("1")
    # The engine's report for the stopped greeting arrives again, late: nothing happens.
    stale = PlaybackFinished("c1", first.playback, interrupted=True)
    assert caller.session.handle(stale, caller.now) == []
    assert caller.session.path == ("greeting", "level1", "level2")


def test_a_key_barging_into_a_menu_prompt_stops_it_once() -> None:
    caller = Caller(TWO_LEVELS.replace("BARGE", "false"))
    caller.start()
    caller.play_out()
    # The key came by SIP INFO: the engine did not stop the prompt, the session does.
    out = caller.session.handle(DtmfReceived("c1", "1", source="info"), caller.now)
    assert out[0] == StopPlayback("c1")
    assert isinstance(out[1], Play) and out[1].prompts == ("de/main_menu",)
