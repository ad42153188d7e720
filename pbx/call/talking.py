"""The connected phase of a call: talking, hold from the desktop, blind and attended
transfers (from the desk and from the agent's phone), and the end of the agent's part in the
call — L2, pure (see `pbx.call.machine`).

The phase's own inputs (`talk`): the agent's leg hangs up (the call ends, or an attended
transfer completes), the agent's media dies (the call ends and the agent is paused
"phone_lost", so no offer goes to a phone that vanished), the consulted party hangs up or
answers, the phone's REFER and INVITE with Replaces, and the desk's orders (hold, resume,
transfer, consult, complete, cancel). Re-INVITEs, the caller hanging up and the caller's media
dying are answered for every phase in `pbx.call.machine.receive`.
"""

from __future__ import annotations

from pbx.acd.events import AgentPaused
from pbx.acd.events import CallEnded as AcdCallEnded
from pbx.call.commands import (
    AdoptLeg,
    BridgeMedia,
    CloseMedia,
    CommandFailed,
    NewPhoneLeg,
    OpenMedia,
    PostTo,
    StopMedia,
    TellAcd,
    TellDesk,
    TrackMedia,
    UnbridgeMedia,
    UpdateMedia,
)
from pbx.call.events import HungUp, MediaTimedOut
from pbx.call.inbound_leg import InboundLeg
from pbx.call.leg_events import TransferRequested
from pbx.call.machine import (
    MAX_HOPS,
    RING_TIMEOUT_S,
    AgentLegTaken,
    Call,
    Consultation,
    ControlOrder,
    LegReplacement,
    Script,
    end_leg,
    engage,
    log,
    receive,
    release,
    send,
    stray,
)
from pbx.call.monitoring import ring_deadline, stop_monitor, supervise
from pbx.call.phases import Phase
from pbx.call.recording import desk_recording
from pbx.sip.uri import NameAddr, SipUri


def converse(call: Call) -> Script[None]:
    """Talk until someone hangs up, following blind transfers (at most a few)."""
    for _hop in range(MAX_HOPS):
        if call.agent_leg is None or call.agent_leg.ended:
            return
        call.phase = Phase.CONNECTED
        target = yield from talk(call)
        if target is None:
            return
        yield from stop_monitor(call, "transferred")
        yield from transfer(call, target)


def talk(call: Call) -> Script[str | None]:
    """Bridged: wait until the agent's side ends (the caller's end raises `CallerGone` in
    `receive`), or an order transfers the caller (returns the target)."""
    assert call.agent_leg is not None
    while True:
        event = yield from receive(call, ring_deadline(call))
        if (yield from supervise(call, event)):
            continue  # a supervisor's order, or their leg's
        consult = call.consult
        if isinstance(event, HungUp) and consult is not None and event.call == consult.leg.call:
            yield from end_consult(call, complete=False)  # the consulted party hung up
        elif isinstance(event, HungUp) and event.call == call.agent_leg.call:
            if consult is not None:
                # The transferring agent hung up during the consultation: that completes the
                # transfer (as on a desk phone).
                yield from end_consult(call, complete=True)
                continue
            call.hangup_by, call.cause = "agent", event.cause
            return None
        elif isinstance(event, AgentLegTaken):
            # The agent's phone handed this call's other party to the first call (attended
            # transfer from the phone): this call is over.
            call.hangup_by, call.cause = "agent", "transferred"
            call.agent_leg, call.agent_media, call.agent = None, None, ""
            return None
        elif isinstance(event, MediaTimedOut) and event.call == call.agent_leg.call:
            # The agent's phone vanished (no BYE, no RTP): end the call and keep offers away
            # from that phone until the agent says they are back.
            call.hangup_by, call.cause = "pbx", "agent rtp_timeout"
            log.warning("rtp_timeout", call=call.id, side="agent", agent=call.agent)
            acd = call.world.acd
            if acd is not None and call.agent in acd.agents:
                yield TellAcd(AgentPaused(call.agent, "phone_lost"))
            return None
        elif isinstance(event, ControlOrder):
            target = yield from desk_order(call, event)
            if target is not None:
                return target
        elif isinstance(event, LegReplacement):
            yield from take_over(call, event.leg)
        elif isinstance(event, TransferRequested) and event.replaces is not None:
            yield from phone_attended_transfer(call, event)
        elif isinstance(event, TransferRequested):
            target = yield from phone_transfer(call, event)
            if target is not None:
                return target
        else:
            yield from stray(call, event)


