"""A supervisor listening in on a connected call (pbx.call.monitoring), in memory: the
supervisor's phone is rung as a third leg, joined to the call's media when it answers, the
mode changes on the same leg, and whoever ends first, the other side is cleaned up."""

from __future__ import annotations

from pbx.call.commands import (
    CallFinished,
    CloseMedia,
    LogQueueEvent,
    MonitorMedia,
    NewPhoneLeg,
    OpenMedia,
    SendLegActions,
    TellDesk,
)
from pbx.call.events import HungUp, MediaTimedOut, Ringing
from pbx.call.leg_events import SendRequest
from pbx.call.machine import ControlOrder
from pbx.call.monitoring import Supervision
from pbx.call.outbound_leg import OutboundLeg
from tests.unit.call.legs import invite_response
from tests.unit.call.test_machine import Driver, connected_direct, of


def requests(commands: list[object], leg: str) -> list[str]:
    return [a.request.method for c in of(commands, SendLegActions) if c.leg == leg  # type: ignore[arg-type]
            for a in c.actions if isinstance(a, SendRequest)]


def supervisor_rung(d: Driver, mode: str = "listen") -> tuple[list[object], OutboundLeg]:
    out = d.feed(ControlOrder("monitor", "2001", mode))
    # in the caller's media worker (a direct call: the agent's session m1 was opened first)
    assert (d.call.caller_media, d.call.agent_media) == ("m2", "m1")
    assert of(out, OpenMedia) == [OpenMedia(None, near="m2")]
    (ring,) = of(out, NewPhoneLeg)
    assert (ring.agent, ring.binding.aor) == ("2001", "2001")
    watch = d.call.monitor
    assert isinstance(watch, Supervision) and not watch.joined
    return out, watch.leg


def test_listen_rings_the_supervisor_then_joins_their_media_and_changes_mode() -> None:
    d, agent_leg = connected_direct()
    out, leg = supervisor_rung(d)
    assert requests(out, leg.call) == ["INVITE"]
    assert [c.event for c in of(out, LogQueueEvent)] == ["monitor_ring"]
    out = d.phone_answers(leg)
    assert of(out, MonitorMedia) == [MonitorMedia("m3", "m2", "m1", "listen")]
    (audit,) = of(out, LogQueueEvent)
    assert (audit.event, audit.agent, audit.data) == (
        "monitor_start", "1001", {"supervisor": "2001", "mode": "listen"})
    assert TellDesk("on_call_monitored", (d.call.id, "2001", "listen"), {"ringing": False}) in out
    out = d.feed(ControlOrder("monitor", "2001", "whisper"))
    assert of(out, MonitorMedia) == [MonitorMedia("m3", "m2", "m1", "whisper")]
    assert not of(out, NewPhoneLeg)  # the same leg, no new ringing
    assert of(out, LogQueueEvent)[0].data == {"supervisor": "2001", "mode": "whisper",
                                              "old": "listen"}
    out = d.feed(ControlOrder("monitor", "2001", "barge"))
    assert of(out, MonitorMedia) == [MonitorMedia("m3", "m2", "m1", "barge")]
    assert d.call.agent_leg is agent_leg and not d.call.finished


def test_the_supervisor_hanging_up_ends_only_their_leg() -> None:
    d, agent_leg = connected_direct()
    _, leg = supervisor_rung(d)
    d.phone_answers(leg)
    out = d.feed(HungUp(leg.call, by="remote"))
    assert of(out, CloseMedia) == [CloseMedia("m3")]
    assert [c.event for c in of(out, LogQueueEvent)] == ["monitor_stop"]
    assert d.call.monitor is None and not d.call.finished and not agent_leg.ended
    # the call goes on; listening in again rings again
    _, again = supervisor_rung(d, "barge")
    assert again is not leg


def test_the_call_ending_hangs_up_the_supervisor() -> None:
    d, agent_leg = connected_direct()
    _, leg = supervisor_rung(d)
    d.phone_answers(leg)
    out = d.feed(HungUp(agent_leg.call, by="remote"))
    assert requests(out, leg.call) == ["BYE"]
    assert {c.session for c in of(out, CloseMedia)} == {"m1", "m2", "m3"}
    assert of(out, CallFinished) and d.call.monitor is None


def test_the_caller_hanging_up_while_the_supervisor_rings_cancels_the_ringing() -> None:
    d, _ = connected_direct()
    _, leg = supervisor_rung(d)
    ringing = [a for a in leg.on_response(invite_response(leg, 180), d.now)
               if isinstance(a, Ringing)]
    assert not of(d.feed(ringing[0]), SendLegActions)  # nothing to do while it rings
    out = d.feed(HungUp(d.call.id, by="remote"))
    assert requests(out, leg.call) == ["CANCEL"]
    assert of(out, CallFinished)


def test_stop_order_and_media_loss_end_the_supervisors_leg() -> None:
    d, _ = connected_direct()
    _, leg = supervisor_rung(d)
    d.phone_answers(leg)
    out = d.feed(ControlOrder("monitor_stop", "2001"))
    assert requests(out, leg.call) == ["BYE"] and of(out, CloseMedia) == [CloseMedia("m3")]
    _, leg = supervisor_rung(d)
    d.phone_answers(leg)
    out = d.feed(MediaTimedOut(leg.call))
    assert requests(out, leg.call) == ["BYE"] and d.call.monitor is None
    assert not d.call.finished


def test_a_second_supervisor_and_a_bad_mode_are_refused() -> None:
    d, _ = connected_direct()
    supervisor_rung(d)
    out = d.feed(ControlOrder("monitor", "2002", "listen"))
    assert not of(out, NewPhoneLeg) and d.call.monitor.supervisor == "2001"
    out = d.feed(ControlOrder("monitor", "2001", "spy"))
    assert not of(out, MonitorMedia) and d.call.monitor.mode == "listen"


def test_a_supervisor_phone_that_does_not_answer_is_given_up_and_the_call_goes_on() -> None:
    d, agent_leg = connected_direct()
    _, leg = supervisor_rung(d)
    leg.on_response(invite_response(leg, 180), d.now)
    assert d.call.next_deadline() == d.now + 20.0
    assert not of(d.wait(10.0), SendLegActions)
    out = d.wait(10.5)
    assert requests(out, leg.call) == ["CANCEL"] and of(out, CloseMedia) == [CloseMedia("m3")]
    (audit,) = of(out, LogQueueEvent)
    assert audit.data["cause"] == "not answered (ring timeout)"
    assert d.call.monitor is None and d.call.next_deadline() is None
    assert not d.call.finished and not agent_leg.ended
