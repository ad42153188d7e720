"""Inbound-call benchmark: the highest sustained call rate with < 0.1 % failures.

Starts a real `pbx run` whose carrier trunk accepts 127.0.0.1, then offers calls with SIPp as
the carrier (INVITE with SDP from the trunk address to a DID) at increasing rates, each step for
a fixed duration, in three cases:

- ceiling: SIPp calling SIPp directly (the same carrier scenarios against a SIPp UAS), i.e. the
  rate the load tool itself reaches on this machine;
- greeting (a): DID -> IVR flow that plays a short prompt (en/minute, 0.66 s) and hangs up;
  the carrier waits for the PBX's BYE (sipp/calls_carrier_wait_bye.xml);
- agent (b): DID -> IVR flow with a queue node -> the queue's agents, hunted seat by seat. The
  agents register with digest auth (sipp/register_auth.xml) from a few SIPp ports, then one
  auto-answering SIPp UAS per port (sipp/calls_agent_answer.xml) answers the PBX's INVITEs to
  their bindings; the PBX bridges caller and agent media; the carrier hangs up after the hold
  time (sipp/calls_carrier_hangup.xml).

For every step: calls offered/succeeded/failed (SIPp's counters; calls not finished count as
failed; in case b also calls that never reached an agent), the achieved creation rate, the mean
setup time (INVITE -> 200) and in case b the mean time until the caller talks to an agent, the
PBX's CPU % while calls are being created, CPU ms per call over the whole step (every call's
full life, until the PBX has closed its last media session), the peak of concurrent calls
(SIPp's calls in progress), the PBX's media sockets (its UDP sockets in its RTP port range,
sampled from /proc) and the media sessions it opened and RTP packets it sent (/api/stats ->
media). A step is clean with < 0.1 % failures, no call left active and callers connected
within --max-connect-ms on average; the ladder stops at the first step that is not.
At the end the PBX log is scanned for warnings, errors and exceptions.
Every loop is bounded: fixed rate lists, SIPp call limits (-m) and timeouts, bounded waits.

    python benchmarks/bench_calls.py [--rates-a 100,200,...] [--rates-b ...]
        [--rates-ceiling ...] [--duration 5] [--hold-ms 1000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.pbx_harness import REALM, RunningPbx, free_port, start_pbx  # noqa: E402

SIPP = ROOT / "benchmarks" / "sipp"
CARRIER_WAIT_BYE = SIPP / "calls_carrier_wait_bye.xml"
CARRIER_HANGUP = SIPP / "calls_carrier_hangup.xml"
AGENT_ANSWER = SIPP / "calls_agent_answer.xml"
ANSWER_THEN_BYE = SIPP / "calls_answer_then_bye.xml"
REGISTER = SIPP / "register_auth.xml"
CLK_TCK = os.sysconf("SC_CLK_TCK")

DID_GREETING = "+4930555000"
DID_AGENT = "+4930555001"
CALLER = "+4917600000001"
GREETING_PROMPT = "en/minute"  # the shortest announcement: 0.66 s
GREETING_MS = 660
QUEUE = "bench"
FIRST_AGENT = 20000
RTP_PORTS = (16384, 32767)  # below the kernel's ephemeral range, where SIPp's ports come from
SAMPLE_S = 0.5


@dataclass
class Step:
    case: str
    rate: int
    attempted: int
    succeeded: int
    failed: int
    achieved_rate: float
    wall_s: float
    cpu_s: float = 0.0  # PBX CPU over the whole step
    cpu_pct: float = 0.0  # PBX CPU while calls were being created (100 = one core)
    peak_active: int = 0
    peak_media_sockets: int = 0
    stuck: int = 0  # calls the PBX still had active after the step's drain
    agent_calls: int = 0  # case b: calls the agents' UAS answered and completed
    setup_ms: float = 0.0  # mean INVITE -> 200 at the carrier
    call_s: float = 0.0  # mean call length at the carrier
    agent_call_s: float = 0.0  # case b: mean call length at the agents' phones
    media_sessions: int = 0  # media sessions the PBX opened in the step (/api/stats -> media)
    rtp_out: int = 0  # RTP packets the PBX sent in the step
    ticks_skipped: int = 0  # 20 ms media ticks the PBX's engine had to skip (loop too late)
    sipp_errors: str = ""
    sipp_cpu_s: float = 0.0  # the SIPp processes' CPU (carrier + answering phones) in the step

    @property
    def sipp_ms_per_call(self) -> float:
        return 1000 * self.sipp_cpu_s / self.succeeded if self.succeeded else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.attempted if self.attempted else 1.0

    @property
    def connect_ms(self) -> float:
        """How long a caller waited to talk: the setup time, and in case b also the time from
        the IVR's answer to the agent's (carrier call length minus agent call length)."""
        if self.case == "agent" and self.agent_call_s:
            return self.setup_ms + 1000 * max(0.0, self.call_s - self.agent_call_s)
        return self.setup_ms

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / self.succeeded if self.succeeded else 0.0


@dataclass
class Samples:
    """What the sampler thread saw while a step ran."""

    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_media_sockets: int = 0

    def cpu_pct_between(self, start: float, end: float) -> float:
        pairs = [(t, c) for t, c in zip(self.times, self.cpu, strict=True) if start <= t <= end]
        if len(pairs) < 2 or pairs[-1][0] <= pairs[0][0]:
            return 0.0
        return 100 * (pairs[-1][1] - pairs[0][1]) / (pairs[-1][0] - pairs[0][0])


# ---------------------------------------------------------------------- /proc


def children_cpu_s() -> float:
    """CPU of this process's waited-for children (the SIPp runs once they have exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live children (the PBX's media worker processes, if any)."""
    tree = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            tree.append(int(entry.name))
    return tree


def cpu_seconds(pid: int) -> float:
    """CPU (user + system) of ``pid`` and its children, in seconds."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def media_sockets(pid: int, low: int, high: int) -> int:
    """The process's UDP sockets bound to a local port in [low, high]."""
    inodes = set()
    for member in process_tree(pid):
        fd_dir = Path(f"/proc/{member}/fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            port = int(parts[1].rsplit(":", 1)[1], 16)
            if low <= port <= high and parts[9] in inodes:
                count += 1
    return count


class Sampler:
    """Polls the PBX every SAMPLE_S seconds (CPU, media sockets) until stopped. It reads /proc
    only: /api/stats renders every agent's ACD statistics on the PBX's event loop, which costs
    the PBX milliseconds per request with a thousand agents configured."""

    def __init__(self, pid: int, max_s: float) -> None:
        self.pid = pid
        self.max_s = max_s
        self.samples = Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Samples:
        self._thread.start()
        return self.samples

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            s = self.samples
            s.times.append(time.monotonic())
            s.cpu.append(cpu_seconds(self.pid))
            s.peak_media_sockets = max(s.peak_media_sockets,
                                       media_sockets(self.pid, *RTP_PORTS))
            self._stop.wait(SAMPLE_S)


@dataclass(frozen=True)
class PbxCounters:
    """The /api/stats counters a step compares before and after."""

    active_calls: int
    media_sessions_opened: int
    rtp_out: int
    ticks_skipped: int


def pbx_counters(pbx: RunningPbx) -> PbxCounters:
    request = urllib.request.Request(pbx.http + "/api/stats", headers=pbx.api_headers)
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        stats = json.loads(resp.read())
    media = stats.get("media") or {}  # the engine's counters (absent in older builds)
    return PbxCounters(
        int(stats["calls"].get("active", 0)), int(media.get("sessions_opened", 0)),
        int((media.get("sessions") or {}).get("packets_out", 0)),
        int(media.get("ticks_skipped", 0)),
    )


# ---------------------------------------------------------------------- SIPp


def free_udp_ports(count: int) -> int:
    """A port p such that p .. p+count-1 are free for UDP on 127.0.0.1 (SIPp's media port
    and the one after it for video)."""
    for _ in range(100):
        base = free_port(udp_and_tcp=False)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range found")


def sipp_args(scenario: Path, local_port: int, stat: Path, extra: list[str]) -> list[str]:
    return [
        "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(local_port),
        "-mi", "127.0.0.1", "-mp", str(free_udp_ports(4)), "-t", "u1",
        "-trace_stat", "-stf", str(stat), "-fd", "1", "-trace_err",
        "-nostdin", "-buff_size", "8388608", "-max_socket", "64", *extra,
    ]


def stat_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def _epoch(value: str) -> float:
    return float(value.split("\t")[-1])


def creation_rate(rows: list[dict[str, str]], calls: int) -> tuple[float, float]:
    """(calls created per second while SIPp was creating them, seconds it took)."""
    start = _epoch(rows[0]["StartTime"]) if rows else 0.0
    for row in rows:
        created = int(row["OutgoingCall(C)"])
        elapsed = _epoch(row["CurrentTime"]) - start
        if created >= calls and elapsed > 0:
            earlier = [r for r in rows if int(r["OutgoingCall(C)"]) < calls]
            if earlier:  # the last full reporting period before the end of creation
                last = earlier[-1]
                last_elapsed = _epoch(last["CurrentTime"]) - start
                if last_elapsed > 0.5:
                    return int(last["OutgoingCall(C)"]) / last_elapsed, elapsed
            return calls / elapsed, elapsed
    if rows:
        elapsed = _epoch(rows[-1]["CurrentTime"]) - start
        created = int(rows[-1]["OutgoingCall(C)"])
        return (created / elapsed if elapsed > 0 else 0.0), elapsed
    return 0.0, 0.0


def _seconds(value: str) -> float:
    """SIPp's "HH:MM:SS:uuuuuu" durations."""
    hours, minutes, seconds, micros = (int(part) for part in value.split(":"))
    return hours * 3600 + minutes * 60 + seconds + micros / 1e6


def mean_times(rows: list[dict[str, str]]) -> tuple[float, float]:
    """(mean setup time INVITE -> 200 in ms, mean call length in s) over the whole run."""
    if not rows:
        return 0.0, 0.0
    last = rows[-1]
    setup = last.get("ResponseTimesetup(C)")
    return (1000 * _seconds(setup) if setup else 0.0), _seconds(last["CallLength(C)"])


def counters(rows: list[dict[str, str]]) -> tuple[int, int]:
    if not rows:
        return 0, 0
    return int(rows[-1]["SuccessfulCall(C)"]), int(rows[-1]["FailedCall(C)"])


def error_logs(workdir: Path) -> set[Path]:
    return set(workdir.glob("*_errors.log"))


def sipp_errors(workdir: Path, before: set[Path]) -> str:
    """The first lines of the SIPp error logs written since `before` was taken."""
    lines: list[str] = []
    for path in sorted(error_logs(workdir) - before):
        lines += path.read_text(errors="replace").splitlines()
    interesting = [line for line in lines if line.strip() and not line.startswith("sipp:")]
    return "\n".join((interesting or lines)[:6])


class AnsweringPhones:
    """One auto-answering SIPp UAS per port, run for the length of one step."""

    def __init__(self, scenario: Path, ports: list[int], workdir: Path, tag: str,
                 extra: list[str]) -> None:
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        for port in ports:
            stat = workdir / f"{tag}_uas_{port}.csv"
            args = sipp_args(scenario, port, stat, ["-timeout", "120", *extra])
            proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            self.procs.append((proc, stat))
        time.sleep(0.3)  # let them bind before the first INVITE

    def stop(self) -> tuple[int, float]:
        """SIGUSR1 ends SIPp gracefully (it writes its final statistics); returns (calls
        completed, their mean length in s)."""
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGUSR1)
        ok = 0
        length = 0.0
        for proc, stat in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            rows = stat_rows(stat)
            good, _ = counters(rows)
            ok += good
            length += good * mean_times(rows)[1]
        return ok, (length / ok if ok else 0.0)


