"""Media engine benchmark (`make bench-media`): N playback streams and N bridged pairs.

For each scenario a fresh `MediaEngine` runs in this process (uvloop when installed) and a lean
load generator runs in another process (`bench_media_load.py`): it receives every packet the
engine sends with the kernel's arrival timestamp and, for bridged pairs, sends 20 ms packets
into both sides of every pair. After a warm-up, ``--seconds`` of traffic are measured:

* CPU % of the engine process (user + system, 100 % = one core) and its RSS;
* per-stream inter-packet deviation |Δt − 20 ms| (p50/p99 over all streams);
* error against the ideal absolute grid: each packet's arrival minus its due time
  (clock origin + k × 20 ms + the session's phase), p50/p99 of the absolute value;
* packets lost (gaps in each stream's sequence numbers inside the window).

Usage: ``python benchmarks/bench_media.py [--playback 100 500 1000] [--bridge 100 500]
[--seconds 20] [--results benchmarks/RESULTS.md]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import logging
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_media_load import LoadResult, run_load  # noqa: E402

from media.engine import EngineStats, MediaEngine, MediaEngineConfig  # noqa: E402
from media.sdp import create_offer  # noqa: E402
from media.session import SessionSettings  # noqa: E402
from media.sources import Playlist  # noqa: E402
from media.workers import MediaWorkerPool  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    mode: str
    streams: int
    seconds: float
    engine_cpu_percent: float
    engine_rss_mb: float
    load_cpu_percent: float
    packets: int
    lost: int
    deviation_p50_ms: float
    deviation_p99_ms: float
    grid_p50_ms: float
    grid_p99_ms: float
    late_slots: int
    max_lateness_ms: float
    ticks_skipped: int
    bridge_underruns: int

    def row(self) -> str:
        return (
            f"| {self.mode} | {self.streams} | {self.engine_cpu_percent:.0f} % | "
            f"{self.engine_rss_mb:.0f} MB | {self.deviation_p50_ms:.2f} / "
            f"{self.deviation_p99_ms:.2f} | {self.grid_p50_ms:.2f} / {self.grid_p99_ms:.2f} | "
            f"{self.lost} of {self.packets} | {self.late_slots} / {self.max_lateness_ms:.1f} ms"
            f" / {self.ticks_skipped} | {self.load_cpu_percent:.0f} % |"
        )


HEADER = (
    "| scenario | streams | engine CPU | engine RSS | inter-packet dev. p50 / p99 (ms) | "
    "grid error p50 / p99 (ms) | lost | late slots / max lateness / ticks skipped | "
    "load-generator CPU |\n|---|---|---|---|---|---|---|---|---|"
)


def _process_cpu_s(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _rss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def _analyse(result: LoadResult, phases: dict[int, float], window: tuple[float, float],
             ) -> tuple[int, int, list[float]]:
    arrival = np.frombuffer(result.arrival, np.float64)
    ssrc = np.frombuffer(result.ssrc, np.uint32)
    seq = np.frombuffer(result.seq, np.uint32).astype(np.int64)
    inside = (arrival >= window[0]) & (arrival < window[1])
    arrival, ssrc, seq = arrival[inside], ssrc[inside], seq[inside]
    deviations, errors = [], []
    packets = lost = 0
    order = np.argsort(ssrc, kind="stable")
    arrival, ssrc, seq = arrival[order], ssrc[order], seq[order]
    bounds = np.flatnonzero(np.diff(ssrc)) + 1
    for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(ssrc)], strict=True):
        stream_ssrc = int(ssrc[start])
        if stream_ssrc not in phases or end - start < 2:
            continue
        t = arrival[start:end]
        s = seq[start:end]
        step = np.diff(s)
        step = np.where(step < -32768, step + 65536, step)
        extended = np.r_[0, np.cumsum(step)]
        packets += end - start
        lost += int(extended.max() - extended.min() + 1 - len(np.unique(extended)))
        consecutive = step == 1
        deviations.append(np.abs(np.diff(t)[consecutive] - 0.02))
        ideal = phases[stream_ssrc]
        errors.append(np.abs(np.mod(t - ideal + 0.01, 0.02) - 0.01))
    deviation = np.concatenate(deviations) * 1000 if deviations else np.zeros(1)
    error = np.concatenate(errors) * 1000 if errors else np.zeros(1)
    figures = [float(np.percentile(deviation, 50)), float(np.percentile(deviation, 99)),
               float(np.percentile(error, 50)), float(np.percentile(error, 99))]
    return packets, lost, figures


class _PythonLoad:
    """`bench_media_load.run_load` in a spawned process (about half a core at 50,000 pps)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._parent, child = context.Pipe()
        self._process = context.Process(target=run_load, args=(child,), daemon=True)
        self._process.start()

    def port(self) -> int:
        return int(self._parent.recv())

    def begin(self, targets: list[int], seconds: float) -> None:
        self._parent.send((targets, seconds))

    def result(self) -> LoadResult:
        result: LoadResult = self._parent.recv()
        self._process.join(5)
        return result


