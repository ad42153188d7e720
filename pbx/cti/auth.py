"""Agent desktop logins and sessions (L3).

Credentials: an agent logs in with its extension and its **SIP password** from the
configuration — one secret per seat, the one the softphone already uses. The database never
holds it: at start `sync_credentials` stores a scrypt hash per enabled agent in
``cti_credentials`` (``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``, salt and cost inside, so a
changed ``cti.password_cost`` applies to new hashes while old ones still verify). A hash that
still verifies against the configured password is kept, so restarts do not rewrite the table;
agents removed or disabled lose their hash and their sessions. Logins verify against the
stored hash only.

Sessions: a login creates a random 256-bit token and a separate CSRF token; only their SHA-256
is stored (``cti_sessions``), with the agent and an absolute expiry (``cti.session_lifetime_s``).
Sessions survive a restart. A request presents the token either as
``Authorization: Bearer TOKEN`` (API clients; not sent by browsers on their own, so not
forgeable cross-site) or in the ``pbx_session`` cookie (``HttpOnly; SameSite=Strict``), in which
case every state-changing request must also carry the CSRF token in the ``cti.csrf_header``
header (double submit, checked against the session's stored hash).

Failed logins are counted per source address (`pbx.registrar.security.AuthFailureGuard`):
``cti.max_login_failures`` within ``cti.login_failure_window_s`` block the address for
``cti.login_ban_s``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from pbx.config.schema import AgentConfig, PbxConfig
from pbx.cti.permissions import Principal
from pbx.registrar.security import AuthFailureGuard
from pbx.storage.cti import CtiSessionRecord

log = structlog.get_logger("pbx.cti")

SESSION_COOKIE = "pbx_session"
CSRF_COOKIE = "pbx_csrf"
SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32


class CredentialStore(Protocol):
    """Where hashes and sessions live (`pbx.storage.SqlCtiStore`)."""

    def credential_hashes(self) -> dict[str, str]: ...

    def credential_hash(self, extension: str) -> str | None: ...

    def replace_credentials(self, hashes: dict[str, str]) -> None: ...

    def add_session(self, record: CtiSessionRecord) -> None: ...

    def session(self, token_hash: str) -> CtiSessionRecord | None: ...

    def delete_session(self, token_hash: str) -> bool: ...

    def delete_expired_sessions(self, now: float) -> int: ...


class LoginRefused(Exception):
    """A login failed; `status` is the HTTP status to answer with (401, 429)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ------------------------------------------------------------------ password hashes


def hash_password(password: str, cost: int) -> str:
    """A self-describing scrypt hash of `password` with n = 2**cost."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, cost, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        ("scrypt", str(cost), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest))
    )


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded` (from `hash_password`); False for a malformed
    hash. Constant-time in the comparison."""
    try:
        scheme, cost, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest + "==")
        actual = _scrypt(password, base64.urlsafe_b64decode(salt + "=="), int(cost), int(r),
                         int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def _scrypt(password: str, salt: bytes, cost: int, r: int, p: int) -> bytes:
    n = 1 << cost
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_HASH_BYTES,
                          maxmem=2 * 128 * r * n + 1024 * 1024)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def token_hash(token: str) -> str:
    """What is stored for a token: its SHA-256, hex (tokens are random, so no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def sync_credentials(config: PbxConfig, store: CredentialStore) -> int:
    """Make ``cti_credentials`` hold a hash of each enabled agent's password (see the module
    docstring). Returns how many hashes were (re)computed. Slow by design (one scrypt per
    agent): call it from a worker thread at start."""
    stored = store.credential_hashes()
    wanted: dict[str, str] = {}
    rehashed = 0
    for agent in config.agents:
        if not agent.enabled:
            continue
        current = stored.get(agent.extension)
        if current is not None and verify_password(agent.password, current):
            wanted[agent.extension] = current
        else:
            wanted[agent.extension] = hash_password(agent.password, config.cti.password_cost)
            rehashed += 1
    store.replace_credentials(wanted)
    return rehashed


def prune_credentials(config: PbxConfig, store: CredentialStore) -> int:
    """Drop the stored hashes (and so the sessions) of agents no longer enabled; cheap, for
    every start. New and changed passwords are hashed at the agent's next login."""
    enabled = {agent.extension for agent in config.agents if agent.enabled}
    stored = store.credential_hashes()
    keep = {ext: value for ext, value in stored.items() if ext in enabled}
    if len(keep) != len(stored):
        store.replace_credentials(keep)
    return len(stored) - len(keep)