def run_carrier(target_port: int, scenario: Path, did: str, rate: int, duration: float,
                hold_ms: int, workdir: Path, tag: str) -> tuple[list[dict[str, str]], float]:
    calls = int(rate * duration)
    stat = workdir / f"{tag}_uac.csv"
    limit = max(int(rate * (hold_ms / 1000 + 2.0) * 2), 200)
    # The whole step stays within ~15 s: offered load, one hold time, and a few seconds for
    # stragglers; what has not finished then counts as failed.
    budget = int(duration + hold_ms / 1000 + 7)
    args = sipp_args(scenario, free_port(), stat, [
        f"127.0.0.1:{target_port}", "-s", did, "-key", "caller", CALLER,
        "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(limit),
        "-d", str(hold_ms), "-recv_timeout", "5000",
        "-timeout", str(budget), "-timeout_error",
    ])
    t0 = time.monotonic()
    subprocess.run(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=budget + 15, check=False)
    return stat_rows(stat), time.monotonic() - t0


# ---------------------------------------------------------------------- the PBX


def bench_config(agents: int, media_workers: int = 0, overload_lag_ms: int = 0,
                 max_calls_per_second: float | None = None) -> dict[str, Any]:
    flows = {
        "greeting": {
            "language": "en", "start": "hello",
            "nodes": {
                "hello": {"type": "play", "prompt": GREETING_PROMPT, "next": "bye"},
                "bye": {"type": "hangup"},
            },
        },
        "agents": {
            "language": "en", "start": "to_queue",
            "nodes": {"to_queue": {"type": "queue", "queue": QUEUE}},
        },
    }
    return {
        "pbx": {"name": "Call benchmark"},
        "sip": {"domain": REALM, "listen": [{"transport": "udp", "host": "127.0.0.1"}],
                "overload_lag_ms": overload_lag_ms,
                "max_calls_per_second": max_calls_per_second},
        "security": {"auth_algorithms": ["MD5"]},  # SIPp 3.6 answers MD5 only
        "logging": {"level": "warning"},
        # The agent desktop's login hashes (scrypt, one per agent, computed at start) are not
        # under test: the cheapest cost keeps start-up at seconds with a thousand agents.
        "cti": {"password_cost": 10},
        "media": {"host": "127.0.0.1", "rtp_port_min": RTP_PORTS[0],
                  "rtp_port_max": RTP_PORTS[1], "prompts_dir": str(ROOT / "prompts"),
                  "workers": media_workers},
        "agents": [{"extension": str(FIRST_AGENT + i), "name": f"Bench {i}",
                    "password": f"pw{FIRST_AGENT + i}x", "groups": [QUEUE]}
                   for i in range(agents)],
        # Hunted seat by seat; no wrap-up, so an agent is free again as soon as a call ends.
        "queues": [{"name": QUEUE, "strategy": "linear", "wrap_up_s": 0,
                    "members": [{"agent": str(FIRST_AGENT + i)} for i in range(agents)]}],
        "trunks": [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                    "inbound_addresses": ["127.0.0.1/32"]}],
        "dids": [{"number": DID_GREETING, "flow": "greeting"},
                 {"number": DID_AGENT, "flow": "agents"}],
        "flows": flows,
    }


