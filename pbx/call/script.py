"""The call's script: route, answer, follow the routing decisions (IVR, queues, overflow,
transfers), ring agents, dial the trunk, bridge, and end with a CDR — L2, pure.

These are generator functions run by a `pbx.call.machine.Call` (read its module docstring
first): each `yield` hands the executor a command; `receive` waits for the next input the
call's phase handles. Read a call from `inbound` (a caller from the trunk or an agent's phone)
or `originate` (click-to-dial) downwards; the queue is in `pbx.call.queued`, the IVR in
`pbx.call.ivr_phase`, talking and transfers in `pbx.call.talking`, campaign calls in
`pbx.call.campaign_call`.
"""

from __future__ import annotations

from typing import Any

from media.sources import Playlist, Source, Tone
from pbx.acd.events import AgentLoggedIn, AgentLoggedOut, AgentPaused, AgentUnpaused
from pbx.call.commands import (
    BridgeMedia,
    CallFinished,
    CloseMedia,
    CommandFailed,
    CountCall,
    NewPhoneLeg,
    NewTrunkLeg,
    OpenMedia,
    PlayMedia,
    StopMedia,
    TellAcd,
    TellDesk,
    UpdateMedia,
    WriteCdr,
)
from pbx.call.events import Answered, Failed, HungUp, PlaybackFinished, Ringing
from pbx.call.inbound_leg import InboundLeg
from pbx.call.machine import (
    MAX_HOPS,
    RING_TIMEOUT_S,
    Call,
    CallerGone,
    Script,
    end_leg,
    engage,
    log,
    play,
    receive,
    release,
    send,
    stray,
)
from pbx.call.outbound_leg import OutboundLeg
from pbx.call.phases import Phase
from pbx.call.recording import finish_recording, offer_recording
from pbx.call.router import RouteTarget, normalise_number
from pbx.repositories import CallDetailRecord
from pbx.sip.uri import NameAddr, SipUri

RINGBACK = Tone()  # what a caller put through to one agent hears while that phone rings


def inbound(call: Call) -> Script[None]:
    """A new call from the trunk or an agent's phone, from routing to the CDR."""
    # Imported here: the phases import this module's helpers.
    from pbx.call.talking import converse

    world = call.world
    if call.agent_caller is not None and (action := world.router.feature_code(call.did)):
        yield from agent_feature(call, call.agent_caller, action)
        return
    if call.agent_caller is not None:
        yield from engage(call, call.agent_caller)  # dialling from their phone: busy
    try:
        if call.agent_caller is not None:
            target = world.router.route_internal(call.agent_caller, call.did)
        else:
            target = world.router.route_did(normalise_number(call.did))
        if target is None:
            call.disposition, call.cause = "failed", "no route"
            yield reject_caller(call, 404, "No route to this number")
            return
        call.path.append(f"{target.kind}:{target.name}")
        if target.kind == "refused":
            call.disposition, call.cause = "failed", target.name
            log.warning("dial_refused", call=call.id, agent=call.agent_caller,
                        dialled=call.did, reason=target.name, rule=target.rule)
            yield reject_caller(call, 403, "Forbidden")  # the rule is for the log only
            return
        if target.kind == "trunk":
            yield from dial_trunk(call, target.name, target.number, target.withhold_caller_id)
        elif target.kind == "agent":
            yield from connect_direct(call, [target.name])
        else:
            yield from answer(call)
            yield from follow(call, f"{target.kind}:{target.name}", target.language)
        yield from converse(call)
    except CallerGone:
        if call.disposition not in ("answered",):
            call.disposition = "abandoned" if call.answered_at else "cancelled"
    except CommandFailed as exc:
        log.warning("call_failed", call=call.id, error=str(exc))
        call.cause = f"error: {exc}"
    except Exception:  # a bug in one call must not stop the switch: log, clean up
        log.exception("call_crashed", call=call.id)
        call.cause = call.cause or "internal error"
    yield from end(call)


