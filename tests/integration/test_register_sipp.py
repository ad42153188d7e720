"""Registrar against SIPp: digest auth for many users, refresh, unregister, wrong passwords,
bans, TCP, IPv6 and bindings that survive a restart. SIPp 3.6 answers MD5 challenges only, so
these PBXs offer MD5 (the pjsua2 test covers SHA-256)."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pbx_harness import (
    RunningPbx,
    agent_entries,
    base_config,
    free_port,
    start_pbx,
)
from tests.integration.sipp import run_sipp, users_csv

pytestmark = pytest.mark.integration

USERS = 60


def md5_config(agents: int = USERS, **security: Any) -> dict[str, Any]:
    config = base_config(agent_entries(agents), ipv6=True)
    config["security"] = {"auth_algorithms": ["MD5"], **security}
    return config


def creds(count: int = USERS, first: int = 1001) -> list[tuple[str, str]]:
    return [(str(first + i), f"pw{first + i}x") for i in range(count)]


@pytest.fixture
def md5_pbx(tmp_path: Path):  # type: ignore[no-untyped-def]
    running = start_pbx(tmp_path / "pbx", md5_config())
    try:
        yield running
    finally:
        running.stop()


def stored_bindings(pbx: RunningPbx) -> dict[str, int]:
    with sqlite3.connect(pbx.workdir / "data" / "pbx.db") as db:
        rows = db.execute("SELECT aor, COUNT(*) FROM registrations GROUP BY aor").fetchall()
    return {aor: n for aor, n in rows}


def test_many_users_register_refresh_and_unregister(md5_pbx: RunningPbx, tmp_path: Path) -> None:
    inf = users_csv(tmp_path / "users.csv", creds())
    port = free_port()
    result = run_sipp(tmp_path / "reg", "register_auth.xml", md5_pbx.sip_port, inf,
                      calls=USERS, rate=100, local_port=port)
    assert result.returncode == 0 and result.successful == USERS, str(result)
    regs = md5_pbx.registrations()
    assert sorted(r["aor"] for r in regs) == sorted(e for e, _ in creds())
    assert all(r["user_agent"] == "SIPp register benchmark" for r in regs)
    # Written behind to the database within a moment.
    md5_pbx.wait_until(lambda: len(stored_bindings(md5_pbx)) == USERS, 15, "bindings stored")
    stats = md5_pbx.stats()["registrar"]
    assert stats["registered"] == USERS and stats["challenges"] == USERS

    # A refresh is a new registration from the same contact: it replaces, not adds.
    again = run_sipp(tmp_path / "refresh", "register_auth.xml", md5_pbx.sip_port, inf,
                     calls=USERS, rate=100, local_port=port)
    assert again.successful == USERS, str(again)
    assert len(md5_pbx.registrations()) == USERS
    assert md5_pbx.stats()["registrar"]["refreshed"] == USERS

    gone = run_sipp(tmp_path / "unreg", "unregister.xml", md5_pbx.sip_port, inf,
                    calls=USERS, rate=100)
    assert gone.successful == USERS, str(gone)
    assert md5_pbx.registrations() == []
    md5_pbx.wait_until(lambda: stored_bindings(md5_pbx) == {}, 15, "bindings deleted")


def test_wrong_password_gets_403_and_repeated_failures_ban_the_source(tmp_path: Path) -> None:
    pbx = start_pbx(tmp_path / "pbx", md5_config(max_auth_failures=5, failure_window_s=60,
                                                 ban_s=600))
    try:
        wrong = users_csv(tmp_path / "wrong.csv", [("1001", "nope"), ("4711", "guess")])
        first = run_sipp(tmp_path / "w1", "register_wrong_password.xml", pbx.sip_port, wrong,
                         calls=2, rate=10)
        assert first.successful == 2, str(first)  # both got 403: unknown user == wrong pw
        more = run_sipp(tmp_path / "w2", "register_wrong_password.xml", pbx.sip_port, wrong,
                        calls=3, rate=10, timeout=30)
        # The fifth failure bans 127.0.0.1; from then on requests are dropped unanswered.
        assert more.successful == 3, str(more)
        banned = [e for e in pbx.logs() if e.get("event") == "source_banned"]
        assert banned and banned[0]["host"] == "127.0.0.1"
        good = users_csv(tmp_path / "good.csv", creds(1))
        blocked = run_sipp(tmp_path / "g", "register_auth.xml", pbx.sip_port, good,
                           calls=1, timeout=12)
        assert blocked.successful == 0
        assert pbx.registrations() == []
        # Other addresses are still served (IPv6 loopback is another source).
        other = run_sipp(tmp_path / "g6", "register_auth.xml", pbx.sip_port, good, calls=1,
                         host="::1")
        assert other.successful == 1, str(other)
        assert pbx.stats()["registrar"]["blocked"] >= 1
        # The ban covers every method: an OPTIONS or an INVITE from the banned address gets
        # nothing at all (not even 100 Trying), while another address is answered.
        for method in ("OPTIONS", "INVITE", "SUBSCRIBE"):
            assert _answer(pbx.sip_port, "127.0.0.1", method) is None, method
        assert _answer(pbx.sip_port, "::1", "OPTIONS", wait_s=10.0).startswith(b"SIP/2.0 200")
    finally:
        pbx.stop()


def _answer(port: int, host: str, method: str, wait_s: float = 3.0) -> bytes | None:
    """Send one out-of-dialog `method` from `host` over UDP; the first answer, or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        local = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        message = (
            f"{method} sip:+4930100@{shown}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {shown}:{local};branch=z9hG4bKban{method}{local}\r\n"
            f"From: <sip:1001@{shown}>;tag=b{local}\r\nTo: <sip:+4930100@{shown}>\r\n"
            f"Call-ID: ban-{method}-{local}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:1001@{shown}:{local}>\r\nEvent: presence\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        sock.sendto(message, (host, port))
        sock.settimeout(wait_s)
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


@pytest.mark.parametrize(("transport", "host"), [("t1", "127.0.0.1"), ("u1", "::1"),
                                                   ("t1", "::1")])
def test_register_over_tcp_and_ipv6(md5_pbx: RunningPbx, tmp_path: Path, transport: str,
                                    host: str) -> None:
    inf = users_csv(tmp_path / "users.csv", creds(10))
    result = run_sipp(tmp_path / "r", "register_auth.xml", md5_pbx.sip_port, inf, calls=10,
                      rate=50, transport=transport, host=host)
    assert result.successful == 10, str(result)
    regs = md5_pbx.registrations()
    assert len(regs) == 10
    assert {r["source_transport"] for r in regs} == {"tcp" if transport == "t1" else "udp"}
    assert {r["source_host"] for r in regs} == {host}


def test_bindings_survive_a_restart(tmp_path: Path) -> None:
    workdir = tmp_path / "pbx"
    pbx = start_pbx(workdir, md5_config())
    inf = users_csv(tmp_path / "users.csv", creds(5))
    try:
        result = run_sipp(tmp_path / "r", "register_auth.xml", pbx.sip_port, inf, calls=5)
        assert result.successful == 5, str(result)
        before = sorted((r["aor"], r["contact"]) for r in pbx.registrations())
    finally:
        assert pbx.stop() == 0
    # SIGTERM flushed the write-behind; a new process restores the same table.
    pbx2 = start_pbx(workdir, md5_config())
    try:
        after = sorted((r["aor"], r["contact"]) for r in pbx2.registrations())
        assert after == before and len(after) == 5
        # Both runs log to the same file; /health can answer a moment before "pbx_ready" is
        # written, so wait for the second run's line.
        readies = pbx2.wait_until(
            lambda: (r := [e for e in pbx2.logs() if e.get("event") == "pbx_ready"])
            and len(r) >= 2 and r, 15, "the second pbx_ready")
        assert readies[-1]["bindings_restored"] == 5
    finally:
        pbx2.stop()