def register_agents(pbx: RunningPbx, agents: int, ports: list[int], workdir: Path) -> int:
    """Register agent i from ports[i % len(ports)]; returns the bindings the PBX holds."""
    for index, port in enumerate(ports):
        users = workdir / f"agents_{port}.csv"
        with users.open("w") as fh:
            fh.write("SEQUENTIAL\n")
            for i in range(index, agents, len(ports)):
                ext = FIRST_AGENT + i
                fh.write(f"{ext};[authentication username={ext} password=pw{ext}x]\n")
        count = len(range(index, agents, len(ports)))
        stat = workdir / f"register_{port}.csv"
        args = sipp_args(REGISTER, port, stat, [
            f"127.0.0.1:{pbx.sip_port}", "-inf", str(users),
            "-key", "domain", REALM, "-key", "expires", "3600",
            "-r", "1000", "-rp", "1000", "-m", str(count), "-l", "500",
            "-timeout", "30", "-timeout_error", "-recv_timeout", "5000",
        ])
        subprocess.run(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60, check=False)
    return int(pbx.stats()["bindings"])


def wait_idle(pbx: RunningPbx, timeout: float) -> None:
    """Wait (bounded) until the PBX has closed every media session (a call's sessions close
    when it ends)."""
    deadline = time.monotonic() + timeout
    while media_sockets(pbx.proc.pid, *RTP_PORTS) and time.monotonic() < deadline:
        time.sleep(0.1)


