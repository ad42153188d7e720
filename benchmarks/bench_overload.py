"""Overload benchmark: offered load at 1x, 2x and 3x the clean capacity of case (b).

Case (b) of `bench_calls.py` (DID -> IVR -> queue -> agent, the caller hangs up 1 s after the
agent answers), offered at multiples of `--capacity` (the highest clean rate `make bench-calls`
found on this machine). Each step, SIPp as the carrier takes a 503 as an answer too
(sipp/calls_carrier_overload.xml); meanwhile:

- calls already talking: `--talking` calls are set up before the step (at 20/s) and held
  until after it; each must end normally (its BYE answered);
- registrations: the agents re-register from their own SIPp port during the step; each
  must succeed.

Printed per step: offered /s, goodput /s (calls that reached an agent and completed, per
second of offered load) and its share of the capacity, refused (503s the PBX sent, from its
counters), failed (calls that neither completed nor were refused), p99 set-up time
(INVITE -> 200, from SIPp's histogram: the bucket's upper bound), the talking calls and
registrations that failed, and after the step the PBX's calls, transactions and media
sessions left (a step must leave none once its stragglers are done).

    python benchmarks/bench_overload.py [--capacity 300] [--multiples 1,2,3] [--duration 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_calls import (  # noqa: E402
    AGENT_ANSWER,
    CALLER,
    DID_AGENT,
    FIRST_AGENT,
    REALM,
    REGISTER,
    SIPP,
    AnsweringPhones,
    bench_config,
    counters,
    cpu_seconds,
    free_port,
    register_agents,
    sipp_args,
    stat_rows,
    wait_idle,
)
from tests.integration.pbx_harness import RunningPbx, start_pbx  # noqa: E402

CARRIER_OVERLOAD = SIPP / "calls_carrier_overload.xml"
CARRIER_HANGUP = SIPP / "calls_carrier_hangup.xml"


@dataclass
class Step:
    multiple: float
    offered: int  # calls per second
    attempted: int
    completed: int  # SIPp's successful scenarios (talked, or took a 503)
    agent_calls: int  # calls an agent answered and completed
    refused: int
    p99_setup_ms: float
    talking_failed: int
    registrations_failed: int
    left_calls: int
    left_transactions: int
    left_media: int
    cpu_pct: float
    duration: float
    drained_s: float = 0.0  # until no call, transaction or media session was left

    @property
    def goodput(self) -> float:
        return self.agent_calls / self.duration

    @property
    def failed(self) -> int:
        return max(0, self.attempted - self.agent_calls - self.refused)


def stats(pbx: RunningPbx) -> dict[str, Any]:
    request = urllib.request.Request(pbx.http + "/api/stats", headers=pbx.api_headers)
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
        result: dict[str, Any] = json.loads(resp.read())
    return result


def refused_total(snapshot: dict[str, Any]) -> int:
    return sum((snapshot.get("admission") or {}).get("refused", {}).values())


def p99_ms(rows: list[dict[str, str]]) -> float:
    """The upper bound of the histogram bucket holding the 99th percentile of set-up times
    (SIPp's ResponseTimeRepartitionsetup columns: counts per bucket, then the overflow)."""
    if not rows:
        return 0.0
    last = rows[-1]
    buckets: list[tuple[float, int]] = []
    for key, value in last.items():
        if not key.startswith("ResponseTimeRepartitionsetup") or not value:
            continue
        bound = key.rsplit("_", 1)[-1].strip("<>=()C")
        try:
            buckets.append((float(bound) if bound else float("inf"), int(value)))
        except ValueError:
            continue
    total = sum(count for _, count in buckets)
    if not total:
        return 0.0
    seen = 0
    for bound, count in sorted(buckets):
        seen += count
        if seen >= 0.99 * total:
            return bound
    return float("inf")


def drain(pbx: RunningPbx, limit_s: float = 70.0) -> tuple[float, int]:
    """Wait (bounded) until the PBX holds no call, transaction or media session; (seconds it
    took, transactions still there)."""
    t0 = time.monotonic()
    snapshot = stats(pbx)
    while time.monotonic() - t0 < limit_s and (
        snapshot["calls"].get("active", 0) or snapshot.get("transactions_active", 0)
        or (snapshot.get("media") or {}).get("sessions_open")
    ):
        time.sleep(2.0)
        snapshot = stats(pbx)
    return time.monotonic() - t0, int(snapshot.get("transactions_active", 0))


def carrier(pbx: RunningPbx, scenario: Path, rate: int, calls: int, hold_ms: int,
            workdir: Path, tag: str, budget: int) -> subprocess.Popen[bytes]:
    stat = workdir / f"{tag}.csv"
    args = sipp_args(scenario, free_port(), stat, [
        f"127.0.0.1:{pbx.sip_port}", "-s", DID_AGENT, "-key", "caller", CALLER,
        "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(max(calls, 200)),
        "-d", str(hold_ms), "-recv_timeout", "8000", "-timeout", str(budget), "-timeout_error",
    ])
    return subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def reregister(pbx: RunningPbx, agents: int, port: int, workdir: Path,
               tag: str) -> subprocess.Popen[bytes]:
    users = workdir / f"{tag}_users.csv"
    with users.open("w") as fh:
        fh.write("SEQUENTIAL\n")
        for i in range(agents):
            ext = FIRST_AGENT + i
            fh.write(f"{ext};[authentication username={ext} password=pw{ext}x]\n")
    args = sipp_args(REGISTER, port, workdir / f"{tag}.csv", [
        f"127.0.0.1:{pbx.sip_port}", "-inf", str(users), "-key", "domain", REALM,
        "-key", "expires", "3600", "-r", "20", "-rp", "1000", "-m", str(agents), "-l", "100",
        "-timeout", "40", "-timeout_error", "-recv_timeout", "8000",
    ])
    return subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def finish(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_step(pbx: RunningPbx, multiple: float, args: argparse.Namespace, workdir: Path,
             agent_ports: list[int], register_port: int) -> Step:
    rate = int(args.capacity * multiple)
    calls = int(rate * args.duration)
    tag = f"x{multiple:g}"
    phones = AnsweringPhones(AGENT_ANSWER, agent_ports, workdir, tag, [])
    before = stats(pbx)
    # Calls already talking when the overload starts: they must get through it.
    talking_hold_ms = int((args.duration + 6) * 1000)
    talking = carrier(pbx, CARRIER_HANGUP, 20, args.talking, talking_hold_ms, workdir,
                      f"{tag}_talking", int(args.duration + 30))
    time.sleep(args.talking / 20 + 1.0)
    registrations = reregister(pbx, min(args.reregister, args.agents), register_port, workdir,
                               f"{tag}_register")
    cpu0, t0 = cpu_seconds(pbx.proc.pid), time.monotonic()
    load = carrier(pbx, CARRIER_OVERLOAD, rate, calls, args.hold_ms, workdir, f"{tag}_load",
                   int(args.duration + args.hold_ms / 1000 + 20))
    finish(load, args.duration + 60)
    cpu_pct = 100 * (cpu_seconds(pbx.proc.pid) - cpu0) / max(0.1, time.monotonic() - t0)
    finish(talking, 60)
    finish(registrations, 60)
    wait_idle(pbx, 10.0)
    agent_ok, _ = phones.stop()
    # What is left once the stragglers are done (a dialog's leg is kept 40 s for late
    # retransmissions, transactions 32 s for Timer J: wait those out, bounded).
    deadline = time.monotonic() + 45
    after = stats(pbx)
    while time.monotonic() < deadline and (after["calls"].get("active", 0)
                                           or (after.get("media") or {}).get("sessions_open")):
        time.sleep(1.0)
        after = stats(pbx)
    load_ok, _ = counters(stat_rows(workdir / f"{tag}_load.csv"))
    talk_ok, talk_failed = counters(stat_rows(workdir / f"{tag}_talking.csv"))
    reg_ok, reg_failed = counters(stat_rows(workdir / f"{tag}_register.csv"))
    return Step(
        multiple, rate, calls, load_ok, max(0, agent_ok - talk_ok),
        refused_total(after) - refused_total(before),
        p99_ms(stat_rows(workdir / f"{tag}_load.csv")),
        max(talk_failed, args.talking - talk_ok), max(reg_failed, args.reregister - reg_ok),
        int(after["calls"].get("active", 0)), int(after.get("transactions_active", 0)),
        int((after.get("media") or {}).get("sessions_open", 0)), cpu_pct, args.duration,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=300,
                        help="the clean capacity of case (b) on this machine, calls/s")
    parser.add_argument("--multiples", default="1,2,3")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--hold-ms", type=int, default=1000)
    parser.add_argument("--talking", type=int, default=40,
                        help="calls set up before each step and held through it")
    parser.add_argument("--reregister", type=int, default=200,
                        help="agents that re-register during each step")
    parser.add_argument("--queue-ms", type=int, default=None,
                        help="the PBX's sip.overload_queue_ms (default: the config's)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    multiples = [float(m) for m in args.multiples.split(",") if m.strip()]
    args.agents = int(args.capacity * (args.hold_ms / 1000 + 0.5) * 1.5) + args.talking + 50
    workdir = Path(tempfile.mkdtemp(prefix="bench-overload-"))
    config = bench_config(args.agents)
    if args.queue_ms is not None:
        config["sip"]["overload_queue_ms"] = args.queue_ms
    print(f"nproc={os.cpu_count()} capacity {args.capacity}/s, steps x{args.multiples} for "
          f"{args.duration:g} s, {args.agents} agents, {args.talking} calls talking through "
          f"each step, {args.reregister} re-registrations; workdir {workdir}", flush=True)
    pbx = start_pbx(workdir / "pbx", config)
    steps: list[Step] = []
    try:
        agent_ports = [free_port() for _ in range(2)]
        bound = register_agents(pbx, args.agents, agent_ports, workdir)
        print(f"registered {bound}/{args.agents} agents", flush=True)
        register_port = free_port()
        for multiple in multiples:
            step = run_step(pbx, multiple, args, workdir, agent_ports, register_port)
            steps.append(step)
            # Once the load is over, everything it left must go — the dialogs kept for late
            # retransmissions and the transactions of Timer J/K (32 s) included — before the
            # next step starts (their timers would cost the next step CPU).
            step.drained_s, step.left_transactions = drain(pbx)
            print(f"x{multiple:g}: offered {step.offered}/s goodput {step.goodput:.0f}/s "
                  f"({100 * step.goodput / args.capacity:.0f} % of capacity) refused "
                  f"{step.refused} failed {step.failed} p99 setup {step.p99_setup_ms:g} ms "
                  f"cpu {step.cpu_pct:.0f} % talking failed {step.talking_failed} "
                  f"registrations failed {step.registrations_failed} left: calls "
                  f"{step.left_calls} media {step.left_media}, transactions "
                  f"{step.left_transactions} after {step.drained_s:.0f} s", flush=True)
        code = pbx.stop()
    finally:
        if pbx.proc.poll() is None:
            pbx.stop()
    print()
    print("| load | offered /s | goodput /s | of capacity | refused (503) | failed | p99 setup "
          "ms | PBX CPU | talking calls failed | registrations failed | left after "
          "(calls / media; transactions once drained) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in steps:
        print(f"| {s.multiple:g}x | {s.offered} | {s.goodput:.0f} | "
              f"{100 * s.goodput / args.capacity:.0f} % | {s.refused:,} | {s.failed:,} | "
              f"{s.p99_setup_ms:g} | {s.cpu_pct:.0f} % | {s.talking_failed} | "
              f"{s.registrations_failed} | {s.left_calls} / {s.left_media}; "
              f"{s.left_transactions} after {s.drained_s:.0f} s |")
    print(f"\nPBX exit code {code}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
