"""The `pbx` views of a running PBX (`status`, `agents`, `queues`, `calls`, `registrations`)
against a real `pbx run`: tables and `--json` with an API token of the right scope; without a
token, with a wrong one, or with one that lacks the scope, a one-line refusal and exit 1; and
`pbx run` on a SIP port in use says so in one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.pbx_harness import REALM, agent_entries, base_config, start_pbx
from tests.integration.sipp import run_sipp, users_csv

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def pbx_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pbx.cli", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})}, check=False)


def test_views_of_a_running_pbx_need_a_token_of_the_right_scope(tmp_path: Path) -> None:
    config = base_config(agent_entries(2))
    config["security"] = {"auth_algorithms": ["MD5"]}  # SIPp answers MD5 only
    config["queues"] = [{"name": "support", "members": [{"agent": "1001"}, {"agent": "1002"}]}]
    stats_only = tmp_path / "stats.token"
    stats_only.write_text("s" * 40 + "\n")
    stats_only.chmod(0o600)
    config["http"] = {"api_tokens": [{"name": "monitor", "token_file": str(stats_only),
                                      "scopes": ["stats"]}]}
    pbx = start_pbx(tmp_path / "pbx", config)
    try:
        users = users_csv(tmp_path / "users.csv", [("1001", "pw1001x")])
        assert run_sipp(tmp_path / "reg", "register_auth.xml", pbx.sip_port, users,
                        keys={"domain": REALM, "expires": "300"}).successful == 1
        token = tmp_path / "pbx" / "harness-api.token"  # the harness's admin token
        url = ["--url", pbx.http, "--token-file", str(token)]

        # The configuration's warnings (the harness's 7-character passwords) are in the PBX's
        # own log, as JSON like every other line.
        assert any(e.get("event") == "config_warning" and "weak SIP password" in e["warning"]
                   for e in pbx.logs())

        status = pbx_cli("status", *url)
        assert status.returncode == 0, status.stderr
        assert "calls           0 active" in status.stdout
        assert "registrations   1 bindings" in status.stdout

        agents = pbx_cli("agents", *url)
        assert agents.returncode == 0, agents.stderr
        header, _rule, *rows = agents.stdout.splitlines()
        assert header.split()[:3] == ["AGENT", "STATE", "PHONE"]
        assert {row.split()[0] for row in rows} == {"1001", "1002"}

        queues = pbx_cli("queues", *url, "--json")
        assert queues.returncode == 0, queues.stderr
        assert [q["queue"] for q in json.loads(queues.stdout)["queues"]] == ["support"]

        regs = pbx_cli("registrations", *url)
        assert regs.returncode == 0 and "1001" in regs.stdout and "127.0.0.1" in regs.stdout

        calls = pbx_cli("calls", *url, env={"PBX_API_TOKEN": ""})
        assert calls.returncode == 0 and calls.stdout.startswith("CALL")

        # Who may not: no token, a wrong one, one without the scope.
        bare = pbx_cli("status", "--url", pbx.http, env={"PBX_API_TOKEN": ""})
        assert bare.returncode == 1 and "needs an API token with scope 'stats'" in bare.stderr
        wrong = pbx_cli("agents", "--url", pbx.http, env={"PBX_API_TOKEN": "x" * 40})
        assert wrong.returncode == 1 and wrong.stderr.startswith("pbx agents: 401")
        scoped = pbx_cli("calls", "--url", pbx.http, "--token-file", str(stats_only))
        assert scoped.returncode == 1 and scoped.stderr.startswith("pbx calls: 403")
        assert "may not read 'calls'" in scoped.stderr
        assert pbx_cli("status", "--url", pbx.http, "--token-file",
                       str(stats_only)).returncode == 0
        gone = pbx_cli("status", "--url", "http://127.0.0.1:9", "--token-file", str(token))
        assert gone.returncode == 1 and "no PBX answers at" in gone.stderr
    finally:
        pbx.stop()


def test_run_on_a_sip_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        config = tmp_path / "pbx.yaml"
        config.write_text("sip: {domain: hotline.example, listen: "
                          "[{transport: udp, host: 127.0.0.1}]}\n"
                          "agents: [{extension: '1001', name: A, password: pw1001xyz}]\n")
        port = taken.getsockname()[1]
        result = pbx_cli("run", "--config", str(config), "--sip-port", str(port),
                         "--data-dir", str(tmp_path / "data"), "--log-format", "json")
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"pbx run: cannot listen on SIP udp 127.0.0.1:{port}: Address already in use")
    finally:
        taken.close()


def test_run_on_an_http_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    sip_port = sip.getsockname()[1]
    sip.close()
    try:
        config = tmp_path / "pbx.yaml"
        config.write_text("sip: {domain: hotline.example, listen: "
                          "[{transport: udp, host: 127.0.0.1}]}\n"
                          "agents: [{extension: '1001', name: A, password: pw1001xyz}]\n")
        port = taken.getsockname()[1]
        result = pbx_cli("run", "--config", str(config), "--sip-port", str(sip_port),
                         "--http-port", str(port), "--data-dir", str(tmp_path / "data"),
                         "--log-format", "json", "--log-level", "warning")
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            f"pbx run: cannot listen on HTTP 127.0.0.1:{port}: Address already in use")
    finally:
        taken.close()


def test_version() -> None:
    result = pbx_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("pbx ")
