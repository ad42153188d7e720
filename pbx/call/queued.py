"""The queued phase of a call: the ACD engine's orders carried out for this caller (hold
program, announcements, ringing agents, connecting, overflow) — L2, pure (see
`pbx.call.machine`). The ACD itself runs beside the calls (`pbx.acd`); the switchboard hands
its orders for this call over as one `AcdOrder` per step."""

from __future__ import annotations

from media.sources import HoldProgram, Playlist
from pbx.acd.events import (
    Announce,
    CallAbandoned,
    CallEnqueued,
    CallExitKeyPressed,
    CallJoinedQueue,
    CallLeftQueue,
    CallMoved,
    CancelOffer,
    ConnectCall,
    OfferAnswered,
    OfferCall,
    OfferFailed,
    OfferFailure,
    Overflow,
)
from pbx.acd.model import QueuedCall
from pbx.call.commands import (
    CloseMedia,
    CommandFailed,
    NewPhoneLeg,
    OpenMedia,
    PlayMedia,
    TellAcd,
)
from pbx.call.events import Answered, DtmfReceived, Failed, HungUp, Ringing
from pbx.call.machine import (
    AcdOrder,
    AgentOffer,
    Call,
    CallerGone,
    ControlOrder,
    DialerOrder,
    Script,
    end_leg,
    log,
    play,
    receive,
    send,
    stray,
)
from pbx.call.outbound_leg import OutboundLeg
from pbx.call.phases import Phase
from pbx.call.recording import adopt_mode, announce_recording
from pbx.sip.uri import NameAddr, SipUri


def queued(call: Call, queue: str) -> Script[str | None]:
    """One stay in `queue`: the caller hears the hold program and announcements while the
    ACD offers the call to agents. Returns None once an agent is connected (or the queue gave
    up with no target: the caller was told, the call ends), else the target the ACD sent the
    caller on to (overflow, exit key, max wait, max length, join/leave rules). Raises
    `CallerGone` when the caller left (the ACD hears it as abandoned)."""
    from pbx.call.script import say_goodbye

    acd = call.world.acd
    assert acd is not None and call.caller_media is not None
    if queue not in acd.queues:
        log.error("queue_unknown", call=call.id, queue=queue)
        yield from say_goodbye(call, "all_agents_busy", "failed", f"no queue {queue}")
        return None
    config = acd.queues[queue]
    adopt_mode(call, config.recording)
    yield from announce_recording(call, config.recording, config.recording_consent_prompt)
    call.queue, call.phase = queue, Phase.QUEUED
    status = call.variables.get("customer.status", "standard")
    if status not in acd.statuses:
        status = "standard"
    pinned = tuple(a for a in call.variables.get("customer.pinned_agents", "").split(",") if a)
    yield TellAcd(CallEnqueued(QueuedCall(
        call=call.id,
        queue=queue,
        priority=call.priority or None,
        enqueued_at=call.wall(),
        skills=dict.fromkeys(call.skills, 1),
        pinned_agents=pinned,
        customer_status=status,
        caller=call.caller_number,
        variables=dict(call.variables),
    )))
    try:
        while True:
            event = yield from receive(call)
            if isinstance(event, AcdOrder):
                done, target = yield from _acd_orders(call, event.commands)
                if done:
                    return target
            elif isinstance(event, Answered | Failed | HungUp | Ringing):
                yield from _offer_progress(call, event)
            elif isinstance(event, DtmfReceived) and event.call == call.id:
                yield TellAcd(CallExitKeyPressed(call.id, event.digit))
            elif isinstance(event, ControlOrder) and event.kind == "move":
                # A supervisor sends the caller elsewhere: the ACD answers with the Overflow.
                log.info("call_moved", call=call.id, queue=queue, target=event.target,
                         by=event.agent)
                yield TellAcd(CallMoved(call.id, event.target, event.agent))
            elif isinstance(event, DialerOrder):
                # The dialer dropped this campaign call: no agent came in time.
                call.dropped = event.command
                yield TellAcd(CallAbandoned(call.id))
                return None
            else:
                yield from stray(call, event)
    except CallerGone:
        yield TellAcd(CallAbandoned(call.id))
        raise
    finally:
        for agent in list(call.offers):
            yield from _drop_offer(call, agent, "left queue")


def _acd_orders(call: Call, commands: tuple[object, ...]) -> Script[tuple[bool, str | None]]:
    """Carry out one ACD step's commands for this call; (finished waiting, where to)."""
    from pbx.call.script import say_goodbye

    left: CallLeftQueue | None = None
    for command in commands:
        if isinstance(command, CallJoinedQueue):
            call.hold_program = command.hold_program
            yield from play_hold(call)
        elif isinstance(command, OfferCall):
            for agent in command.agents:
                yield from _ring(call, agent)
        elif isinstance(command, CancelOffer):
            yield from _drop_offer(call, command.agent, command.reason)
        elif isinstance(command, ConnectCall):
            yield from _connect_offer(call, command.agent)
            return True, None
        elif isinstance(command, Announce):
            yield from _announce(call, command)
        elif isinstance(command, Overflow):
            call.path.append(f"overflow:{command.target}")
            log.info("queue_overflow", call=call.id, queue=command.queue,
                     target=command.target, reason=command.reason)
            return True, command.target
        elif isinstance(command, CallLeftQueue) and command.reason != "answered":
            left = command  # an Overflow in the same step says where to
    if left is None:
        return False, None
    # No target to go on to: tell the caller and end the call.
    disposition = "abandoned" if left.reason == "abandoned" else "no_answer"
    yield from say_goodbye(call, "all_agents_busy", disposition, f"queue {left.reason}")
    return True, None


