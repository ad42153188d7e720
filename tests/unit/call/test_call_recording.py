"""Recording in the call machine: a queue's mode, the consent announcement before the agent,
start before the bridge, the desk's on-demand start and stop, a failed start, the end."""

from __future__ import annotations

from types import SimpleNamespace

from pbx.acd.events import CallEnqueued, CallJoinedQueue, ConnectCall, OfferCall
from pbx.call.campaign_call import CampaignDial, campaign_call
from pbx.call.commands import (
    Ask,
    BridgeMedia,
    CloseMedia,
    Command,
    PlayMedia,
    Reply,
    StartRecording,
    StopRecording,
    TellAcd,
    TellDesk,
)
from pbx.call.events import HungUp, PlaybackFinished
from pbx.call.machine import AcdOrder, Call, ControlOrder, DialerOrder
from pbx.call.outbound_leg import OutboundLeg
from pbx.call.router import RouteTarget
from pbx.dialer.events import ConnectAnsweredCall, DialContact, DropCall
from pbx.dialer.schema import CampaignConfig
from pbx.sip.uri import NameAddr, SipUri
from tests.unit.call.legs import OURS, PEER, Net
from tests.unit.call.test_machine import EPOCH, Driver, Router, World, cdr, of


class RecordingDriver(Driver):
    """The test machine's driver with queue "sales" recorded as `mode`, answering
    `StartRecording` as the executor would (or failing it, as a full disk would)."""

    def __init__(self, mode: str, prompt: str | None = None, fail: bool = False) -> None:
        self.fail = fail
        self.started = 0
        queue = SimpleNamespace(recording=mode, recording_consent_prompt=prompt)
        super().__init__(RouteTarget("queue", "sales"),
                         acd=SimpleNamespace(queues={"sales": queue}, statuses={"standard"},
                                             agents={"1001", "1002"}))

    def _answer(self, ask: Ask) -> Reply:
        if isinstance(ask, StartRecording):
            if self.fail:
                return Reply(error="cannot record to /var/rec: Permission denied")
            self.started += 1
            if ask.recording:
                return Reply((ask.recording, ""))
            return Reply((f"r{self.started}", "2026/12/04/120000-in-ab.wav"))
        return super()._answer(ask)


def queue_driver(mode: str, prompt: str | None = None, fail: bool = False) -> RecordingDriver:
    return RecordingDriver(mode, prompt, fail)


def connect(d: RecordingDriver) -> list[Command]:
    d.feed(AcdOrder((CallJoinedQueue(d.call.id, "sales", 1, 0, "default"),
                     OfferCall(d.call.id, "sales", ("1002",), 15.0))))
    leg = d.legs_rung()[-1]  # agent 1002's phone
    d.phone_answers(leg)
    return d.feed(AcdOrder((ConnectCall(d.call.id, "1002", "sales", 3.0),)))


def test_always_records_the_callers_session_before_the_bridge_and_links_it_in_the_cdr() -> None:
    d = queue_driver("always")
    out = connect(d)
    start = of(out, StartRecording)
    assert start == [StartRecording("m1", d.call.id, "")]  # the caller's session
    assert out.index(start[0]) < out.index(of(out, BridgeMedia)[0])  # the first word is in it
    assert TellDesk("on_call_recording", (d.call.id, True, "always")) in out
    out = d.feed(HungUp(d.caller.call, by="remote"))
    stop = of(out, StopRecording)
    assert stop == [StopRecording("r1")]
    assert out.index(stop[0]) < out.index(of(out, CloseMedia)[0])
    assert cdr(d).recording == "2026/12/04/120000-in-ab.wav"


def test_never_records_nothing() -> None:
    d = queue_driver("never")
    out = connect(d)
    assert not of(out, StartRecording)
    d.feed(ControlOrder("record", "1002"))  # the desk cannot switch it on either
    d.feed(HungUp(d.caller.call, by="remote"))
    assert not of(d.log, StartRecording) and cdr(d).recording == ""


def test_the_consent_prompt_plays_before_the_caller_is_queued() -> None:
    d = queue_driver("always", prompt="{lang}/recording_notice")
    (played,) = of(d.log, PlayMedia)
    assert played.source.items == ("de/recording_notice",)
    assert not [c for c in of(d.log, TellAcd) if isinstance(c.event, CallEnqueued)]
    (playback,) = d.call.playbacks  # the consent announcement, named "consent"
    d.feed(PlaybackFinished(d.call.id, playback))
    assert [c for c in of(d.log, TellAcd) if isinstance(c.event, CallEnqueued)]


def test_on_demand_the_desk_starts_pauses_and_resumes_one_recording() -> None:
    d = queue_driver("on_demand")
    out = connect(d)
    assert not of(out, StartRecording)
    assert TellDesk("on_call_recording", (d.call.id, False, "on_demand")) in out
    out = d.feed(ControlOrder("record", "1002"))
    assert of(out, StartRecording) == [StartRecording("m1", d.call.id, "")]
    out = d.feed(ControlOrder("stop_record", "1002"))
    assert of(out, StopRecording) == [StopRecording("r1", pause=True)]
    out = d.feed(ControlOrder("record", "1002"))
    assert of(out, StartRecording) == [StartRecording("m1", d.call.id, "r1")]  # same file
    d.feed(HungUp(d.caller.call, by="remote"))
    assert of(d.log, StopRecording)[-1] == StopRecording("r1")
    assert cdr(d).recording == "2026/12/04/120000-in-ab.wav"


