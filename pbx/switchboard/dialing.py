"""Outbound campaigns on the live switchboard: the pure `Pacer` and `Campaign` of `pbx.dialer`
driven with real calls — L3.

Each `DialContact` becomes a call through the campaign's trunk whose task waits for the
answer, reports it to the pacer, and on `ConnectAnsweredCall` queues the customer in the ACD
like an inbound caller (same strategies, same screen pop); a call that finds no agent within
the campaign's drop time is dropped by the pacer (`DropCall`: the customer hears the drop
prompt). Agent availability reaches the pacer as `AgentsChanged` from the ACD's agent states;
contact and attempt records are written behind to storage. With answering-machine detection
on, the first seconds of the answered call are recorded by the media engine and analysed
(`pbx.dialer.amd`); the verdict goes to the pacer, which connects a person, hangs up on a
machine or leaves it a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pbx.acd.events import AgentPaused, AgentUnpaused
from pbx.call.campaign_call import CampaignDial, campaign_call
from pbx.call.machine import DialerOrder, log
from pbx.call.outbound_leg import OutboundLeg
from pbx.dialer.campaign import Campaign, RecordAttempt, SaveContact
from pbx.dialer.events import (
    AgentsChanged,
    CallFailed,
    CancelPreview,
    ConnectAnsweredCall,
    ContactsAdded,
    DialContact,
    DropCall,
    HangUpCall,
    InboundWaiting,
    LeaveMessage,
    PauseRequested,
    PreviewDecided,
    ReserveAgentForPreview,
    StartRequested,
    StopRequested,
    TimerFired,
)
from pbx.dialer.pacing import Pacer
from pbx.dialer.schema import CampaignConfig
from pbx.sip.endpoint import Address
from pbx.sip.uri import NameAddr, SipUri

if TYPE_CHECKING:
    from pbx.storage.dialer import SqlDialerStore
    from pbx.switchboard.board import Switchboard

BUSY_STATES = frozenset({"ringing", "reserved", "on_call", "wrap_up", "busy_direct"})


@dataclass
class RunningCampaign:
    config: CampaignConfig
    pacer: Pacer
    members: frozenset[str]
    timer: asyncio.TimerHandle | None = None
    previews: dict[str, str] = field(default_factory=dict)  # customer_no -> previewing agent


class Dialing:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    campaigns: dict[str, RunningCampaign]
    dialer_store: SqlDialerStore | None
    # The do-not-call list every campaign checks at each hand-out; the admin API keeps it
    # current (`dnc_changed`), so a number added while a campaign runs is never dialled.
    dnc: set[str]

    async def load_campaigns(
        self: Switchboard, configs: tuple[CampaignConfig, ...], store: SqlDialerStore
    ) -> None:
        """Build every campaign from storage; enabled ones start dialling at once."""
        self.dialer_store = store
        dnc = self.dnc = await asyncio.to_thread(store.dnc_numbers)
        for config in configs:
            if config.strategy is not None or config.form is not None:
                # Answered campaign calls are hunted by their queue's strategy and pop the
                # queue's form: give a campaign its own queue to choose either.
                log.warning("campaign_setting_not_applied", campaign=config.name,
                            strategy=config.strategy, form=config.form, queue=config.queue,
                            hint="set the strategy and the form on the campaign's queue")
            customers = await asyncio.to_thread(store.select_targets, config.target)
            stored = await asyncio.to_thread(store.load_contacts, config.name)
            campaign = Campaign(config, customers, stored, dnc)
            queue = self.acd.queues.get(config.queue) if self.acd is not None else None
            pacer = Pacer(
                campaign,
                new_call_id=lambda: self._next_id("d"),
                handle_time_estimate_s=queue.handle_time_estimate_s if queue else 180.0,
                wrap_up_s=queue.wrap_up_s if queue else 0.0,
                now=time.time(),
            )
            members = frozenset(m.agent for m in queue.members) if queue else frozenset()
            self.campaigns[config.name] = RunningCampaign(config, pacer, members)
            log.info(
                "campaign_loaded", campaign=config.name, contacts=len(customers), mode=config.mode
            )
            if not customers:
                log.warning("campaign_targets_nobody", campaign=config.name,
                            target=config.target.model_dump(exclude_defaults=True),
                            hint="no stored customer matches the target (its groups, statuses, "
                                 "languages, fields); import customers or fix the target")
            if config.enabled:
                self.campaign_control(config.name, "start")

    def dnc_changed(self: Switchboard, added: Iterable[str], removed: Iterable[str]) -> None:
        """Numbers put on or taken off the do-not-call list (already stored)."""
        self.dnc.update(added)
        self.dnc.difference_update(removed)

    async def refresh_campaign_targets(self: Switchboard) -> None:
        """Customers were imported or edited: every campaign takes the ones its target
        matches now (new ones become contacts; see `Campaign.add_customers`)."""
        store = self.dialer_store
        if store is None:
            return
        for name, running in list(self.campaigns.items()):
            customers = await asyncio.to_thread(store.select_targets, running.config.target)
            if name in self.campaigns:
                before = running.pacer.campaign.stats().contacts
                self._pacer(name, ContactsAdded(tuple(customers)))
                added = running.pacer.campaign.stats().contacts - before
                if added:
                    log.info("campaign_contacts_added", campaign=name, added=added)

    def campaign_control(self: Switchboard, name: str, action: str) -> None:
        """start | pause | stop a campaign (the API calls this)."""
        events = {"start": StartRequested(), "pause": PauseRequested(), "stop": StopRequested()}
        if name not in self.campaigns or action not in events:
            raise KeyError(f"no campaign {name!r} or action {action!r}")
        self._pacer(name, self._agents_changed(self.campaigns[name]))
        self._pacer(name, events[action])

    def campaign_status(self: Switchboard) -> list[dict[str, Any]]:
        return [
            {
                "campaign": name,
                "state": str(running.pacer.state),
                **_as_dict(running.pacer.statistics()),
            }
            for name, running in self.campaigns.items()
        ]

    def _agents_changed(self: Switchboard, running: RunningCampaign) -> AgentsChanged:
        free = busy = 0
        if self.acd is not None:
            now = time.time()
            for agent in running.members:
                if agent not in self.acd.agents:
                    continue
                state = str(getattr(self.acd.stats.agent(agent, now).state, "value", ""))
                if state == "available" and self.registrar.lookup(agent, now):
                    free += 1  # logged in, idle, and a phone to ring
                elif state in BUSY_STATES:
                    busy += 1
        return AgentsChanged(free, busy)

    def dialer_agents_changed(self: Switchboard) -> None:
        """An agent's state changed: every running campaign re-counts its free agents."""
        for name, running in self.campaigns.items():
            self._pacer(name, self._agents_changed(running))

    def dialer_inbound_waits(self: Switchboard) -> None:
        """Blending: tell each campaign how long inbound callers wait in the queues it watches
        (the pacer stops starting lines above `pause_above_s`)."""
        if self.acd is None:
            return
        now = time.time()
        for name, running in self.campaigns.items():
            watched = running.config.blending.queues or (running.config.queue,)
            if running.config.blending.pause_above_s is None:
                continue
            inbound = [
                c
                for c in self.calls.values()
                if c.queue in watched and c.direction == "inbound" and c.agent_leg is None
            ]
            waits = (
                [
                    self.acd.stats.queue(q, now).longest_wait_s
                    for q in watched
                    if q in self.acd.queues
                ]
                if inbound
                else []
            )
            self._pacer(name, InboundWaiting(max(waits, default=0.0)))

    def _pacer(self: Switchboard, name: str, event: Any) -> None:
        running = self.campaigns[name]
        commands = running.pacer.handle(event, time.time())
        writes_contacts = [c.record for c in commands if isinstance(c, SaveContact)]
        writes_attempts = [c.attempt for c in commands if isinstance(c, RecordAttempt)]
        if self.dialer_store is not None and (writes_contacts or writes_attempts):
            self._spawn(self._write_dialer(writes_contacts, writes_attempts))
        for command in commands:
            if isinstance(command, DialContact):
                self._dial_contact(running, command)
            elif isinstance(command, ReserveAgentForPreview):
                self._reserve_for_preview(running, command)
            elif isinstance(command, CancelPreview):
                self._release_preview(running, command.customer_no, cancelled=True)
            elif isinstance(command, ConnectAnsweredCall | DropCall | HangUpCall | LeaveMessage):
                call = self.calls.get(command.call)
                if call is not None:
                    self.post(call, DialerOrder(command))
        if running.timer is not None:
            running.timer.cancel()
            running.timer = None
        deadline = running.pacer.next_deadline()
        if deadline is not None:
            running.timer = asyncio.get_running_loop().call_later(
                max(0.0, deadline - time.time()), lambda: self._pacer(name, TimerFired())
            )

    async def _write_dialer(self: Switchboard, contacts: list[Any], attempts: list[Any]) -> None:
        store = self.dialer_store
        assert store is not None
        try:
            if contacts:
                await asyncio.to_thread(store.save_contacts, contacts)
            if attempts:
                await asyncio.to_thread(store.record_attempts, attempts)
        except Exception:
            log.exception("dialer_write_failed")

    def _reserve_for_preview(
        self: Switchboard, running: RunningCampaign, command: ReserveAgentForPreview
    ) -> None:
        """Preview dialling: hold a free agent of the campaign's queue (paused "preview" in
        the ACD, so no other call reaches them) and show them the customer."""
        name = running.config.name
        taken = {a for r in self.campaigns.values() for a in r.previews.values()}
        now = time.time()
        free = [
            a
            for a in sorted(running.members)
            if self.acd is not None
            and a in self.acd.agents
            and a not in taken
            and str(getattr(self.acd.stats.agent(a, now).state, "value", "")) == "available"
            and self.registrar.lookup(a, now)  # a phone to ring when they choose to dial
        ]
        if not free:
            self._pacer(name, PreviewDecided(command.customer_no, "", False))
            return
        agent = free[0]
        running.previews[command.customer_no] = agent
        self.acd_handle(AgentPaused(agent, "preview"))
        customer = self.customers.by_number(command.customer_no) if self.customers else None
        if self.desk is not None:
            self.desk.on_preview(agent, name, customer, command.customer_no, command.phone)
        log.info("preview_reserved", campaign=name, agent=agent, customer=command.customer_no)

    def _release_preview(
        self: Switchboard, running: RunningCampaign, customer_no: str, cancelled: bool
    ) -> str | None:
        agent = running.previews.pop(customer_no, None)
        if agent is not None:
            self.acd_handle(AgentUnpaused(agent))
            if self.desk is not None:
                self.desk.on_preview_ended(agent, running.config.name, customer_no)
        return agent

    def preview_decided(self: Switchboard, agent: str, customer_no: str, dial: bool) -> None:
        """The previewing agent dials or skips the customer (the CTI API calls this)."""
        for name, running in self.campaigns.items():
            if running.previews.get(customer_no) == agent:
                if dial:
                    if self.desk is not None:
                        self.desk.on_preview_ended(agent, name, customer_no)
                    self._pacer(name, PreviewDecided(customer_no, agent, True))
                else:
                    self._release_preview(running, customer_no, cancelled=False)
                    self._pacer(name, PreviewDecided(customer_no, agent, False))
                return
        raise KeyError(customer_no)

    def _dial_contact(self: Switchboard, running: RunningCampaign, command: DialContact) -> None:
        name = running.config.name
        route = self.router.route_campaign(name, command.phone)
        if route.kind != "trunk":
            # A premium or special number in the customer list, or no trunk: never dialled.
            log.warning("campaign_dial_refused", campaign=name, customer=command.customer_no,
                        reason=route.name, rule=route.rule)
            self._pacer(name, CallFailed(command.call, "failed"))
            return
        trunk_name = running.config.trunk or route.name
        if trunk_name not in self.router.trunks:
            self._pacer(name, CallFailed(command.call, "failed"))
            return
        number = route.number or command.phone
        self._spawn(self._campaign_call(running, replace(command, phone=number), trunk_name))

    async def _campaign_call(
        self: Switchboard, running: RunningCampaign, command: DialContact, trunk_name: str
    ) -> None:
        """Start the customer's leg through the trunk, then run the call's script
        (`pbx.call.campaign_call`)."""
        name = running.config.name
        trunk = self.router.trunks[trunk_name]
        opened = await self.media.open_session(None)
        domain = trunk.from_domain or trunk.host
        leg = OutboundLeg(
            command.call,
            self,
            SipUri(trunk.host, user=command.phone, port=trunk.port),
            Address(trunk.transport, trunk.host, trunk.port),
            NameAddr(
                SipUri(domain, user=command.caller_id), display_name=command.caller_name or None
            ),
            NameAddr(SipUri(domain, user=command.phone)),
            opened.local_sdp.encode(),
            time.monotonic(),
            extra_headers=(("P-Asserted-Identity", f"<sip:{command.caller_id}@{domain}>"),),
            t1=self.endpoint.timers.t1,
            t2=self.endpoint.timers.t2,
            credentials=(trunk.username, trunk.password)
            if trunk.username and trunk.password
            else None,
        )
        self.legs[leg.call] = leg
        call = self.new_call(leg, command.phone, command.phone, trunk_name, None)
        call.direction = "outbound"
        call.caller_media = opened.session_id
        call.leg_media[leg.call] = opened.session_id
        call.variables.update({"campaign": name, "customer_no": command.customer_no})
        self._sessions[opened.session_id] = call
        self._run(leg, leg.start())
        log.info("campaign_dial", campaign=name, call=call.id, customer=command.customer_no,
                 attempt=command.attempt)
        dial = CampaignDial(name, running.config, command)
        self.start_call(call, lambda c: campaign_call(c, dial))


def _as_dict(value: object) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else {}
