"""The HTTP perimeter of a real `pbx run` over real sockets: who may read the operations
endpoints (no credentials 401, an agent 403, a supervisor or a token with the scope 200),
whose X-Forwarded-For counts (nobody's by default, not even loopback's; a configured proxy's),
lockout per address and per account, the body cap before reading, the security headers,
desk passwords of their own, sessions ending with a password change after a restart, the
database file's mode, and a token file that cannot be read stopping the start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbx.cti.auth import hash_password
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OPERATIONS = ["/api/stats", "/api/cdrs", "/api/registrations", "/api/campaigns", "/api/calls",
              "/metrics"]
METRICS_TOKEN = "prometheus-scrape-token-0123456789"
DESK_PASSWORD = "a-desk-password-of-its-own"


def perimeter_config(**http: Any) -> dict[str, Any]:
    agents = agent_entries(4)
    agents[2]["role"] = "supervisor"  # 1003
    agents[3]["desk_password_hash"] = hash_password(DESK_PASSWORD, 10)  # 1004
    config = base_config(agents)
    # SIP trusts loopback here; the desk must not inherit that.
    config["security"] = {"trusted_networks": ["127.0.0.0/8"]}
    config["cti"] = {"password_cost": 10, "max_login_failures": 3, "max_account_failures": 4}
    config["http"] = {"api_tokens": [{"name": "prometheus", "token_env": "PBX_TEST_METRICS_TOKEN",
                                      "scopes": ["metrics"]}], **http}
    return config


@pytest.fixture(autouse=True)
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBX_TEST_METRICS_TOKEN", METRICS_TOKEN)  # the PBX inherits it


def call(pbx: RunningPbx, method: str, path: str, body: dict[str, Any] | None = None,
         **headers: str) -> tuple[int, dict[str, str], Any]:
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    status, answer_headers, raw = pbx.request(method, path, headers, data)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, answer_headers, parsed


def login(pbx: RunningPbx, extension: str, password: str, **headers: str
          ) -> tuple[int, dict[str, str], Any]:
    return call(pbx, "POST", "/api/cti/login", {"extension": extension, "password": password},
                **headers)


def bearer(pbx: RunningPbx, extension: str, password: str | None = None) -> dict[str, str]:
    status, _, body = login(pbx, extension, password or f"pw{extension}x")
    assert status == 200, body
    return {"Authorization": f"Bearer {body['token']}"}


def test_operations_endpoints_need_a_supervisor_or_a_token(tmp_path: Path) -> None:
    pbx = start_pbx(tmp_path / "pbx", perimeter_config())
    try:
        agent, supervisor = bearer(pbx, "1001"), bearer(pbx, "1003")
        metrics_only = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        for path in OPERATIONS:
            status, headers, body = call(pbx, "GET", path)
            assert status == 401 and headers["www-authenticate"].startswith("Bearer"), path
            assert "Authorization: Bearer" in body["error"]
            status, _, body = call(pbx, "GET", path, **agent)
            assert status == 403 and "only supervisors and admins" in body["error"], path
            assert call(pbx, "GET", path, **supervisor)[0] == 200, path
            assert call(pbx, "GET", path, **pbx.api_headers)[0] == 200, path  # the harness
            status, _, body = call(pbx, "GET", path, **metrics_only)
            if path == "/metrics":
                assert status == 200 and "pbx_registrations" in body
            else:
                assert status == 403 and "'prometheus' may not read" in body["error"], path
        # Tokens are for the operations endpoints only, not the desk's API.
        status, _, body = call(pbx, "GET", "/api/cti/me", **pbx.api_headers)
        assert status == 403 and "API tokens" in body["error"]
        # /health is open and says nothing about the installation; no server banner.
        status, headers, body = call(pbx, "GET", "/health")
        assert status == 200 and body == {"status": "ok"}
        assert "uvicorn" not in headers.get("server", "")
    finally:
        pbx.stop()


def test_security_headers_and_the_body_cap(tmp_path: Path) -> None:
    pbx = start_pbx(tmp_path / "pbx", perimeter_config(max_body_bytes=4096))
    try:
        for path in ("/desk", "/wallboard", "/static/desk.js", "/api/cti/me", "/health"):
            _, headers, _ = call(pbx, "GET", path)
            assert "default-src 'none'" in headers["content-security-policy"], path
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert headers["x-frame-options"] == "DENY", path
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "no-referrer", path
        assert call(pbx, "GET", "/api/cti/me")[1]["cache-control"] == "no-store"
        big = {"extension": "1001", "password": "x" * 5000}
        status, _, body = login(pbx, **big)
        assert status == 413 and body["error"] == "the body is larger than 4096 bytes"
        assert pbx.logs() and not [e for e in pbx.logs() if e.get("event") == "cti_login_failed"]
        assert any(e.get("event") == "http_body_too_large" for e in pbx.logs())
        assert login(pbx, "1001", "pw1001x")[0] == 200  # the connection policy is unharmed
    finally:
        pbx.stop()


def test_forwarded_for_is_ignored_without_trusted_proxies(tmp_path: Path) -> None:
    # Loopback is trusted by SIP here and is where uvicorn would believe X-Forwarded-For by
    # default: neither helps. Three failures, each "from" another address, ban 127.0.0.1.
    pbx = start_pbx(tmp_path / "pbx", perimeter_config())
    try:
        # Secure cookies only over HTTPS; the header from anyone does not make it so.
        status, headers, _ = login(pbx, "1003", "pw1003x", **{"X-Forwarded-Proto": "https"})
        assert status == 200 and "Secure" not in headers["set-cookie"]
        for n in range(3):
            status, _, _ = login(pbx, "1002", "wrong", **{"X-Forwarded-For": f"192.0.2.{n}"})
            assert status == 401
        status, _, body = login(pbx, "1001", "pw1001x", **{"X-Forwarded-For": "192.0.2.99"})
        assert status == 429 and "too many failed logins" in body["error"]
        banned = [e for e in pbx.logs() if e.get("event") == "cti_login_banned"]
        assert [e["source"] for e in banned] == ["127.0.0.1"]
    finally:
        pbx.stop()


def test_a_trusted_proxy_names_the_client_and_accounts_lock_across_addresses(
    tmp_path: Path,
) -> None:
    pbx = start_pbx(tmp_path / "pbx", perimeter_config(trusted_proxies=["127.0.0.1/32"]))
    try:
        def via_proxy(extension: str, password: str, client: str,
                      **extra: str) -> tuple[int, dict[str, str], Any]:
            return login(pbx, extension, password, **{"X-Forwarded-For": client}, **extra)

        # Per address: three failures from one forwarded client ban it, not the proxy.
        for _ in range(3):
            assert via_proxy("1003", "wrong", "198.51.100.7")[0] == 401
        assert via_proxy("1001", "pw1001x", "198.51.100.7")[0] == 429
        status, headers, body = via_proxy("1001", "pw1001x", "198.51.100.8",
                                          **{"X-Forwarded-Proto": "https"})
        assert status == 200, body
        cookies = headers["set-cookie"].split("\n")
        assert len(cookies) == 2 and all("Secure" in c for c in cookies)
        # Per account: four failures for 1002 from four addresses lock 1002 everywhere …
        for n in range(4):
            assert via_proxy("1002", "wrong", f"203.0.113.{n}")[0] == 401
        assert via_proxy("1002", "pw1002x", "203.0.113.50")[0] == 429
        assert via_proxy("1001", "pw1001x", "203.0.113.51")[0] == 200  # … not anyone else
        # … and an extension that does not exist is locked alike (no hint either way).
        for n in range(4):
            assert via_proxy("1099", "wrong", f"203.0.113.{10 + n}")[0] == 401
        assert via_proxy("1099", "wrong", "203.0.113.60")[0] == 429
        locked = [e for e in pbx.logs() if e.get("event") == "cti_account_locked"]
        assert [e["agent"] for e in locked] == ["1002", "1099"]
        status, _, body = via_proxy("1001", "pw1001x", "not-an-address")
        assert status == 400 and "X-Forwarded-For" in body["error"]
    finally:
        pbx.stop()


def test_desk_passwords_sessions_and_the_database_file(tmp_path: Path) -> None:
    workdir = tmp_path / "pbx"
    config = perimeter_config()
    pbx = start_pbx(workdir, config)
    try:
        # 1004 has a desk password of its own: its SIP password does not open the desk.
        assert login(pbx, "1004", "pw1004x")[0] == 401
        desk = bearer(pbx, "1004", DESK_PASSWORD)
        anna = bearer(pbx, "1001")
        assert call(pbx, "GET", "/api/cti/me", **desk)[0] == 200
        mode = (workdir / "data" / "pbx.db").stat().st_mode & 0o777
        assert mode == 0o600, oct(mode)
    finally:
        assert pbx.stop() == 0
    # The admin changes Anna's password and 1004's desk password, and restarts (having also
    # opened the database file to everyone, which the start reports).
    (workdir / "data" / "pbx.db").chmod(0o644)
    config["agents"][0]["password"] = "a-new-password-1001"
    config["agents"][3]["desk_password_hash"] = hash_password("another-desk-password", 10)
    pbx = start_pbx(workdir, config)
    try:
        for headers in (anna, desk):
            status, _, body = call(pbx, "GET", "/api/cti/me", **headers)
            assert status == 401 and "expired" in body["error"]
        assert login(pbx, "1001", "pw1001x")[0] == 401
        assert login(pbx, "1004", DESK_PASSWORD)[0] == 401
        assert call(pbx, "GET", "/api/cti/me", **bearer(pbx, "1001", "a-new-password-1001"))[0] \
            == 200
        assert login(pbx, "1004", "another-desk-password")[0] == 200
        warned = [e for e in pbx.logs() if e.get("event") == "database_file_readable_by_others"]
        assert warned and warned[-1]["mode"] == "0o644"
    finally:
        assert pbx.stop() == 0


def test_an_unreadable_token_file_stops_the_start(tmp_path: Path) -> None:
    config = perimeter_config()
    config["http"]["api_tokens"] = [{"name": "prometheus",
                                     "token_file": str(tmp_path / "missing.token")}]
    path = tmp_path / "pbx.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "pbx.cli", "run", "--config", str(path), "--data-dir",
         str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    assert done.returncode == 1
    assert "http.api_tokens[0].token_file: cannot read" in done.stderr
    assert "missing.token" in done.stderr


def test_hash_password_verb(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pbx.cli", "hash-password", "--cost", "10"],
                          input="geheimes-Passwort\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("scrypt$10$8$1$")
    from pbx.cti.auth import verify_password

    assert verify_password("geheimes-Passwort", done.stdout.strip())
    short = subprocess.run([sys.executable, "-m", "pbx.cli", "hash-password"], input="kurz\n",
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