# ------------------------------------------------------------------ sessions


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in desktop: who, with which rights, until when."""

    token_hash: str
    csrf_hash: str
    extension: str
    name: str
    role: str
    groups: tuple[str, ...]
    created_at: float
    expires_at: float

    @property
    def sees_all(self) -> bool:
        """Supervisors and admins see every agent's calls; agents only their own."""
        return self.role in SUPERVISOR_ROLES

    @property
    def principal(self) -> Principal:
        return Principal(self.extension, self.role, self.groups)

    def check_csrf(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(token_hash(presented), self.csrf_hash)

    def describe(self) -> dict[str, object]:
        return {
            "extension": self.extension,
            "name": self.name,
            "role": self.role,
            "groups": list(self.groups),
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session and the two secrets only its client ever sees."""

    session: Session
    token: str
    csrf_token: str


class CtiAuth:
    """Logins, sessions and their lookup. `login` and `load` touch the database (call them from
    a worker thread); `cached` and `check` are in memory."""

    def __init__(
        self,
        config: PbxConfig,
        store: CredentialStore,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        cti = config.cti
        self._guard = AuthFailureGuard(
            cti.max_login_failures,
            cti.login_failure_window_s,
            cti.login_ban_s,
            config.security.trusted_networks,
        )
        self._dummy_hash = ""
        self.logins = 0
        self.login_failures = 0

    @property
    def active_sessions(self) -> int:
        now = self._clock()
        return sum(1 for s in self._sessions.values() if s.expires_at > now)

    def login(self, extension: str, password: str, source: str) -> IssuedSession:
        """Check the credentials and open a session. Raises `LoginRefused`."""
        now = self._clock()
        if self._guard.is_banned(source, now):
            raise LoginRefused(429, "too many failed logins from this address; try later")
        agent = self._config.agent(extension)
        stored = self._store.credential_hash(extension) if agent and agent.enabled else None
        # Hash even for an unknown agent, so timing does not tell which extensions exist.
        ok = verify_password(password, stored or self._dummy()) and stored is not None
        if not ok or agent is None:
            self.login_failures += 1
            if self._guard.record_failure(source, now) is not None:
                log.warning("cti_login_banned", source=source)
            log.info("cti_login_failed", agent=extension, source=source)
            raise LoginRefused(401, "wrong extension or password")
        self._guard.record_success(source, now)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        session = _session_of(
            agent,
            CtiSessionRecord(
                token_hash=token_hash(token),
                extension=agent.extension,
                role=agent.role,
                csrf_hash=token_hash(csrf),
                created_at=now,
                expires_at=now + self._config.cti.session_lifetime_s,
            ),
        )
        self._store.add_session(_record_of(session))
        self._sessions[session.token_hash] = session
        self.logins += 1
        log.info("cti_login", agent=agent.extension, role=agent.role, source=source)
        return IssuedSession(session, token, csrf)

    def _dummy(self) -> str:
        # A valid hash (of a random password) at the configured cost.
        if not self._dummy_hash:
            self._dummy_hash = hash_password(secrets.token_hex(8), self._config.cti.password_cost)
        return self._dummy_hash

    def cached(self, token: str) -> Session | None:
        """The live session of `token` if this process knows it (no I/O)."""
        session = self._sessions.get(token_hash(token))
        return session if session is not None and self._valid(session) else None

    def load(self, token: str) -> Session | None:
        """The live session of `token`, from memory or the database (after a restart)."""
        session = self.cached(token)
        if session is not None:
            return session
        record = self._store.session(token_hash(token))
        if record is None:
            return None
        agent = self._config.agent(record.extension)
        if agent is None:
            return None
        session = _session_of(agent, record)
        if not self._valid(session):
            self._store.delete_session(record.token_hash)
            return None
        self._sessions[session.token_hash] = session
        return session

    def still_valid(self, session: Session) -> bool:
        """Not expired, not logged out, and the agent still enabled."""
        return session.token_hash in self._sessions and self._valid(session)

    def logout(self, session: Session) -> None:
        self._sessions.pop(session.token_hash, None)
        self._store.delete_session(session.token_hash)
        log.info("cti_logout", agent=session.extension)

    def expire(self) -> int:
        """Forget expired sessions in memory and in the database; returns how many rows went."""
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
        return self._store.delete_expired_sessions(now)

    def _valid(self, session: Session) -> bool:
        if session.expires_at <= self._clock():
            self._sessions.pop(session.token_hash, None)
            return False
        agent = self._config.agent(session.extension)
        return agent is not None and agent.enabled


def _session_of(agent: AgentConfig, record: CtiSessionRecord) -> Session:
    # Role and groups come from the configuration, which is what permissions are written in.
    return Session(
        token_hash=record.token_hash,
        csrf_hash=record.csrf_hash,
        extension=agent.extension,
        name=agent.name,
        role=agent.role,
        groups=tuple(agent.groups),
        created_at=record.created_at,
        expires_at=record.expires_at,
    )


def _record_of(session: Session) -> CtiSessionRecord:
    return CtiSessionRecord(
        token_hash=session.token_hash,
        extension=session.extension,
        role=session.role,
        csrf_hash=session.csrf_hash,
        created_at=session.created_at,
        expires_at=session.expires_at,
    )