def test_a_recording_that_cannot_be_made_leaves_the_call_bridged() -> None:
    d = queue_driver("always", fail=True)
    out = connect(d)
    assert of(out, BridgeMedia) and not d.call.finished
    d.feed(HungUp(d.caller.call, by="remote"))
    assert cdr(d).disposition == "answered" and cdr(d).recording == ""
    assert not of(d.log, StopRecording)


def test_the_recording_stays_with_the_caller_through_hold_and_a_blind_transfer() -> None:
    d = queue_driver("always")
    connect(d)
    d.feed(ControlOrder("hold", "1002"))
    d.feed(ControlOrder("resume", "1002"))
    d.feed(ControlOrder("transfer", "1002", "agent:1001"))
    new_leg = d.legs_rung()[-1]
    d.phone_answers(new_leg)
    assert d.call.agent == "1001"
    assert of(d.log, StartRecording) == [StartRecording("m1", d.call.id, "")]  # one file
    assert not of(d.log, StopRecording)
    d.feed(HungUp(d.caller.call, by="remote"))
    assert of(d.log, StopRecording) == [StopRecording("r1")]
    assert cdr(d).agent == "1001" and cdr(d).recording == "2026/12/04/120000-in-ab.wav"


class CampaignDriver(RecordingDriver):
    """A campaign call (the customer's leg placed through the trunk) whose campaign is recorded
    as `mode`, handed to queue "sales" (recorded never)."""

    def __init__(self, mode: str, prompt: str | None = None) -> None:
        self.fail, self.started = False, 0
        self.world = World(Router(RouteTarget("queue", "sales")))
        queue = SimpleNamespace(recording="never", recording_consent_prompt=None)
        self.world.acd = SimpleNamespace(queues={"sales": queue}, statuses={"standard"},
                                         agents={"1001", "1002"})
        customer = OutboundLeg("d1", Net(), SipUri.parse("sip:+4917@127.0.0.1:5070"), PEER,
                               NameAddr(SipUri("pbx.test", user="+4930")),
                               NameAddr(SipUri("pbx.test", user="+4917")), OURS, 100.0)
        self.world.legs[customer.call] = customer
        self.caller = customer  # type: ignore[assignment]
        self.call = Call("d1", customer, "+4917", "+4917", "carrier", None, world=self.world,
                         epoch=EPOCH)
        self.call.caller_media = "m0"
        self.call.leg_media[customer.call] = "m0"
        self.now, self.log, self.sessions, self.fail_next = 100.0, [], 0, None
        config = CampaignConfig.model_validate({
            "name": "autumn", "caller_id": "+4930123456", "queue": "sales",
            "recording": mode, "recording_consent_prompt": prompt})
        contact = DialContact("d1", "autumn", "100001", "+4917", 1, "+4930123456", "", None,
                              25.0, False)
        dial = CampaignDial("autumn", config, contact)
        self._settle(self.call.start(lambda c: campaign_call(c, dial), self.now))
        self.customer = customer

    def connect(self) -> list[Command]:
        self.phone_answers(self.customer)
        self.feed(DialerOrder(ConnectAnsweredCall("d1", "autumn", "100001", "sales", None, 0,
                                                  None)))
        playbacks = [p for p, name in self.call.playbacks.items() if name == "consent"]
        for playback in playbacks:
            self.feed(PlaybackFinished(self.call.id, playback))
        return connect(self)


def test_a_recorded_campaign_records_its_calls_in_a_queue_that_does_not() -> None:
    d = CampaignDriver("always", prompt="{lang}/recording_notice")
    out = d.connect()
    assert of(out, StartRecording) == [StartRecording("m0", "d1", "")]
    consent = [c for c in of(d.log, PlayMedia)
               if getattr(c.source, "items", ()) == ("de/recording_notice",)]
    assert len(consent) == 1  # the customer heard it once, before waiting for an agent
    d.feed(HungUp("d1", by="remote"))
    assert cdr(d).recording == "2026/12/04/120000-in-ab.wav"


def test_a_campaign_recorded_never_into_a_queue_recorded_never_is_not_recorded() -> None:
    d = CampaignDriver("never")
    d.connect()
    d.feed(HungUp("d1", by="remote"))
    assert not of(d.log, StartRecording) and cdr(d).recording == ""


def test_a_pacer_drop_during_the_consent_announcement_is_carried_out_after_it() -> None:
    d = CampaignDriver("always", prompt="{lang}/recording_notice")
    d.phone_answers(d.customer)
    d.feed(DialerOrder(ConnectAnsweredCall("d1", "autumn", "100001", "sales", None, 0, None)))
    (consent,) = [p for p, name in d.call.playbacks.items() if name == "consent"]
    d.feed(DialerOrder(DropCall("d1", None, "de")))  # no agent in time, while it plays
    assert not d.call.finished
    out = d.feed(PlaybackFinished(d.call.id, consent))
    assert [c for c in of(out, TellAcd) if isinstance(c.event, CallEnqueued)]
    assert d.call.finished and cdr(d).disposition == "dropped"
    assert not of(d.log, StartRecording)
