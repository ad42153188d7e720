"""The session as a whole: hooks, the end of a call, time limits, hand-over and misuse."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from pbx.call.events import Answered, DtmfReceived, Hangup, Play, StopPlayback, Transfer
from pbx.errors import LocalProtocolError
from pbx.ivr.events import EnqueueCall, IvrOutcome, TimerFired
from pbx.ivr.hooks import HookCall, HookResult
from pbx.ivr.runner import IvrState
from tests.unit.ivr.ivr_driver import Caller

HOOK_FLOW = """
start: check
nodes:
  check:
    type: hook
    function: "shop.hooks:check_contract"
    targets: [good, bad]
    on_error: oops
    options: {prefix: "9"}
    timeout_s: 4
  good: {type: hangup, cause: good}
  bad: {type: hangup, cause: bad}
  oops: {type: hangup, cause: oops}
"""


def check_contract(call: HookCall) -> HookResult:
    """An interactive hook: asks for a contract number, then decides."""
    if call.round == 0:
        return HookResult(play=("{lang}/enter_customer_number",), collect=4)
    if call.timed_out and not call.digits:
        return HookResult(next="bad", variables={"contract": "none"})
    good = call.digits.startswith(call.options["prefix"])
    return HookResult(next="good" if good else "bad", variables={"contract": call.digits})


def run_hook(hook: object, keys: str = "") -> Caller:
    caller = Caller(HOOK_FLOW, hooks={"shop.hooks:check_contract": hook})  # type: ignore[dict-item]
    caller.start()
    caller.play_all()
    caller.press(keys)
    return caller


def test_hook_reads_digits_and_chooses_the_next_node() -> None:
    caller = Caller(HOOK_FLOW, hooks={"shop.hooks:check_contract": check_contract})
    (play,) = caller.start()
    assert play == Play("c1", ("de/enter_customer_number",), playback="c1/1", barge_in=True)
    caller.play_out()
    assert caller.session.next_deadline() == caller.now + 4
    assert caller.press("9123") == [Hangup("c1", "good")]
    assert caller.session.variables["contract"] == "9123"
    assert caller.session.path == ("check", "good")


def test_hook_is_called_again_on_silence() -> None:
    caller = run_hook(check_contract)
    assert caller.wait(4) == [Hangup("c1", "bad")]
    assert caller.session.variables["contract"] == "none"


def test_hook_terminator_ends_the_round() -> None:
    caller = run_hook(check_contract, "12#")
    assert caller.session.variables["contract"] == "12"
    assert caller.session.path == ("check", "bad")


def test_hook_sees_a_read_only_view_of_the_variables() -> None:
    seen: list[Mapping[str, str]] = []

    def sneaky(call: HookCall) -> HookResult:
        seen.append(call.variables)
        call.variables["caller"] = "forged"  # type: ignore[index]
        return HookResult(next="good")

    caller = run_hook(sneaky)
    assert caller.session.path == ("check", "oops")
    assert "TypeError" in caller.session.variables["hook.error"]
    assert caller.session.variables["caller"] == "+4930999"
    assert seen[0]["caller"] == "+4930999"


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (HookResult(next="elsewhere"), "chose 'elsewhere', not a target"),
        (HookResult(), "returned neither next nor collect"),
        ("good", "returned str"),
    ],
)
def test_bad_hook_results_go_to_on_error(result: object, error: str) -> None:
    caller = run_hook(lambda call: result)
    assert caller.session.path == ("check", "oops")
    assert error in caller.session.variables["hook.error"]
    assert caller.session.stats.hook_errors == 1


def test_hook_exception_goes_to_on_error() -> None:
    def broken(call: HookCall) -> HookResult:
        raise RuntimeError("CRM unreachable")

    caller = run_hook(broken)
    assert caller.session.variables["hook.error"] == (
        "hook shop.hooks:check_contract raised RuntimeError: CRM unreachable"
    )


def test_hook_that_never_decides_is_stopped_after_max_rounds() -> None:
    caller = run_hook(lambda call: HookResult(collect=1))
    for _ in range(25):
        caller.press("1")
    assert caller.session.path == ("check", "oops")
    assert "more than 20 rounds" in caller.session.variables["hook.error"]


def test_missing_hook_without_on_error_hangs_up() -> None:
    caller = Caller(
        HOOK_FLOW.replace("on_error: oops", "").replace("  oops: {type: hangup, cause: oops}\n", "")
    )
    assert caller.start() == [Hangup("c1", "ivr_failure")]
    assert caller.session.outcome == IvrOutcome("failed", cause="ivr_failure")
    assert "not loaded" in caller.session.variables["hook.error"]


# ---------------------------------------------------------------- the end of the call

GREETING = """
start: greeting
max_duration_s: 60
nodes:
  greeting: {type: play, prompt: de/greeting, next: menu}
  menu: {type: menu, prompt: de/main_menu, options: {"1": greeting}, timeout_s: 10}
