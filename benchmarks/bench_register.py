"""REGISTER-with-digest-auth benchmark: the highest sustained rate with < 0.1 % failures.

Starts a real `pbx run` with N agents, then runs SIPp's register_auth.xml scenario over unique
users (injection CSV) at increasing rates, each step for a fixed duration, and reports for the
best clean step: registrations/s, the PBX's CPU % and peak RSS, and CPU ms per registration.
Every loop here is bounded: a fixed list of rates, each with a call limit (-m) and a timeout.

    python benchmarks/bench_register.py [--rates 1000,2000,...] [--duration 10] [--users 40000]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.pbx_harness import REALM, free_port, start_pbx  # noqa: E402

SCENARIO = ROOT / "benchmarks" / "sipp" / "register_auth.xml"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    rate: int
    attempted: int
    succeeded: int
    failed: int
    wall_s: float
    cpu_s: float

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.attempted if self.attempted else 1.0

    @property
    def achieved_rate(self) -> float:
        return self.succeeded / self.wall_s if self.wall_s else 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_users(path: Path, first: int, count: int) -> None:
    with path.open("w") as fh:
        fh.write("SEQUENTIAL\n")
        for ext in range(first, first + count):
            fh.write(f"{ext};[authentication username={ext} password=pw{ext}x]\n")


def run_step(pbx_pid: int, sip_port: int, users_csv: Path, rate: int, duration: float,
             workdir: Path, local_port: int) -> Step:
    calls = int(rate * duration)
    stat = workdir / f"stat_{rate}.csv"
    cmd = [
        "sipp", f"127.0.0.1:{sip_port}", "-sf", str(SCENARIO), "-inf", str(users_csv),
        "-key", "domain", REALM, "-key", "expires", "3600",
        "-i", "127.0.0.1", "-p", str(local_port), "-t", "u1",
        "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(max(rate * 4, 1000)),
        "-trace_stat", "-stf", str(stat), "-fd", "1",
        "-timeout", str(int(duration * 3 + 30)), "-timeout_error",
        "-recv_timeout", "10000", "-max_socket", "64", "-nostdin", "-buff_size", "8388608",
    ]
    cpu0 = cpu_seconds(pbx_pid)
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=duration * 3 + 60, check=False)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pbx_pid) - cpu0
    with stat.open() as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    last = rows[-1]
    ok = int(last["SuccessfulCall(C)"])
    failed = int(last["FailedCall(C)"])
    return Step(rate, calls, ok, failed, wall, cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="1000,2000,3000,4000,5000,6000")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-failure", type=float, default=0.001)
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",")]
    # Each step registers distinct users; steps reuse them from the same SIPp port, so a later
    # step's registrations replace the earlier bindings instead of piling up contacts.
    total_users = int(max(rates) * args.duration)
    workdir = Path(tempfile.mkdtemp(prefix="bench-register-"))
    agents = [{"extension": str(10000 + i), "name": f"B{i}", "password": f"pw{10000 + i}x"}
              for i in range(total_users)]
    config = {
        "pbx": {"name": "Register benchmark"},
        "sip": {"domain": REALM, "listen": [{"transport": "udp", "host": "127.0.0.1"}]},
        "security": {"auth_algorithms": ["MD5"]},  # SIPp 3.6 answers MD5 only
        "logging": {"level": "warning"},
        "agents": agents,
    }
    pbx = start_pbx(workdir / "pbx", config)
    print(f"nproc={os.cpu_count()} users={total_users} duration={args.duration}s per step")
    best: Step | None = None
    sipp_port = free_port()
    try:
        for rate in rates:
            users = workdir / f"users_{rate}.csv"
            write_users(users, 10000, int(rate * args.duration))
            step = run_step(pbx.proc.pid, pbx.sip_port, users, rate, args.duration, workdir,
                            sipp_port)
            cpu_pct = 100 * step.cpu_s / step.wall_s
            print(
                f"rate {rate:>6}/s: ok {step.succeeded}/{step.attempted} "
                f"failed {step.failed} ({100 * step.failure_ratio:.3f} %) "
                f"achieved {step.achieved_rate:.0f}/s  pbx cpu {cpu_pct:.0f} %  "
                f"{1000 * step.cpu_s / max(step.succeeded, 1):.3f} ms cpu/registration"
            )
            if step.failure_ratio >= args.max_failure:
                break
            if best is None or step.achieved_rate > best.achieved_rate:
                best = step
        rss = peak_rss_mib(pbx.proc.pid)
    finally:
        pbx.stop()
    if best is None:
        print("no clean step")
        return 1
    print(
        f"RESULT: {best.achieved_rate:.0f} REGISTER/s sustained (offered {best.rate}/s, "
        f"{100 * best.failure_ratio:.3f} % failures), pbx cpu "
        f"{100 * best.cpu_s / best.wall_s:.0f} %, peak rss {rss:.0f} MiB, "
        f"{1000 * best.cpu_s / best.succeeded:.3f} ms cpu per registration"
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
