"""A supervisor listens in on a connected call, whispers to the agent or barges in — L2, pure
(see `pbx.call.machine`).

Theory of operation. A supervisor's order (`ControlOrder` ``monitor`` with the mode as its
target, ``monitor_stop``; the CTI has checked the role) reaches the connected call. The PBX
rings the supervisor's own registered phone (the call's third leg, `Supervision`), with its
media session in the caller's media worker; when the supervisor answers, the session is joined
to the call's two sessions (`MonitorMedia`, `media.monitor`): ``listen`` — the supervisor hears
caller and agent, nobody hears the supervisor; ``whisper`` — the agent hears the supervisor
too, the caller does not; ``barge`` — everybody hears everybody. A later order changes the
mode on the same leg (no new ringing). A phone that does not answer within the ring timeout
(20 s) is given up. The supervisor hanging up ends only their leg; the call
ending, or its agent changing (a transfer), ends the supervisor's leg with a BYE. One
supervisor per call at a time; a second one is refused (logged, and the CTI answers 409
before posting).

Every start, mode change and end is a structlog event (``monitor_*``, with call, agent,
supervisor and mode) and a queue-log line (`LogQueueEvent`), the audit trail a works council
asks for.

`supervise(call, event)` is called by the connected phase (`pbx.call.talking.talk`) for every
input before its own logic: it takes the monitor orders and the supervisor leg's events
(returns True), and leaves everything else to the phase.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx.call.commands import (
    CloseMedia,
    CommandFailed,
    LogQueueEvent,
    MonitorMedia,
    NewPhoneLeg,
    OpenMedia,
    TellDesk,
    UpdateMedia,
)
from pbx.call.events import Answered, Failed, HungUp, MediaTimedOut, Ringing
from pbx.call.machine import (
    RING_TIMEOUT_S,
    Call,
    ControlOrder,
    Script,
    end_leg,
    engage,
    log,
    release,
    send,
)
from pbx.call.outbound_leg import OutboundLeg
from pbx.sip.uri import NameAddr, SipUri

MODES = ("listen", "whisper", "barge")
ORDERS = ("monitor", "monitor_stop")


@dataclass
class Supervision:
    """The supervisor's leg of a call: whose phone, in which mode, joined yet."""

    supervisor: str
    mode: str
    leg: OutboundLeg
    session: str
    agent_media: str  # the agent's session it was started for (a transfer ends it)
    ring_until: float  # monotonic: a phone that has not answered by then is given up
    joined: bool = False


def ring_deadline(call: Call) -> float | None:
    """When the supervisor's ringing phone is given up (None: nothing rings)."""
    watch = call.monitor
    return watch.ring_until if isinstance(watch, Supervision) and not watch.joined else None


def supervise(call: Call, event: object) -> Script[bool]:
    """Take `event` when it is a monitor order or concerns the supervisor's leg (True);
    otherwise False, and the connected phase handles it. None (the `ring_deadline` passed)
    gives up the supervisor's ringing phone."""
    if event is None:
        if ring_deadline(call) is not None and call.now >= (ring_deadline(call) or 0.0):
            yield from stop_monitor(call, "not answered (ring timeout)")
        return True
    if isinstance(event, ControlOrder) and event.kind in ORDERS:
        if event.kind == "monitor":
            yield from start_monitor(call, event.agent, event.target)
        else:
            yield from stop_monitor(call, "stopped", by=event.agent)
        return True
    watch = call.monitor
    if not isinstance(watch, Supervision):
        return False
    if watch.agent_media != call.agent_media:
        yield from stop_monitor(call, "agent changed")  # transferred, or the phone replaced
        return False
    if getattr(event, "call", None) != watch.leg.call:
        return False
    if isinstance(event, Answered):
        yield from _joined(call, watch)
    elif isinstance(event, Failed):
        yield from _gone(call, watch, f"not answered ({event.status})")
    elif isinstance(event, HungUp):
        yield from _gone(call, watch, "supervisor hung up" if event.by == "remote" else event.cause)
    elif isinstance(event, MediaTimedOut):
        yield from stop_monitor(call, "supervisor rtp_timeout")
    elif not isinstance(event, Ringing):
        log.debug("monitor_input_ignored", call=call.id, input=type(event).__name__)
    return True


