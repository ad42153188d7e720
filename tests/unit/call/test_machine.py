"""The call machine (pbx.call.machine) in memory: real sans-IO legs, a fake world, a fake
clock, and a driver that answers the machine's asks the way the switchboard does. Each test
walks a call through its phases and checks the commands a caller, an agent, the ACD and the
CDR writer would feel; the table test feeds every kind of input in every phase."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from pbx.acd.events import (
    AgentCallEnded,
    AgentCallStarted,
    CallAbandoned,
    CallEnqueued,
    CallJoinedQueue,
    CallLeftQueue,
    ConnectCall,
    OfferAnswered,
    OfferCall,
    Overflow,
)
from pbx.call.commands import (
    Ask,
    BridgeMedia,
    CallFinished,
    CloseMedia,
    Command,
    NewPhoneLeg,
    OpenMedia,
    PlayMedia,
    Reply,
    RespondStatus,
    SendLegActions,
    TellAcd,
    UnbridgeMedia,
    UpdateMedia,
    Wake,
    WriteCdr,
)
from pbx.call.events import Answered, DtmfReceived, HungUp, MediaTimedOut, PlaybackFinished, Ringing
from pbx.call.leg import Leg
from pbx.call.leg_events import RemoteOffer, Respond, TransferRequested
from pbx.call.machine import AcdOrder, Call, ControlOrder, Script
from pbx.call.outbound_leg import OutboundLeg
from pbx.call.phases import Phase
from pbx.call.router import RouteTarget
from pbx.call.script import inbound
from pbx.repositories import Binding
from pbx.sip.uri import NameAddr, SipUri
from tests.unit.call.legs import (
    OURS,
    PEER,
    SDP,
    SDP2,
    Net,
    Peer,
    invite_response,
    new_inbound,
)
from tests.unit.ivr.ivr_driver import flow

EPOCH = 1_780_000_000.0  # wall time = monotonic + EPOCH
IVR = flow("""
start: menu
nodes:
  menu:
    type: menu
    prompt: "{lang}/main_menu"
    options: {"1": sales}
    timeout_s: 5
    max_retries: 1
    on_failure: bye
  sales: {type: queue, queue: sales, skills: [en]}
  bye: {type: hangup}
