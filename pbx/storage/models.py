"""Tables of the PBX database, as SQLAlchemy 2 declarative models (L3).

The schema itself is created and changed only by the Alembic migrations in `migrations/`; these
models describe it for queries and for ``alembic revision --autogenerate``. A test checks that
the migrated schema and these models agree.

- ``agents``: mirror of the agents in the configuration (digest HA1s, never the password).
- ``registrations``: one row per registrar binding (RFC 3261 §10.3), looked up by AOR.
- ``cdr``: one row per finished call; never deleted by the PBX.
- ``customers`` with ``customer_phones``, ``customer_groups``, ``customer_pinned_agents``: the
  customer directory (lists keep their order in ``position``; deleting a customer deletes them).
- ``cti_credentials``: the agents' desktop passwords as scrypt hashes (see `pbx.cti.auth`).
- ``cti_sessions``: logged-in desktop sessions, by the SHA-256 of their token (never the token).
- ``form_audit``: one row per field a screen-pop form save changed (who, when, old -> new).
- ``campaign_contacts``: the dialer's state of each customer in each campaign.
- ``dialer_attempts``: one row per outbound attempt and its result; only ever added.
- ``dnc``: the do-not-call list (E.164 numbers).
- ``queue_intervals``, ``agent_intervals``, ``agent_pause_intervals``: queue and agent
  statistics per 15-minute interval (`pbx.acd.intervals`), added to as calls go on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names that are the same on SQLite and PostgreSQL, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base; its metadata is the migrations' target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AgentRow(Base):
    """An agent from the configuration; removed agents stay, disabled, for CDR history."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    extension: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    ha1_md5: Mapped[str] = mapped_column(String(32))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegistrationRow(Base):
    """One binding of an address of record to a contact."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    aor: Mapped[str] = mapped_column(String(255), index=True)
    contact: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    call_id: Mapped[str] = mapped_column(Text)
    cseq: Mapped[int] = mapped_column(BigInteger)
    q: Mapped[float] = mapped_column(Float)
    source_transport: Mapped[str] = mapped_column(String(8))
    source_host: Mapped[str] = mapped_column(String(64))
    source_port: Mapped[int] = mapped_column(Integer)
    user_agent: Mapped[str] = mapped_column(Text)
    instance_id: Mapped[str] = mapped_column(Text)  # RFC 5626 +sip.instance
    reg_id: Mapped[int] = mapped_column(Integer)  # RFC 5626 reg-id
    path: Mapped[str] = mapped_column(Text)  # RFC 3327 Path header value


class CdrRow(Base):
    """One finished call or call attempt."""

    __tablename__ = "cdr"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str] = mapped_column(Text)
    callee: Mapped[str] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    answered_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float] = mapped_column(Float)
    disposition: Mapped[str] = mapped_column(String(16))
    hangup_cause: Mapped[str] = mapped_column(Text)
    agent: Mapped[str] = mapped_column(String(32), index=True)
    queue: Mapped[str] = mapped_column(String(64))
    did: Mapped[str] = mapped_column(String(64))
    recording: Mapped[str] = mapped_column(Text, default="", server_default="")
    recording_expired_at: Mapped[float | None] = mapped_column(Float)  # deleted by retention
    ivr_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    variables: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    agent_disposition: Mapped[str] = mapped_column(String(64), default="")  # set in wrap-up
    agent_notes: Mapped[str] = mapped_column(Text, default="")


class CustomerRow(Base):
    """A customer: the IVR's `lookup`, the ACD's pinning and the screen pop read it."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_no: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    fields: Mapped[dict[str, str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # SHA-256 of the record as the configuration's seed last wrote it; NULL when the record
    # did not come from the seed. A record whose digest no longer matches was edited since.
    seed_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CustomerPhoneRow(Base):
    """One phone number of a customer (E.164), looked up by the caller's number."""

    __tablename__ = "customer_phones"

    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)


class CustomerGroupRow(Base):
    """A group a customer belongs to (for campaigns, reports and routing)."""

    __tablename__ = "customer_groups"

    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_name: Mapped[str] = mapped_column(String(64), index=True)


