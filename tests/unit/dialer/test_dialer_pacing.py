"""The pacer: how many lines per mode, the 2-second drop rule, AMD actions, blending,
operator control, late events, deadlines and statistics."""

from __future__ import annotations

import pytest

from pbx.dialer.events import (
    AgentConnected,
    AgentsChanged,
    AmdDecided,
    CallAnswered,
    CallEnded,
    CallFailed,
    CampaignFinished,
    CancelPreview,
    ConnectAnsweredCall,
    ContactsAdded,
    DialContact,
    DialingPaused,
    DialingResumed,
    DropCall,
    EventIgnored,
    HangUpCall,
    InboundWaiting,
    LeaveMessage,
    PauseRequested,
    PreviewDecided,
    ReserveAgentForPreview,
    StartRequested,
    StopRequested,
)
from pbx.dialer.pacing import WARMUP_RESULTS, RunState, expected_overflow
from pbx.dialer.records import ContactState
from tests.unit.dialer.dialer_harness import Desk, campaign_config, customers, only


def started(mode: str = "progressive", count: int = 10, free: int = 2, **settings: object
            ) -> Desk:
    desk = Desk(campaign_config(mode=mode, **settings), customers(count))
    desk.send(AgentsChanged(free=free, busy=0))
    desk.send(StartRequested())
    return desk


def test_nothing_is_dialled_before_start() -> None:
    desk = Desk(campaign_config(), customers(3))
    assert only(desk.send(AgentsChanged(free=3, busy=0)), DialContact) == []
    assert desk.pacer.state is RunState.IDLE


def test_progressive_dials_one_line_per_free_agent() -> None:
    desk = started(free=2)
    dials = only(desk.log, DialContact)
    assert [d.customer_no for d in dials] == ["0001", "0002"]
    assert dials[0].caller_id == "+4930123456" and dials[0].timeout_s == 25.0
    assert dials[0].attempt == 1 and not dials[0].detect_machine
    # a failure frees the line: the next contact is dialled at once
    out = desk.send(CallFailed(dials[0].call, "busy"), after=3)
    assert [d.customer_no for d in only(out, DialContact)] == ["0003"]
    # an answer goes to the ACD and keeps its agent: no new line
    out = desk.send(CallAnswered(dials[1].call), after=5)
    connect = only(out, ConnectAnsweredCall)
    assert connect and connect[0].queue == "outbound" and connect[0].customer_no == "0002"
    assert only(out, DialContact) == []


def test_answered_call_without_agent_is_dropped_after_two_seconds() -> None:
    desk = started(free=1, drop_lockout_s=3600)
    call = only(desk.log, DialContact)[0].call
    desk.send(AgentsChanged(free=0, busy=1))  # the agent took an inbound call meanwhile
    desk.send(CallAnswered(call), after=5)
    assert desk.pacer.next_deadline() == pytest.approx(desk.now + 2.0)
    assert only(desk.advance(1.9), DropCall) == []
    drops = only(desk.advance(0.1), DropCall)
    assert drops == [DropCall(call, "{lang}/all_agents_busy", "de")]
    assert desk.pacer.stats().drops == 1 and desk.pacer.abandon_rate() == 1.0
    desk.send(CallEnded(call), after=3)
    record = desk.campaign.record("0001")
    assert record.last_result == "dropped" and record.locked_until == desk.now + 3600


def test_connected_call_completes_the_contact() -> None:
    desk = started(free=1)
    call = only(desk.log, DialContact)[0].call
    desk.send(CallAnswered(call), after=5)
    desk.send(AgentsChanged(free=0, busy=1))
    desk.send(AgentConnected(call, "1001"), after=0.5)
    assert only(desk.advance(5), DropCall) == []
    desk.send(CallEnded(call), after=60)
    assert desk.campaign.record("0001").state is ContactState.DONE
    stats = desk.pacer.stats()
    assert stats.connects == 1 and stats.drops == 0 and stats.abandon_rate == 0.0


def test_amd_actions() -> None:
    for action, expected in (("hangup", HangUpCall), ("leave_message", LeaveMessage)):
        desk = started(free=1, amd={"enabled": True, "action": action,
                                    "message_prompt": "{lang}/callback"})
        dial = only(desk.log, DialContact)[0]
        assert dial.detect_machine
        assert only(desk.send(CallAnswered(dial.call), after=4), ConnectAnsweredCall) == []
        out = desk.send(AmdDecided(dial.call, "machine"), after=2)
        assert len(only(out, expected)) == 1 and only(out, ConnectAnsweredCall) == []
        desk.send(CallEnded(dial.call), after=10)
        record = desk.campaign.record("0001")
        if action == "hangup":
            assert record.state is ContactState.PENDING and record.last_result == "machine"
        else:
            assert record.state is ContactState.DONE and record.last_result == "message_left"


