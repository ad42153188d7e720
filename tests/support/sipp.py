"""Run SIPp scenarios from tests, and pick free ports on 127.0.0.1.

SIPp runs in the foreground of its own subprocess (``-nostdin``, screen output to a log file,
no ``-bg``), with a global ``-timeout`` so it cannot outlive a test by much even if nobody
stops it; :class:`Sipp` also kills it when its ``with`` block ends. Scenario files live in
``tests/support/sipp/``; refer to them by file name.

Exit codes (SIPp 3.6): 0 every call succeeded, 1 at least one call failed, 97 stopped by an
internal command, 99 ended before any call was processed, 255/254 fatal error (e.g. bind).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

SCENARIO_DIR = Path(__file__).with_name("sipp")
SIPP = shutil.which("sipp") or "/usr/bin/sipp"

_SOCKET_TYPES = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}


def free_port(transport: str = "udp") -> int:
    """A port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, _SOCKET_TYPES[transport]) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_bound(port: int, transport: str = "udp") -> bool:
    """True when a socket is bound (UDP) or listening (TCP) on ``port``, per /proc/net.

    Reading the kernel's table, rather than trying to bind the port, cannot steal the port
    from the process that is about to bind it.
    """
    table = Path("/proc/net") / transport
    listen = "0A"  # TCP_LISTEN in include/net/tcp_states.h
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and (transport == "udp" or fields[3] == listen):
            return True
    return False


class SippError(RuntimeError):
    """SIPp did not start, did not finish in time, or failed its scenario."""


class Sipp:
    """One SIPp process acting as a server (UAS) for a scenario, on 127.0.0.1.

    ``keys`` become ``-key name value`` (used as ``[name]`` in the scenario). ``calls`` is
    SIPp's ``-m``: it exits after that many calls. Use as a context manager, or call
    :meth:`start`, then :meth:`wait` (returns the exit code) and finally :meth:`stop`.
    """

    def __init__(self, scenario: str | Path, log_dir: str | Path, *, port: int | None = None,
                 transport: str = "udp", calls: int = 1, timeout_s: float = 40.0,
                 keys: dict[str, str] | None = None, extra_args: tuple[str, ...] = ()) -> None:
        path = Path(scenario)
        self.scenario = path if path.is_absolute() else SCENARIO_DIR / path
        if not self.scenario.is_file():
            raise SippError(f"no SIPp scenario {self.scenario}")
        if transport not in _SOCKET_TYPES:
            raise SippError(f"transport must be udp or tcp, not {transport!r}")
        self.log_dir = Path(log_dir)
        self.transport = transport
        self._auto_port = port is None
        self.port = port or free_port(transport)
        self.calls = calls
        self.timeout_s = timeout_s
        self.keys = keys or {}
        self.extra_args = extra_args
        self.output_log = self.log_dir / f"sipp-{self.scenario.stem}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``"127.0.0.1:port"``, as a registrar or proxy argument for a softphone account."""
        return f"127.0.0.1:{self.port}"

    def command_line(self) -> list[str]:
        args = [SIPP, "-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.port),
                "-t", "u1" if self.transport == "udp" else "t1", "-m", str(self.calls),
                "-nostdin", "-timeout", f"{int(self.timeout_s)}s", "-timeout_error"]
        for name, value in self.keys.items():
            args += ["-key", name, str(value)]
        return args + list(self.extra_args)

    def start(self, ready_timeout: float = 10.0) -> Sipp:
        """Start SIPp and wait until it holds its port.

        When the port was picked here and someone else took it in the meantime, SIPp exits
        without binding; then it is started again on another free port (three tries).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            if self._spawn_and_wait_bound(ready_timeout):
                return self
            if not self._auto_port or attempt == 2:
                break
            self.port = free_port(self.transport)
        code = self._proc.returncode if self._proc else None
        raise SippError(f"sipp exited with {code} before binding {self.address}{self._tail()}")

    def _spawn_and_wait_bound(self, ready_timeout: float) -> bool:
        with open(self.output_log, "ab") as output:
            self._proc = subprocess.Popen(
                self.command_line(), stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, cwd=self.log_dir, start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while not port_is_bound(self.port, self.transport):
            if self._proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.stop()
                raise SippError(f"sipp did not bind {self.address} in {ready_timeout} s")
            time.sleep(0.05)
        return True

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for SIPp to finish its calls and return its exit code."""
        assert self._proc is not None, "not started"
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise SippError(f"sipp still running after {timeout} s{self._tail()}") from None

    def stop(self, grace: float = 3.0) -> int | None:
        """Terminate SIPp (SIGTERM, then SIGKILL); safe to call twice."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def output(self) -> str:
        return self.output_log.read_text(errors="replace") if self.output_log.exists() else ""

    def _tail(self) -> str:
        return "\n" + "\n".join(self.output().splitlines()[-40:])

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
