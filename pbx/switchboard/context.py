"""What the switchboard's parts share: the call's context, its orders and errors — L3."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from pbx.call.phases import Phase as Phase  # the call's phases, re-exported for the parts
from pbx.call.router import RouteTarget
from pbx.call.sip_leg import (
    InboundLeg,
    OutboundLeg,
)
from pbx.config.schema import TrunkConfig
from pbx.repositories import Customer

log = structlog.get_logger("pbx.call")

RING_TIMEOUT_S = 20.0
MAX_HOPS = 5  # overflow / transfer chains a call may follow before it is given up


class CallerGone(Exception):
    """The caller hung up (or cancelled) while the call was being set up."""


class CallRouter(Protocol):
    """Policy the switchboard asks (implemented from the configuration by the app)."""

    def trunk_for(self, host: str) -> str | None:
        """The trunk whose inbound addresses contain `host`, or None."""

    def route_did(self, did: str) -> RouteTarget | None: ...

    def route_internal(self, agent: str, dialled: str) -> RouteTarget | None:
        """An agent dialled `dialled`: another extension (kind "agent") or nothing."""

    def route_campaign(self, campaign: str, number: str) -> RouteTarget:
        """A campaign's customer number through the dial plan (trunk + E.164, or refused)."""

    def queue_members(self, queue: str) -> list[str]:
        """Agents (extensions) to hunt for `queue`, in seat order."""

    @property
    def trunks(self) -> dict[str, TrunkConfig]: ...


@dataclass(frozen=True, slots=True)
class AcdOrder:
    """The ACD engine's commands for one call from one step, delivered through its inbox."""

    commands: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class ControlOrder:
    """A CTI order for one call (hangup, hold, resume, transfer), via the call's inbox."""

    kind: str
    agent: str
    target: str = ""


@dataclass(frozen=True, slots=True)
class LegReplacement:
    """An INVITE with Replaces (RFC 3891) from the agent's other phone takes over the agent's
    leg of this call (`leg` is the new, not yet answered inbound leg)."""

    leg: InboundLeg


@dataclass(frozen=True, slots=True)
class DialerOrder:
    """A dialer (pacer) command for one campaign call, via the call's inbox."""

    command: object


@dataclass
class Consultation:
    """An attended transfer in progress: the consulted agent's leg and media session."""

    agent: str
    leg: OutboundLeg
    session: str


@dataclass
class AgentOffer:
    """The phones of one agent being rung for one call."""

    agent: str
    session: str
    legs: list[OutboundLeg] = field(default_factory=list)
    answered: OutboundLeg | None = None
    failed: set[str] = field(default_factory=set)


@dataclass
class CallContext:
    """One B2BUA call: the caller's leg, the agent's leg once connected, and what the CDR
    needs."""

    id: str
    caller: InboundLeg | OutboundLeg  # outbound when the PBX rang an agent for click-to-dial
    caller_number: str
    did: str
    trunk: str | None
    agent_caller: str | None
    inbox: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    caller_media: str | None = None
    agent_leg: InboundLeg | OutboundLeg | None = None
    agent_media: str | None = None
    agent: str = ""
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    disposition: str = "failed"
    hangup_by: str = ""
    cause: str = ""
    path: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    queue: str = ""
    direction: str = "inbound"
    on_hold: bool = False
    priority: int = 0
    pinned_agents: tuple[str, ...] = ()
    offers: dict[str, AgentOffer] = field(default_factory=dict)
    hold_program: str = "default"
    playbacks: dict[str, str] = field(default_factory=dict)  # media playback id -> name
    customer: Customer | None = None
    consult: Consultation | None = None  # an attended transfer in progress
    dropped: Any = None  # the dialer's DropCall, when a campaign call was dropped in the queue
    phase: Phase = Phase.ROUTING
    skills: tuple[str, ...] = ()  # skills the IVR asked for (the agent needs each)
    leg_media: dict[str, str] = field(default_factory=dict)  # leg id -> its media session
    reoffered: set[str] = field(default_factory=set)  # legs that owe us an SDP answer in ACK
    direct_agents: set[str] = field(default_factory=set)  # agents on this call outside the ACD
    acd_connected: bool = False  # the ACD put `agent` through: it must hear the call end


def is_hold(sdp: bytes) -> bool:
    """Whether an offer puts the session on hold (RFC 3264 §8.4: sendonly/inactive, or the
    old RFC 2543 c=0.0.0.0)."""
    text = sdp.decode("utf-8", "replace")
    lines = {line.strip() for line in text.splitlines()}
    return bool(lines & {"a=sendonly", "a=inactive"}) or "c=IN IP4 0.0.0.0" in lines