# A feature code's confirmation: two high beeps when done, one low beep when refused.
FEATURE_DONE = Tone((1400.0,), on_ms=150, off_ms=150, seconds=0.6)
FEATURE_REFUSED = Tone((400.0,), on_ms=600, off_ms=400, seconds=1.0)


def agent_feature(call: Call, agent: str, action: str) -> Script[None]:
    """The agent dialled a feature code (``feature_codes``): log in, log out, pause or get
    ready in the ACD, confirmed with a tone; the PBX hangs up after it. Not a direct call: the
    agent's state is exactly what they asked for."""
    call.path.append(f"feature:{action}")
    world = call.world
    acd = world.acd
    event = None if acd is None else feature_event(acd, agent, action, world.router.pause_code)
    try:
        if event is not None:
            yield TellAcd(event)
        yield from answer(call)
        yield from play(call, "feature", FEATURE_DONE if event else FEATURE_REFUSED, False)
        yield from wait_playback(call, "feature", 5.0)
        call.disposition, call.cause = "answered", f"feature {action}"
    except CallerGone:
        call.disposition = "answered" if call.answered_at else "cancelled"
    except CommandFailed as exc:
        log.warning("call_failed", call=call.id, error=str(exc))
        call.cause = f"error: {exc}"
    log.info("agent_feature_code", call=call.id, agent=agent, action=action,
             done=event is not None)
    yield from end(call)


def feature_event(acd: Any, agent: str, action: str, pause_code: str) -> object | None:
    """The ACD event for a feature code, or None when it would not change anything (already
    logged in, not paused …): the phone then hears the refusal tone."""
    seat = acd.agents.get(agent)
    if seat is None:
        return None
    state = seat.state.value
    if action == "login":
        return AgentLoggedIn(agent) if state == "logged_out" else None
    if state == "logged_out":
        return None
    if action == "logout":
        return AgentLoggedOut(agent)
    if action == "pause":
        return AgentPaused(agent, pause_code) if state != "paused" else None
    if state in ("paused", "wrap_up", "reserved") or getattr(seat.pending, "value", "") == "paused":
        return AgentUnpaused(agent)
    return None


def originate(call: Call, session: str, target: RouteTarget) -> Script[None]:
    """Click-to-dial: the agent's phone rings (`call.caller`, already started, with media
    `session`); once they answer, `target` is dialled or followed."""
    from pbx.call.talking import converse

    assert isinstance(call.caller, OutboundLeg)
    try:
        if (yield from await_answer(call, [call.caller], RING_TIMEOUT_S)) is None:
            yield send(call.caller, call.caller.cancel("agent did not answer"))
            call.disposition = "no_answer"
        else:
            call.caller_media = session
            yield UpdateMedia(session, call.caller.remote_sdp.decode())
            call.answered_at = call.wall()
            if target.kind == "trunk":
                call.path.append(f"trunk:{target.name}")
                yield from dial_trunk(call, target.name, target.number,
                                      target.withhold_caller_id)
            else:
                yield from follow(call, f"{target.kind}:{target.name}", target.language)
            yield from converse(call)
    except CallerGone:
        call.disposition = "cancelled"
    except CommandFailed as exc:
        log.warning("call_failed", call=call.id, error=str(exc))
        call.cause = f"error: {exc}"
    except Exception:  # a bug in one call must not stop the switch: log, clean up
        log.exception("call_crashed", call=call.id)
        call.cause = call.cause or "internal error"
    yield from end(call)


def reject_caller(call: Call, status: int, reason: str) -> object:
    """Refuse the caller: a final response to an inbound INVITE, a BYE to an originated
    call's agent leg."""
    if isinstance(call.caller, InboundLeg):
        return send(call.caller, call.caller.reject(status, reason))
    return end_leg(call.caller, reason or "failed")