@functools.cache
def _c_load_binary() -> Path | None:
    """`rtp_load.c` compiled into a temporary directory, or None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = Path(tempfile.mkdtemp(prefix="rtp_load-")) / "rtp_load"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(ROOT / "benchmarks/rtp_load.c")],
                   check=True)
    return binary


class _CLoad:
    """`rtp_load.c`: the same job with sendmmsg/recvmmsg, a few % of a core."""

    def __init__(self) -> None:
        binary = _c_load_binary()
        assert binary is not None
        self._output = binary.with_name(f"records-{os.getpid()}-{time.monotonic_ns()}.bin")
        self._process = subprocess.Popen([str(binary)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)

    def port(self) -> int:
        assert self._process.stdout is not None
        return int(self._process.stdout.readline())

    def begin(self, targets: list[int], seconds: float) -> None:
        assert self._process.stdin is not None
        ports = " ".join(str(port) for port in targets)
        self._process.stdin.write(f"{seconds} {self._output} {len(targets)} {ports}\n")
        self._process.stdin.flush()

    def result(self) -> LoadResult:
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        self._process.wait(10)
        if len(line) != 5:
            raise RuntimeError(f"rtp_load failed (exit {self._process.returncode})")
        records, sent, cpu_s, wall_s, rcvbuf = line
        data = self._output.read_bytes()
        self._output.unlink()
        count = int(records)
        return LoadResult(
            arrival=data[: 8 * count], ssrc=data[8 * count : 12 * count],
            seq=data[12 * count : 16 * count], packets_sent=int(sent), cpu_s=float(cpu_s),
            wall_s=float(wall_s), receive_buffer=int(rcvbuf),
        )


async def _scenario(mode: str, count: int, seconds: float, warmup: float,
                    transcode: bool, workers: int, load_kind: str,
                    record: bool = False) -> ScenarioResult:
    load = _CLoad() if load_kind == "c" else _PythonLoad()
    load_port = await asyncio.to_thread(load.port)
    config = MediaEngineConfig(
        rtp_port_min=None, rtp_port_max=None, prompts_dir=str(ROOT / "prompts"),
        session=SessionSettings(rtp_timeout_s=0, codecs=("PCMA", "PCMU")),
        socket_buffer_bytes=1 << 20,
    )
    engine: MediaEngine | MediaWorkerPool
    if workers:
        engine = MediaWorkerPool(config, workers=workers, seed=1)
        await engine.start()
        pids = engine.pids
    else:
        engine = MediaEngine(config, rng=random.Random(1))
        await engine.start()
        pids = [os.getpid()]

    async def engine_stats(reset_peak: bool = False) -> EngineStats:
        if isinstance(engine, MediaWorkerPool):
            return await engine.stats(reset_peak=reset_peak)
        return engine.stats(reset_peak=reset_peak)

    sessions = count if mode == "playback" else 2 * count
    ids = []
    for index in range(sessions):
        codecs = ("PCMU",) if transcode and index % 2 == 0 else ("PCMA",)
        offer = create_offer("127.0.0.1", load_port, session_id=index + 1, codecs=codecs)
        near = ids[-1] if mode == "bridge" and index % 2 == 1 else None
        if isinstance(engine, MediaWorkerPool):
            opened = await engine.open_session(offer.serialize(), near=near)
        else:
            opened = await engine.open_session(offer.serialize())
        ids.append(opened.session_id)
    targets: list[int] = []
    if mode == "playback":
        music = Playlist(("music/hold_music",), repeat=True)
        for session_id in ids:
            await engine.play(session_id, music)
    else:
        recordings = Path(tempfile.mkdtemp(prefix="bench-rec-"))
        for a, b in zip(ids[0::2], ids[1::2], strict=True):
            await engine.bridge(a, b)
            if record:  # as a recorded call: the caller's session, stereo, to a WAV file
                await engine.record(a, str(recordings / f"{a}.wav"), stereo=True)
            targets += [(await engine.session_info(a)).rtp_port,
                        (await engine.session_info(b)).rtp_port]
    loop = asyncio.get_running_loop()
    phases = {}
    for session_id in ids:
        info = await engine.session_info(session_id)
        phases[info.ssrc] = info.clock_origin_wall + info.phase_s
    load.begin(targets, warmup + seconds + 1.0)
    started = time.time()
    await asyncio.sleep(warmup)
    cpu_before = _process_cpu_s(pids)
    stats_before = await engine_stats(reset_peak=True)
    measured_from = loop.time()
    await asyncio.sleep(seconds)
    cpu_after = _process_cpu_s(pids)
    elapsed = loop.time() - measured_from
    stats = await engine_stats()
    rss = _rss_mb(pids)
    result: LoadResult = await asyncio.to_thread(load.result)
    await engine.shutdown()
    if mode == "bridge":
        shutil.rmtree(recordings, ignore_errors=True)
    cpu = cpu_after - cpu_before
    window = (started + warmup, started + warmup + seconds)
    packets, lost, figures = _analyse(result, phases, window)
    return ScenarioResult(
        mode=(mode if not transcode else f"{mode} (PCMU⇄PCMA)")
        + (", recorded" if record and mode == "bridge" else "")
        + (f", {workers} workers" if workers else ""),
        streams=count,
        seconds=seconds,
        engine_cpu_percent=100 * cpu / elapsed,
        engine_rss_mb=rss,
        load_cpu_percent=100 * result.cpu_s / result.wall_s,
        packets=packets,
        lost=lost,
        deviation_p50_ms=figures[0],
        deviation_p99_ms=figures[1],
        grid_p50_ms=figures[2],
        grid_p99_ms=figures[3],
        late_slots=stats.late_slots - stats_before.late_slots,
        max_lateness_ms=stats.max_lateness_ms,
        ticks_skipped=stats.ticks_skipped - stats_before.ticks_skipped,
        bridge_underruns=stats.sessions.bridge_underruns - stats_before.sessions.bridge_underruns,
    )


def _run(mode: str, count: int, seconds: float, warmup: float, transcode: bool,
         use_uvloop: bool, workers: int, load_kind: str, record: bool = False) -> ScenarioResult:
    scenario = _scenario(mode, count, seconds, warmup, transcode, workers, load_kind, record)
    if use_uvloop:
        try:
            import uvloop

            return uvloop.run(scenario)
        except ImportError:
            pass
    return asyncio.run(scenario)


def _append_results(path: Path, command: str, rows: list[ScenarioResult],
                    load_kind: str) -> None:
    """Add a dated run to the end of the "## Media" section (the analysis above it stays)."""
    run = [
        f"### Run {datetime.datetime.now().isoformat(timespec='minutes')}",
        "",
        f"`{command}`; nproc = {os.cpu_count()}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, "
        f"loop = {'uvloop' if 'uvloop' in sys.modules else 'asyncio'}, "
        f"load generator = {'rtp_load.c' if load_kind == 'c' else 'bench_media_load.py'}",
        "",
        HEADER,
        *[row.row() for row in rows],
        "",
    ]
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if "## Media\n" not in text:
        text = text.rstrip() + "\n\n## Media\n"
    head, _, rest = text.partition("## Media\n")
    tail_index = rest.find("\n## ")
    body, tail = (rest[:tail_index], rest[tail_index + 1 :]) if tail_index >= 0 else (rest, "")
    text = head + "## Media\n" + body.rstrip() + "\n\n" + "\n".join(run) + (
        "\n" + tail if tail else ""
    )
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="media engine benchmark")
    parser.add_argument("--playback", type=int, nargs="*", default=[100, 500, 1000])
    parser.add_argument("--bridge", type=int, nargs="*", default=[100, 500])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--transcode", action="store_true",
                        help="bridged pairs with PCMU on one side and PCMA on the other")
    parser.add_argument("--record", action="store_true",
                        help="bridged pairs: record each pair like a recorded call (stereo WAV)")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--workers", type=int, default=0,
                        help="run the engine in this many worker processes (0: in this process)")
    parser.add_argument("--results", type=Path,
                        help="add this run to the end of the '## Media' section of this file")
    parser.add_argument("--load", choices=("c", "python"), default="c",
                        help="load generator: rtp_load.c (built with cc; default) or "
                             "bench_media_load.py")
    args = parser.parse_args(argv)
    # the engine's per-session debug lines would cost more than the media
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    load_kind = args.load
    if load_kind == "c" and _c_load_binary() is None:
        print("no C compiler: using the Python load generator", file=sys.stderr)
        load_kind = "python"
    rows = []
    print(HEADER, flush=True)
    scenarios = [("playback", n) for n in args.playback] + [("bridge", n) for n in args.bridge]
    for mode, count in scenarios:
        row = _run(mode, count, args.seconds, args.warmup, args.transcode, not args.no_uvloop,
                   args.workers, load_kind, args.record)
        rows.append(row)
        print(row.row(), flush=True)
    if args.results:
        command = "python benchmarks/bench_media.py " + " ".join(argv or sys.argv[1:])
        _append_results(args.results, command, rows, load_kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