""")


class Router:
    def __init__(self, target: RouteTarget) -> None:
        self.target = target
        self.trunks: dict[str, Any] = {}

    def trunk_for(self, host: str) -> str | None:
        return None

    def route_did(self, did: str) -> RouteTarget | None:
        return self.target

    def route_internal(self, agent: str, dialled: str) -> RouteTarget | None:
        return RouteTarget("agent", dialled) if dialled.startswith("10") else None

    def route_campaign(self, campaign: str, number: str) -> RouteTarget:
        return RouteTarget("refused", "no")

    def queue_members(self, queue: str) -> list[str]:
        return []


@dataclass
class World:
    router: Router
    domain: str = "pbx.test"
    flows: dict[str, Any] = field(default_factory=lambda: {"main": IVR})
    hooks: dict[str, Any] = field(default_factory=dict)
    hold_programs: dict[str, Any] = field(default_factory=dict)
    acd: Any = field(default_factory=lambda: SimpleNamespace(
        queues={"sales": SimpleNamespace(recording="never", recording_consent_prompt=None)},
        statuses={"standard"}, agents={"1001", "1002"}))
    legs: dict[str, Leg] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)

    def contacts(self, agent: str) -> list[Binding]:
        return [Binding(agent, f"sip:{agent}@127.0.0.1:5072", 9e9, "reg", 1)]

    def agent_busy(self, agent: str) -> bool:
        return False

    def leg(self, leg: str) -> Leg | None:
        return self.legs.get(leg)

    def leg_of_dialog(self, call_id: str, local_tag: str) -> Leg | None:
        return None

    def call_of_leg(self, leg: str) -> Call | None:
        return self.calls.get(leg)


class Driver:
    """Feeds a call and answers its asks as the switchboard would (media sessions "m1", "m2" …,
    phone legs as real `OutboundLeg`s); records every command."""

    def __init__(self, target: RouteTarget, script: Callable[[Call], Script[None]] = inbound,
                 agent_caller: str | None = None, acd: Any = None) -> None:
        self.world = World(Router(target))
        if acd is not None:
            self.world.acd = acd
        self.caller = new_inbound()
        self.world.legs[self.caller.call] = self.caller
        self.call = Call(self.caller.call, self.caller, "+4917", "+4930100", None, agent_caller,
                         world=self.world, epoch=EPOCH)
        self.now = 100.0
        self.log: list[Command] = []
        self.sessions = 0
        self.fail_next: type | None = None
        self._settle(self.call.start(script, self.now))

    def _settle(self, commands: list[Command]) -> list[Command]:
        out: list[Command] = []
        while True:
            out += commands
            self.log += commands
            if not commands or not isinstance(commands[-1], Ask):
                return out
            commands = self.call.handle(self._answer(commands[-1]), self.now)

    def _answer(self, ask: Ask) -> Reply:
        if self.fail_next is not None and isinstance(ask, self.fail_next):
            self.fail_next = None
            return Reply(error="media trouble")
        if isinstance(ask, OpenMedia):
            self.sessions += 1
            return Reply((f"m{self.sessions}", OURS.decode()))
        if isinstance(ask, UpdateMedia):
            return Reply(OURS.decode())
        if isinstance(ask, PlayMedia):
            return Reply(f"p{len(self.log)}")
        if isinstance(ask, NewPhoneLeg):
            leg = OutboundLeg(f"a{len(self.world.legs)}", Net(), SipUri.parse(ask.binding.contact),
                              PEER, ask.caller, NameAddr(SipUri("pbx.test", user=ask.agent)),
                              ask.sdp.encode(), self.now)
            self.world.legs[leg.call] = leg
            return Reply(leg)
        return Reply(None)

    def feed(self, event: object) -> list[Command]:
        return self._settle(self.call.handle(event, self.now))

    def wait(self, seconds: float) -> list[Command]:
        self.now += seconds
        return self.feed(Wake())

    def phone_answers(self, leg: OutboundLeg) -> list[Command]:
        """The agent's phone sends 200 OK: the leg reports Answered, which the call gets."""
        actions = leg.on_response(invite_response(leg, 200, body=SDP), self.now)
        return self.feed(next(a for a in actions if isinstance(a, Answered)))

    def legs_rung(self) -> list[OutboundLeg]:
        return [leg for leg in self.world.legs.values() if isinstance(leg, OutboundLeg)]


def of(commands: list[Command], kind: type) -> list[Any]:
    return [c for c in commands if isinstance(c, kind)]


def statuses(commands: list[Command]) -> list[int]:
    return [a.response.status for c in of(commands, SendLegActions) for a in c.actions
            if isinstance(a, Respond)]


def cdr(driver: Driver) -> Any:
    (record,) = [c.record for c in of(driver.log, WriteCdr)]
    return record


def connected_direct() -> tuple[Driver, OutboundLeg]:
    """A caller put through to agent 1001 directly (the DID routes to the agent)."""
    d = Driver(RouteTarget("agent", "1001"))
    (leg,) = d.legs_rung()
    d.phone_answers(leg)
    assert d.call.phase is Phase.CONNECTED and d.call.agent_leg is leg
    return d, leg


# ------------------------------------------------------------------ whole calls


def test_a_direct_call_rings_bridges_and_ends_with_a_cdr() -> None:
    d = Driver(RouteTarget("agent", "1001"))
    assert d.call.phase is Phase.RINGING
    assert d.call.next_deadline() == pytest.approx(d.now + 20.0)  # the ring timeout
    (leg,) = d.legs_rung()
    assert TellAcd(AgentCallStarted("1001", d.call.id, "inbound")) in d.log  # busy to the ACD
    assert statuses(d.feed(Ringing(leg.call))) == [180]  # the caller hears ringing
    out = d.phone_answers(leg)
    assert statuses(out) == [200]  # the caller is answered only now
    assert of(out, BridgeMedia) == [BridgeMedia("m2", "m1")]
    out = d.feed(HungUp(leg.call, by="remote"))
    assert of(out, CallFinished) and d.call.finished
    record = cdr(d)
    assert (record.disposition, record.agent, record.hangup_cause) == (
        "answered", "1001", "agent:normal")
    assert record.started_at == pytest.approx(100.0 + EPOCH)
    assert TellAcd(AgentCallEnded("1001", d.call.id)) in out
    assert {c.session for c in of(out, CloseMedia)} == {"m1", "m2"}


