"""Start a real `pbx run` subprocess for integration tests and talk to its HTTP surface.

Ports are picked at run time (a port free for both UDP and TCP for SIP, one for HTTP); the
configuration is written into the test's temporary directory; logs (JSON lines) go to a file the
test can read. `stop()` sends SIGTERM and waits, so a test also checks a clean shutdown.

The operations endpoints (``/api/stats``, ``/api/cdrs``, ``/api/registrations``,
``/api/campaigns``, ``/metrics``) need credentials: `start_pbx` adds an API token with every
scope to ``http.api_tokens`` (the token in a file of the test's directory, read by the PBX like
Prometheus' ``credentials_file``), and `RunningPbx.get` sends it. `RunningPbx.request` sends
exactly the headers it is given (none: unauthenticated), for tests of who may read what.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REALM = "hotline.example"
START_TIMEOUT = 60.0  # generous: the machine has two busy cores
API_SCOPES = ["metrics", "stats", "cdrs", "registrations", "campaigns", "calls",
              "control", "customers", "reports", "recordings"]


def free_port(udp_and_tcp: bool = True, host: str = "127.0.0.1") -> int:
    """A port that is free for TCP (and UDP) on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            if not udp_and_tcp:
                return port
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port found")


def agent_entries(count: int, first: int = 1001) -> list[dict[str, Any]]:
    return [
        {"extension": str(first + i), "name": f"Agent {first + i}", "password": f"pw{first + i}x"}
        for i in range(count)
    ]


def base_config(agents: list[dict[str, Any]], ipv6: bool = False) -> dict[str, Any]:
    listen = [{"transport": "udp", "host": "127.0.0.1"}, {"transport": "tcp", "host": "127.0.0.1"}]
    if ipv6:
        listen += [{"transport": "udp", "host": "::1"}, {"transport": "tcp", "host": "::1"}]
    return {
        "pbx": {"name": "Test Hotline"},
        # The tests share two busy cores: a PBX may not read its socket for a while, and a
        # functional test must not trip over overload shedding by queue age (measured by
        # benchmarks/bench_overload.py; the example config keeps the product's default).
        "sip": {"domain": REALM, "listen": listen, "overload_queue_ms": 0},
        "registrar": {"min_expires": 10, "default_expires": 300, "max_expires": 3600},
        "agents": agents,
    }


@dataclass
class RunningPbx:
    proc: subprocess.Popen[bytes]
    sip_port: int
    http_port: int
    workdir: Path
    log_path: Path
    config_path: Path
    extra_args: list[str] = field(default_factory=list)
    api_token: str = ""

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def api_headers(self) -> dict[str, str]:
        """The harness's API token (every scope, role admin) as a request header."""
        return {"Authorization": f"Bearer {self.api_token}"}

    def get(self, path: str) -> Any:
        """GET `path` with the harness's API token; the JSON answer."""
        request = urllib.request.Request(self.http + path, headers=self.api_headers)
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read())

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """`method` `path` with exactly `headers` (no token unless given): status, headers
        (lower-case names; repeated ones such as Set-Cookie joined by newlines) and body, 4xx
        and 5xx included."""
        request = urllib.request.Request(self.http + path, data=body, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
                return resp.status, _headers(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _headers(exc.headers.items()), exc.read()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/stats")
        return result

    def registrations(self, aor: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.get(
            "/api/registrations" + (f"?aor={aor}" if aor else "")
        )["registrations"]
        return rows

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, predicate: Any, timeout: float = 30.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or predicate}: last={last!r}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


def _headers(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}\n{value}" if key in out else value
    return out


def _profiler_args() -> list[str]:
    # PBX_PROFILE=/tmp/pbx.prof runs the PBX under cProfile (stats written when it stops):
    # for finding where a benchmark's CPU goes, never in the test suite.
    target = os.environ.get("PBX_PROFILE")
    return ["-m", "cProfile", "-o", target] if target else []


def start_pbx(
    workdir: Path,
    config: dict[str, Any],
    extra_args: list[str] | None = None,
    sip_port: int | None = None,
) -> RunningPbx:
    workdir.mkdir(parents=True, exist_ok=True)
    api_token = _with_api_token(workdir, config)
    config_path = workdir / "pbx.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    hosts = {e["host"] for e in config["sip"]["listen"]}
    sip_port = sip_port or _port_free_on_all(hosts)
    http_port = free_port(udp_and_tcp=False)
    log_path = workdir / "pbx.log"
    args = [
        sys.executable, *_profiler_args(), "-m", "pbx.cli", "run",
        "--config", str(config_path),
        "--sip-port", str(sip_port),
        "--http-port", str(http_port),
        "--data-dir", str(workdir / "data"),
        "--log-format", "json",
        *(extra_args or []),
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    pbx = RunningPbx(proc, sip_port, http_port, workdir, log_path, config_path, extra_args or [],
                     api_token)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pbx exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            status, _, body = pbx.request("GET", "/health")
            if status == 200 and json.loads(body)["status"] == "ok":
                return pbx
        except OSError:
            pass
        time.sleep(0.1)
    pbx.stop()
    raise RuntimeError(f"pbx did not become ready:\n{log_path.read_text()}")


def _with_api_token(workdir: Path, config: dict[str, Any]) -> str:
    # The harness's own token, in a file as an admin would keep it (kept across restarts of
    # the same working directory); `config` gets an http.api_tokens entry that reads it.
    path = workdir / "harness-api.token"
    if not path.exists():
        path.write_text(secrets.token_hex(24) + "\n")
        path.chmod(0o600)
    http = config.setdefault("http", {})
    tokens = [t for t in http.get("api_tokens", []) if t.get("name") != "harness"]
    tokens.append({"name": "harness", "token_file": str(path), "scopes": API_SCOPES,
                   "role": "admin"})
    http["api_tokens"] = tokens
    return path.read_text().strip()


def _port_free_on_all(hosts: set[str]) -> int:
    for _ in range(50):
        port = free_port()
        ok = True
        for host in hosts - {"127.0.0.1"}:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(family, kind) as s:
                    try:
                        s.bind((host, port))
                    except OSError:
                        ok = False
        if ok:
            return port
    raise RuntimeError("no port free on all listen hosts")
