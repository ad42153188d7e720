"""ACD end to end: hundreds of callers waiting in one queue with the hold program while a few
SIPp agents answer, measured at the PBX (issue 5's benchmark).

SIPp plays the carrier: it places `--callers` calls into a DID whose flow is one queue node,
at `--rate` per second; every caller stays `--hold` seconds after the PBX answered (waiting
with hold music and ads, or talking once an agent took the call) and then hangs up. `--agents`
agents register with digest auth and answer every INVITE (SIPp UAS per port). While all callers
are in, the script samples the PBX's CPU and reads the media engine's clock counters (late 20 ms
slots, the worst lateness) and RTP packets sent, so the figure says whether hold audio keeps
its pacing with that many waiting callers. Bounded: one step, a fixed call count and timeouts.

    python benchmarks/bench_queue.py [--callers 500] [--rate 50] [--hold 30] [--agents 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_calls import (  # noqa: E402
    AGENT_ANSWER,
    CARRIER_HANGUP,
    DID_AGENT,
    AnsweringPhones,
    bench_config,
    counters,
    cpu_seconds,
    free_udp_ports,
    peak_current,
    peak_rss_mib,
    register_agents,
    run_carrier,
)
from tests.integration.pbx_harness import RunningPbx, start_pbx  # noqa: E402


def media_stats(pbx: RunningPbx) -> dict[str, Any]:
    stats: dict[str, Any] = pbx.get("/api/stats")  # with the harness's API token
    return dict(stats.get("media", {}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--callers", type=int, default=500)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--agents", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    config = bench_config(args.agents)
    config["queues"][0]["wrap_up_s"] = 0
    # SIPp's callers send no RTP: keep the PBX's RTP-inactivity timeout (30 s) from ending
    # them, which it rightly does to silent calls.
    config["media"]["rtp_timeout_s"] = 300
    config["queues"][0]["announce"] = {"hold_program": "default", "position_every_s": 20}
    pbx = start_pbx(workdir / "pbx", config)
    ports = [free_udp_ports(1)]
    try:
        bound = register_agents(pbx, args.agents, ports, workdir)
        phones = AnsweringPhones(AGENT_ANSWER, ports, workdir, "queue", [])
        duration = args.callers / args.rate
        # Sample while every caller is in: after the last one joined, before the first leaves.
        sample: dict[str, float] = {}

        def sampler() -> None:
            time.sleep(duration + 1.0)
            before = media_stats(pbx)
            cpu0, t0 = cpu_seconds(pbx.proc.pid), time.monotonic()
            time.sleep(max(1.0, args.hold - duration - 3.0))
            after = media_stats(pbx)
            sample.update(
                cpu_pct=100 * (cpu_seconds(pbx.proc.pid) - cpu0) / (time.monotonic() - t0),
                window_s=time.monotonic() - t0,
                late_slots=after["late_slots"] - before["late_slots"],
                ticks=after["ticks"] - before["ticks"],
                skipped=after["ticks_skipped"] - before["ticks_skipped"],
                max_lateness_ms=after["max_lateness_ms"],
                packets=after["sessions"]["packets_out"] - before["sessions"]["packets_out"],
                sessions_open=after["sessions_open"],
            )

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        rows, wall = run_carrier(pbx.sip_port, CARRIER_HANGUP, DID_AGENT, args.rate, duration,
                                 int(args.hold * 1000), workdir, "queue")
        thread.join(timeout=args.hold + 30)
        answered_by_agents, _ = phones.stop()
        ok, failed = counters(rows)
        rss = peak_rss_mib(pbx.proc.pid)
    finally:
        pbx.stop()
    print(f"nproc={os.cpu_count()} callers={args.callers} rate={args.rate}/s "
          f"hold={args.hold}s agents={args.agents} (bound {bound})")
    print(f"calls ok {ok} failed {failed}; peak concurrent {peak_current(rows)}; agent-answered "
          f"{answered_by_agents}; wall {wall:.1f}s")
    if sample:
        pps = sample["packets"] / sample["window_s"]
        print(f"while all callers were in ({sample['window_s']:.1f} s): PBX CPU "
              f"{sample['cpu_pct']:.0f} %, media sessions {sample['sessions_open']:.0f}, "
              f"RTP out {pps:.0f} packets/s, late 20 ms slots {sample['late_slots']:.0f} of "
              f"{sample['ticks']:.0f} ticks, skipped ticks {sample['skipped']:.0f}, worst "
              f"lateness since start {sample['max_lateness_ms']:.1f} ms; peak RSS {rss:.0f} MiB")
    if failed:
        print(f"SIPp's logs are kept in {workdir}")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