def peak_current(rows: list[dict[str, str]]) -> int:
    """The most calls SIPp had in progress at once (its once-a-second reports)."""
    return max((int(row["CurrentCall"]) for row in rows), default=0)


def pbx_step(pbx: RunningPbx, case: str, rate: int, duration: float, hold_ms: int,
             workdir: Path, agent_ports: list[int]) -> Step:
    tag = f"{case}_{rate}"
    calls = int(rate * duration)
    phones = None
    if case == "agent":
        phones = AnsweringPhones(AGENT_ANSWER, agent_ports, workdir, tag, [])
    scenario, did = ((CARRIER_WAIT_BYE, DID_GREETING) if case == "greeting"
                     else (CARRIER_HANGUP, DID_AGENT))
    logs0 = error_logs(workdir)
    before = pbx_counters(pbx)
    sipp0 = children_cpu_s()
    cpu0 = cpu_seconds(pbx.proc.pid)
    t0 = time.monotonic()
    with Sampler(pbx.proc.pid, duration * 3 + 40) as samples:
        rows, wall = run_carrier(pbx.sip_port, scenario, did, rate, duration, hold_ms,
                                 workdir, tag)
        wait_idle(pbx, 2.0)
    cpu = cpu_seconds(pbx.proc.pid) - cpu0
    after = pbx_counters(pbx)
    agent_ok, agent_call_s = phones.stop() if phones else (0, 0.0)
    sipp_cpu = children_cpu_s() - sipp0
    achieved, creation_s = creation_rate(rows, calls)
    ok, failed = counters(rows)
    failed = max(failed, calls - ok)
    if case == "agent":
        failed = max(failed, calls - agent_ok)
    setup_ms, call_s = mean_times(rows)
    return Step(case, rate, calls, ok, failed, achieved, wall, cpu,
                samples.cpu_pct_between(t0 + 1.0, t0 + max(creation_s, 1.5)),
                peak_current(rows), samples.peak_media_sockets, after.active_calls, agent_ok,
                setup_ms, call_s, agent_call_s,
                after.media_sessions_opened - before.media_sessions_opened,
                after.rtp_out - before.rtp_out, after.ticks_skipped - before.ticks_skipped,
                sipp_errors(workdir, logs0), sipp_cpu)


