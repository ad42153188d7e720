"""How long the queue and agent reports take on a big SQLite database of interval statistics.

Fills a fresh database with `--agents` agents and two queues active in every 15-minute
interval of `--days` days (far more than a real call center, whose agents are logged in some
hours a day; rows exist only where something happened), then times the agent and queue
reports the API serves (`/api/reports/agents`, `/queues`: the storage read plus the figures)
for a month by day, a year by day, a year in total and a week by hour, in Europe/Berlin.

    python benchmarks/bench_reports.py --agents 50 --days 365
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zoneinfo
from pathlib import Path

from pbx.acd.interval_report import (
    agent_figures,
    agent_lines,
    parse_range,
    queue_figures,
    queue_lines,
    segments,
)
from pbx.acd.intervals import AgentInterval, IntervalDeltas, QueueInterval
from pbx.storage import Database

START = 1_767_225_600  # 2026-01-01T00:00Z
CASES = (("2026-03-01", "2026-04-01", "day"), ("2026-01-01", "2027-01-01", "day"),
         ("2026-01-01", "2027-01-01", "total"), ("2026-03-01", "2026-03-08", "hour"))


def fill(db: Database, agents: int, days: int) -> None:
    store = db.interval_store()
    for day in range(days):
        queues: dict[tuple[int, str], QueueInterval] = {}
        sums: dict[tuple[int, str], AgentInterval] = {}
        for quarter in range(96):
            start = START + day * 86400 + quarter * 900
            for agent in range(agents):
                sums[(start, str(1000 + agent))] = AgentInterval(
                    calls=2, handled=2, handle_s=720.0, talk_s=600.0, wrap_up_s=120.0,
                    ready_s=120.0, paused_s=60.0, pauses={"lunch": 60.0})
            for name in ("support", "sales"):
                queues[(start, name)] = QueueInterval(
                    offered=10, answered=9, abandoned=1, answered_in_sl=8,
                    wait_answered_s=90.0, handled=9, handle_s=3240.0)
        store.add_intervals(IntervalDeltas(queues, sums))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    with tempfile.TemporaryDirectory() as directory:
        db = Database.open(f"sqlite:///{Path(directory) / 'pbx.db'}")
        started = time.perf_counter()
        fill(db, args.agents, args.days)
        rows = args.days * 96 * args.agents
        print(f"filled {rows:,} agent and {args.days * 96 * 2:,} queue intervals in "
              f"{time.perf_counter() - started:.1f} s")
        store = db.interval_store()
        for first, last, interval in CASES:
            report = parse_range(first, last, interval, berlin, 2e9)
            started = time.perf_counter()
            agents = [agent_figures(line) for line in
                      agent_lines(store.agent_periods(segments(report)), report)]
            agent_s = time.perf_counter() - started
            started = time.perf_counter()
            queues = [queue_figures(line) for line in
                      queue_lines(store.queue_periods(segments(report)), report)]
            queue_s = time.perf_counter() - started
            print(f"{first} .. {last} by {interval:<5}  agents: {len(agents):>6} lines "
                  f"{agent_s:6.2f} s   queues: {len(queues):>5} lines {queue_s:6.2f} s")
        db.close()


if __name__ == "__main__":
    main()