@pytest.mark.parametrize("verdict", ["human", "unknown"])
def test_amd_human_or_unknown_goes_to_an_agent(verdict: str) -> None:
    desk = started(free=1, amd={"enabled": True})
    call = only(desk.log, DialContact)[0].call
    desk.send(CallAnswered(call), after=4)
    out = desk.send(AmdDecided(call, verdict), after=1.5)  # type: ignore[arg-type]
    assert len(only(out, ConnectAnsweredCall)) == 1


def test_preview_reserves_an_agent_and_dials_on_decision() -> None:
    desk = started(mode="preview", free=2, preview={"timeout_s": 20, "on_timeout": "skip"})
    previews = only(desk.log, ReserveAgentForPreview)
    assert [p.customer_no for p in previews] == ["0001", "0002"]
    assert only(desk.log, DialContact) == []
    out = desk.send(PreviewDecided("0001", "1001", dial=True), after=4)
    dials = only(out, DialContact)
    assert len(dials) == 1 and dials[0].agent == "1001"
    out = desk.send(CallAnswered(dials[0].call), after=6)
    assert only(out, ConnectAnsweredCall)[0].agent == "1001"
    desk.send(AgentsChanged(free=1, busy=1))
    desk.send(AgentConnected(dials[0].call, "1001"))
    # the second preview times out and is skipped; a new one is offered to the free agent
    out = desk.advance(20)
    assert only(out, CancelPreview) == [CancelPreview("renewals", "0002")]
    assert desk.campaign.record("0002").last_result == "skipped"
    assert [p.customer_no for p in only(out, ReserveAgentForPreview)] == ["0003"]
    late = desk.send(PreviewDecided("0002", "1002", dial=True))
    assert only(late, EventIgnored)


def test_preview_skip() -> None:
    desk = started(mode="preview", free=1)
    out = desk.send(PreviewDecided("0001", "1001", dial=False), after=2)
    assert only(out, DialContact) == []
    assert [p.customer_no for p in only(out, ReserveAgentForPreview)] == ["0002"]
    assert desk.campaign.record("0001").attempts == 0


def test_blending_pauses_while_inbound_callers_wait() -> None:
    desk = started(free=1, blending={"pause_above_s": 30, "resume_below_s": 5})
    call = only(desk.log, DialContact)[0].call
    out = desk.send(InboundWaiting(31))
    assert out == [DialingPaused("renewals", "inbound")]
    desk.send(CallFailed(call, "no_answer"), after=25)
    assert only(desk.log[-1:], DialContact) == []
    assert only(desk.send(InboundWaiting(10)), DialContact) == []  # above resume_below_s
    out = desk.send(InboundWaiting(4))
    assert DialingResumed("renewals") in out and len(only(out, DialContact)) == 1


def test_pause_resume_stop() -> None:
    desk = started(free=1)
    call = only(desk.log, DialContact)[0].call
    assert desk.send(PauseRequested()) == [DialingPaused("renewals", "operator")]
    desk.send(CallFailed(call, "busy"), after=2)
    assert len(only(desk.log, DialContact)) == 1
    out = desk.send(StartRequested())
    assert DialingResumed("renewals") in out and len(only(out, DialContact)) == 1
    desk.send(StopRequested())
    assert desk.pacer.state is RunState.STOPPED
    second = only(desk.log, DialContact)[-1].call
    assert only(desk.send(CallFailed(second, "busy"), after=2), DialContact) == []


def test_campaign_finishes_when_every_contact_is_final() -> None:
    desk = started(free=2, count=2, max_attempts=1)
    for dial in only(desk.log, DialContact):
        desk.send(CallFailed(dial.call, "busy"), after=1)
    assert desk.log[-1] == CampaignFinished("renewals") or CampaignFinished(
        "renewals") in desk.log
    assert desk.pacer.state is RunState.FINISHED
    assert desk.pacer.statistics().contacts_left == 0