def ceiling_step(case: str, rate: int, duration: float, hold_ms: int, workdir: Path) -> Step:
    tag = f"ceiling_{case}_{rate}"
    calls = int(rate * duration)
    port = free_port()
    logs0 = error_logs(workdir)
    sipp0 = children_cpu_s()
    if case == "greeting":
        far, carrier, pause = ANSWER_THEN_BYE, CARRIER_WAIT_BYE, GREETING_MS
    else:
        far, carrier, pause = AGENT_ANSWER, CARRIER_HANGUP, hold_ms
    phones = AnsweringPhones(far, [port], workdir, tag, ["-d", str(pause)])
    rows, wall = run_carrier(port, carrier, DID_GREETING, rate, duration, hold_ms, workdir, tag)
    time.sleep(0.5)
    far_ok, _ = phones.stop()
    sipp_cpu = children_cpu_s() - sipp0
    achieved, _ = creation_rate(rows, calls)
    ok, failed = counters(rows)
    failed = max(failed, calls - ok, calls - far_ok)
    setup_ms, call_s = mean_times(rows)
    return Step(f"ceiling-{case}", rate, calls, ok, failed, achieved, wall,
                peak_active=peak_current(rows), setup_ms=setup_ms, call_s=call_s,
                sipp_errors=sipp_errors(workdir, logs0), sipp_cpu_s=sipp_cpu)


# ---------------------------------------------------------------------- the run


def scan_log(pbx: RunningPbx) -> tuple[Counter[str], list[str]]:
    """(count per level:event, a few example lines) of the PBX log's warnings and worse."""
    seen: Counter[str] = Counter()
    examples: list[str] = []
    for entry in pbx.logs():
        level = str(entry.get("level", "")).lower()
        text = json.dumps(entry)
        if level in ("warning", "error", "critical") or "exception" in entry \
                or "Traceback" in text:
            key = f"{level}:{entry.get('event')}"
            if key not in seen and len(examples) < 8:
                examples.append(text[:600])
            seen[key] += 1
    for line in pbx.log_path.read_text(errors="replace").splitlines():
        if line.startswith("Traceback") and len(examples) < 10:
            examples.append(line)
    return seen, examples


def is_clean(step: Step, max_failure: float, max_connect_ms: float) -> bool:
    return (step.failure_ratio < max_failure and step.stuck == 0
            and step.connect_ms <= max_connect_ms)


