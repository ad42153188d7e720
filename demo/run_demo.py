"""`make demo`: the example call center, live — the PBX on config/pbx.yaml, simulated agents
(pjsua2 softphones that register, answer and talk) and a simulated carrier (SIPp placing calls
with key presses), until Ctrl-C or --duration.

    .venv/bin/python demo/run_demo.py [--open] [--duration S] [--agents N] [--calls N] ...

The PBX runs on a copy of the config in a temporary folder (with its own database there), on
the configured SIP and HTTP ports when they are free, else on free ones. The copy adds a
screen-pop form when the config has none (--no-form: leave it as it is), and with --open the
hotline's business hours are every day, all day (the example is closed evenings, weekends and
on holidays: callers then hear "closed" and are hung up). config/pbx.yaml is never changed.

What to open is printed at the start: the wallboard (sign in as a supervisor) and the agent
desktop (sign in as one of the simulated agents, with their SIP password, to see the pops).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Run as a script (python demo/run_demo.py): demo, tests.support and pbx come from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from demo.agents import AgentFloor
from demo.carrier import CallerMix, PlannedCall, start_call

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0
STATUS_EVERY_S = 10.0
DEMO_FORM: dict[str, Any] = {
    "title": "Anrufer",
    "fields": [
        {"name": "customer_no", "label": "Kundennummer", "source": "customer.customer_no"},
        {"name": "name", "label": "Name", "source": "customer.name",
         "permissions": {"default": "read_write"}},
        {"name": "status", "label": "Status", "source": "customer.status"},
        {"name": "tariff", "label": "Tarif", "source": "customer.fields.tariff"},
        {"name": "contract", "label": "Vertrag", "source": "customer.fields.contract"},
        {"name": "concern", "label": "Anliegen", "source": "concern"},
        {"name": "waited", "label": "Wartezeit (s)", "source": "call.waited_s"},
        {"name": "note", "label": "Notiz", "type": "textarea",
         "permissions": {"default": "read_write"}},
    ],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "pbx.yaml")
    parser.add_argument("--open", action="store_true",
                        help="business hours every day, all day (in the demo's copy only)")
    parser.add_argument("--no-form", action="store_true",
                        help="do not add a screen-pop form when the config has none")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--agents", type=int, default=6,
                        help="how many of the config's agents get a simulated phone (6)")
    parser.add_argument("--calls", type=int, default=100,
                        help="calls the carrier places at most (100)")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="seconds between two new calls, on average (10)")
    parser.add_argument("--max-concurrent", type=int, default=12,
                        help="carrier calls up at the same time at most (12)")
    parser.add_argument("--talk", type=float, nargs=2, default=(20.0, 45.0), metavar=("MIN", "MAX"),
                        help="agents hang up after this many seconds of talk (20 45)")
    parser.add_argument("--patience", type=float, default=120.0,
                        help="callers hang up after this many seconds after their keys (120)")
    parser.add_argument("--voice", type=Path, default=ROOT / "prompts" / "de" / "ad_1.wav",
                        help="WAV the agents play as their voice (a 440 Hz tone if missing)")
    parser.add_argument("--sip-port", type=int, default=0, help="default: the config's, if free")
    parser.add_argument("--http-port", type=int, default=0, help="default: the config's, if free")
    parser.add_argument("--seed", type=int, default=None, help="repeatable caller mix")
    parser.add_argument("--keep", action="store_true", help="keep the demo's folder afterwards")
    args = parser.parse_args(argv)
    if args.agents < 1 or args.calls < 0 or args.interval <= 0 or args.talk[0] > args.talk[1]:
        parser.error("--agents >= 1, --calls >= 0, --interval > 0, --talk MIN <= MAX")
    return args


# ---------------------------------------------------------------------------- configuration


def demo_config(source: dict[str, Any], always_open: bool, add_form: bool) -> dict[str, Any]:
    """The copy the demo runs on: prompts by absolute path, optionally open all day and with
    a screen-pop form."""
    config = json.loads(json.dumps(source, default=str))  # a deep copy; dates become text
    media = config.setdefault("media", {})
    prompts = Path(media.get("prompts_dir", "prompts"))
    media["prompts_dir"] = str(prompts if prompts.is_absolute() else Path.cwd() / prompts)
    if always_open:
        for flow in (config.get("flows") or {}).values():
            for schedule in (flow.get("schedules") or {}).values():
                schedule["hours"] = [{"days": "mon-sun", "start": "00:00", "end": "23:59"}]
                schedule["holidays"] = []
    if add_form and not config.get("forms"):
        config["forms"] = {"default": DEMO_FORM}
    return config


def closed_schedules(config: dict[str, Any]) -> list[str]:
    """Names of the flows' business-hours schedules that are closed right now."""
    from pbx.ivr.conditions import is_open
    from pbx.ivr.schema import Schedule

    closed = []
    for flow in (config.get("flows") or {}).values():
        zone = ZoneInfo(flow.get("timezone") or "UTC")
        for name, raw in (flow.get("schedules") or {}).items():
            if not is_open(Schedule.model_validate(raw), time.time(), zone):
                closed.append(name)
    return closed


