"""Desktop credentials and sessions: scrypt hashes at rest, tokens stored hashed, expiry,
logout, the lockouts per source and per account, the same cost for every attempt, desk
passwords of their own, sessions ending with a password change — against a real SQLite
file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbx.config import PbxConfig
from pbx.cti import auth as auth_module
from pbx.cti.auth import (
    CtiAuth,
    LoginRefused,
    hash_password,
    prune_credentials,
    sync_credentials,
    token_hash,
    verify_password,
)
from pbx.storage import Database
from tests.unit.cti.fakes import PASSWORDS, FakeClock, config

CONFIG = config()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    yield database
    database.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(db: Database, clock: FakeClock) -> CtiAuth:
    sync_credentials(CONFIG, db.cti_store())
    return CtiAuth(CONFIG, db.cti_store(), clock)


def test_hash_is_salted_self_describing_and_verifies() -> None:
    first, second = hash_password("secret", 10), hash_password("secret", 10)
    assert first != second and first.startswith("scrypt$10$8$1$")
    assert verify_password("secret", first) and verify_password("secret", second)
    assert not verify_password("Secret", first)
    for broken in ("", "scrypt$x", "md5$10$8$1$a$b", first[:-4], "scrypt$10$8$1$!!$??"):
        assert not verify_password("secret", broken)


def test_sync_stores_hashes_never_passwords_and_keeps_valid_ones(db: Database) -> None:
    store = db.cti_store()
    assert sync_credentials(CONFIG, store) == 4  # 1009 is disabled
    hashes = store.credential_hashes()
    assert set(hashes) == {"1001", "1002", "1003", "1004"}
    assert all(PASSWORDS[ext] not in value for ext, value in hashes.items())
    assert verify_password(PASSWORDS["1001"], hashes["1001"])
    assert sync_credentials(CONFIG, store) == 0  # nothing changed: nothing rehashed
    assert store.credential_hashes() == hashes
    changed = CONFIG.model_copy(update={"agents": (
        CONFIG.agents[0].model_copy(update={"password": "new-password"}), *CONFIG.agents[1:2])})
    assert sync_credentials(changed, store) == 1
    assert set(store.credential_hashes()) == {"1001", "1002"}
    assert verify_password("new-password", store.credential_hashes()["1001"])


def test_login_opens_a_session_stored_by_hash(auth: CtiAuth, db: Database,
                                             clock: FakeClock) -> None:
    issued = auth.login("1003", PASSWORDS["1003"], "192.0.2.1")
    session = issued.session
    assert (session.extension, session.role, session.name) == ("1003", "supervisor", "Clara")
    assert session.sees_all and session.expires_at == clock.now + 3600
    stored = db.cti_store().session(token_hash(issued.token))
    assert stored is not None and stored.extension == "1003"
    assert db.cti_store().session(issued.token) is None  # the token itself is not a key
    assert session.check_csrf(issued.csrf_token) and not session.check_csrf("x")
    assert not session.check_csrf(None)
    assert auth.cached(issued.token) == session and auth.logins == 1


@pytest.mark.parametrize(
    ("extension", "password"),
    [("1001", "wrong"), ("1099", "whatever"), ("1009", PASSWORDS["1009"]), ("", "")],
)
def test_bad_credentials_are_refused_alike(auth: CtiAuth, extension: str, password: str) -> None:
    with pytest.raises(LoginRefused) as caught:
        auth.login(extension, password, "192.0.2.1")
    assert caught.value.status == 401
    assert caught.value.message == "wrong extension or password"


def test_repeated_failures_ban_the_address(auth: CtiAuth) -> None:
    for _ in range(3):
        with pytest.raises(LoginRefused):
            auth.login("1001", "wrong", "192.0.2.7")
    with pytest.raises(LoginRefused) as caught:
        auth.login("1001", PASSWORDS["1001"], "192.0.2.7")
    assert caught.value.status == 429
    auth.login("1001", PASSWORDS["1001"], "192.0.2.8")  # another address is not affected


def test_session_expires(auth: CtiAuth, clock: FakeClock) -> None:
    issued = auth.login("1001", PASSWORDS["1001"], "192.0.2.1")
    clock.now += 3599
    assert auth.load(issued.token) is not None
    clock.now += 1
    assert auth.cached(issued.token) is None and auth.load(issued.token) is None
    assert not auth.still_valid(issued.session)


def test_sessions_survive_a_restart_until_logout(auth: CtiAuth, db: Database,
                                                clock: FakeClock) -> None:
    issued = auth.login("1001", PASSWORDS["1001"], "192.0.2.1")
    restarted = CtiAuth(CONFIG, db.cti_store(), clock)
    assert restarted.cached(issued.token) is None
    session = restarted.load(issued.token)
    assert session == issued.session and restarted.still_valid(session)
    restarted.logout(session)
    assert restarted.load(issued.token) is None
    assert auth.load(issued.token) is not None  # the first process still caches it …
    assert CtiAuth(CONFIG, db.cti_store(), clock).load(issued.token) is None  # … not a new one


def test_expire_purges_old_sessions(auth: CtiAuth, db: Database, clock: FakeClock) -> None:
    issued = auth.login("1001", PASSWORDS["1001"], "192.0.2.1")
    clock.now += 4000
    assert auth.expire() == 1
    assert db.cti_store().session(token_hash(issued.token)) is None
    assert auth.active_sessions == 0


def with_agent(config: PbxConfig, extension: str, **changes: Any) -> PbxConfig:
    agents = tuple(a.model_copy(update=changes) if a.extension == extension else a
                   for a in config.agents)
    return config.model_copy(update={"agents": agents})


def with_section(config: PbxConfig, section: str, **changes: Any) -> PbxConfig:
    updated = getattr(config, section).model_copy(update=changes)
    return config.model_copy(update={section: updated})


def refused(auth: CtiAuth, extension: str, password: str, source: str) -> int:
    with pytest.raises(LoginRefused) as caught:
        auth.login(extension, password, source)
    return caught.value.status


def test_failures_from_many_addresses_lock_the_account(auth: CtiAuth) -> None:
    # max_login_failures 3 per source; max_account_failures 4 per extension: four guesses
    # from four addresses lock 1001 for everyone, its right password included …
    for n in range(4):
        assert refused(auth, "1001", f"guess-{n}", f"198.51.100.{n}") == 401
    assert refused(auth, "1001", PASSWORDS["1001"], "192.0.2.50") == 429
    # … not other agents, and no address is banned by that alone.
    auth.login("1002", PASSWORDS["1002"], "198.51.100.1")


def test_unknown_extensions_are_locked_alike(auth: CtiAuth) -> None:
    for n in range(4):
        assert refused(auth, "1099", "x", f"198.51.100.{n}") == 401
    assert refused(auth, "1099", "x", "192.0.2.50") == 429  # no hint that 1099 is no agent


def test_the_lock_ends_and_a_success_clears_the_count(auth: CtiAuth, clock: FakeClock) -> None:
    for n in range(4):
        refused(auth, "1001", "wrong", f"198.51.100.{n}")
    clock.now += 301  # account_lock_s
    auth.login("1001", PASSWORDS["1001"], "192.0.2.50")
    for n in range(3):
        refused(auth, "1001", "wrong", f"203.0.113.{n}")
    auth.login("1001", PASSWORDS["1001"], "192.0.2.51")  # three, not four: still open


def test_http_trusted_networks_are_neither_counted_nor_refused(db: Database,
                                                               clock: FakeClock) -> None:
    config = with_section(CONFIG, "http", trusted_networks=("192.0.2.0/24",))
    auth = CtiAuth(config, db.cti_store(), clock)
    for n in range(6):
        refused(auth, "1001", "wrong", f"198.51.100.{n}")  # the account is locked now …
    assert refused(auth, "1001", "wrong", "192.0.2.9") == 401  # … yet the office may try
    auth.login("1001", PASSWORDS["1001"], "192.0.2.9")
    for _ in range(5):
        refused(auth, "1002", "wrong", "192.0.2.9")
    auth.login("1002", PASSWORDS["1002"], "192.0.2.9")  # and is never banned


def test_sip_trust_does_not_extend_to_the_desk(db: Database, clock: FakeClock) -> None:
    config = with_section(CONFIG, "security", trusted_networks=("127.0.0.0/8",))
    auth = CtiAuth(config, db.cti_store(), clock)
    for _ in range(3):
        refused(auth, "1001", "wrong", "127.0.0.1")
    assert refused(auth, "1001", PASSWORDS["1001"], "127.0.0.1") == 429


@pytest.fixture
def scrypts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts scrypt runs, by cost."""
    calls: list[int] = []
    real = auth_module._scrypt

    def counting(password: str, salt: bytes, cost: int, r: int, p: int) -> bytes:
        calls.append(cost)
        return real(password, salt, cost, r, p)

    monkeypatch.setattr(auth_module, "_scrypt", counting)
    return calls