def print_step(step: Step) -> None:
    extra = (f"  setup {step.setup_ms:.0f} ms  peak concurrent {step.peak_active}  "
             f"sipp {step.sipp_ms_per_call:.2f} ms cpu/call")
    if not step.case.startswith("ceiling"):
        extra += (f"  pbx cpu {step.cpu_pct:.0f} %  {step.cpu_ms_per_call:.2f} ms cpu/call  "
                  f"media sockets {step.peak_media_sockets} (sessions opened "
                  f"{step.media_sessions}, rtp out {step.rtp_out}, ticks skipped "
                  f"{step.ticks_skipped})")
        if step.case == "agent":
            extra += (f"  agent-answered {step.agent_calls}  to agent "
                      f"{step.connect_ms:.0f} ms")
        if step.stuck:
            extra += f"  STUCK {step.stuck}"
    print(f"{step.case:>16} {step.rate:>5}/s: ok {step.succeeded}/{step.attempted} "
          f"failed {step.failed} ({100 * step.failure_ratio:.3f} %) "
          f"achieved {step.achieved_rate:.0f}/s{extra}", flush=True)
    if step.failed and step.sipp_errors:
        print("    sipp: " + step.sipp_errors.replace("\n", "\n    sipp: "))


def ladder(run: Any, rates: list[int], max_failure: float,
           max_connect_ms: float) -> tuple[list[Step], Step | None]:
    """Run steps at increasing rates; stop after the first step that is not clean (failures,
    stuck calls, callers waiting too long to be connected) or falls behind the offered rate."""
    steps: list[Step] = []
    best: Step | None = None
    for rate in rates:
        step = run(rate)
        steps.append(step)
        print_step(step)
        clean = is_clean(step, max_failure, max_connect_ms)
        if clean and (best is None or step.achieved_rate > best.achieved_rate):
            best = step
        if not clean or step.achieved_rate < 0.9 * rate:
            break
    return steps, best


def parse_rates(text: str) -> list[int]:
    return [int(r) for r in text.split(",") if r.strip()]


@dataclass
class CaseRun:
    steps: list[Step]
    best: Step | None
    idle_cpu_pct: float = 0.0
    peak_rss_mib: float = 0.0
    log_levels: Counter[str] = field(default_factory=Counter)
    log_examples: list[str] = field(default_factory=list)


def run_pbx_case(case: str, rates: list[int], args: argparse.Namespace, agents: int,
                 workdir: Path) -> CaseRun:
    """A fresh PBX for one case, so one case's leftovers (dialogs kept 40 s for late
    retransmissions) do not land in the other's figures."""
    pbx = start_pbx(workdir / f"pbx-{case}",
                    bench_config(agents if case == "agent" else 0, args.media_workers,
                                 args.overload_lag_ms, args.max_calls_per_second))
    try:
        agent_ports: list[int] = []
        if case == "agent":
            agent_ports = [free_port() for _ in range(args.agent_ports)]
            bindings = register_agents(pbx, agents, agent_ports, workdir)
            print(f"registered {bindings}/{agents} agents on {len(agent_ports)} SIPp ports",
                  flush=True)
        time.sleep(1.0)
        idle0 = cpu_seconds(pbx.proc.pid)
        time.sleep(2.0)
        idle = 100 * (cpu_seconds(pbx.proc.pid) - idle0) / 2.0
        steps, best = ladder(
            lambda r: pbx_step(pbx, case, r, args.duration, args.hold_ms, workdir,
                               agent_ports),
            rates, args.max_failure, args.max_connect_ms)
        rss = peak_rss_mib(pbx.proc.pid)
        levels, examples = scan_log(pbx)
    finally:
        code = pbx.stop()
    print(f"{case}: pbx idle cpu {idle:.1f} %, peak rss {rss:.0f} MiB, exit code {code}; "
          "log warnings/errors: "
          + (", ".join(f"{k} x{v}" for k, v in levels.items()) or "none"), flush=True)
    for line in examples:
        print("    " + line)
    return CaseRun(steps, best, idle, rss, levels, examples)