"""


def test_caller_hangs_up_mid_prompt() -> None:
    caller = Caller(GREETING)
    caller.start()
    assert caller.hang_up() == []
    assert caller.session.finished
    assert caller.session.outcome == IvrOutcome("hung_up", cause="normal")
    assert caller.session.next_deadline() is None
    assert caller.session.ended_at == caller.now
    # Late events of the finished call are absorbed.
    assert caller.play_out() == []
    assert caller.session.handle(DtmfReceived("c1", "1"), caller.now) == []
    assert caller.session.handle_timer(caller.now + 100) == []


def test_media_timeout_ends_the_call() -> None:
    caller = Caller(GREETING)
    caller.start()
    assert caller.media_timeout() == [Hangup("c1", "rtp_timeout")]
    assert caller.session.outcome == IvrOutcome("hung_up", cause="rtp_timeout")


def test_max_duration_hangs_up() -> None:
    caller = Caller(GREETING)
    caller.start()
    caller.play_out()
    caller.play_out()
    caller.press("1")  # back to the greeting, which now plays for a long time
    assert caller.wait(59.9) == []
    assert caller.wait(0.1) == [StopPlayback("c1"), Hangup("c1", "ivr_timeout")]
    assert caller.session.outcome == IvrOutcome("timed_out", cause="ivr_timeout")
    assert caller.session.started_at is not None
    assert caller.session.ended_at == caller.session.started_at + 60


def test_max_duration_goes_to_on_max_duration_once_then_hangs_up() -> None:
    flow = GREETING.replace("max_duration_s: 60", "max_duration_s: 60\non_max_duration: late")
    flow += "  late: {type: menu, prompt: de/all_agents_busy, options: {'1': menu}, "
    flow += "timeout_s: 30}\n"
    caller = Caller(flow)
    caller.start()
    busy = ("de/all_agents_busy",)
    assert caller.wait(60) == [StopPlayback("c1"), Play("c1", busy, playback="c1/2", barge_in=True)]
    assert caller.session.path == ("greeting", "late")
    caller.play_out()
    # 30 s of silence replay the menu; 60 s after the limit the call is hung up regardless.
    assert caller.wait(60) == [
        Play("c1", busy, playback="c1/3", barge_in=True),
        StopPlayback("c1"),
        Hangup("c1", "ivr_timeout"),
    ]
    assert caller.session.outcome == IvrOutcome("timed_out", cause="ivr_timeout")


# ---------------------------------------------------------------- handing the call on

HAND_OVER = """
start: lang
language: en
languages: [de, en]
nodes:
  lang:
    type: set
    variables: {concern: technik, queue: "support-{lang}", level: "{customer.level}"}
    next: menu
  menu:
    type: menu
    prompt: "{lang}/main_menu"
    options: {"1": queue, "2": agent, "3": outside, "4": german}
  german: {type: set, variables: {language: de}, next: menu}
  queue:
    type: queue
    queue: "{queue}"
    priority: "{customer.level}"
    skills: ["{concern}", "", "lang-{lang}"]
    prompt: "{lang}/please_hold"
  agent: {type: transfer, agent: "1001", prompt: "{lang}/transferring"}
  outside: {type: transfer, number: "+4989123456"}