def play_hold(call: Call) -> Script[None]:
    """The caller hears the queue's hold program (music, announcements, ads)."""
    assert call.caller_media is not None
    lang = call.variables.get("language", "de")
    programs = call.world.hold_programs
    config = programs.get(call.hold_program) or programs.get("default")
    if config is None:
        program = HoldProgram(music=("music/hold_music",))
    else:
        program = HoldProgram(
            music=tuple(m.replace("{lang}", lang) for m in config.music),
            announcements=tuple(a.replace("{lang}", lang) for a in config.announcements),
            ads=tuple(a.replace("{lang}", lang) for a in config.ads),
            interval_s=config.interval_s,
            shuffle_ads=config.shuffle_ads,
            first_insert_after_s=config.first_insert_after_s,
        )
    yield from play(call, "hold", program, False)


def _announce(call: Call, command: Announce) -> Script[None]:
    """Speak the ACD's announcement over the hold program (which then goes on where it was):
    the caller's position, followed by the estimated wait when the queue says `ewt: true`; or
    the wait alone; or the queue's periodic message."""
    lang = call.variables.get("language", "de")
    prompts: list[str] = []
    if command.kind == "position" and command.position:
        prompts += [
            f"{lang}/you_are_caller",
            f"{lang}/numbers/{min(command.position, 30)}",
            f"{lang}/in_the_queue",
        ]
    if command.kind in ("position", "ewt") and command.ewt_s is not None:
        minutes = round(command.ewt_s / 60)
        prompts.append(f"{lang}/estimated_wait")
        if minutes < 1:
            prompts.append(f"{lang}/less_than_one_minute")
        else:
            prompts += [
                f"{lang}/numbers/{min(minutes, 30)}",
                f"{lang}/minute" if minutes == 1 else f"{lang}/minutes",
            ]
    if command.kind == "periodic":
        acd = call.world.acd
        queue = acd.queues.get(command.queue) if acd is not None else None
        periodic = queue.announce.periodic_prompts if queue is not None else ()
        prompts += [p.replace("{lang}", lang) for p in periodic] or [
            f"{lang}/thank_you_for_waiting"
        ]
    if not prompts or call.caller_media is None:
        return
    try:
        playback = yield PlayMedia(call.caller_media, Playlist(tuple(prompts)), insert=True)
    except CommandFailed as exc:
        log.error("announcement_failed", call=call.id, prompts=prompts, error=str(exc))
        return
    call.playbacks[playback] = "announcement"
    log.info("queue_announcement", call=call.id, kind=command.kind, prompts=prompts)


def _ring(call: Call, agent: str) -> Script[None]:
    """Start ringing every registered phone of `agent` (forked; the first answer wins)."""
    contacts = call.world.contacts(agent)
    if not contacts:
        yield TellAcd(OfferFailed(call.id, agent, "unavailable"))
        return
    session, sdp = yield OpenMedia(None, near=call.caller_media)
    offer = AgentOffer(agent, session)
    call.offers[agent] = offer
    caller_id = NameAddr(SipUri(call.world.domain, user=call.caller_number or "anonymous"))
    for binding in contacts:
        leg = yield NewPhoneLeg("a", binding, caller_id, agent, sdp)
        call.leg_media[leg.call] = session
        offer.legs.append(leg)
        yield send(leg, leg.start())
    log.info("agent_offered", call=call.id, agent=agent, queue=call.queue,
             contacts=len(offer.legs))


def _offer_progress(call: Call, event: object) -> Script[None]:
    leg_id = getattr(event, "call", "")
    offer = next(
        (o for o in call.offers.values() if any(leg.call == leg_id for leg in o.legs)), None
    )
    if offer is None:
        if isinstance(event, Answered):
            # An answer for an offer already withdrawn: end that leg at once.
            leg = call.world.leg(leg_id)
            if isinstance(leg, OutboundLeg):
                yield end_leg(leg, "answered elsewhere")
        return
    if isinstance(event, Answered):
        if offer.answered is None:
            offer.answered = next(leg for leg in offer.legs if leg.call == leg_id)
            for leg in offer.legs:
                if leg is not offer.answered:
                    yield send(leg, leg.cancel("answered elsewhere"))
            yield TellAcd(OfferAnswered(call.id, offer.agent))
    elif isinstance(event, Failed | HungUp):
        offer.failed.add(leg_id)
        if offer.answered is None and len(offer.failed) == len(offer.legs):
            status = event.status if isinstance(event, Failed) else 487
            reason: OfferFailure = (
                "busy" if status in (486, 600)
                else "rejected" if status in (603, 403)
                else "no_answer"
            )
            yield TellAcd(OfferFailed(call.id, offer.agent, reason))


def _drop_offer(call: Call, agent: str, reason: str) -> Script[None]:
    offer = call.offers.pop(agent, None)
    if offer is None:
        return
    for leg in offer.legs:
        if not leg.ended:
            yield end_leg(leg, reason)
    yield CloseMedia(offer.session)


def _connect_offer(call: Call, agent: str) -> Script[None]:
    from pbx.call.script import put_through

    offer = call.offers.pop(agent)
    assert offer.answered is not None and call.caller_media is not None
    call.agent, call.acd_connected = agent, True
    yield from put_through(call, offer.answered, offer.session)
    log.info("agent_connected", call=call.id, agent=agent, queue=call.queue)