def test_every_refused_attempt_costs_one_scrypt(db: Database, clock: FakeClock,
                                               scrypts: list[int]) -> None:
    desk_hash = hash_password("desk-password-1002", 10)
    auth = CtiAuth(with_agent(CONFIG, "1002", desk_password_hash=desk_hash), db.cti_store(),
                   clock)
    auth.login("1003", PASSWORDS["1003"], "192.0.2.1")  # builds the dummy hash once
    attempts = [
        ("1001", "wrong", "192.0.2.1"),  # known, SIP password
        ("1002", "wrong", "192.0.2.2"),  # known, desk password hash
        ("1099", "wrong", "192.0.2.3"),  # unknown
        ("1009", PASSWORDS["1009"], "192.0.2.4"),  # disabled
        ("", "", "192.0.2.5"),
    ]
    for extension, password, source in attempts:
        scrypts.clear()
        refused(auth, extension, password, source)
        assert scrypts == [10], extension
    for _ in range(3):
        refused(auth, "1001", "wrong", "198.51.100.7")  # the source is banned now
    for extension, password in (("1001", PASSWORDS["1001"]), ("1099", "x")):
        scrypts.clear()
        assert refused(auth, extension, password, "198.51.100.7") == 429
        assert scrypts == [10], extension  # banned attempts cost the same, right or wrong
    assert auth.logins_refused == 2