def simulated_agents(config: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The first `count` enabled agents with the role agent (supervisors watch the wallboard)."""
    agents = [a for a in config["agents"]
              if a.get("enabled", True) and a.get("role", "agent") == "agent"]
    return agents[:count]


# ---------------------------------------------------------------------------- ports and the PBX


def port_is_free(port: int, hosts: set[str], udp: bool = True) -> bool:
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for host in hosts:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for kind in kinds:
            with socket.socket(family, kind) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    return False
    return True


def free_port(hosts: set[str] | None = None, udp: bool = True, even: bool = False) -> int:
    hosts = hosts or {"127.0.0.1"}
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if even:
            port -= port % 2  # Linux hands out odd ports to bind(0); RTP wants an even one
        if port_is_free(port, hosts, udp) and (not even or port_is_free(port + 1, hosts, udp)):
            return port
    raise RuntimeError("no free port found")


def choose_ports(config: dict[str, Any], args: argparse.Namespace) -> tuple[int, int]:
    listen = config["sip"].get("listen") or [{"host": "127.0.0.1", "port": 5060}]
    hosts = {entry.get("host", "127.0.0.1") for entry in listen}
    configured_sip = int(listen[0].get("port", 5060))
    sip = args.sip_port or (configured_sip if port_is_free(configured_sip, hosts)
                            else free_port(hosts))
    configured_http = int((config.get("http") or {}).get("port", 8080))
    http = args.http_port or (configured_http if port_is_free(configured_http, {"127.0.0.1"},
                                                              udp=False)
                              else free_port(udp=False))
    return sip, http


class Pbx:
    """`pbx run` in a subprocess, its log in the demo folder."""

    def __init__(self, config_path: Path, data_dir: Path, log: Path, sip_port: int,
                 http_port: int) -> None:
        self.http = f"http://127.0.0.1:{http_port}"
        self.sip_port = sip_port
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pbx.cli", "run", "--config", str(config_path),
                 "--sip-port", str(sip_port), "--http-port", str(http_port),
                 "--data-dir", str(data_dir), "--log-format", "json"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.http + path, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the PBX exited with {self.proc.returncode}; see {self.log}")
            with contextlib.suppress(OSError, ValueError):
                if self.get("/health").get("status") == "ok":
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the PBX did not start within {START_TIMEOUT_S:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: hangs up the calls still up
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ---------------------------------------------------------------------------- the carrier


class Carrier:
    """Places the calls: one SIPp process per call, paced and bounded."""

    def __init__(self, folder: Path, mix: CallerMix, pbx_port: int, args: argparse.Namespace,
                 rng: random.Random) -> None:
        sipp = shutil.which("sipp")
        if sipp is None:
            raise RuntimeError("sipp is not installed (make system-deps installs sip-tester)")
        self.sipp = sipp
        self.folder = folder
        self.mix = mix
        self.pbx_port = pbx_port
        self.args = args
        self.rng = rng
        self.placed = 0
        self.finished = 0
        self.running: dict[int, tuple[subprocess.Popen[bytes], PlannedCall]] = {}
        self.next_at = time.monotonic() + 2.0

    def tick(self) -> None:
        for number, (proc, _) in list(self.running.items()):
            if proc.poll() is not None:
                del self.running[number]
                self.finished += 1
        now = time.monotonic()
        if (now < self.next_at or self.placed >= self.args.calls
                or len(self.running) >= self.args.max_concurrent):
            return
        self.placed += 1
        call = self.mix.next_call()
        proc = start_call(self.sipp, self.folder, f"call{self.placed:04d}", call, self.pbx_port,
                          free_port(), free_port(even=True), self.args.patience)
        self.running[self.placed] = (proc, call)
        print(f"  call {self.placed:3d}: {call.describe()}", flush=True)
        # Poisson arrivals around the mean interval, never closer than a second.
        self.next_at = now + max(1.0, self.rng.expovariate(1.0 / self.args.interval))

    @property
    def done(self) -> bool:
        return self.placed >= self.args.calls and not self.running

    def stop(self) -> None:
        for proc, _ in self.running.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc, _ in self.running.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.running.clear()


# ---------------------------------------------------------------------------- the run


def banner(pbx: Pbx, config: dict[str, Any], agents: list[dict[str, Any]], folder: Path,
           always_open: bool) -> None:
    supervisors = [a for a in config["agents"]
                   if a.get("role") in ("supervisor", "admin") and a.get("enabled", True)]
    print("\n=== Muster Hotline demo is running ===========================================")
    print(f"  Wallboard:      {pbx.http}/wallboard")
    for sup in supervisors:
        print(f"                  sign in as {sup['extension']} / {sup['password']}"
              f"  ({sup['name']}, {sup['role']})")
    print(f"  Agent desktop:  {pbx.http}/desk")
    for agent in agents:
        print(f"                  sign in as {agent['extension']} / {agent['password']}"
              f"  ({agent['name']}, simulated phone)")
    dids = ", ".join(d["number"] for d in config.get("dids") or [])
    print(f"  SIP:            127.0.0.1:{pbx.sip_port} (DIDs {dids})")
    print(f"  Stats, CDRs:    {pbx.http}/api/stats  {pbx.http}/api/cdrs  {pbx.http}/metrics")
    print(f"  Files, logs:    {folder}")
    closed = [] if always_open else closed_schedules(config)
    if closed:
        print(f"  NOTE: business hours ({', '.join(closed)}) are closed right now: callers hear "
              "'closed' and are hung up. Run with --open (make demo DEMO_ARGS=--open).")
    print("  Ctrl-C stops everything.\n", flush=True)


def status_line(pbx: Pbx, carrier: Carrier, floor: AgentFloor) -> str:
    try:
        stats = pbx.get("/api/stats")
    except (OSError, ValueError) as exc:
        return f"  [status unavailable: {exc}]"
    calls = stats.get("calls", {})
    acd = stats.get("acd") or {}
    queues = acd.get("queues") or stats.get("queues") or []
    waiting = sum(int(q.get("waiting", 0)) for q in queues) if isinstance(queues, list) else 0
    return (f"  -- placed {carrier.placed}, carrier calls up {len(carrier.running)}, "
            f"PBX calls active {calls.get('active', '?')}, waiting in queues {waiting}, "
            f"answered by agents {floor.answered}")


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    source = yaml.safe_load(args.config.read_text())
    config = demo_config(source, args.open, not args.no_form)
    folder = Path(tempfile.mkdtemp(prefix="pbx-demo-"))
    for sub in ("data", "agents", "carrier"):
        (folder / sub).mkdir()
    config_path = folder / "pbx.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    sip_port, http_port = choose_ports(config, args)
    agents = simulated_agents(config, args.agents)
    voice = args.voice if args.voice.is_file() else None

    pbx = Pbx(config_path, folder / "data", folder / "pbx.log", sip_port, http_port)
    floor = AgentFloor(folder / "agents", config["sip"]["domain"], sip_port,
                       tuple(args.talk), voice, rng)
    carrier: Carrier | None = None
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"starting the PBX (SIP {sip_port}, HTTP {http_port}) ...", flush=True)
        pbx.wait_ready()
        print(f"starting {len(agents)} agent phones ...", flush=True)
        floor.start(agents)
        carrier = Carrier(folder / "carrier", CallerMix(config, rng), sip_port, args, rng)
        banner(pbx, config, agents, folder, args.open)
        end_at = time.monotonic() + args.duration if args.duration > 0 else None
        next_status = time.monotonic() + STATUS_EVERY_S
        announced_done = False
        while not stopping:
            if pbx.proc.poll() is not None:
                print(f"the PBX exited with {pbx.proc.returncode}; see {pbx.log}")
                return 1
            carrier.tick()
            now = time.monotonic()
            if now >= next_status:
                print(status_line(pbx, carrier, floor), flush=True)
                next_status = now + STATUS_EVERY_S
            if carrier.done and not announced_done:
                print(f"  the carrier has placed all {carrier.placed} calls; Ctrl-C stops the "
                      "demo", flush=True)
                announced_done = True
            if end_at is not None and now >= end_at:
                break
            time.sleep(0.2)
        return 0
    finally:
        print("stopping: carrier, agents, PBX ...", flush=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
        if carrier is not None:
            carrier.stop()
        floor.stop()
        pbx.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
        print("demo stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
