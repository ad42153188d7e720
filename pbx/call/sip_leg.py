"""SIP call legs, one import away — L2, pure.

The legs live in modules of one concern each, and this module re-exports their public names so
that `from pbx.call.sip_leg import X` keeps working. Start reading at `pbx.call.leg`: its
docstring has the theory of operation and the `Leg` base both legs share. `InboundLeg` is in
`pbx.call.inbound_leg`, `OutboundLeg` in `pbx.call.outbound_leg`, and the actions and events
the legs return (with the `Network` protocol and `ALLOW`, `SUPPORTED`, `ACCEPT`) in
`pbx.call.leg_events`.
"""

from __future__ import annotations

from pbx.call.inbound_leg import INBOUND_TABLE, InboundLeg, offer_refusal
from pbx.call.leg import REFRESH_RETRY_S, L, Leg, LegState
from pbx.call.leg_events import (
    ACCEPT,
    ALLOW,
    SDP,
    SUPPORTED,
    SUPPORTED_EXTENSIONS,
    Action,
    Network,
    RemoteAnswer,
    RemoteOffer,
    Respond,
    SendRequest,
    SendStateless,
    SipAction,
    TransferRequested,
)
from pbx.call.outbound_leg import OUTBOUND_TABLE, OutboundLeg

__all__ = [
    "ACCEPT",
    "ALLOW",
    "INBOUND_TABLE",
    "OUTBOUND_TABLE",
    "REFRESH_RETRY_S",
    "SDP",
    "SUPPORTED",
    "SUPPORTED_EXTENSIONS",
    "Action",
    "InboundLeg",
    "L",
    "Leg",
    "LegState",
    "Network",
    "OutboundLeg",
    "RemoteAnswer",
    "RemoteOffer",
    "offer_refusal",
    "Respond",
    "SendRequest",
    "SendStateless",
    "SipAction",
    "TransferRequested",
]