def markdown_table(steps: list[Step]) -> str:
    rows = [
        "| case | offered /s | calls | failed | achieved /s | mean setup ms | to agent ms "
        "| peak concurrent calls | PBX CPU | CPU ms per call | SIPp CPU ms per call "
        "| peak media sockets | media sessions opened | agent-answered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        pbx = not s.case.startswith("ceiling")
        agent = s.case == "agent"
        rows.append(
            f"| {s.case} | {s.rate:,} | {s.attempted:,} | {s.failed:,} "
            f"({100 * s.failure_ratio:.2f} %) | {s.achieved_rate:,.0f} | {s.setup_ms:.0f} | "
            + (f"{s.connect_ms:.0f}" if agent else "–")
            + f" | {s.peak_active:,} | "
            + (f"{s.cpu_pct:.0f} % | {s.cpu_ms_per_call:.2f} | " if pbx else "– | – | ")
            + f"{s.sipp_ms_per_call:.2f} | "
            + (f"{s.peak_media_sockets:,} | {s.media_sessions:,} | " if pbx else "– | – | ")
            + (f"{s.agent_calls:,} |" if agent else "– |")
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates-a", default="100,200,400,600,700,800,900,1000,1200")
    parser.add_argument("--rates-b", default="100,200,300,350,400,450,500,600")
    parser.add_argument("--rates-ceiling", default="1000,2000,4000,8000,12000,16000,20000")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of offered load")
    parser.add_argument("--hold-ms", type=int, default=1000,
                        help="case b: the caller hangs up this long after the 200")
    parser.add_argument("--agent-ports", type=int, default=2,
                        help="case b: SIPp UAS processes (ports) the agents are spread over")
    parser.add_argument("--cases", default="ceiling,greeting,agent")
    parser.add_argument("--max-failure", type=float, default=0.001)
    parser.add_argument("--max-connect-ms", type=float, default=100.0,
                        help="a step is clean only if callers are answered (case b: talking "
                             "to an agent) within this many ms on average")
    parser.add_argument("--media-workers", type=int, default=0,
                        help="the PBX's media.workers (0: RTP in the PBX process); CPU and "
                             "sockets are counted over the PBX and its workers")
    parser.add_argument("--overload-lag-ms", type=int, default=0,
                        help="the PBX's sip.overload_lag_ms (0: take every call)")
    parser.add_argument("--max-calls-per-second", type=float, default=None,
                        help="the PBX's sip.max_calls_per_second (default: no limit)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (PBX logs, SIPp statistics and errors)")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    cases = set(args.cases.split(","))
    rates_a, rates_b = parse_rates(args.rates_a), parse_rates(args.rates_b)
    rates_c = parse_rates(args.rates_ceiling)
    # Seat-by-seat hunting needs one free agent per call in conversation, with a margin.
    agents = int(max(rates_b) * (args.hold_ms / 1000 + 0.5) * 1.5) + 50
    workdir = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    print(f"nproc={os.cpu_count()} duration={args.duration}s per step, hold {args.hold_ms} ms "
          f"(case b), {agents} agents, workdir {workdir}", flush=True)
    all_steps: list[Step] = []
    best: dict[str, Step | None] = {}
    if "ceiling" in cases:
        for case in ("greeting", "agent"):
            steps, best[f"ceiling-{case}"] = ladder(
                lambda r, c=case: ceiling_step(c, r, args.duration, args.hold_ms, workdir),
                rates_c, args.max_failure, args.max_connect_ms)
            all_steps += steps
    for case, rates in (("greeting", rates_a), ("agent", rates_b)):
        if case in cases:
            result = run_pbx_case(case, rates, args, agents, workdir)
            all_steps += result.steps
            best[case] = result.best
    print()
    print(markdown_table(all_steps))
    print()
    for case in ("greeting", "agent"):
        if case not in cases:
            continue
        step = best.get(case)
        ceiling = best.get(f"ceiling-{case}")
        if step is None:
            print(f"RESULT {case}: no clean step")
            continue
        ratio = (f", {100 * step.achieved_rate / ceiling.achieved_rate:.1f} % of SIPp's "
                 f"ceiling {ceiling.achieved_rate:.0f}/s" if ceiling else "")
        print(f"RESULT {case}: {step.achieved_rate:.0f} calls/s sustained (offered "
              f"{step.rate}/s, {100 * step.failure_ratio:.3f} % failures){ratio}, pbx cpu "
              f"{step.cpu_pct:.0f} %, {step.cpu_ms_per_call:.2f} ms cpu per call (sippy: "
              f"3.3-4.3), {step.peak_active} concurrent calls, "
              f"{step.peak_media_sockets} media sockets")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(best.get(c) for c in ("greeting", "agent") if c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