def answer(call: Call) -> Script[None]:
    """Answer the caller with our own media session (for the IVR and hold audio)."""
    assert isinstance(call.caller, InboundLeg)
    session, sdp = yield OpenMedia(call.caller.remote_sdp.decode() or None, near=call.agent_media)
    call.caller_media = session
    call.leg_media[call.id] = session
    yield send(call.caller, call.caller.answer(sdp.encode(), call.now))
    call.answered_at = call.wall()
    yield CountCall("answered")


def connect_direct(call: Call, agents: list[str]) -> Script[None]:
    """Ring the agent without answering the caller first: the caller hears ringing; when the
    agent answers, both sides are answered and bridged."""
    if not (yield from hunt_agents(call, agents, hold=None)):
        call.disposition = call.disposition if call.disposition != "failed" else "no_answer"
        yield reject_caller(call, 480, "No agent available")


def hunt_agents(call: Call, agents: list[str], hold: Source | None) -> Script[bool]:
    """Offer the call to each agent in turn; True when one answered (and is bridged)."""
    for agent in agents:
        if (yield from offer(call, agent, hold)):
            return True
    return False


def offer(call: Call, agent: str, hold: Source | None) -> Script[bool]:
    """Ring every registered phone of `agent` (not through the ACD: a dialled extension, a
    transfer, an IVR `transfer` node); True once one answered and is bridged."""
    world = call.world
    contacts = world.contacts(agent)
    if not contacts or world.agent_busy(agent):
        return False
    if call.caller_media is not None and hold is not None:
        yield PlayMedia(call.caller_media, hold)
    session, sdp = yield OpenMedia(None, near=call.caller_media)
    legs: list[OutboundLeg] = []
    caller_id = NameAddr(SipUri(world.domain, user=call.caller_number or "anonymous"))
    yield from engage(call, agent)
    for binding in contacts:
        leg = yield NewPhoneLeg("a", binding, caller_id, agent, sdp)
        call.leg_media[leg.call] = session
        legs.append(leg)
        yield send(leg, leg.start())
    log.info("agent_offered", call=call.id, agent=agent, contacts=len(legs))
    yield TellDesk("on_call_presented", (call.id, agent, dict(call.variables), call.customer),
                   {"queue": call.queue, "caller": call.caller_number, "did": call.did})
    phase, call.phase = call.phase, Phase.RINGING
    winner = yield from await_answer(call, legs, RING_TIMEOUT_S)
    call.phase = phase
    for leg in legs:
        if leg is not winner:
            yield send(leg, leg.cancel("answered elsewhere" if winner else "ring timeout"))
    if winner is None:
        yield CloseMedia(session)
        yield from release(call, agent)
        yield TellDesk("on_offer_cancelled", (call.id, agent, "no_answer"))
        return False
    call.agent = agent
    yield from put_through(call, winner, session)
    log.info("agent_connected", call=call.id, agent=agent)
    yield TellDesk("on_call_answered", (call.id, agent))
    return True