def phone_transfer(call: Call, refer: TransferRequested) -> Script[str | None]:
    """The agent pressed their phone's transfer key (REFER, RFC 3515): the PBX takes the
    caller on to the Refer-To number as that agent may dial it (blind transfer). The REFER is
    accepted, and the final NOTIFY (200) tells the phone the PBX has the caller, so it can
    hang up; the PBX ends the agent's leg itself as well."""
    leg = call.agent_leg
    assert leg is not None
    try:
        uri = SipUri.parse(refer.refer_to.strip().strip("<>"))
    except ValueError:
        uri = None
    if uri is None or not uri.user:
        yield send(leg, leg.reject_refer(refer.transaction, 400, "Bad Refer-To"))
        return None
    route = call.world.router.route_internal(call.agent, uri.user)
    if route is None or route.kind == "refused":
        yield send(leg, leg.reject_refer(refer.transaction, 403, "Forbidden"))
        log.warning("refer_refused", call=call.id, target=uri.user,
                    reason=route.name if route else "no route",
                    rule=route.rule if route else "")
        return None
    yield send(leg, [*leg.accept_refer(refer.transaction),
                     *leg.notify_refer(200, "OK", final=True)])
    log.info("refer_accepted", call=call.id, agent=call.agent, target=uri.user)
    return f"extension:{uri.user}"


def phone_attended_transfer(call: Call, refer: TransferRequested) -> Script[None]:
    """Attended transfer from the agent's phone: the agent put the caller on hold, called a
    colleague or a number (a second call through the PBX), and now sends a REFER whose
    Refer-To replaces that second call's dialog (RFC 3891). The party the agent consulted
    takes the agent's place in this call; both of the agent's legs end."""
    leg, replaces = call.agent_leg, refer.replaces
    assert leg is not None and replaces is not None
    consulted_leg = call.world.leg_of_dialog(replaces.call_id, replaces.to_tag)
    other = call.world.call_of_leg(consulted_leg.call) if consulted_leg is not None else None
    status = 481 if consulted_leg is None or other is None or other is call else (
        consulted_leg.check_replaces(replaces)
    )
    if status is None and other is not None and (
        consulted_leg is not other.caller or other.agent_leg is None
        or other.agent_media is None or other.caller_media is None
        or other.phase != Phase.CONNECTED
    ):
        status = 481  # only the agent's own outgoing call, connected, can be handed over
    if status is not None or other is None:
        yield send(leg, leg.reject_refer(refer.transaction, status or 481))
        log.warning("refer_refused", call=call.id, reason=f"replaces: {status}")
        return
    assert other.agent_leg is not None and other.agent_media is not None
    assert other.caller_media is not None and call.caller_media is not None
    yield send(leg, [*leg.accept_refer(refer.transaction),
                     *leg.notify_refer(200, "OK", final=True)])
    # The consulted party leaves the agent's second call (which hears it and ends) ...
    new_leg, new_media, new_agent = other.agent_leg, other.agent_media, other.agent
    yield UnbridgeMedia(other.caller_media, new_media)
    yield AdoptLeg(new_leg.call)
    yield TrackMedia(new_media)
    yield PostTo(other.id, AgentLegTaken(new_leg.call))
    if new_agent:
        yield from engage(call, new_agent)  # busy on this call now (that call lets go)
    # ... the transferring agent leaves this call ...
    old_agent, old_leg, old_media = call.agent, leg, call.agent_media
    if not call.on_hold and old_media is not None:
        yield UnbridgeMedia(call.caller_media, old_media)
    yield end_leg(old_leg, "transferred")
    if old_media is not None:
        yield CloseMedia(old_media)
    yield from release_agent(call)
    # ... and takes their place here.
    call.leg_media[new_leg.call] = new_media
    call.agent_leg, call.agent_media, call.agent = new_leg, new_media, new_agent
    yield StopMedia(call.caller_media)
    yield BridgeMedia(call.caller_media, new_media)
    call.on_hold = False
    target = f"agent:{new_agent}" if new_agent else f"number:{other.did}"
    call.path.append(f"transfer:{target}")
    log.info("call_transferred", call=call.id, by=old_agent, target=target, attended=True,
             via="phone")
    yield TellDesk("on_call_transferred", (call.id, target), {"agent": new_agent or None})


