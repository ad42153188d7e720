"""The IVR's own events and commands, beside the call-control vocabulary (L2).

An `IvrSession` speaks the call-control language of `pbx.call.events` (it takes `DtmfReceived`,
`PlaybackFinished`, `HungUp`, `MediaTimedOut`; it gives `Play`, `StopPlayback`, `Transfer`,
`Hangup`) plus the few messages below, which only the IVR needs:

- `LookupCustomer` / `CustomerFound`: the `lookup` node asks its owner to look a customer up in
  the `CustomerDirectory` (I/O, done by the L3 side, e.g. in a worker thread) and is told the
  result, so the session itself never touches storage.
- `EnqueueCall`: the `queue` node hands the caller to the ACD (or, until the ACD exists, to the
  call layer ringing an agent group).
- `TimerFired`: the owner's timer, armed from `IvrSession.next_deadline()`, went off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pbx.call.events import (
    DtmfReceived,
    Hangup,
    HungUp,
    MediaTimedOut,
    Play,
    PlaybackFinished,
    StopPlayback,
    Transfer,
)
from pbx.repositories import Customer

LookupKey = Literal["phone", "customer_no"]

# ------------------------------------------------------------------ events (upwards, into the IVR)


@dataclass(frozen=True, slots=True)
class CustomerFound:
    """The answer to `LookupCustomer` `request`: the customer, or None when there is none.

    `error` is set (and `customer` None) when the directory could not be read; the flow then
    takes its not-found branch.
    """

    call: str
    request: str
    customer: Customer | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The timer armed from `IvrSession.next_deadline()` went off."""

    call: str


IvrEvent = DtmfReceived | PlaybackFinished | HungUp | MediaTimedOut | CustomerFound | TimerFired

# ------------------------------------------------------------------ commands (out of the IVR)


@dataclass(frozen=True, slots=True)
class LookupCustomer:
    """Look the customer up `by` phone number or customer number; answer with `CustomerFound`
    carrying the same `request`."""

    call: str
    request: str
    by: LookupKey
    value: str


@dataclass(frozen=True, slots=True)
class EnqueueCall:
    """Put the caller into `queue`. Higher `priority` is served first; `skills` are what the
    agent needs; `pinned_agents` (from the customer record) should be offered the call first;
    `variables` are the IVR's call variables (for the screen pop and the CDR)."""

    call: str
    queue: str
    priority: int = 0
    skills: tuple[str, ...] = ()
    pinned_agents: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)


IvrCommand = Play | StopPlayback | Transfer | Hangup | LookupCustomer | EnqueueCall

# ------------------------------------------------------------------ the result (for the CDR)

OutcomeKind = Literal["hung_up", "queued", "transferred", "completed", "timed_out", "failed"]


@dataclass(frozen=True, slots=True)
class IvrOutcome:
    """How an IVR session ended. `target` is the queue or transfer target; `cause` the hang-up
    cause (ours for completed, timed_out and failed; the leg's for hung_up)."""

    kind: OutcomeKind
    target: str = ""
    priority: int = 0
    skills: tuple[str, ...] = ()
    cause: str = ""


__all__ = [
    "CustomerFound",
    "EnqueueCall",
    "IvrCommand",
    "IvrEvent",
    "IvrOutcome",
    "LookupCustomer",
    "LookupKey",
    "OutcomeKind",
    "TimerFired",
]
