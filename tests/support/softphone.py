"""Drive pjsua2 softphones from pytest: each :class:`Softphone` is one agent subprocess.

The agent (:mod:`tests.support.softphone_agent`) owns one PJSIP endpoint. This client writes
JSON-line commands to the agent's stdin and reads JSON-line replies and events from a pipe
whose write end the agent inherits (``pass_fds``); the agent's stdout and stderr, where pjsua
prints what it likes, go to a log file and never into the protocol. The full protocol (every
command, every event and its fields) is described in the agent's module docstring.

A reader thread files every event into a history. :meth:`Softphone.wait_for` returns the
first event in that history that matches and that no earlier ``wait_for`` returned, so a test
can wait for events that have already arrived, and two waits for the same kind of event
return two different events in arrival order::

    with Softphone("alice", log_dir=tmp_path) as alice, Softphone("bob", log_dir=tmp_path) as bob:
        acc_a = alice.add_account("alice")
        bob.add_account("test", auto_answer=200)
        call = alice.make_call(acc_a, bob.uri("test"))
        alice.wait_for("state", call=call, state="CONFIRMED")
        alice.play_tone(call, 1000)

Match values may be plain values (compared with ``==``) or predicates, e.g.
``wait_for("state", code=lambda c: c >= 300)``. Use ``from_=`` for the ``from`` field.

Leaving the ``with`` block (or :meth:`Softphone.close`) asks the agent to shut down, then
sends SIGTERM and finally SIGKILL after a grace period, so no pjsua process outlives a test.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.support.audio import AudioAnalysis, analyze_wav

__all__ = [
    "AGENT_SCRIPT",
    "AudioAnalysis",
    "Event",
    "Softphone",
    "SoftphoneError",
    "SoftphonePool",
    "SoftphoneTimeout",
    "analyze_wav",
    "exchange_tones",
]

AGENT_SCRIPT = Path(__file__).with_name("softphone_agent.py")
DEFAULT_TIMEOUT = 15.0  # seconds; generous, the test machine may have two busy cores
START_TIMEOUT = 30.0

Event = dict[str, Any]
Matcher = Any  # a value compared with ==, or a callable predicate


class SoftphoneError(RuntimeError):
    """The agent refused a command, died, or could not be started."""


class SoftphoneTimeout(SoftphoneError, TimeoutError):
    """An expected reply or event did not arrive in time."""


_live_phones: set[Softphone] = set()


@atexit.register
def _kill_leftovers() -> None:
    # Last line of defence if a test run is torn down without closing its phones.
    for phone in list(_live_phones):
        phone.close(grace=1.0)


class Softphone:
    """A pjsua2 softphone in its own process, driven by commands and observed through events.

    Create it, then :meth:`start` it or use it as a context manager. Commands block until the
    agent replies and raise :class:`SoftphoneError` when it refuses; waits raise
    :class:`SoftphoneTimeout`. All timeouts default to ``timeout`` (seconds).
    """

    def __init__(self, name: str = "phone", *, log_dir: str | Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT, start_timeout: float = START_TIMEOUT,
                 log_level: int = 5, python: str | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.python = python or sys.executable
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="softphone-"))
        self.pjsua_log = self.log_dir / f"{name}.pjsua.log"
        self.output_log = self.log_dir / f"{name}.output.log"
        self.transports: dict[str, dict[str, Any]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._channel_open = False
        self._cond = threading.Condition()
        self._history: list[Event] = []
        self._consumed: set[int] = set()
        self._replies: dict[int, Event] = {}
        self._next_id = 1
        self._send_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Softphone:
        """Spawn the agent and wait for its ``ready`` event; returns ``self``."""
        if self._proc is not None:
            raise SoftphoneError(f"{self.name}: already started")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        self._output = open(self.output_log, "ab")  # closed in close()
        try:
            self._proc = subprocess.Popen(
                [self.python, str(AGENT_SCRIPT), "--event-fd", str(write_fd),
                 "--log-file", str(self.pjsua_log), "--log-level", str(self.log_level)],
                stdin=subprocess.PIPE, stdout=self._output, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            self._output.close()
            raise
        finally:
            os.close(write_fd)
        _live_phones.add(self)
        self._channel_open = True
        self._reader = threading.Thread(target=self._read_channel, args=(read_fd,),
                                        name=f"softphone-{self.name}", daemon=True)
        self._reader.start()
        try:
            ready = self.wait_for("ready", timeout=self.start_timeout)
        except SoftphoneError:
            self.close(grace=1.0)
            raise
        self.transports = ready["transports"]
        return self

    def request_shutdown(self, unregister: bool = True) -> None:
        """Ask the agent to stop (``shutdown`` command, then EOF on stdin) without waiting.

        pjsua's ``libDestroy()`` lingers about a second; asking several phones first and
        then closing them one by one lets those seconds overlap.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._write({"id": 0, "cmd": "shutdown", "args": {"unregister": unregister}})
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()

    def close(self, grace: float = 5.0, unregister: bool = True) -> int | None:
        """Shut the agent down: ``shutdown`` command, then SIGTERM, then SIGKILL.

        Each step gets ``grace`` seconds. Safe to call twice. Returns the exit code
        (0 after a clean shutdown).
        """
        proc = self._proc
        if proc is None:
            return None
        self.request_shutdown(unregister)
        for stop in (None, proc.terminate, proc.kill):
            if proc.poll() is not None:
                break
            if stop is not None:
                with contextlib.suppress(ProcessLookupError):
                    stop()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=grace)
        if self._output is not None:
            self._output.close()
        _live_phones.discard(self)
        return proc.returncode

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        """Signal the agent (SIGTERM makes it hang up, close recorders and exit)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def close_stdin(self) -> None:
        """End the command stream; the agent shuts down as for SIGTERM."""
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.close()

    def wait_exit(self, timeout: float | None = None) -> int:
        """Wait for the agent process to exit and return its exit code."""
        if self._proc is None:
            raise SoftphoneError(f"{self.name}: not started")
        try:
            return self._proc.wait(timeout=self.timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            raise SoftphoneTimeout(f"{self.name}: agent still running{self._tail()}") from None

    def __enter__(self) -> Softphone:
        return self.start() if self._proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- addresses -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self.transports["udp"]["host"])

    @property
    def port(self) -> int:
        """The UDP SIP port."""
        return int(self.transports["udp"]["port"])

    @property
    def tcp_port(self) -> int:
        return int(self.transports["tcp"]["port"])

    def uri(self, user: str = "test", transport: str = "udp") -> str:
        """A SIP URI that reaches this phone directly, without a registrar."""
        port = self.transports[transport]["port"]
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"sip:{user}@{self.transports[transport]['host']}:{port}{suffix}"

    # -- protocol --------------------------------------------------------------------------

    def command(self, cmd: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one command and return its result; raise :class:`SoftphoneError` if refused."""
        if self._proc is None:
            raise SoftphoneError(f"{self.name}: not started")
        with self._send_lock:
            request_id = self._next_id
            self._next_id += 1
        try:
            self._write({"id": request_id, "cmd": cmd, "args": args})
        except (OSError, ValueError) as exc:
            raise SoftphoneError(f"{self.name}: cannot send {cmd}: {exc}{self._tail()}") from exc
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while request_id not in self._replies:
                self._wait_or_fail(deadline, f"reply to {cmd}")
            reply = self._replies.pop(request_id)
        if not reply.get("ok"):
            raise SoftphoneError(f"{self.name}: {cmd}({args}) failed: {reply.get('error')}")
        result: dict[str, Any] = reply.get("result") or {}
        return result

    def wait_for(self, event: str, timeout: float | None = None, **match: Matcher) -> Event:
        """Return the first not yet returned ``event`` whose fields match ``match``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while True:
                for index, item in enumerate(self._history):
                    if index not in self._consumed and _matches(item, event, match):
                        self._consumed.add(index)
                        return item
                self._wait_or_fail(deadline, f"event {event}{_describe(match)}",
                                   event_name=event)

    def collect(self, event: str, count: int, timeout: float | None = None,
                **match: Matcher) -> list[Event]:
        """Wait until ``count`` matching events (not yet returned) arrived; return them in
        arrival order. Follow with :meth:`assert_no_event` to prove there were no more."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while True:
                found = [index for index, item in enumerate(self._history)
                         if index not in self._consumed and _matches(item, event, match)]
                if len(found) >= count:
                    self._consumed.update(found[:count])
                    return [self._history[index] for index in found[:count]]
                self._wait_or_fail(deadline, f"{count} x event {event}{_describe(match)}",
                                   event_name=event)

    def assert_no_event(self, event: str, within: float, **match: Matcher) -> None:
        """Fail if a matching event not yet returned by :meth:`wait_for` arrives in time."""
        deadline = time.monotonic() + within
        with self._cond:
            while True:
                found = [item for index, item in enumerate(self._history)
                         if index not in self._consumed and _matches(item, event, match)]
                if found:
                    raise AssertionError(f"{self.name}: unexpected {event}: {found}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def events(self, event: str | None = None, **match: Matcher) -> list[Event]:
        """Every event received so far (consumed or not) that matches."""
        with self._cond:
            return [item for item in self._history if _matches(item, event, match)]

    def log_tail(self, lines: int = 30) -> str:
        """The end of the agent's pjsua log and output, for failure messages."""
        parts = []
        for path in (self.output_log, self.pjsua_log):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)

    # -- commands --------------------------------------------------------------------------

    def add_account(self, user: str, password: str = "", *, domain: str = "127.0.0.1",
                    registrar: str | None = None, transport: str = "udp", expires: int = 300,
                    realm: str = "*", register: bool = False, proxy: str | None = None,
                    display_name: str | None = None, auto_answer: int | None = None,
                    auto_answer_delay: float = 0.0, ring: bool = True) -> int:
        """Create an account and return its id. ``registrar`` is ``"host:port"``; without it
        the account never registers (fine for direct calls). ``auto_answer`` is a status code
        (200 answers, 486 rejects) sent ``auto_answer_delay`` seconds after the INVITE."""
        result = self.command(
            "add_account", user=user, password=password, domain=domain, registrar=registrar,
            transport=transport, expires=expires, realm=realm, register=register, proxy=proxy,
            display_name=display_name, auto_answer=auto_answer,
            auto_answer_delay=auto_answer_delay, ring=ring,
        )
        return int(result["account"])

    def set_auto_answer(self, account: int, code: int | None = 200, delay: float = 0.0) -> None:
        self.command("set_auto_answer", account=account, code=code, delay=delay)

    def register(self, account: int, renew: bool = True) -> None:
        """Start (or, with ``renew=False``, remove) the registration; watch ``reg_state``."""
        self.command("register", account=account, renew=renew)

    def unregister(self, account: int) -> None:
        self.command("unregister", account=account)

    def make_call(self, account: int, uri: str, headers: dict[str, str] | None = None) -> int:
        """Send an INVITE to ``uri`` and return the call id."""
        return int(self.command("make_call", account=account, uri=uri,
                                headers=headers or {})["call"])

    def answer(self, call: int, code: int = 200, reason: str = "") -> None:
        """Answer an incoming call (1xx/2xx) or reject it (>= 300)."""
        self.command("answer", call=call, code=code, reason=reason)

    def hangup(self, call: int, code: int = 0) -> None:
        self.command("hangup", call=call, code=code)

    def hold(self, call: int) -> None:
        self.command("hold", call=call)

    def unhold(self, call: int) -> None:
        self.command("unhold", call=call)

    def xfer(self, call: int, uri: str) -> None:
        self.command("xfer", call=call, uri=uri)

    def xfer_replaces(self, call: int, dest_call: int) -> None:
        self.command("xfer_replaces", call=call, dest_call=dest_call)

    def send_dtmf(self, call: int, digits: str, method: str = "rfc2833",
                  duration_ms: int = 0) -> None:
        """Send ``digits`` as RFC 4733 events (``"rfc2833"``) or SIP INFO (``"info"``)."""
        self.command("send_dtmf", call=call, digits=digits, method=method,
                     duration_ms=duration_ms)

    def play_tone(self, call: int, freq_hz: float, freq2_hz: float = 0,
                  volume: int = 0) -> None:
        """Play a continuous tone into the call until :meth:`stop_play` or hangup."""
        self.command("play_tone", call=call, freq_hz=freq_hz, freq2_hz=freq2_hz, volume=volume)

    def play_wav(self, call: int, path: str | Path, loop: bool = False) -> None:
        self.command("play_wav", call=call, path=str(path), loop=loop)

    def stop_play(self, call: int) -> None:
        """Stop the tone or WAV file playing into the call."""
        self.command("stop_play", call=call)

    stop_tone = stop_play

    def record(self, call: int, path: str | Path) -> None:
        """Record what the call receives into a WAV file (complete after ``record_stopped``)."""
        self.command("record", call=call, path=str(path))

    def stop_record(self, call: int) -> Event:
        """Stop recording and return the ``record_stopped`` event."""
        self.command("stop_record", call=call)
        return self.wait_for("record_stopped", call=call)

    def set_codec_priority(self, codec: str, priority: int) -> dict[str, int]:
        """pjsua's codec priority (``"G722/16000"``, 0..255; 0 disables); returns them all."""
        result: dict[str, int] = self.command("set_codec_priority", codec=codec,
                                              priority=priority)
        return result

    def call_info(self, call: int) -> dict[str, Any]:
        return self.command("call_info", call=call)

    def transport_info(self) -> dict[str, Any]:
        return self.command("transport_info")

    def shutdown(self, unregister: bool = True, timeout: float | None = None) -> int | None:
        """Ask the agent to stop and wait until it has exited; returns the exit code."""
        self.command("shutdown", unregister=unregister)
        self.wait_for("bye", timeout=timeout)
        return self.close()

    # -- internals -------------------------------------------------------------------------

    def _write(self, request: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        line = (json.dumps(request) + "\n").encode()
        with self._send_lock:
            self._proc.stdin.write(line)
            self._proc.stdin.flush()

    def _read_channel(self, fd: int) -> None:
        with open(fd, "rb") as channel:
            for raw in channel:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                with self._cond:
                    if message.get("type") == "reply":
                        self._replies[int(message.get("id") or 0)] = message
                    else:
                        self._history.append(message)
                    self._cond.notify_all()
        with self._cond:
            self._channel_open = False
            self._cond.notify_all()

    def _wait_or_fail(self, deadline: float, what: str, event_name: str | None = None) -> None:
        # Called with self._cond held.
        remaining = deadline - time.monotonic()
        if not self._channel_open:
            code = self._proc.poll() if self._proc else None
            raise SoftphoneError(f"{self.name}: agent gone (exit code {code}) while waiting "
                                 f"for {what}{self._tail()}")
        if remaining <= 0:
            seen = [e for e in self._history if e.get("event") == event_name] if event_name \
                else []
            raise SoftphoneTimeout(f"{self.name}: no {what} in time; "
                                   f"{event_name or 'events'} seen: {seen[-10:]}")
        self._cond.wait(min(remaining, 0.5))

    def _tail(self) -> str:
        tail = self.log_tail(15)
        return f"\n{tail}" if tail else ""


class SoftphonePool:
    """Starts softphones on demand and closes all of them, e.g. in a fixture finalizer::

        @pytest.fixture
        def phones(tmp_path):
            with SoftphonePool(tmp_path) as pool:
                yield pool

        def test_x(phones):
            alice, bob = phones.start("alice"), phones.start("bob")
    """

    def __init__(self, log_dir: str | Path, **defaults: Any) -> None:
        self.log_dir = Path(log_dir)
        self.defaults = defaults
        self.phones: list[Softphone] = []

    def start(self, name: str, **options: Any) -> Softphone:
        phone = Softphone(name, log_dir=self.log_dir, **{**self.defaults, **options})
        self.phones.append(phone)
        return phone.start()

    def close(self) -> None:
        for phone in self.phones:
            phone.request_shutdown()
        errors = []
        for phone in reversed(self.phones):
            try:
                phone.close()
            except Exception as exc:  # keep closing the others
                errors.append(exc)
        self.phones.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> SoftphonePool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[Softphone]:
        return iter(self.phones)


def exchange_tones(
    first: Softphone, first_call: int, second: Softphone, second_call: int, directory: Path,
    first_hz: float, second_hz: float, seconds: float = 3.0,
) -> tuple[AudioAnalysis, AudioAnalysis]:
    """Each side of a connected call plays its tone and records the other; returns what
    (``first``, ``second``) heard, after asserting that each heard the other's frequency
    (± 20 Hz) at a useful level and the call stayed up meanwhile."""
    first.play_tone(first_call, first_hz)
    second.play_tone(second_call, second_hz)
    first.record(first_call, str(directory / f"{first.name}.wav"))
    second.record(second_call, str(directory / f"{second.name}.wav"))
    first.assert_no_event("disconnected", within=seconds, call=first_call)
    first.stop_record(first_call)
    second.stop_record(second_call)
    heard_by_first = analyze_wav(directory / f"{first.name}.wav", start_s=0.5)
    heard_by_second = analyze_wav(directory / f"{second.name}.wav", start_s=0.5)
    assert abs(heard_by_second.dominant_hz - first_hz) < 20, heard_by_second
    assert abs(heard_by_first.dominant_hz - second_hz) < 20, heard_by_first
    assert heard_by_first.rms_dbfs > -35 and heard_by_second.rms_dbfs > -35
    return heard_by_first, heard_by_second


def _matches(item: Event, event: str | None, match: dict[str, Matcher]) -> bool:
    if event is not None and item.get("event") != event:
        return False
    for key, expected in match.items():
        field = "from" if key == "from_" else key
        if field not in item:
            return False
        actual = item[field]
        if callable(expected):
            if not expected(actual):
                return False
        elif actual != expected:
            return False
    return True


def _describe(match: dict[str, Matcher]) -> str:
    parts = [f"{k}={getattr(v, '__name__', v)!s}" for k, v in match.items()]
    return " (" + ", ".join(parts) + ")" if parts else ""