def take_over(call: Call, leg: InboundLeg) -> Script[None]:
    """The agent's other phone replaces their leg of this call (INVITE with Replaces): it is
    answered with its own media session and bridged to the caller; the old leg ends."""
    old_leg, old_media = call.agent_leg, call.agent_media
    assert old_leg is not None and call.caller_media is not None
    try:
        session, sdp = yield OpenMedia(leg.remote_sdp.decode() or None, near=call.caller_media)
    except CommandFailed as exc:
        log.warning("replaces_refused", call=call.id, error=str(exc))
        yield send(leg, leg.reject(488, ""))
        return
    call.leg_media[leg.call] = session
    yield send(leg, leg.answer(sdp.encode(), call.now))
    if old_media is not None and not call.on_hold:
        yield UnbridgeMedia(call.caller_media, old_media)
    yield end_leg(old_leg, "replaced")
    if old_media is not None:
        yield CloseMedia(old_media)
    call.agent_leg, call.agent_media = leg, session
    if not call.on_hold:
        yield BridgeMedia(call.caller_media, session)
    log.info("call_replaced", call=call.id, agent=call.agent, leg=leg.call)


def desk_order(call: Call, order: ControlOrder) -> Script[str | None]:
    """Carry out a desk order on a connected call; returns a blind transfer's target."""
    consult = call.consult
    if order.kind in ("hold", "resume"):
        yield from pbx_hold(call, order.kind == "hold")
    elif order.kind == "transfer":
        return order.target
    elif order.kind == "consult" and consult is None:
        yield from start_consult(call, order.target)
    elif order.kind in ("complete_transfer", "cancel_transfer") and consult is not None:
        yield from end_consult(call, complete=order.kind == "complete_transfer")
    elif order.kind in ("record", "stop_record"):
        yield from desk_recording(call, order)
    else:
        log.warning("desk_order_refused", call=call.id, order=order.kind, phase=call.phase)
    return None


def release_agent(call: Call) -> Script[None]:
    """The call's agent leaves the call (it ended, or they transferred it): the ACD hears it —
    a queue call goes to wrap-up, a direct call frees the agent."""
    agent = call.agent
    if not agent:
        return
    if call.acd_connected:
        call.acd_connected = False
        if call.world.acd is not None:
            yield TellAcd(AcdCallEnded(call.id, agent))
    yield from release(call, agent)