def test_nobody_answers_the_caller_gets_480_after_the_ring_timeout() -> None:
    d = Driver(RouteTarget("agent", "1001"))
    assert d.wait(5.0) == []  # a wake before the deadline changes nothing
    out = d.wait(15.0)
    assert 480 in statuses(out) and d.call.finished
    assert cdr(d).disposition == "no_answer"


def test_the_caller_hanging_up_while_it_rings_cancels_the_phone() -> None:
    d = Driver(RouteTarget("agent", "1001"))
    (leg,) = d.legs_rung()
    leg.on_response(invite_response(leg, 180), d.now)  # the phone rings
    out = d.feed(HungUp(d.caller.call, by="remote", cause="cancel"))
    sent = [a.request.method for c in of(out, SendLegActions) if c.leg == leg.call
            for a in c.actions if hasattr(a, "request")]
    assert sent == ["CANCEL"]
    assert cdr(d).disposition == "cancelled"


def test_an_ivr_menu_key_queues_the_caller_with_the_flows_skills_and_the_acd_connects() -> None:
    d = Driver(RouteTarget("flow", "main"))
    assert d.call.phase is Phase.IVR
    assert statuses(d.log) == [200]  # answered for the IVR
    (menu,) = of(d.log, PlayMedia)
    d.feed(PlaybackFinished(d.call.id, "p-unknown"))  # not ours: ignored
    out = d.feed(DtmfReceived(d.call.id, "1"))
    (enqueued,) = [c.event for c in of(out, TellAcd) if isinstance(c.event, CallEnqueued)]
    assert enqueued.call.queue == "sales" and enqueued.call.skills == {"en": 1}
    assert d.call.phase is Phase.QUEUED
    out = d.feed(AcdOrder((CallJoinedQueue(d.call.id, "sales", 1, 0, "default"),
                           OfferCall(d.call.id, "sales", ("1002",), 15.0))))
    assert of(out, PlayMedia)  # the hold program
    (leg,) = d.legs_rung()
    out = d.phone_answers(leg)
    assert TellAcd(OfferAnswered(d.call.id, "1002")) in out
    out = d.feed(AcdOrder((ConnectCall(d.call.id, "1002", "sales", 3.0),)))
    assert of(out, BridgeMedia) == [BridgeMedia("m1", "m2")]
    assert d.call.phase is Phase.CONNECTED and d.call.agent == "1002"
    d.feed(HungUp(d.caller.call, by="remote"))
    assert cdr(d).queue == "sales" and cdr(d).ivr_path[:2] == ("flow:main", "menu")


def test_a_caller_gone_from_the_queue_is_abandoned_to_the_acd() -> None:
    d = Driver(RouteTarget("queue", "sales"))
    out = d.feed(MediaTimedOut(d.caller.call))  # RTP stopped: the caller is gone
    assert TellAcd(CallAbandoned(d.call.id)) in out
    assert cdr(d).hangup_cause == "pbx:rtp_timeout"


def test_overflow_takes_the_caller_to_the_configured_target() -> None:
    d = Driver(RouteTarget("queue", "sales"))
    d.feed(AcdOrder((CallLeftQueue(d.call.id, "sales", "max_wait", 60.0),
                     Overflow(d.call.id, "sales", "agent:1001", "max_wait"))))
    assert d.call.phase is Phase.RINGING and d.legs_rung()  # agent 1001's phone rings
    assert "overflow:agent:1001" in d.call.path


def test_inputs_that_arrive_during_an_ask_are_kept_in_order() -> None:
    d, leg = connected_direct()
    d.call.handle(ControlOrder("hold", "1001"), d.now)  # asks: unbridge
    commands = d.call.handle(HungUp(leg.call, by="remote"), d.now)  # arrives meanwhile
    assert commands == [] and not d.call.finished
    d._settle([UnbridgeMedia("m1", "m2")])  # the executor answers the ask …
    assert d.call.finished  # … and the agent's hang-up is handled after the hold


def test_a_failed_media_operation_ends_the_call_cleanly() -> None:
    d = Driver(RouteTarget("agent", "1001"))
    (leg,) = d.legs_rung()
    d.fail_next = UpdateMedia
    d.phone_answers(leg)
    assert d.call.finished and cdr(d).hangup_cause.endswith("error: media trouble")


def test_the_agents_phone_vanishing_ends_the_call() -> None:
    d, leg = connected_direct()
    out = d.feed(MediaTimedOut(leg.call))
    assert d.call.finished and cdr(d).hangup_cause == "pbx:agent rtp_timeout"
    assert any(getattr(c.event, "reason", "") == "phone_lost" for c in of(out, TellAcd))


