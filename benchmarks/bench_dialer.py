"""Outbound dialer throughput: attempts per second a progressive campaign sustains against a
SIPp carrier, with the PBX's CPU (issue 7's benchmark).

The campaign dials `--customers` customers of one group through the trunk; the carrier (a SIPp
UAS) answers every call and hangs up `--talk-ms` later; every answered customer goes through the
ACD to one of `--agents` agents (SIPp UASes that registered with digest auth and answer), so
each attempt is a full outbound call: dial, answer, queue, ring an agent, bridge, hang up, CDR,
contact and attempt records. The script polls the campaign's statistics until every contact is
done (bounded by a timeout) and reports attempts/s, CPU % and CPU ms per attempt.

    python benchmarks/bench_dialer.py [--customers 1500] [--agents 60] [--talk-ms 1000]
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_calls import (  # noqa: E402
    AGENT_ANSWER,
    ANSWER_THEN_BYE,
    AnsweringPhones,
    bench_config,
    cpu_seconds,
    free_udp_ports,
    register_agents,
    sipp_args,
)
from tests.integration.pbx_harness import RunningPbx, start_pbx  # noqa: E402


def campaign_stats(pbx: RunningPbx) -> dict[str, Any]:
    rows: list[dict[str, Any]] = pbx.get("/api/campaigns")["campaigns"]  # the harness's token
    return rows[0] if rows else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--talk-ms", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-dialer-"))
    carrier_port = free_udp_ports(2)
    carrier = subprocess.Popen(
        sipp_args(ANSWER_THEN_BYE, carrier_port, workdir / "carrier.csv",
                  ["-d", str(args.talk_ms), "-timeout", str(int(args.timeout + 60))]),
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = bench_config(args.agents)
    config["trunks"][0]["port"] = carrier_port
    config["customers"] = [{"customer_no": f"8{i:06d}", "name": f"Kunde {i}",
                            "phones": [f"+49308{i:06d}"], "groups": ["bench"]}
                           for i in range(args.customers)]
    config["campaigns"] = [{
        "name": "bench", "caller_id": "+4930123456", "queue": config["queues"][0]["name"],
        "mode": "progressive", "target": {"groups": ["bench"]}, "max_attempts": 1,
        "drop_after_s": 10, "enabled": False,
        "calling_hours": {"windows": [{"days": "mon-sun", "start": "00:00", "end": "23:59"}]},
    }]
    config["media"]["rtp_timeout_s"] = 300  # SIPp sends no RTP
    config["cti"]["password_cost"] = 10
    config["agents"].append({"extension": "1999", "name": "Supervisor",
                             "password": "bench-supervisor", "role": "supervisor"})
    pbx = start_pbx(workdir / "pbx", config)
    ports = [free_udp_ports(1)]
    result: dict[str, Any] = {}
    try:
        register_agents(pbx, args.agents, ports, workdir)
        phones = AnsweringPhones(AGENT_ANSWER, ports, workdir, "dialer",
                                 ["-timeout", str(int(args.timeout + 60))])
        session = post(pbx.http, "/api/cti/login",
                       {"extension": "1999", "password": "bench-supervisor"})
        cpu0, t0 = cpu_seconds(pbx.proc.pid), time.monotonic()
        post(pbx.http, "/api/cti/campaigns/bench/start", {}, session)
        stats: dict[str, Any] = {}
        deadline = t0 + args.timeout
        while time.monotonic() < deadline:  # bounded: the campaign ends or the timeout does
            stats = campaign_stats(pbx)
            if stats.get("contacts_left") == 0:
                break
            time.sleep(0.5)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(pbx.proc.pid) - cpu0
        phones.stop()
        attempts = int(stats.get("attempts", 0))
        result = {
            "nproc": os.cpu_count(), "customers": args.customers, "agents": args.agents,
            "talk_ms": args.talk_ms, "attempts": attempts,
            "connects": stats.get("connects"), "drops": stats.get("drops"),
            "contacts_left": stats.get("contacts_left"), "wall_s": round(wall, 1),
            "attempts_per_s": round(attempts / wall, 1) if wall else 0,
            "pbx_cpu_pct": round(100 * cpu / wall, 1) if wall else 0,
            "cpu_ms_per_attempt": round(1000 * cpu / attempts, 2) if attempts else None,
        }
    finally:
        pbx.stop()
        carrier.terminate()
        carrier.wait(10)
    print(json.dumps(result, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if result.get("contacts_left") == 0 else 1


def post(http: str, path: str, body: dict[str, Any],
         session: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if session:
        headers |= {"Authorization": f"Bearer {session['token']}",
                    session["csrf_header"]: session["csrf_token"]}
    request = urllib.request.Request(http + path, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        data: dict[str, Any] = json.loads(response.read() or b"{}")
        return data


if __name__ == "__main__":
    sys.exit(main())