def test_customers_added_later_are_dialled_and_a_finished_run_waits_for_a_start() -> None:
    desk = started(free=2, count=2, max_attempts=1)
    for dial in only(desk.log, DialContact):
        desk.send(CallFailed(dial.call, "busy"), after=1)
    assert desk.pacer.state is RunState.FINISHED
    # an import brings two more customers of the target (and one it has, unchanged)
    more = tuple(customers(4))  # 0001..0004
    desk.send(ContactsAdded(more), after=1)
    assert desk.pacer.state is RunState.STOPPED  # it never restarts itself
    assert desk.pacer.statistics().contacts == 4 and desk.pacer.statistics().contacts_left == 2
    assert only(desk.advance(5), DialContact) == []
    started_now = desk.send(StartRequested()) + desk.advance(1)
    assert {d.customer_no for d in only(started_now, DialContact)} == {"0003", "0004"}
    desk.send(ContactsAdded(more), after=1)  # nothing new: nothing changes
    assert desk.pacer.statistics().contacts == 4


def test_late_events_are_ignored_not_raised() -> None:
    desk = started(free=1)
    call = only(desk.log, DialContact)[0].call
    assert only(desk.send(AgentConnected(call, "1001")), EventIgnored)  # not answered yet
    assert only(desk.send(CallEnded("nope")), EventIgnored)
    desk.send(CallFailed(call, "busy"))
    assert only(desk.send(CallAnswered(call)), EventIgnored)


def test_max_lines() -> None:
    desk = started(free=5, max_lines=2)
    assert len(only(desk.log, DialContact)) == 2


def test_storage_writes_come_out_as_commands() -> None:
    desk = started(free=1)
    from pbx.dialer.campaign import RecordAttempt, SaveContact

    assert only(desk.log, SaveContact)
    call = only(desk.log, DialContact)[0].call
    out = desk.send(CallFailed(call, "busy"), after=2)
    attempts = only(out, RecordAttempt)
    assert len(attempts) == 1 and attempts[0].attempt.call == call


def test_expected_overflow() -> None:
    assert expected_overflow(0, 0.5, 1) == 0.0
    assert expected_overflow(3, 1.0, 1) == pytest.approx(2.0)
    assert expected_overflow(1, 0.3, 1) == 0.0
    assert expected_overflow(2, 0.5, 1) == pytest.approx(0.25)
    assert expected_overflow(0, 0.0, 0, detecting=2, q=0.5) == pytest.approx(1.0)
    # one agent for a ringing line (p=0.5) and a detecting one (q=0.5): P(both) = 0.25
    assert expected_overflow(1, 0.5, 1, detecting=1, q=0.5) == pytest.approx(0.25)


def _warm_up(desk: Desk) -> None:
    # Feed enough results that predictive trusts its estimates: 1 answer in 3 attempts,
    # every answer connected at once.
    done = 0
    while done < WARMUP_RESULTS * 3:
        for dial in only(desk.log, DialContact):
            if desk.campaign.record(dial.customer_no).state is not ContactState.DIALLING:
                continue
            if done % 3 == 0:
                desk.send(CallAnswered(dial.call), after=8)
                desk.send(AgentConnected(dial.call, "1001"))
                desk.send(CallEnded(dial.call), after=1)
            else:
                desk.send(CallFailed(dial.call, "no_answer"), after=1)
            done += 1


def test_predictive_dials_ahead_once_warmed_up() -> None:
    desk = started(mode="predictive", count=2000, free=4, max_abandon_rate=0.05,
                   max_dial_level=3.0)
    first = len(only(desk.log, DialContact))
    assert first == 4  # warm-up: like progressive
    _warm_up(desk)
    assert desk.pacer.answer_rate() == pytest.approx(1 / 3, abs=0.05)
    dialling = desk.pacer.stats().dialling
    assert 4 < dialling <= 12  # ahead of the 4 free agents, within the dial level ceiling
    # with no free agent and nobody about to finish, nothing more is dialled
    desk2 = started(mode="predictive", count=10, free=0)
    assert only(desk2.log, DialContact) == []


def test_next_deadline_is_the_next_due_contact() -> None:
    desk = started(free=1, count=1, retry={"busy": {"delay_s": 120}})
    call = only(desk.log, DialContact)[0].call
    desk.send(CallFailed(call, "busy"), after=2)
    assert desk.pacer.next_deadline() == pytest.approx(desk.now + 120)
    out = desk.advance(120)
    assert len(only(out, DialContact)) == 1


def test_occupancy_is_integrated_over_time() -> None:
    desk = started(free=2, count=0)
    desk.send(AgentsChanged(free=1, busy=1), after=10)  # 10 s: 2 free
    desk.send(AgentsChanged(free=1, busy=1), after=10)  # 10 s: 1 busy of 2
    assert desk.pacer.stats().agent_occupancy == pytest.approx(0.25)
