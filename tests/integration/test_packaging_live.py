"""`pip install` of the project gives a working PBX: the wheel is built from a copy of the
source tree (as `pip wheel --no-deps`, with the setuptools of the test environment, which
must satisfy `[build-system] requires`), installed into a fresh venv, and from an unrelated
directory `pbx init DIR` writes the starter configuration and the prompts, `pbx check-config`
accepts them, and `pbx run` answers SIP OPTIONS and the HTTP API.

No registry is asked: the fresh venv gets the project's dependencies by a ``.pth`` line naming
the test environment's site-packages (a path line, so that environment's editable install of
this repository is *not* activated; the test checks that `pbx` is imported from the wheel).
The PBX's own code, its package data (prompts, example configuration, migrations) and its
console script all come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.pbx_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "pbx", "media", "prompts", "config")


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def build_wheel(tmp_path: Path) -> Path:
    import setuptools

    floor = 77  # pyproject.toml [build-system] requires
    assert int(setuptools.__version__.split(".")[0]) >= floor, (
        f"setuptools {setuptools.__version__} is below the declared floor {floor}: "
        f"pip install -e '.[test]' installs a newer one")
    source = tmp_path / "source"
    for name in SOURCES:  # a clean copy: no stale build/ or egg-info of the worktree
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "-w", wheels, source, cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("pbx-*.whl")
    return wheel


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                    cwd=tmp_path).stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                    "--no-index", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def sip_options(port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2.0)
        local = sock.getsockname()[1]
        message = (
            "OPTIONS sip:hotline.example SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bKwheel{time.time_ns()};rport\r\n"
            "From: <sip:probe@hotline.example>;tag=wheel\r\nTo: <sip:hotline.example>\r\n"
            f"Call-ID: wheel{time.time_ns()}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        for _ in range(10):
            sock.sendto(message, ("127.0.0.1", port))
            try:
                return sock.recv(65535)
            except TimeoutError:
                continue
    raise AssertionError("no answer to OPTIONS")


def test_the_wheel_installs_a_working_pbx(tmp_path: Path) -> None:
    started = time.monotonic()
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    pbx = venv / "bin" / "pbx"
    elsewhere = tmp_path / "elsewhere"  # not the repository: nothing shadows the wheel
    elsewhere.mkdir()
    where = run(venv / "bin" / "python", "-c", "import pbx, pbx.starter; "
                "print(pbx.__file__); print(pbx.starter.PROMPTS)", cwd=elsewhere)
    module, prompts = where.stdout.split()
    assert module.startswith(str(venv)) and not Path(prompts).is_symlink(), where

    version = run(pbx, "--version", cwd=elsewhere)
    assert version.stdout == "pbx 0.1.0\n", version

    site = tmp_path / "site"
    init = run(pbx, "init", site, cwd=elsewhere)
    assert init.returncode == 0, init.stderr
    config = site / "pbx.yaml"
    assert config.stat().st_mode & 0o777 == 0o600  # it holds SIP passwords
    assert (site / "prompts" / "de" / "greeting.wav").stat().st_size > 1000
    assert "Geheim" not in config.read_text()  # the example's published passwords replaced
    again = run(pbx, "init", site, cwd=elsewhere)
    assert again.returncode == 1 and again.stderr == f"pbx init: {config} exists; nothing written\n"

    checked = run(pbx, "check-config", config, cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""  # no warnings for the starter
    assert f"prompts: {site / 'prompts'}" in checked.stdout
    assert f"database: sqlite:///{site / 'var' / 'pbx.db'}" in checked.stdout

    schema = run(pbx, "schema", cwd=elsewhere)
    assert json.loads(schema.stdout)["properties"]["sip"]["$ref"] == "#/$defs/SipConfig"

    sip_port, http_port = free_port(), free_port(udp_and_tcp=False)
    log = (tmp_path / "pbx.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.Popen(
        [str(pbx), "run", "--config", str(config), "--sip-port", str(sip_port),
         "--http-port", str(http_port), "--log-format", "json"],
        cwd=elsewhere, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "pbx.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health",
                                            timeout=2) as resp:  # noqa: S310
                    assert json.loads(resp.read()) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "pbx.log").read_text()
                time.sleep(0.2)
        answer = sip_options(sip_port)
        assert answer.startswith(b"SIP/2.0 200 "), answer
        # data_dir "var" is beside the configuration, not in the directory pbx run started in
        assert (site / "var" / "pbx.db").is_file() and not (elsewhere / "var").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert proc.returncode == 0, (tmp_path / "pbx.log").read_text()
    assert time.monotonic() - started < 90
