"""ACD engine benchmark: decisions per second inside the discrete-event simulation.

Runs the simulator (`pbx.acd.simulate`) over a few fixed scenarios and reports, for each, the
simulated calls per wall-clock second and the engine's `handle()` calls per second (every
event and timer the engine decides on), with and without the invariant checks that the tests
run after every step. Single process, single core; every loop is bounded by the scenario.

    python benchmarks/bench_acd.py [--repeat 3] [--append]

`--append` adds the figures, with the date, the command and `nproc`, to benchmarks/RESULTS.md
under "## ACD engine".
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pbx.acd.simulate import SimulationResult, SimulationSettings, simulate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
HEADING = "## ACD engine"

SCENARIOS: dict[str, SimulationSettings] = {
    # The day: 10,000 Poisson calls, 20 agents, exponential talk times.
    "day-random": SimulationSettings(strategy="random"),
    # Agents who answer late or not at all, wrap-up, impatient callers, VIPs, stale answers.
    "day-linear-messy": SimulationSettings(
        strategy="linear",
        aht_s=140,
        wrap_up_s=10,
        patience_s=240,
        answer_probability=0.9,
        answer_delay_s=6,
        race_probability=0.05,
        vip_share=0.05,
        auto_pause_after_misses=3,
    ),
    "day-ring-all": SimulationSettings(strategy="ring_all", answer_delay_s=4),
    # Overload: hundreds of callers waiting at once (1.33 x what 20 agents can take, 3 hours).
    "deep-queue": SimulationSettings(strategy="longest_idle", calls_per_hour=640, hours=3),
}


@dataclass
class Figures:
    scenario: str
    checks: bool
    wall_s: float
    result: SimulationResult

    @property
    def calls_per_s(self) -> float:
        return self.result.calls / self.wall_s

    @property
    def handles_per_s(self) -> float:
        return self.result.engine_events / self.wall_s


def measure(name: str, settings: SimulationSettings, checks: bool, repeat: int) -> Figures:
    best: Figures | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = simulate(replace(settings, check_invariants=checks))
        wall = time.perf_counter() - started
        if best is None or wall < best.wall_s:
            best = Figures(name, checks, wall, result)
    assert best is not None
    return best


def table(rows: list[Figures]) -> str:
    lines = [
        "| scenario | invariant checks | calls | engine handle() calls | max waiting | wall s "
        "| calls/s | handle()/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        lines.append(
            f"| {f.scenario} | {'yes' if f.checks else 'no'} | {f.result.calls} "
            f"| {f.result.engine_events} | {f.result.max_waiting} | {f.wall_s:.2f} "
            f"| {f.calls_per_s:,.0f} | {f.handles_per_s:,.0f} |"
        )
    return "\n".join(lines)


def append(text: str) -> None:
    # Only our section: insert before the next "## " heading after ours, or add it at the end.
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    lines = current.rstrip("\n").split("\n")
    if HEADING in lines:
        start = lines.index(HEADING)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines[end:end] = ["", *text.split("\n")]
    else:
        lines += ["", HEADING, "", *text.split("\n")]
    RESULTS.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--append", action="store_true", help=f"append to {RESULTS}")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    args = parser.parse_args(argv)
    rows = []
    for name in args.scenario or SCENARIOS:
        for checks in (False, True):
            figures = measure(name, SCENARIOS[name], checks, args.repeat)
            rows.append(figures)
            print(
                f"{name:<18} checks={'yes' if checks else 'no ':<3} calls={figures.result.calls:>6}"
                f" handle()={figures.result.engine_events:>7} max_waiting="
                f"{figures.result.max_waiting:>4} wall={figures.wall_s:6.2f}s"
                f" calls/s={figures.calls_per_s:>8,.0f} handle()/s={figures.handles_per_s:>9,.0f}",
                flush=True,
            )
    if args.append:
        command = "python benchmarks/bench_acd.py " + " ".join(argv)
        text = (
            f"{datetime.date.today().isoformat()} — `{command.strip()}` — nproc {os.cpu_count()},"
            f" Python {sys.version.split()[0]}, best of {args.repeat}, one core\n\n" + table(rows)
        )
        append(text)
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
