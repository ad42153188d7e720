"""Agent desktop logins and sessions (L3).

Credentials: an agent logs in with its extension and its desktop password — the
``desk_password_hash`` of its configuration entry when the admin set one (a scrypt hash printed
by ``pbx hash-password``; the desk then needs a secret of its own, not the one the softphone
holds), else its **SIP password**. The database never holds a password: ``cti_credentials``
keeps one scrypt hash per agent (``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``, salt and cost
inside, so a changed ``cti.password_cost`` applies to new hashes while old ones still verify)
— the configured hash itself, or a hash of the SIP password made at the agent's first login.
That row is what sessions hang on: when the configured password no longer matches it (the
admin changed the password and restarted), the row is replaced and **every session of that
agent is deleted**. A process checks this once per agent (`CtiAuth.confirm`) before it honours
any session of the agent, and again after each login.

No timing oracle: every login attempt costs exactly one scrypt at the configured cost, whether
the extension exists or not, whether the password is right or not, whether the source or the
account is locked out or not. A desk password hash is verified directly; for an agent without
one (and for an unknown extension) a dummy hash is verified and the SIP password compared in
constant time. Work that depends on the agent (re-hashing a changed password) happens only
after a *successful* login, where it tells the caller nothing it does not know.

Lockout, both sliding windows (`pbx.registrar.security.AuthFailureGuard`): per source address
(``cti.max_login_failures`` within ``cti.login_failure_window_s`` block the address for
``cti.login_ban_s``) and per account (``cti.max_account_failures`` within
``cti.account_failure_window_s`` for one extension, from any number of addresses, lock it for
``cti.account_lock_s``; unknown extensions are counted alike, so a lock says nothing about
existence). A locked-out attempt is answered 429 whatever the password. Sources inside
``http.trusted_networks`` (the HTTP side's own list, empty by default) are neither counted nor
refused — which is also how agents in the office still log in while someone outside holds
their account locked. The source is the client address the HTTP perimeter established
(`pbx.cti.perimeter`: ``X-Forwarded-For`` only from ``http.trusted_proxies``).

Sessions: a login creates a random 256-bit token and a separate CSRF token; only their SHA-256
is stored (``cti_sessions``), with the agent and an absolute expiry (``cti.session_lifetime_s``).
Sessions survive a restart. A request presents the token either as
``Authorization: Bearer TOKEN`` (API clients; not sent by browsers on their own, so not
forgeable cross-site) or in the ``pbx_session`` cookie (``HttpOnly; SameSite=Strict``), in which
case every state-changing request must also carry the CSRF token in the ``cti.csrf_header``
header (double submit, checked against the session's stored hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import threading
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

    def set_credential(self, extension: str, value: str) -> bool: ...

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


def desk_secret_hash(agent: AgentConfig, stored: str | None, cost: int) -> tuple[str, bool]:
    """The hash ``cti_credentials`` should hold for `agent` given what it holds now (`stored`),
    and whether `stored` already is it. One scrypt when the agent logs in with its SIP
    password (to check `stored`, or to hash it anew), none for a configured desk hash."""
    if agent.desk_password_hash is not None:
        return agent.desk_password_hash, stored == agent.desk_password_hash
    if stored is not None and verify_password(agent.password, stored):
        return stored, True
    return hash_password(agent.password, cost), False


def sync_credentials(config: PbxConfig, store: CredentialStore) -> int:
    """Make ``cti_credentials`` hold the current hash of each enabled agent (see the module
    docstring); sessions of agents whose password changed are deleted with the old hash.
    Returns how many hashes were (re)computed or replaced. Slow by design (one scrypt per agent
    that logs in with its SIP password): call it from a worker thread."""
    stored = store.credential_hashes()
    wanted: dict[str, str] = {}
    changed = 0
    for agent in config.agents:
        if not agent.enabled:
            continue
        value, fresh = desk_secret_hash(agent, stored.get(agent.extension),
                                        config.cti.password_cost)
        wanted[agent.extension] = value
        changed += not fresh
    store.replace_credentials(wanted)
    return changed


def prune_credentials(config: PbxConfig, store: CredentialStore) -> int:
    """What every start does, cheaply: drop the stored hashes (and so the sessions) of agents
    no longer enabled, and put each configured ``desk_password_hash`` in place (a changed one
    ends that agent's sessions). SIP passwords are checked per agent on first use
    (`CtiAuth.confirm`). Returns how many agents' credentials were removed or replaced."""
    agents = {agent.extension: agent for agent in config.agents if agent.enabled}
    stored = store.credential_hashes()
    keep = {ext: value for ext, value in stored.items() if ext in agents}
    for ext, agent in agents.items():
        if agent.desk_password_hash is not None:
            keep[ext] = agent.desk_password_hash
    changed = sum(1 for ext in stored if keep.get(ext) != stored[ext])
    if changed or len(keep) != len(stored):
        store.replace_credentials(keep)
    return changed


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
    """Logins, sessions and their lookup. `login`, `load` and `confirm` touch the database and
    hash (call them from a worker thread); `cached` and `still_valid` are in memory."""

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
        self._trusted = tuple(ipaddress.ip_network(n) for n in config.http.trusted_networks)
        self._sources = AuthFailureGuard(
            cti.max_login_failures,
            cti.login_failure_window_s,
            cti.login_ban_s,
            config.http.trusted_networks,
        )
        self._accounts = AuthFailureGuard(
            cti.max_account_failures, cti.account_failure_window_s, cti.account_lock_s
        )
        self._confirmed: dict[str, str] = {}  # extension -> the stored hash known to be current
        self._confirm_lock = threading.Lock()
        self._dummy_hash = ""
        self.logins = 0
        self.login_failures = 0
        self.logins_refused = 0  # attempts answered 429 (source banned or account locked)

    def reconfigure(self, config: PbxConfig) -> None:
        """A config reload: agents removed or disabled lose their sessions now (the desk's
        WebSocket closes at its next check); so do agents whose password or desk hash changed
        (their stored sessions are checked against the new secret at the next request, and
        deleted: see `confirm`). The login limits stay (a restart changes them)."""
        old, self._config = self._config, config

        def secret(cfg: PbxConfig, extension: str) -> tuple[str, str | None] | None:
            agent = cfg.agent(extension)
            if agent is None or not agent.enabled:
                return None
            return agent.password, agent.desk_password_hash

        changed = {s.extension for s in self._sessions.values()} | set(self._confirmed)
        changed = {e for e in changed if secret(old, e) != secret(config, e)}
        for key, session in list(self._sessions.items()):
            if session.extension in changed:
                del self._sessions[key]
        with self._confirm_lock:
            for extension in changed:
                self._confirmed.pop(extension, None)

    @property
    def active_sessions(self) -> int:
        now = self._clock()
        return sum(1 for s in self._sessions.values() if s.expires_at > now)

    def login(self, extension: str, password: str, source: str) -> IssuedSession:
        """Check the credentials and open a session. Raises `LoginRefused` (401 wrong
        credentials, 429 locked out). Costs one scrypt in every case (module docstring)."""
        now = self._clock()
        self._dummy()  # made on the first attempt, whoever it is for (not on the first miss)
        trusted = self._is_trusted(source)
        account = _account_key(extension)
        # Both guards are asked (no short cut), and the password is checked even when one says
        # no: a locked-out attempt must cost what any other does.
        banned = self._sources.is_banned(source, now)
        locked = self._accounts.is_banned(account, now)
        agent = self._config.agent(extension)
        if agent is not None and not agent.enabled:
            agent = None
        ok = self._check_password(agent, password)
        if (banned or locked) and not trusted:
            self.logins_refused += 1
            log.info("cti_login_refused", agent=extension, source=source,
                     source_banned=banned, account_locked=locked)
            raise LoginRefused(429, "too many failed logins from this address or for this "
                                    "extension; try again later")
        if not ok or agent is None:
            self.login_failures += 1
            if not trusted:
                if self._sources.record_failure(source, now) is not None:
                    log.warning("cti_login_banned", source=source)
                if self._accounts.record_failure(account, now) is not None:
                    log.warning("cti_account_locked", agent=extension, source=source)
            log.info("cti_login_failed", agent=extension, source=source)
            raise LoginRefused(401, "wrong extension or password")
        self._sources.record_success(source, now)
        self._accounts.record_success(account, now)
        self.confirm(agent.extension)  # after success only: its cost tells nothing
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

    def _check_password(self, agent: AgentConfig | None, password: str) -> bool:
        if agent is not None and agent.desk_password_hash is not None:
            return verify_password(password, agent.desk_password_hash)
        # The same scrypt for an agent on its SIP password and for an unknown extension; the
        # decision itself is a constant-time comparison with the configured password.
        verify_password(password, self._dummy())
        if agent is None:
            return False
        return hmac.compare_digest(password.encode(), agent.password.encode())

    def _dummy(self) -> str:
        # A valid hash (of a random password) at the configured cost.
        if not self._dummy_hash:
            self._dummy_hash = hash_password(secrets.token_hex(8), self._config.cti.password_cost)
        return self._dummy_hash

    def _is_trusted(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def confirm(self, extension: str) -> bool:
        """Make sure the stored hash of `extension` matches its configured password, once per
        process. True when it did; False when it had to be replaced — the agent's password
        changed, and its sessions (in the database and here) are gone."""
        agent = self._config.agent(extension)
        if agent is None or not agent.enabled:
            return False
        with self._confirm_lock:
            if extension in self._confirmed:
                return True
            stored = self._store.credential_hash(extension)
            value, fresh = desk_secret_hash(agent, stored, self._config.cti.password_cost)
            if not fresh:
                self._store.set_credential(extension, value)  # deletes its sessions
                for key in [k for k, s in self._sessions.items() if s.extension == extension]:
                    del self._sessions[key]
                if stored is not None:
                    log.info("cti_password_changed", agent=extension)
            self._confirmed[extension] = value
            return fresh or stored is None

    def cached(self, token: str) -> Session | None:
        """The live session of `token` if this process knows it (no I/O)."""
        session = self._sessions.get(token_hash(token))
        return session if session is not None and self._valid(session) else None

    def load(self, token: str) -> Session | None:
        """The live session of `token`, from memory or the database (after a restart). A
        session of an agent whose password changed since it was opened is not one."""
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
        if not self.confirm(agent.extension):
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


def _account_key(extension: str) -> str:
    # Never parsed as an address by the guard, so no extension can pose as a trusted host.
    return f"account:{extension}"


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