def test_a_phone_transfer_key_takes_the_caller_to_the_dialled_extension() -> None:
    d, leg = connected_direct()
    peer = Peer(leg)
    actions, _tx = peer.send("REFER", headers=("Refer-To: <sip:1002@pbx.test>",
                                               "Referred-By: <sip:1001@pbx.test>"))
    (refer,) = [a for a in actions if isinstance(a, TransferRequested)]
    out = d.feed(refer)
    assert 202 in statuses(out)
    assert leg.ended and d.call.agent == ""  # agent 1001 is off the call
    assert [x.agent for x in of(d.log, NewPhoneLeg)][-1] == "1002"  # 1002 rings


# ------------------------------------------------------------------ every phase × input


def in_phase(phase: Phase) -> Driver:
    if phase is Phase.IVR:
        return Driver(RouteTarget("flow", "main"))
    if phase is Phase.QUEUED:
        return Driver(RouteTarget("queue", "sales"))
    if phase is Phase.RINGING:  # the answered caller waits while an agent's phone rings
        d = Driver(RouteTarget("queue", "sales"))
        d.feed(AcdOrder((CallLeftQueue(d.call.id, "sales", "max_wait", 60.0),
                         Overflow(d.call.id, "sales", "agent:1001", "max_wait"))))
        return d
    if phase is Phase.CONNECTED:
        return connected_direct()[0]
    raise AssertionError(phase)


LIVE_PHASES = (Phase.IVR, Phase.QUEUED, Phase.RINGING, Phase.CONNECTED)


@pytest.mark.parametrize("phase", LIVE_PHASES)
def test_a_reinvite_is_answered_in_every_phase(phase: Phase) -> None:
    d = in_phase(phase)
    peer = Peer(d.caller)
    actions, _tx = peer.send("INVITE", SDP2)
    (offer,) = [a for a in actions if isinstance(a, RemoteOffer)]
    out = d.feed(offer)
    assert of(out, UpdateMedia) and statuses(out) == [200]
    assert d.call.phase is phase and not d.call.finished


@pytest.mark.parametrize("phase", LIVE_PHASES)
def test_a_refer_from_the_carrier_side_is_refused_in_every_phase(phase: Phase) -> None:
    d = in_phase(phase)
    peer = Peer(d.caller)
    actions, _tx = peer.send("REFER", headers=("Refer-To: <sip:+4990012345@pbx.test>",))
    (refer,) = [a for a in actions if isinstance(a, TransferRequested)]
    out = d.feed(refer)
    assert statuses(out) == [403] and not of(out, NewPhoneLeg) and not d.call.finished


@pytest.mark.parametrize("phase", LIVE_PHASES)
def test_the_desk_hanging_up_ends_the_call_in_every_phase(phase: Phase) -> None:
    d = in_phase(phase)
    out = d.feed(ControlOrder("hangup", "1001"))
    assert d.call.finished and of(out, WriteCdr)
    assert cdr(d).hangup_cause == "agent:hung up from the desktop"


@pytest.mark.parametrize("phase", (Phase.QUEUED, Phase.RINGING, Phase.CONNECTED))
def test_a_digit_outside_the_ivr_changes_nothing_but_the_queues_exit_key(phase: Phase) -> None:
    d = in_phase(phase)
    out = d.feed(DtmfReceived(d.call.id, "5"))
    if phase is Phase.QUEUED:
        assert [type(c.event).__name__ for c in of(out, TellAcd)] == ["CallExitKeyPressed"]
    else:
        assert out == []
    assert d.call.phase is phase


def test_an_unknown_input_is_logged_and_dropped_without_harm() -> None:
    d = in_phase(Phase.CONNECTED)
    assert d.feed(object()) == [] and not d.call.finished


def test_a_bare_403_answers_a_refer_on_a_leg_the_switch_forgot() -> None:
    d = in_phase(Phase.IVR)
    peer = Peer(d.caller)
    actions, tx = peer.send("REFER", headers=("Refer-To: <sip:1@x>",))
    (refer,) = [a for a in actions if isinstance(a, TransferRequested)]
    del d.world.legs[d.caller.call]
    out = d.feed(refer)
    assert out == [RespondStatus(tx, 403)]