def dial_trunk(
    call: Call, trunk_name: str, number: str, withhold_caller_id: bool = False
) -> Script[None]:
    """An agent's outside call: one leg to the carrier; the agent hears the carrier's progress
    as ringing; on answer both sides are bridged. `withhold_caller_id` (dialled with *31#):
    From is anonymous and `Privacy: id` asks the carrier to keep the asserted identity from
    the callee (RFC 3323 §4.2, RFC 3325 §9.3)."""
    trunk = call.world.router.trunks[trunk_name]
    session, sdp = yield OpenMedia(None, near=call.caller_media)
    domain = trunk.from_domain or trunk.host
    caller_id = trunk.caller_id or call.caller_number
    from_addr = NameAddr(SipUri(domain, user=caller_id))
    headers: tuple[tuple[str, str], ...] = (
        ("P-Asserted-Identity", f"<sip:{caller_id}@{domain}>"),
    )
    if withhold_caller_id:
        from_addr = NameAddr(SipUri("anonymous.invalid", user="anonymous"),
                             display_name="Anonymous")
        headers += (("Privacy", "id"),)
    to_addr = NameAddr(SipUri(domain, user=number))
    target = SipUri(trunk.host, user=number, port=trunk.port)
    leg = yield NewTrunkLeg(trunk_name, target, from_addr, to_addr, sdp, headers)
    call.leg_media[leg.call] = session
    call.direction = "outbound"
    yield send(leg, leg.start())
    log.info("trunk_dialled", call=call.id, trunk=trunk_name, number=number)
    phase, call.phase = call.phase, Phase.RINGING
    winner = yield from await_answer(call, [leg], 60.0)
    call.phase = phase
    if winner is None:
        yield send(leg, leg.cancel("no answer"))
        yield CloseMedia(session)
        call.disposition = "no_answer" if leg.status in (0, 408, 480, 487) else "failed"
        if leg.status == 486 or leg.status == 600:
            call.disposition = "busy"
        yield reject_caller(call, leg.status if leg.status >= 400 else 480, "")
        return
    yield from put_through(call, winner, session)


def put_through(call: Call, leg: OutboundLeg, session: str) -> Script[None]:
    """`leg` (media `session`) answered: it becomes the call's other party, the caller is
    answered if the PBX had not yet (a direct call) or stops hearing what plays, and both
    are bridged."""
    call.agent_leg, call.agent_media = leg, session
    yield UpdateMedia(session, leg.remote_sdp.decode())
    if call.caller_media is None:
        yield from answer(call)
    else:
        yield StopMedia(call.caller_media)
    assert call.caller_media is not None
    yield from offer_recording(call)  # before the bridge: the first word is recorded
    yield BridgeMedia(call.caller_media, session)
    call.disposition = "answered"


def await_answer(call: Call, legs: list[OutboundLeg], timeout: float) -> Script[OutboundLeg | None]:
    """Wait until one of `legs` answers (returned), all failed or `timeout` passed (None).
    The caller hanging up cancels them all and raises `CallerGone`."""
    ids = {leg.call: leg for leg in legs}
    deadline = call.now + timeout
    failed: set[str] = set()
    while len(failed) < len(legs):
        try:
            event = yield from receive(call, deadline)
        except CallerGone:
            for leg in legs:
                yield send(leg, leg.cancel("caller hung up"))
            raise
        if event is None:
            return None
        leg_id = getattr(event, "call", None)
        if leg_id not in ids:
            yield from stray(call, event)
        elif isinstance(event, Answered):
            return ids[leg_id]
        elif isinstance(event, Ringing):
            if call.caller_media is None and isinstance(call.caller, InboundLeg):
                yield send(call.caller, call.caller.ring())
        elif isinstance(event, Failed | HungUp):
            failed.add(leg_id)
    return None


def wait_playback(call: Call, name: str, timeout: float) -> Script[None]:
    """Wait for the playback `name` to end (or `timeout`); the caller may hang up."""
    call.phase = Phase.IVR  # the caller hears a prompt: its end is this phase's input
    deadline = call.now + timeout
    while (event := (yield from receive(call, deadline))) is not None:
        if isinstance(event, PlaybackFinished) and event.playback == name:
            return
        yield from stray(call, event)


def say_goodbye(call: Call, first: str, disposition: str, cause: str) -> Script[None]:
    """Nobody could take the call: the caller hears `first` and goodbye; the call ends."""
    call.disposition, call.cause = disposition, cause
    if call.caller_media is None:
        yield reject_caller(call, 480, cause)
        return
    lang = call.variables.get("language", "de")
    yield from play(call, "goodbye", Playlist((f"{lang}/{first}", f"{lang}/goodbye")), False)
    yield from wait_playback(call, "goodbye", 30.0)


