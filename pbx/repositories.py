"""Storage protocols the pure layers see (L0).

The registrar, the call layer, the ACD and the dialer never hold a database session. They talk to
these small protocols; `pbx.storage` implements them with SQLAlchemy, and unit tests of the pure
layers may use in-memory versions. Every record type here is a frozen dataclass so it can cross
thread and process boundaries unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address of record (RFC 3261 §10.3).

    `expires_at` is wall-clock seconds since the epoch, so a stored binding keeps its meaning
    across a restart. `source` is where the REGISTER came from: ``(transport, host, port)``.
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    q: float = 1.0
    source_transport: str = "udp"
    source_host: str = ""
    source_port: int = 0
    user_agent: str = ""
    instance_id: str = ""
    reg_id: int = 0
    path: str = ""


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent as declared in the configuration and mirrored into storage."""

    extension: str
    name: str
    role: str
    password_ha1_md5: str
    password_ha1_sha256: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CallDetailRecord:
    """One finished call (or call attempt), written when the call ends."""

    call_id: str
    direction: str  # "inbound" | "outbound" | "internal"
    caller: str
    callee: str
    started_at: float
    answered_at: float | None
    ended_at: float
    disposition: str  # "answered" | "no_answer" | "busy" | "failed" | "abandoned"
    hangup_cause: str = ""
    agent: str = ""
    queue: str = ""
    did: str = ""
    recording: str = ""  # the call's recording, relative to the recordings directory
    ivr_path: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    agent_disposition: str = ""  # what the agent chose in the desk (``cti.dispositions``)
    agent_notes: str = ""  # the agent's note with it


@dataclass(frozen=True, slots=True)
class AgentDisposition:
    """The disposition and notes an agent set in the desk for a call that had already ended
    (wrap-up): written into that call's CDR, found by its SIP Call-ID, after the CDR itself."""

    call_id: str
    disposition: str
    notes: str = ""
    agent: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer record as the IVR, ACD, CTI and dialer see it.

    `status` is a key of the configured customer statuses (e.g. standard, gold, vip);
    `pinned_agents` are extensions that serve this customer first (VIP pinning); `fields` holds
    the free-form data the admin's forms show (contract, address, notes …).
    """

    customer_no: str
    name: str
    phone_numbers: tuple[str, ...] = ()
    status: str = "standard"
    language: str = ""
    groups: tuple[str, ...] = ()
    pinned_agents: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)


class CustomerDirectory(Protocol):
    """Customer look-ups for the IVR (`lookup` node), the ACD (pinning) and the dialer."""

    def by_number(self, customer_no: str) -> Customer | None: ...

    def by_phone(self, phone: str) -> Customer | None:
        """The customer with this phone number (E.164, as the caller ID arrives)."""
        ...


@dataclass(frozen=True, slots=True)
class QueueLogEntry:
    """One line of the queue log. `event`: enqueue, offer, no_answer, busy, rejected,
    unavailable, answer, abandon, overflow, left (max_wait, max_length …), pause, unpause,
    wrap_up. `data` carries the details (waited_s, reason, position …)."""

    at: float
    event: str
    queue: str = ""
    call: str = ""
    agent: str = ""
    data: Mapping[str, object] = field(default_factory=dict)


class QueueLog(Protocol):
    def write_queue_events(self, entries: Sequence[QueueLogEntry]) -> None: ...

    def recent_queue_events(self, limit: int = 100, queue: str | None = None
                            ) -> list[QueueLogEntry]: ...


class LocationStore(Protocol):
    """Persistence of registrar bindings. The registrar keeps its table in memory and writes
    changes through; on start it loads what survived the last run."""

    def load_bindings(self) -> list[Binding]: ...

    def replace_bindings(self, changes: Mapping[str, Sequence[Binding]]) -> None:
        """Replace the stored bindings of each AOR in `changes` (an empty sequence deletes)."""
        ...


class AgentDirectory(Protocol):
    """The agents the configuration declares, mirrored into storage."""

    def sync_agents(self, agents: Sequence[AgentRecord]) -> None: ...

    def list_agents(self) -> list[AgentRecord]: ...


class CdrSink(Protocol):
    """Where finished calls are recorded."""

    def write_cdr(self, record: CallDetailRecord) -> None: ...

    def recent_cdrs(self, limit: int = 100) -> list[CallDetailRecord]: ...