def test_a_desk_password_hash_replaces_the_sip_password(db: Database, clock: FakeClock) -> None:
    desk_hash = hash_password("desk-password-1002", 10)
    config = with_agent(CONFIG, "1002", desk_password_hash=desk_hash)
    auth = CtiAuth(config, db.cti_store(), clock)
    assert refused(auth, "1002", PASSWORDS["1002"], "192.0.2.1") == 401
    issued = auth.login("1002", "desk-password-1002", "192.0.2.1")
    assert db.cti_store().credential_hash("1002") == desk_hash  # the configured hash itself
    assert auth.load(issued.token) is not None


def test_sessions_end_when_the_sip_password_changes(db: Database, clock: FakeClock) -> None:
    auth = CtiAuth(CONFIG, db.cti_store(), clock)
    issued = auth.login("1001", PASSWORDS["1001"], "192.0.2.1")
    other = auth.login("1002", PASSWORDS["1002"], "192.0.2.1")
    changed = with_agent(CONFIG, "1001", password="a-new-password-1001")
    restarted = CtiAuth(changed, db.cti_store(), clock)
    assert restarted.load(issued.token) is None  # the old password's session is gone …
    assert db.cti_store().session(token_hash(issued.token)) is None
    assert restarted.load(other.token) is not None  # … other agents' stay
    assert refused(restarted, "1001", PASSWORDS["1001"], "192.0.2.1") == 401
    fresh = restarted.login("1001", "a-new-password-1001", "192.0.2.1")
    assert restarted.load(fresh.token) is not None
    assert verify_password("a-new-password-1001", db.cti_store().credential_hash("1001") or "")


def test_sessions_end_when_the_desk_password_hash_changes(db: Database,
                                                          clock: FakeClock) -> None:
    first = with_agent(CONFIG, "1002", desk_password_hash=hash_password("desk-one-1002", 10))
    auth = CtiAuth(first, db.cti_store(), clock)
    issued = auth.login("1002", "desk-one-1002", "192.0.2.1")
    second = with_agent(CONFIG, "1002", desk_password_hash=hash_password("desk-two-1002", 10))
    assert prune_credentials(second, db.cti_store()) == 1  # what every start does, cheaply
    assert db.cti_store().session(token_hash(issued.token)) is None
    assert CtiAuth(second, db.cti_store(), clock).load(issued.token) is None


def test_a_login_ends_the_sessions_of_the_old_password(db: Database, clock: FakeClock) -> None:
    # One process opened a session; the admin changed the password; the next login (in a
    # restarted process) replaces the stored hash and takes the old session with it.
    auth = CtiAuth(CONFIG, db.cti_store(), clock)
    old = auth.login("1001", PASSWORDS["1001"], "192.0.2.1")
    changed = with_agent(CONFIG, "1001", password="a-new-password-1001")
    CtiAuth(changed, db.cti_store(), clock).login("1001", "a-new-password-1001", "192.0.2.1")
    assert db.cti_store().session(token_hash(old.token)) is None


def test_a_reload_ends_the_sessions_of_removed_agents_and_changed_passwords(
    auth: CtiAuth, db: Database
) -> None:
    kept = auth.login("1001", PASSWORDS["1001"], "192.0.2.1")
    moved = auth.login("1002", PASSWORDS["1002"], "192.0.2.1")
    gone = auth.login("1003", PASSWORDS["1003"], "192.0.2.1")
    agents = {a.extension: a for a in CONFIG.agents}
    reloaded = CONFIG.model_copy(update={"agents": (
        agents["1001"].model_copy(update={"name": "Renamed"}),
        agents["1002"].model_copy(update={"password": "a-new-password-2"}),
        agents["1004"])})
    auth.reconfigure(reloaded)
    assert auth.load(kept.token) is not None  # a new name changes nothing
    assert auth.load(gone.token) is None  # removed
    assert auth.load(moved.token) is None  # new password: the stored session is deleted too
    assert db.cti_store().session(token_hash(moved.token)) is None
    assert auth.login("1002", "a-new-password-2", "192.0.2.1").session.extension == "1002"
    with pytest.raises(LoginRefused):
        auth.login("1002", PASSWORDS["1002"], "192.0.2.1")
