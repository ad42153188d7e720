"""What the dialer stores: contact states, attempts, the do-not-call list (L2, pure records).

`pbx.storage.dialer` implements `DialerStore` with SQLAlchemy; the pure campaign and pacer see
only these frozen records and hand them out as `SaveContact` / `RecordAttempt` commands.
Times are wall-clock seconds since the epoch, so a stored record keeps its meaning across a
restart.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pbx.dialer.schema import CustomerFilter
from pbx.repositories import Customer


class ContactState(enum.StrEnum):
    """Where a customer stands in a campaign.

    ``pending`` waits for its (next) attempt; ``preview`` is shown to an agent who decides;
    ``dialling`` rings; ``answered`` was picked up and waits for AMD or a free agent;
    ``connected`` talks to an agent. Final: ``done`` (reached, or a message left),
    ``dnc`` (every number is on the do-not-call list), ``exhausted`` (attempts used up),
    ``invalid`` (no phone number)."""

    PENDING = "pending"
    PREVIEW = "preview"
    DIALLING = "dialling"
    ANSWERED = "answered"
    CONNECTED = "connected"
    DONE = "done"
    DNC = "dnc"
    EXHAUSTED = "exhausted"
    INVALID = "invalid"


FINAL_STATES = frozenset(
    {ContactState.DONE, ContactState.DNC, ContactState.EXHAUSTED, ContactState.INVALID}
)
# States with a call (or a preview) in progress: after a restart they go back to pending.
LIVE_STATES = frozenset(
    {ContactState.PREVIEW, ContactState.DIALLING, ContactState.ANSWERED, ContactState.CONNECTED}
)

# How an attempt ended. `connected`: talked to an agent; `message_left`: AMD left the
# campaign's message; `dropped`: answered but no agent within the drop time (or the customer
# hung up before one came); `skipped`: the agent skipped the preview (no call was made).
DialResult = Literal[
    "connected", "busy", "no_answer", "failed", "machine", "message_left", "dropped", "skipped"
]


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One customer in one campaign. `result_counts` counts attempts per result (for the
    per-result `max_attempts` of the retry policy)."""

    campaign: str
    customer_no: str
    state: ContactState = ContactState.PENDING
    attempts: int = 0
    next_attempt_at: float | None = None
    last_result: str = ""
    locked_until: float | None = None
    result_counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One dialled attempt and how it ended; `duration_s` from dial to end."""

    campaign: str
    customer_no: str
    phone: str
    attempt: int
    started_at: float
    result: str
    duration_s: float
    agent: str = ""
    call: str = ""


@dataclass(frozen=True, slots=True)
class DncEntry:
    """A number that must never be called (E.164)."""

    phone: str
    added_at: float
    reason: str = ""


class DialerStore(Protocol):
    """Persistence of campaigns (SQLAlchemy in `pbx.storage.dialer`)."""

    def select_targets(self, target: CustomerFilter) -> list[Customer]: ...

    def load_contacts(self, campaign: str) -> dict[str, ContactRecord]: ...

    def save_contacts(self, records: Sequence[ContactRecord]) -> None: ...

    def record_attempts(self, attempts: Sequence[AttemptRecord]) -> None: ...

    def add_dnc(self, phone: str, reason: str = "", at: float | None = None) -> bool: ...

    def is_dnc(self, phone: str) -> bool: ...

    def dnc_numbers(self) -> set[str]: ...
