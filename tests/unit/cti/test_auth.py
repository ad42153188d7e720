"""Desktop credentials and sessions: scrypt hashes at rest, tokens stored hashed, expiry,
logout, the login ban — against a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.cti.auth import (
    CtiAuth,
    LoginRefused,
    hash_password,
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