"""


def test_queue_with_variables_after_its_prompt() -> None:
    caller = Caller(HAND_OVER, {"customer.level": "7"})
    caller.start()
    caller.play_out()
    (play,) = caller.press("1")
    assert isinstance(play, Play) and play.prompts == ("en/please_hold",) and not play.barge_in
    (enqueue,) = caller.play_out()
    assert isinstance(enqueue, EnqueueCall)
    assert (enqueue.queue, enqueue.priority, enqueue.skills) == (
        "support-en",
        7,
        ("technik", "lang-en"),
    )
    assert enqueue.variables["level"] == "7"
    assert caller.session.outcome == IvrOutcome("queued", "support-en", 7, ("technik", "lang-en"))


def test_priority_that_is_not_a_number_counts_as_zero() -> None:
    caller = Caller(HAND_OVER, {"customer.level": "high"})
    caller.start()
    caller.press("1")
    (enqueue,) = caller.play_out()
    assert isinstance(enqueue, EnqueueCall) and enqueue.priority == 0


def test_language_set_mid_flow_changes_the_prompts() -> None:
    caller = Caller(HAND_OVER)
    caller.start()
    assert caller.now_playing() == ("en/main_menu",)
    caller.press("4")
    assert caller.now_playing() == ("de/main_menu",)
    caller.press("2")
    assert caller.now_playing() == ("de/transferring",)
    assert caller.play_out() == [Transfer("c1", "agent:1001")]
    assert caller.session.outcome == IvrOutcome("transferred", "agent:1001")


def test_language_from_the_did_wins_over_the_flow_default() -> None:
    caller = Caller(HAND_OVER, {"language": "de"})
    caller.start()
    assert caller.now_playing() == ("de/main_menu",)


def test_transfer_to_an_outside_number_without_a_prompt() -> None:
    caller = Caller(HAND_OVER)
    caller.start()
    assert caller.press("3") == [StopPlayback("c1"), Transfer("c1", "number:+4989123456")]


def test_prompt_resolver_is_used_and_may_drop_prompts() -> None:
    def resolve(template: str, variables: Mapping[str, str]) -> str:
        return "" if "please_hold" in template else "custom/" + template.replace("{lang}", "xx")

    caller = Caller(HAND_OVER, resolve_prompt=resolve)
    assert caller.start()[0] == Play("c1", ("custom/xx/main_menu",), playback="c1/1", barge_in=True)
    stop, enqueue = caller.press("1")  # the queue's prompt renders to nothing: no Play
    assert stop == StopPlayback("c1") and isinstance(enqueue, EnqueueCall)


# ---------------------------------------------------------------- misuse is an error


def test_events_of_another_call_are_refused() -> None:
    caller = Caller(GREETING)
    caller.start()
    with pytest.raises(LocalProtocolError, match="event of c2"):
        caller.session.handle(DtmfReceived("c2", "1"), caller.now)


def test_an_event_the_ivr_does_not_speak_is_refused() -> None:
    caller = Caller(GREETING)
    caller.start()
    with pytest.raises(LocalProtocolError, match="Answered is illegal in prompting"):
        caller.session.handle(Answered("c1"), caller.now)  # type: ignore[arg-type]


def test_events_before_start_are_refused_and_start_is_once() -> None:
    caller = Caller(GREETING)
    with pytest.raises(LocalProtocolError, match="illegal in ready"):
        caller.session.handle(TimerFired("c1"), caller.now)
    caller.start()
    with pytest.raises(LocalProtocolError, match="already started"):
        caller.start()
    assert caller.session.state is IvrState.PROMPTING


def test_early_timer_does_nothing() -> None:
    caller = Caller(GREETING)
    caller.start()
    caller.play_all()
    assert caller.session.handle_timer(caller.now + 1) == []
    assert caller.session.state is IvrState.AWAITING_DIGITS