def start_consult(call: Call, target: str) -> Script[None]:
    """Attended transfer, first step: the caller waits with the hold program while the agent
    talks to `target` (agent:EXT) on a consultation leg."""
    from pbx.call.script import await_answer

    assert call.agent_leg is not None and call.agent_media is not None
    kind, _, ext = target.partition(":")
    contacts = call.world.contacts(ext) if kind == "agent" else []
    if not contacts or call.world.agent_busy(ext):
        log.warning("consult_failed", call=call.id, target=target, reason="not reachable")
        return
    yield from pbx_hold(call, True)
    session, sdp = yield OpenMedia(None, near=call.agent_media)
    caller = NameAddr(SipUri(call.world.domain, user=call.agent))
    leg = yield NewPhoneLeg("k", contacts[0], caller, ext, sdp)
    call.leg_media[leg.call] = session
    yield from engage(call, ext)
    yield send(leg, leg.start())
    log.info("consult_started", call=call.id, agent=call.agent, target=target)
    if (yield from await_answer(call, [leg], RING_TIMEOUT_S)) is None:
        yield send(leg, leg.cancel("no answer"))
        yield CloseMedia(session)
        yield from release(call, ext)
        yield from pbx_hold(call, False)
        log.info("consult_failed", call=call.id, target=target, reason="no answer")
        return
    yield UpdateMedia(session, leg.remote_sdp.decode())
    yield BridgeMedia(call.agent_media, session)
    call.consult = Consultation(ext, leg, session)


def end_consult(call: Call, complete: bool) -> Script[None]:
    """Attended transfer, second step: complete (the caller is put through to the consulted
    agent, the transferring agent leaves) or cancel (back to the caller)."""
    consult = call.consult
    assert consult is not None and call.agent_media is not None
    assert call.caller_media is not None and call.agent_leg is not None
    call.consult = None
    yield UnbridgeMedia(call.agent_media, consult.session)
    if not complete or consult.leg.ended:
        if not consult.leg.ended:
            yield end_leg(consult.leg, "transfer cancelled")
        yield CloseMedia(consult.session)
        yield from release(call, consult.agent)
        yield from pbx_hold(call, False)
        log.info("consult_cancelled", call=call.id, target=consult.agent)
        return
    old_agent, old_leg, old_media = call.agent, call.agent_leg, call.agent_media
    if not old_leg.ended:
        yield end_leg(old_leg, "transferred")
    yield CloseMedia(old_media)
    yield from release_agent(call)
    call.agent_leg, call.agent_media, call.agent = consult.leg, consult.session, consult.agent
    yield StopMedia(call.caller_media)
    yield BridgeMedia(call.caller_media, consult.session)
    call.on_hold = False
    call.path.append(f"transfer:agent:{consult.agent}")
    log.info("call_transferred", call=call.id, by=old_agent, target=consult.agent,
             attended=True)
    yield TellDesk("on_call_transferred", (call.id, f"agent:{consult.agent}"),
                   {"agent": consult.agent})


def pbx_hold(call: Call, hold: bool) -> Script[None]:
    """Hold ordered from the desktop: the caller hears the hold program, the agent silence;
    resume bridges them again."""
    from pbx.call.queued import play_hold

    if call.caller_media is None or call.agent_media is None or hold == call.on_hold:
        return
    call.on_hold = hold
    if hold:
        yield UnbridgeMedia(call.caller_media, call.agent_media)
        yield from play_hold(call)
        yield TellDesk("on_call_held", (call.id,))
    else:
        yield StopMedia(call.caller_media)
        yield BridgeMedia(call.caller_media, call.agent_media)
        yield TellDesk("on_call_resumed", (call.id,))
    log.info("call_held" if hold else "call_resumed", call=call.id, by="desktop")


def transfer(call: Call, target: str) -> Script[None]:
    """Blind transfer: release the agent, then take the caller to `target` (agent:EXT,
    queue:NAME, number:DIGITS as the transferring agent may dial it)."""
    from pbx.call.script import follow

    assert call.agent_leg is not None and call.caller_media is not None
    old_agent, old_leg, old_media = call.agent, call.agent_leg, call.agent_media
    yield end_leg(old_leg, "transferred")
    if old_media is not None:
        yield UnbridgeMedia(call.caller_media, old_media)
        yield CloseMedia(old_media)
    yield from release_agent(call)
    call.agent_leg, call.agent_media, call.agent = None, None, ""
    call.on_hold = False
    call.path.append(f"transfer:{target}")
    log.info("call_transferred", call=call.id, by=old_agent, target=target)
    yield TellDesk("on_call_transferred", (call.id, target))
    yield from follow(call, target, by_agent=old_agent)
