"""Run SIPp (a real, independent SIP implementation) from tests and read its verdict.

`run_sipp` runs one scenario to completion in the foreground with a call limit and a timeout,
and returns the final counters from SIPp's statistics file plus its error log, so an assertion
failure shows what SIPp saw.
"""

from __future__ import annotations

import csv
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.integration.pbx_harness import REALM, free_port

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "benchmarks" / "sipp"


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    errors: str

    def __str__(self) -> str:
        return (f"sipp rc={self.returncode} ok={self.successful} failed={self.failed}\n"
                f"{self.errors[-3000:]}")


def users_csv(path: Path, users: list[tuple[str, str]]) -> Path:
    """An injection file: field0 = extension, field1 = SIPp's authentication keyword."""
    lines = ["SEQUENTIAL"]
    lines += [f"{ext};[authentication username={ext} password={pw}]" for ext, pw in users]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_sipp(
    workdir: Path,
    scenario: str,
    target_port: int,
    inf: Path | None = None,
    calls: int = 1,
    rate: int = 50,
    transport: str = "u1",
    host: str = "127.0.0.1",
    keys: dict[str, str] | None = None,
    timeout: int = 60,
    extra: list[str] | None = None,
    local_port: int | None = None,
    bind: str | None = None,
) -> SippResult:
    workdir.mkdir(parents=True, exist_ok=True)
    scenario_path = SCENARIOS / scenario if not scenario.startswith("/") else Path(scenario)
    target = f"[{host}]:{target_port}" if ":" in host else f"{host}:{target_port}"
    stat = workdir / f"{scenario_path.stem}_{free_port(False)}.csv"
    cmd = [
        "sipp", target, "-sf", str(scenario_path),
        "-i", bind or host, "-p", str(local_port or free_port(host=bind or host)),
        "-t", transport, "-m", str(calls), "-r", str(rate), "-l", str(max(calls, 10)),
        "-nostdin", "-trace_err", "-trace_stat", "-stf", str(stat), "-fd", "1",
        "-timeout", str(timeout), "-timeout_error", "-recv_timeout", "8000",
        "-key", "domain", REALM, "-key", "expires", "300",
    ]
    for key, value in (keys or {}).items():
        cmd += ["-key", key, value]
    if inf is not None:
        cmd += ["-inf", str(inf)]
    cmd += extra or []
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, timeout=timeout + 30,
                          check=False)
    successful = failed = 0
    if stat.exists():
        rows = list(csv.DictReader(stat.open(), delimiter=";"))
        if rows:
            successful = int(rows[-1]["SuccessfulCall(C)"])
            failed = int(rows[-1]["FailedCall(C)"])
    errors = "".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
    errors += proc.stderr.decode(errors="replace")
    return SippResult(proc.returncode, successful, failed, errors)