def follow(call: Call, target: str, language: str = "", by_agent: str = "") -> Script[None]:
    """Take the answered caller to `target` — ``flow:``, ``queue:``, ``agent:``,
    ``extension:`` or ``number:`` — and on to wherever that leads (a flow's queue or transfer
    node, a queue's overflow, exit key or max wait), until an agent or an outside party is
    connected (`call.agent_leg`), the flow ends the call, or nobody can take it (then the
    caller hears so). `by_agent`: the agent transferring the call, whose dial plan rights
    apply to numbers."""
    from pbx.call.ivr_phase import run_ivr
    from pbx.call.queued import queued

    for _hop in range(MAX_HOPS):
        kind, _, name = target.partition(":")
        following: str | None = None
        if kind == "flow":
            following = yield from run_ivr(call, name, language)
        elif kind == "queue":
            following = yield from queued(call, name)
        elif kind == "agent":
            if call.caller_media is not None:
                yield PlayMedia(call.caller_media, RINGBACK)
            if not (yield from hunt_agents(call, [name], hold=None)):
                yield from say_goodbye(call, "all_agents_busy", "no_answer",
                                       f"agent {name} not available")
        elif kind in ("extension", "number"):
            route = call.world.router.route_internal(by_agent, name)
            if route is None or route.kind == "refused":
                log.warning("transfer_refused", call=call.id, target=target,
                            reason=route.name if route else "no route",
                            rule=route.rule if route else "")
                yield from say_goodbye(call, "all_agents_busy", "failed", "no route")
            elif route.kind == "trunk":
                yield from dial_trunk(call, route.name, route.number, route.withhold_caller_id)
            else:
                following = f"{route.kind}:{route.name}"
        else:
            log.error("route_unknown", call=call.id, target=target)
            yield from say_goodbye(call, "all_agents_busy", "failed", "bad target")
        if following is None:
            return
        if kind != "queue":  # a queue's exit is in the path as overflow:TARGET already
            call.path.append(following)
        target = following
    log.warning("route_loop", call=call.id, path=call.path)
    yield from say_goodbye(call, "all_agents_busy", "failed", "too many hops")


def end(call: Call) -> Script[None]:
    """Hang up every leg still up, free the agents, close the media, write the CDR."""
    from pbx.call.monitoring import stop_monitor
    from pbx.call.talking import release_agent

    call.phase = Phase.ENDING
    yield from stop_monitor(call, "call ended")
    consult = call.consult
    for leg in (call.caller, call.agent_leg, consult.leg if consult else None):
        if leg is not None and not leg.ended:
            yield end_leg(leg, "normal")
            if not call.hangup_by:
                call.hangup_by = "pbx"
    yield from release_agent(call)
    for agent in list(call.direct_agents):
        yield from release(call, agent)
    yield from finish_recording(call)
    for session in (call.caller_media, call.agent_media, consult.session if consult else None):
        if session is not None:
            yield CloseMedia(session)
    yield TellDesk("on_call_ended", (call.id, call.cause or call.disposition))
    record = CallDetailRecord(
        call_id=call.caller.invite.call_id,
        direction=call.direction
        if not call.agent_caller or call.direction == "outbound"
        else "internal",
        caller=call.caller_number,
        callee=call.agent or call.did,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.wall(),
        disposition=call.disposition,
        hangup_cause=f"{call.hangup_by}:{call.cause}" if call.hangup_by else call.cause,
        agent=call.agent,
        queue=call.queue,
        did=call.did,
        recording=call.recording_path,
        ivr_path=tuple(call.path),
        variables=dict(call.variables),
    )
    log.info("call_ended", call=call.id, call_id=record.call_id,
             disposition=record.disposition, hangup=record.hangup_cause, agent=call.agent,
             path=call.path)
    yield WriteCdr(record)  # queued; written behind the call path
    yield CallFinished(call.cause or call.disposition)
