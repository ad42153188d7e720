"""What the SIP call legs return and advertise — L2, pure.

The legs (`pbx.call.leg`, where their theory of operation is) answer every event with a list of
actions: `SipAction`s for the endpoint (`Respond`, `SendRequest`, `SendStateless`) and call events
for the layer above (`pbx.call.events`, plus `RemoteOffer`, `RemoteAnswer` and
`TransferRequested`, which carry SIP transactions and so live here). `Network` is what a leg
needs to know about our side of the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pbx.call.refer import Replaces
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response
from pbx.sip.transaction import ServerTransaction

SDP = "application/sdp"
# What the legs advertise, from this one place: in every 2xx, 405 and OPTIONS answer and in our
# INVITEs (RFC 3261 §20.5 Allow, §20.37 Supported, §20.1 Accept).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY"
SUPPORTED_EXTENSIONS = frozenset({"replaces", "timer"})  # RFC 3891, RFC 4028
SUPPORTED = ", ".join(sorted(SUPPORTED_EXTENSIONS))
ACCEPT = SDP


@dataclass(frozen=True, slots=True)
class Respond:
    transaction: ServerTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Send `request` in a new client transaction; `leg` gets the responses."""

    request: Request
    destination: Address
    leg: str


@dataclass(frozen=True, slots=True)
class SendStateless:
    message: Request | Response
    destination: Address


@dataclass(frozen=True, slots=True)
class RemoteOffer:
    """The far end sent an offer in a re-INVITE or an UPDATE (`method`): hold, resume, a codec
    change. The layer above updates the media session and answers with `answer_reinvite` (or
    refuses with `refuse_offer`). An empty `sdp` is an offer-less re-INVITE (RFC 3261 §14.2):
    answer with the current local SDP as an offer; the answer comes as `RemoteAnswer`."""

    call: str
    sdp: bytes
    transaction: ServerTransaction
    method: str = "INVITE"


@dataclass(frozen=True, slots=True)
class RemoteAnswer:
    """The SDP answer of the far end (to our INVITE or re-INVITE, or in the ACK after an
    offer-less re-INVITE)."""

    call: str
    sdp: bytes


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """The far end asks us to transfer this leg (a REFER, RFC 3515): `refer_to` is the target
    URI (without an embedded Replaces), `replaces` the dialog the target replaces (attended
    transfer, RFC 3891), `referred_by` the Referred-By value ("" when absent). Answer with
    `accept_refer` (then report progress with `notify_refer`) or `reject_refer`."""

    call: str
    refer_to: str
    replaces: Replaces | None
    referred_by: str
    transaction: ServerTransaction


SipAction = Respond | SendRequest | SendStateless
Action = object


class Network(Protocol):
    """What a leg needs to know about our side of the wire."""

    def new_branch(self) -> str: ...

    def new_tag(self) -> str: ...

    def local_contact(self, transport: str) -> str: ...

    def local_via(self, transport: str) -> tuple[str, int, str]: ...