class CustomerPinnedAgentRow(Base):
    """An agent (extension) who serves this customer first, in order of `position`."""

    __tablename__ = "customer_pinned_agents"

    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    extension: Mapped[str] = mapped_column(String(32))


class CtiCredentialRow(Base):
    """An agent's desktop password as a self-describing scrypt hash (salt and cost inside)."""

    __tablename__ = "cti_credentials"

    extension: Mapped[str] = mapped_column(String(32), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CtiSessionRow(Base):
    """A desktop session. Only hashes of its token and CSRF token are stored."""

    __tablename__ = "cti_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    extension: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16))
    csrf_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class FormAuditRow(Base):
    """One field changed by a form save; rows are only ever added."""

    __tablename__ = "form_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    agent: Mapped[str] = mapped_column(String(32))
    form: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)  # customer.fields.contract, concern, …
    customer_no: Mapped[str] = mapped_column(String(64), index=True)  # "" when none
    call_id: Mapped[str] = mapped_column(String(255), index=True)  # "" outside a call
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)


class QueueLogRow(Base):
    """One queue-log event (see `pbx.repositories.QueueLogEntry`)."""

    __tablename__ = "queue_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    event: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(64), index=True)
    call: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class CampaignContactRow(Base):
    """One customer in one outbound campaign (see `pbx.dialer.records.ContactRecord`)."""

    __tablename__ = "campaign_contacts"

    campaign: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[float | None] = mapped_column(Float)  # seconds since the epoch
    last_result: Mapped[str] = mapped_column(String(32))
    locked_until: Mapped[float | None] = mapped_column(Float)
    result_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class DialerAttemptRow(Base):
    """One outbound attempt of a campaign and how it ended."""

    __tablename__ = "dialer_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64), index=True)
    customer_no: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    result: Mapped[str] = mapped_column(String(32))
    duration: Mapped[float] = mapped_column(Float)  # seconds
    agent: Mapped[str] = mapped_column(String(32))
    call: Mapped[str] = mapped_column(String(64))


class DncRow(Base):
    """A number on the do-not-call list."""

    __tablename__ = "dnc"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    added_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    reason: Mapped[str] = mapped_column(Text)


class QueueIntervalRow(Base):
    """One queue's figures in one 15-minute interval (sums: see `pbx.acd.intervals`)."""

    __tablename__ = "queue_intervals"

    interval_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    offered: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    abandoned: Mapped[int] = mapped_column(Integer)
    overflowed: Mapped[int] = mapped_column(Integer)
    answered_in_sl: Mapped[int] = mapped_column(Integer)
    wait_answered_s: Mapped[float] = mapped_column(Float)
    wait_abandoned_s: Mapped[float] = mapped_column(Float)
    handled: Mapped[int] = mapped_column(Integer)
    handle_s: Mapped[float] = mapped_column(Float)


class AgentIntervalRow(Base):
    """One agent's figures in one 15-minute interval (sums: see `pbx.acd.intervals`)."""

    __tablename__ = "agent_intervals"

    interval_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent: Mapped[str] = mapped_column(String(32), primary_key=True)
    offers: Mapped[int] = mapped_column(Integer)
    missed: Mapped[int] = mapped_column(Integer)
    calls: Mapped[int] = mapped_column(Integer)
    handled: Mapped[int] = mapped_column(Integer)
    handle_s: Mapped[float] = mapped_column(Float)
    talk_s: Mapped[float] = mapped_column(Float)
    wrap_up_s: Mapped[float] = mapped_column(Float)
    ready_s: Mapped[float] = mapped_column(Float)
    ringing_s: Mapped[float] = mapped_column(Float)
    reserved_s: Mapped[float] = mapped_column(Float)
    paused_s: Mapped[float] = mapped_column(Float)
    direct_s: Mapped[float] = mapped_column(Float)


class AgentPauseIntervalRow(Base):
    """Time one agent spent paused for one reason in one 15-minute interval."""

    __tablename__ = "agent_pause_intervals"

    interval_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_s: Mapped[float] = mapped_column(Float)