def start_monitor(call: Call, supervisor: str, mode: str) -> Script[None]:
    """Ring the supervisor's phone for the call (or change the mode of the leg they have)."""
    watch = call.monitor
    if mode not in MODES or call.caller_media is None or call.agent_media is None:
        log.warning("monitor_refused", call=call.id, supervisor=supervisor, mode=mode,
                    reason="not connected" if mode in MODES else "bad mode")
        return
    if isinstance(watch, Supervision):
        if watch.supervisor != supervisor:
            log.warning("monitor_refused", call=call.id, supervisor=supervisor, mode=mode,
                        reason=f"monitored by {watch.supervisor}")
            return
        old, watch.mode = watch.mode, mode
        if watch.joined and old != mode:
            yield from _join(call, watch)
        yield from _audit(call, "monitor_mode", watch, old=old)
        return
    contacts = call.world.contacts(supervisor)
    if not contacts:
        log.warning("monitor_refused", call=call.id, supervisor=supervisor, mode=mode,
                    reason="no registered phone")
        return
    session, sdp = yield OpenMedia(None, near=call.caller_media)
    shown = NameAddr(SipUri(call.world.domain, user=call.agent or "monitor"),
                     display_name=f"Monitor {call.agent}".strip())
    leg = yield NewPhoneLeg("m", contacts[0], shown, supervisor, sdp)
    call.leg_media[leg.call] = session
    watch = Supervision(supervisor, mode, leg, session, call.agent_media,
                        call.now + RING_TIMEOUT_S)
    call.monitor = watch
    yield from engage(call, supervisor)  # a supervisor who is also an agent gets no offers
    yield send(leg, leg.start())
    yield from _audit(call, "monitor_ring", watch)


def stop_monitor(call: Call, cause: str, by: str = "") -> Script[None]:
    """End the supervisor's leg (BYE or CANCEL) and close its media."""
    watch = call.monitor
    if not isinstance(watch, Supervision):
        return
    if by and by != watch.supervisor:
        log.info("monitor_stop_by_other", call=call.id, by=by, supervisor=watch.supervisor)
    if not watch.leg.ended:
        yield end_leg(watch.leg, cause)
    yield from _gone(call, watch, cause)


def _joined(call: Call, watch: Supervision) -> Script[None]:
    try:
        yield UpdateMedia(watch.session, watch.leg.remote_sdp.decode())
    except CommandFailed as exc:
        log.warning("monitor_media_refused", call=call.id, error=str(exc))
        yield from stop_monitor(call, "media refused")
        return
    yield from _join(call, watch)
    watch.joined = True
    yield from _audit(call, "monitor_start", watch)


def _join(call: Call, watch: Supervision) -> Script[None]:
    assert call.caller_media is not None and call.agent_media is not None
    try:
        yield MonitorMedia(watch.session, call.caller_media, call.agent_media, watch.mode)
    except CommandFailed as exc:
        log.warning("monitor_media_refused", call=call.id, error=str(exc))
        yield from stop_monitor(call, "media refused")


def _gone(call: Call, watch: Supervision, cause: str) -> Script[None]:
    if call.monitor is not watch:
        return
    call.monitor = None
    call.leg_media.pop(watch.leg.call, None)
    yield CloseMedia(watch.session)
    yield from release(call, watch.supervisor)
    yield from _audit(call, "monitor_stop", watch, cause=cause)


def _audit(call: Call, what: str, watch: Supervision, **extra: str) -> Script[None]:
    mode = "" if what == "monitor_stop" else watch.mode
    log.info(what, call=call.id, agent=call.agent, supervisor=watch.supervisor,
             mode=watch.mode, queue=call.queue, **extra)
    yield LogQueueEvent(what, call.queue, call.agent,
                        {"supervisor": watch.supervisor, "mode": watch.mode, **extra})
    yield TellDesk("on_call_monitored", (call.id, watch.supervisor, mode),
                   {"ringing": what == "monitor_ring"})
