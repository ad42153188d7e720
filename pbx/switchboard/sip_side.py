"""The switchboard's SIP side: dispatching SIP events to call legs, carrying out the legs'
actions on the endpoint, and taking new inbound calls (trunk or agent phone) — L3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pbx.call.machine import LegReplacement, log
from pbx.call.router import normalise_number
from pbx.call.script import inbound
from pbx.call.sip_leg import (
    SUPPORTED_EXTENSIONS,
    InboundLeg,
    Leg,
    OutboundLeg,
    Respond,
    SendRequest,
    SendStateless,
    offer_refusal,
)
from pbx.registrar.callers import CallerCheck, CallerOutcome, CallerVerdict
from pbx.repositories import Binding
from pbx.sip.endpoint import Address, RequestReceived
from pbx.sip.message import Request, make_response
from pbx.sip.transaction import ClientTransaction, ResponseReceived, TransactionTimedOut
from pbx.sip.uri import NameAddr, SipUri

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


# Requests a call's legs take (RFC 3261 §12.2.2: inside their dialogs); out of a dialog,
# OPTIONS (keep-alive pings), REFER and NOTIFY are not a call's business (the app answers
# OPTIONS, and 405 with Allow to REFER, NOTIFY, SUBSCRIBE, MESSAGE: nothing out of a dialog
# but an INVITE can start anything here, and an INVITE must pass `_caller`).
# In-dialog requests (re-INVITE, BYE, the phone's transfer key: REFER) are not challenged
# again: they must name a dialog (Call-ID and both tags) that only the peer we authenticated,
# or the registered contact we called, was ever told; responses go only to the socket address
# a request came from; and a REFER's target is dialled with the agent's own dial-plan rights.
# A second digest round per transfer would buy nothing against an off-path forger.
IN_DIALOG = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "INFO", "UPDATE", "PRACK", "OPTIONS", "REFER", "NOTIFY"}
)
OUT_OF_DIALOG_ELSEWHERE = frozenset({"OPTIONS", "REFER", "NOTIFY"})


class SipSide:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    # Wired by the app: who may place calls (pbx.registrar.callers), and where security
    # events it raises (a source banned after failed INVITE challenges) are reported.
    callers: CallerCheck | None = None
    on_caller_event: Callable[[object], None] | None = None

    def new_branch(self: Switchboard) -> str:
        return self.endpoint.new_branch()

    def new_tag(self: Switchboard) -> str:
        return self.ids.token(6)

    def local_via(self: Switchboard, transport: str) -> tuple[str, int, str]:
        for b in self.bound:
            if b.transport == transport:
                return (b.host, b.port, transport.upper())
        b = self.bound[0]
        return (b.host, b.port, b.transport.upper())

    def local_contact(self: Switchboard, transport: str) -> str:
        host, port, _ = self.local_via(transport)
        host = f"[{host}]" if ":" in host else host
        return f"<sip:pbx@{host}:{port};transport={transport}>"

    def on_sip_event(self: Switchboard, event: object) -> bool:
        """Handle `event` if it belongs to a call; False when it is not ours."""
        if isinstance(event, RequestReceived):
            return self._on_request(event)
        if isinstance(event, ResponseReceived):
            return self._on_response(event)
        if isinstance(event, TransactionTimedOut):
            tx = event.transaction
            if isinstance(tx, ClientTransaction):
                leg_id = self._client_tx.pop(tx, None)
                reg = self.trunk_regs.get(leg_id or "")
                if reg is not None:
                    self._run_reg(reg, reg.on_timeout(time.monotonic()))
                    return True
                leg = self.legs.get(leg_id or "")
                if leg is not None:
                    self._run(leg, leg.on_timeout(tx.request))
                return leg_id is not None
        return False

    def _on_request(self: Switchboard, event: RequestReceived) -> bool:
        request, tx = event.request, event.transaction
        method = request.method
        to_tag = request.to_addr.tag
        if method not in IN_DIALOG or (to_tag is None and method in OUT_OF_DIALOG_ELSEWHERE):
            return False
        now = time.monotonic()
        if method == "INVITE" and to_tag is None:
            assert tx is not None
            self._new_inbound(request, tx, event.source, now)
            return True
        leg_id = None
        if to_tag is not None:
            leg_id = self._dialogs.get((request.call_id, to_tag))
        if leg_id is None and method in ("CANCEL", "ACK"):
            leg_id = self._pending.get((request.call_id, request.from_addr.tag or ""))
        leg = self.legs.get(leg_id or "")
        if leg is None:
            if tx is not None:
                self.endpoint.respond(tx, make_response(request, 481), now)
            return True
        self._run(leg, leg.on_request(request, tx, now))
        return True

    def _on_response(self: Switchboard, event: ResponseReceived) -> bool:
        response, tx = event.response, event.transaction
        leg_id = self._client_tx.get(tx) if tx is not None else None
        reg = self.trunk_regs.get(leg_id or "")
        if reg is not None:
            if response.status >= 200 and tx is not None:
                self._client_tx.pop(tx, None)
            self._run_reg(reg, reg.on_response(None, response, time.monotonic()))
            return True
        if leg_id is None:
            # A retransmitted 2xx after the transaction ended: find the dialog and re-ACK.
            leg_id = self._dialogs.get((response.call_id, response.from_addr.tag or ""))
        leg = self.legs.get(leg_id or "")
        if leg is None:
            return leg_id is not None
        if tx is not None and response.status >= 200 and tx.method != "INVITE":
            self._client_tx.pop(tx, None)
        self._run(leg, leg.on_response(response, time.monotonic()))
        return True

    def _run(self: Switchboard, leg: Leg, actions: Iterable[object]) -> None:
        """Carry out a leg's actions: SIP out through the endpoint, events to the call."""
        now = time.monotonic()
        for action in actions:
            if isinstance(action, Respond):
                self.endpoint.respond(action.transaction, action.response, now)
            elif isinstance(action, SendRequest):
                tx = self.endpoint.send_request(action.request, action.destination, now)
                self._client_tx[tx] = action.leg
                self._leg_txs.setdefault(action.leg, []).append(tx)
            elif isinstance(action, SendStateless):
                self.endpoint.send_stateless(action.message, action.destination)
            else:
                call = self.leg_call.get(leg.call)
                if call is not None:
                    self.post(call, action)
        if leg.dialog is not None:
            self._dialogs[(leg.dialog.call_id, leg.dialog.local_tag)] = leg.call
        self._arm(leg)
        if leg.ended:
            self._forget_leg_later(leg)
        self.flush()

    def _arm(self: Switchboard, leg: Leg) -> None:
        handle = self._timers.pop(leg.call, None)
        if handle is not None:
            handle.cancel()
        deadline = leg.next_deadline()
        if deadline is not None and not leg.ended:
            loop = asyncio.get_running_loop()
            self._timers[leg.call] = loop.call_at(
                deadline, lambda: self._run(leg, leg.handle_timer(time.monotonic()))
            )

    def _forget_leg_later(self: Switchboard, leg: Leg) -> None:
        # Keep the dialog mapping a while so late retransmissions (BYE, 2xx) still match.
        asyncio.get_running_loop().call_later(40.0, self._forget_leg, leg)

    def _forget_leg(self: Switchboard, leg: Leg) -> None:
        self.legs.pop(leg.call, None)
        self.leg_call.pop(leg.call, None)
        if leg.dialog is not None:
            self._dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)
        if isinstance(leg, InboundLeg):
            self._pending.pop((leg.invite.call_id, leg.invite.from_addr.tag or ""), None)
        for tx in self._leg_txs.pop(leg.call, ()):
            self._client_tx.pop(tx, None)

    def _phone_leg(
        self: Switchboard, prefix: str, binding: Binding, caller: NameAddr, agent: str, sdp: str
    ) -> OutboundLeg:
        """A (not yet started) INVITE leg to one registered phone of `agent`."""
        leg = OutboundLeg(
            self._next_id(prefix),
            self,
            SipUri.parse(binding.contact),
            Address(binding.source_transport, binding.source_host, binding.source_port),
            caller,
            NameAddr(SipUri(self.domain, user=agent)),
            sdp.encode(),
            time.monotonic(),
            t1=self.endpoint.timers.t1,
            t2=self.endpoint.timers.t2,
        )
        self.legs[leg.call] = leg
        return leg

    def _next_id(self: Switchboard, prefix: str) -> str:
        return f"{prefix}{next(self._seq)}"

    def _new_inbound(
        self: Switchboard, request: Request, tx: Any, source: Address, now: float
    ) -> None:
        # RFC 3261 §8.2: authentication first, then the request's own checks (Require), then
        # whether there is room (admission, the PBX's and the trunk's): an unauthenticated
        # INVITE learns nothing else and does not use up the call rate of real calls.
        caller = self._caller(request, tx, source)
        if caller is None:
            return
        agent, trunk = caller.agent, caller.trunk
        self.stats["offered"] += 1
        unsupported = [
            ext.strip()
            for value in request.headers.get_all("require")
            for ext in value.split(",")
            if ext.strip().lower() not in SUPPORTED_EXTENSIONS
        ]
        if unsupported:
            # RFC 3261 §8.2.2.3: refuse what we cannot honour, and say what it was.
            response = make_response(request, 420, to_tag=self.new_tag())
            response.headers.add("Unsupported", ", ".join(unsupported))
            self.endpoint.respond(tx, response, now)
            return
        unacceptable = offer_refusal(request)
        if unacceptable is not None:
            status, header, value = unacceptable
            response = make_response(request, status, to_tag=self.new_tag())
            response.headers.add(header, value)
            self.stats["rejected"] += 1
            log.info("call_refused", call_id=request.call_id, status=status,
                     content_type=request.headers.get("content-type"),
                     accept=request.headers.get("accept"))
            self.endpoint.respond(tx, response, now)
            return
        if not self.accepting:
            self.endpoint.respond(
                tx, make_response(request, 503, "Shutting down", to_tag=self.new_tag()), now
            )
            return
        if self._refused_by_admission(request, tx, trunk, now):
            return
        leg_id = self._next_id("c")
        leg = InboundLeg(
            leg_id, self, request, tx, source, self.endpoint.timers.t1, self.endpoint.timers.t2
        )
        self.legs[leg_id] = leg
        self._pending[(request.call_id, request.from_addr.tag or "")] = leg_id
        refused = leg.check_invite()  # a bad Replaces, a session interval under Min-SE
        if refused:
            self.stats["rejected"] += 1
            self._run(leg, refused)
            return
        if leg.replaces is not None:
            self._replace_request(leg, agent)
            return
        from_uri = request.from_addr.uri
        caller_number = (from_uri.user if from_uri is not None else "") or ""
        pai = request.headers.get("p-asserted-identity")
        if trunk and pai:
            try:
                pai_uri = NameAddr.parse(pai).uri
                caller_number = (pai_uri.user if pai_uri else None) or caller_number
            except ValueError:
                pass
        to_uri = request.to_addr.uri
        dialled = request.parsed_uri.user or (to_uri.user if to_uri is not None else "") or ""
        call = self.new_call(leg, normalise_number(caller_number), dialled or "", trunk, agent)
        log.info(
            "call_offered",
            call_id=request.call_id,
            call=leg_id,
            caller=call.caller_number,
            did=call.did,
            trunk=trunk,
            agent=agent,
        )
        self.start_call(call, inbound)

    def _refused_by_admission(
        self: Switchboard, request: Request, tx: Any, trunk: str | None, now: float
    ) -> bool:
        """Whether the PBX's limits or the trunk's refuse this new call (then it got a 503
        with Retry-After, once and statelessly: under overload no refusal holds state)."""
        refusal = None
        if self.admission is not None:
            refusal = self.admission.check(self.stats["active"], now, self.loop_lag_s)
        limits = self.trunk_admission.get(trunk or "")
        if refusal is None and limits is not None:
            refusal = limits.check(self.trunk_active.get(trunk or "", 0), now, 0.0)
        if refusal is None:
            return False
        self.stats["rejected"] += 1
        log.debug("call_refused", call_id=request.call_id, trunk=trunk, reason=refusal.reason)
        response = make_response(request, 503, "Service Unavailable", to_tag=self.new_tag())
        response.headers.add("Retry-After", str(refusal.retry_after_s))
        self.endpoint.refuse_stateless(tx, response)
        return True

    def _replace_request(self: Switchboard, leg: InboundLeg, agent: str | None) -> None:
        """An INVITE with Replaces (RFC 3891): an agent's other registered phone takes over
        that agent's leg of a call (call pickup to another device). The dialog must be ours
        (else 481) and the agent's own (else 403: nobody takes over someone else's call)."""
        replaces = leg.replaces
        assert replaces is not None
        replaced_id = self._dialogs.get((replaces.call_id, replaces.to_tag), "")
        replaced = self.legs.get(replaced_id)
        call = self.leg_call.get(replaced_id)
        status = 481 if replaced is None or call is None else replaced.check_replaces(replaces)
        if status is None and call is not None and (
            agent is None or call.agent != agent or call.agent_leg is not replaced
        ):
            status = 403
        if status is not None or call is None:
            self.stats["rejected"] += 1
            log.warning("replaces_refused", call_id=leg.invite.call_id, status=status,
                        agent=agent)
            self._run(leg, leg.reject(status or 481, ""))
            return
        self.leg_call[leg.call] = call
        self.post(call, LegReplacement(leg))

    def _caller(
        self: Switchboard, request: Request, tx: Any, source: Address
    ) -> CallerOutcome | None:
        """Who places this call (see pbx.registrar.callers): an agent whose phone answered the
        digest challenge as its From user, or a trunk. None when the INVITE was answered here
        (407, 403, 400) or dropped (a banned source): statelessly, once, to the socket address
        it came from — a forged INVITE buys no retransmitted answer (reflection), no
        transaction, and no call, leg or media session."""
        callers = self.callers
        assert callers is not None, "the app wires Switchboard.callers"
        outcome = callers.check(request, source, time.time())
        if outcome.accepted:
            return outcome
        for event in outcome.events:
            if self.on_caller_event is not None:
                self.on_caller_event(event)
        if outcome.verdict is CallerVerdict.CHALLENGED:
            log.debug("call_challenged", call_id=request.call_id, source=source.host,
                      trunk=outcome.trunk, reason=outcome.reason)
        elif outcome.verdict is not CallerVerdict.DROPPED:
            self.stats["offered"] += 1
            self.stats["rejected"] += 1
            log.warning(
                "call_refused",
                call_id=request.call_id,
                source=source.host,
                status=outcome.response.status if outcome.response else None,
                trunk=outcome.trunk,
                reason=outcome.reason,
            )
        if outcome.response is None:
            self.endpoint.drop(tx)
        else:
            self.endpoint.refuse_stateless(tx, outcome.response)
        return None
