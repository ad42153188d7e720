"""contrib/pbx.service: reload by the PBX's own SIGHUP path, and the hardening an admin
expects of a network daemon (checked with `systemd-analyze verify` where systemd is there)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "pbx.service"


def options() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_reload_checks_the_file_then_sends_sighup() -> None:
    unit = options()
    assert unit["ExecReload"] == ["/usr/local/bin/pbx check-config /etc/pbx/pbx.yaml",
                                  "/bin/kill -HUP $MAINPID"]
    assert "--config /etc/pbx/pbx.yaml" in unit["ExecStart"][0]
    assert unit["KillSignal"] == ["SIGTERM"]


def test_the_service_runs_unprivileged_and_confined() -> None:
    unit = options()
    assert unit["User"] == ["pbx"] and unit["CapabilityBoundingSet"] == [""]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "RestrictSUIDSGID", "ProtectKernelTunables", "ProtectControlGroups"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert unit["StateDirectory"] == ["pbx"] and unit["UMask"] == ["0077"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    copy = tmp_path / "pbx.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/pbx", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                            text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if str(copy) in line]
    assert not problems, result.stderr
