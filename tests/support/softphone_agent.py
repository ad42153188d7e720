"""A scriptable pjsua2 softphone, run as a subprocess by :mod:`tests.support.softphone`.

Run it as ``python tests/support/softphone_agent.py --event-fd N [--log-file PATH]`` (or with
``-m tests.support.softphone_agent`` from the repository root). One process is one PJSIP
endpoint with a UDP and a TCP transport on 127.0.0.1, each on a port the kernel picks; it holds
at most four calls at a time (pjsua's compiled-in limit), so start several agents for more.

Protocol
--------
Commands arrive on **stdin**, one JSON object per line::

    {"id": 7, "cmd": "make_call", "args": {"account": 1, "uri": "sip:200@127.0.0.1:5060"}}

Replies and events leave on the file descriptor given by ``--event-fd`` (an inherited pipe),
one JSON object per line. stdout is *not* used: pjsua writes to it during ``libCreate()``
before any log setting applies, so the agent points fd 1 at stderr and the parent sends both
to a log file. A reply answers exactly one command::

    {"type": "reply", "id": 7, "ok": true, "result": {"call": 3}}
    {"type": "reply", "id": 8, "ok": false, "error": "no call 9"}

Events are sent as things happen, each with a wall-clock ``time``::

    {"type": "event", "event": "state", "call": 3, "state": "EARLY", "code": 180, ...}

Account and call ids are small integers the agent hands out and never reuses within one
process (pjsua's own call ids are recycled, which would make event streams ambiguous).

Commands (``args`` keys; defaults in brackets):

- ``transport_info`` -> ``{"udp": {"host", "port"}, "tcp": {"host", "port"}}``
- ``add_account``: user, password [""], domain ["127.0.0.1"], registrar ["host:port" or
  null for a local account that never registers], transport ["udp"|"tcp"], expires [300],
  realm ["*"], register [false: register on add], proxy [null: "host:port" outbound proxy],
  display_name [null], auto_answer [null, or a status code: 200 answers, 486 rejects],
  auto_answer_delay [0.0 s], ring [true: send 180 Ringing on every incoming call]
  -> ``{"account": id, "uri": "sip:user@domain"}``
- ``set_auto_answer``: account, code [null disables], delay [0.0]
- ``register``: account, renew [true]; ``unregister``: account
- ``make_call``: account, uri, headers [{}] -> ``{"call": id}``
- ``answer``: call, code [200], reason [""]; ``hangup``: call, code [0: pjsua decides]
- ``hold`` / ``unhold``: call (re-INVITE with sendonly / sendrecv)
- ``xfer``: call, uri (blind transfer: REFER); ``xfer_replaces``: call, dest_call (attended
  transfer: REFER with Replaces naming ``dest_call``'s dialog)
- ``send_dtmf``: call, digits, method ["rfc2833"|"info"], duration_ms [0: pjsua default]
- ``play_tone``: call, freq_hz, freq2_hz [0], volume [0: pjmedia default]; ``play_wav``: call,
  path, loop [false]; ``stop_play`` (alias ``stop_tone``): call
- ``record``: call, path (WAV); ``stop_record``: call
- ``call_info``: call -> state, code, reason, remote_uri, local_uri, sip_call_id, media
- ``ping``; ``shutdown``: unregister [true]

Events:

- ``ready``: pid, transports -- sent once, after the endpoint started
- ``reg_state``: account, code, reason, expires (0 after an unregistration), status
- ``incoming``: call, account, from, to, contact, sip_call_id, message (the raw INVITE)
- ``state``: call, state (NULL, CALLING, INCOMING, EARLY, CONNECTING, CONFIRMED,
  DISCONNECTED), code, reason, role ("caller"|"callee")
- ``media_state``: call, status ("active", "local_hold", "remote_hold", "none", "error")
- ``media_active``: call -- every time audio (re)starts flowing, e.g. after an unhold
- ``dtmf``: call, digit, method -- once per digit (RFC 4733 retransmissions are folded)
- ``transfer_status``: call, code, reason, final -- a NOTIFY about our REFER
- ``record_stopped``: call, path, complete -- the recorder is closed; when ``complete`` is
  true the WAV header carries its final sizes and the file may be read
- ``disconnected``: call, code, reason -- sent after the call's recorder (if any) was closed
- ``error``: message -- an exception inside a pjsua callback (the agent keeps running)
- ``bye``: reason -- last line before exit, after ``libDestroy()``
- ``fatal``: error -- the endpoint could not start; the agent exits with status 2

The agent shuts down on the ``shutdown`` command, on EOF of stdin, on SIGTERM/SIGINT and when
the event pipe breaks: it hangs up live calls, closes recorders and players, drops the calls,
then the accounts, and calls ``libDestroy()``.

Media: each call always receives the null sound device's silence, plus at most one source
(tone or WAV) and feeds at most one recorder. pjsua's log goes to ``--log-file`` line by line.
The first account added is pjsua's default account, which takes calls for unknown users.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pjsua2 as pj

# pjmedia/stream.h: PJMEDIA_STREAM_DTMF_IS_UPDATE = 1 << 0, PJMEDIA_STREAM_DTMF_IS_END = 1 << 1.
# Not exported by the SWIG module.
DTMF_IS_UPDATE = 1

CALL_STATES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}

MEDIA_STATUSES = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}

DTMF_METHODS = {
    "rfc2833": pj.PJSUA_DTMF_METHOD_RFC2833,
    "rfc4733": pj.PJSUA_DTMF_METHOD_RFC2833,
    "info": pj.PJSUA_DTMF_METHOD_SIP_INFO,
}

HANGUP_WAIT_S = 3.0
RECORDER_CLOSE_WAIT_S = 3.0
RTP_PORT_MIN = 40000
RTP_PORT_RANGE = 9998
CLOCK_RATE = 16000  # the conference bridge's rate (pjsua default); tones are generated at it


def wav_is_complete(path: str) -> bool:
    """True when the RIFF and data chunk sizes in the header agree with the file's size."""
    try:
        with open(path, "rb") as wav:
            header = wav.read(4096)
            size = os.fstat(wav.fileno()).st_size
    except OSError:
        return False
    if header[:4] != b"RIFF" or int.from_bytes(header[4:8], "little") != size - 8:
        return False
    offset = 12
    while offset + 8 <= len(header):
        chunk, length = header[offset:offset + 4], int.from_bytes(header[offset + 4:offset + 8],
                                                                  "little")
        if chunk == b"data":
            return length == size - offset - 8
        offset += 8 + length + (length & 1)
    return False


class LineLogWriter(pj.LogWriter):  # type: ignore[misc]  # pjsua2 has no stubs
    """Appends pjsua's log lines to a file, flushing each one."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.file = open(path, "a", buffering=1, encoding="utf-8", errors="replace")

    def write(self, entry: pj.LogEntry) -> None:
        self.file.write(entry.msg)


class CommandError(Exception):
    """A command that cannot be carried out; its message goes back in the reply."""


class EventChannel:
    """Writes JSON lines to the inherited event pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.broken = False

    def send(self, obj: dict[str, Any]) -> None:
        if self.broken:
            return
        data = (json.dumps(obj, default=str) + "\n").encode()
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except OSError:
            # The test process went away; the main loop notices and shuts down.
            self.broken = True

    def event(self, name: str, **fields: Any) -> None:
        self.send({"type": "event", "event": name, "time": time.time(), **fields})


class PhoneAccount(pj.Account):  # type: ignore[misc]
    """One SIP identity; reports registrations and takes incoming calls."""

    def __init__(self, agent: SoftphoneAgent, account_id: int) -> None:
        super().__init__()
        self.agent = agent
        self.account_id = account_id
        self.ring = True
        self.auto_answer: int | None = None
        self.auto_answer_delay = 0.0

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        with self.agent.guard("onRegState"):
            self.agent.events.event(
                "reg_state",
                account=self.account_id,
                code=prm.code,
                reason=prm.reason,
                expires=prm.expiration,
                status=prm.status,
            )

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        with self.agent.guard("onIncomingCall"):
            call = self.agent.adopt_call(self, prm.callId)
            info = call.getInfo()
            self.agent.events.event(
                "incoming",
                call=call.call_id,
                account=self.account_id,
                **{"from": info.remoteUri},
                to=info.localUri,
                contact=info.remoteContact,
                sip_call_id=info.callIdString,
                message=prm.rdata.wholeMsg,
            )
            if self.ring and not (self.auto_answer is not None and self.auto_answer_delay <= 0):
                call.answer_with(180)
            if self.auto_answer is not None:
                code = self.auto_answer
                self.agent.later(self.auto_answer_delay, lambda: call.auto_answer(code))


class PhoneCall(pj.Call):  # type: ignore[misc]
    """One call leg with its media wiring: at most one source (tone or WAV) and one recorder."""

    def __init__(self, agent: SoftphoneAgent, account: PhoneAccount, call_id: int,
                 pjsua_call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, pjsua_call_id)
        self.agent = agent
        self.account = account
        self.call_id = call_id
        self.ended = False
        self.audio: pj.AudioMedia | None = None
        self.source: pj.AudioMedia | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.record_path: str | None = None
        self.seen_dtmf: set[tuple[int, str]] = set()

    # -- pjsua callbacks -------------------------------------------------------------------

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        with self.agent.guard("onCallState"):
            info = self.getInfo()
            self.agent.events.event(
                "state",
                call=self.call_id,
                state=CALL_STATES.get(info.state, str(info.state)),
                code=info.lastStatusCode,
                reason=info.lastReason,
                role="caller" if info.role == pj.PJSIP_ROLE_UAC else "callee",
            )
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.ended:
                self.ended = True
                self.audio = None
                code, reason = info.lastStatusCode, info.lastReason
                # Close media outside the callback, then report: by the time the test sees
                # "disconnected", the recording is a complete WAV file.
                self.agent.later(0.0, lambda: self.finish(code, reason))

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        with self.agent.guard("onCallMediaState"):
            info = self.getInfo()
            for media in info.media:
                if media.type != pj.PJMEDIA_TYPE_AUDIO:
                    continue
                status = MEDIA_STATUSES.get(media.status, str(media.status))
                self.agent.events.event("media_state", call=self.call_id, status=status)
                if media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.audio = self.getAudioMedia(media.index)
                    self.connect_media()
                    self.agent.events.event("media_active", call=self.call_id)
                break

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        with self.agent.guard("onCallTransferStatus"):
            # The NOTIFYs of our REFER (RFC 3515): the sipfrag status of the transfer.
            self.agent.events.event("transfer_status", call=self.call_id,
                                    code=prm.statusCode, reason=prm.reason,
                                    final=bool(prm.finalNotify))
            prm.cont = True  # keep listening; the test hangs up when it wants

    def onDtmfEvent(self, prm: pj.OnDtmfEventParam) -> None:
        with self.agent.guard("onDtmfEvent"):
            method = "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc2833"
            if method == "rfc2833":
                # One RFC 4733 event is reported for every packet (start, updates, three end
                # packets); they share the event's start timestamp. Report each event once.
                key = (prm.timestamp, prm.digit)
                if key in self.seen_dtmf:
                    return
                self.seen_dtmf.add(key)
            self.agent.events.event("dtmf", call=self.call_id, digit=prm.digit, method=method)

    # -- media -----------------------------------------------------------------------------

    def connect_media(self) -> None:
        if self.audio is None:
            return
        # The "microphone" (the null device: silence) always feeds the call. Without any
        # transmitter the bridge only sends the stream a heartbeat now and then, and queued
        # RFC 4733 digits then crawl out one every few seconds.
        self.agent.ep.audDevManager().getCaptureDevMedia().startTransmit(self.audio)
        if self.source is not None:
            self.source.startTransmit(self.audio)
        if self.recorder is not None:
            self.audio.startTransmit(self.recorder)

    def set_source(self, source: pj.AudioMedia | None) -> None:
        # Dropping the last reference destroys the port, which removes it from the bridge.
        self.source = source
        self.connect_media()

    def start_recording(self, path: str) -> None:
        self.stop_recording()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(path)
        self.recorder, self.record_path = recorder, path
        self.connect_media()

    def stop_recording(self, then: Callable[[], None] | None = None) -> None:
        """Close the recorder; ``record_stopped`` (then ``then()``) once the WAV is complete."""
        if self.recorder is None:
            if then is not None:
                then()
            return
        path = str(self.record_path)
        # Dropping the recorder destroys it; pjmedia then removes it from the bridge and writes
        # the WAV header's sizes asynchronously, so watch the file before reporting.
        self.recorder = None
        self.record_path = None

        def report(complete: bool) -> None:
            self.agent.events.event("record_stopped", call=self.call_id, path=path,
                                    complete=complete)
            if then is not None:
                then()

        self.agent.when_wav_complete(path, report)

    def release_media(self, then: Callable[[], None] | None = None) -> None:
        self.source = None
        self.audio = None
        self.stop_recording(then)

    def finish(self, code: int, reason: str) -> None:
        self.release_media(lambda: self.agent.events.event(
            "disconnected", call=self.call_id, code=code, reason=reason))

    # -- answering -------------------------------------------------------------------------

    def answer_with(self, code: int, reason: str = "") -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if reason:
            prm.reason = reason
        if code >= 300:
            self.hangup(prm)
        else:
            self.answer(prm)

    def auto_answer(self, code: int) -> None:
        if self.ended:
            return
        with self.agent.guard("auto_answer"):
            self.answer_with(code)


class SoftphoneAgent:
    """The endpoint, its accounts and calls, and the command loop that drives them."""

    def __init__(self, events: EventChannel, log_file: str | None, log_level: int) -> None:
        self.events = events
        self.accounts: dict[int, PhoneAccount] = {}
        self.calls: dict[int, PhoneCall] = {}
        self.transports: dict[str, int] = {}
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.stop_reason: str | None = None
        self.unregister_on_stop = True
        self.next_account_id = 1
        self.next_call_id = 1
        self.stdin_buffer = b""
        self.log_writer: LineLogWriter | None = None
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = "pbx-test-softphone (pjsua2)"
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.level = log_level
        cfg.logConfig.msgLogging = True
        if log_file:
            # pjsua's own log file is buffered until libDestroy(); this writer flushes every
            # line, so a test that fails while the agent still runs can show the log's tail.
            self.log_writer = LineLogWriter(log_file)
            cfg.logConfig.writer = self.log_writer
            cfg.logConfig.consoleLevel = log_level  # the writer takes the console's place
            cfg.logConfig.decor |= pj.PJ_LOG_HAS_NEWLINE
        cfg.medConfig.noVad = True
        cfg.medConfig.clockRate = CLOCK_RATE
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        for name, kind in (("udp", pj.PJSIP_TRANSPORT_UDP), ("tcp", pj.PJSIP_TRANSPORT_TCP)):
            tcfg = pj.TransportConfig()
            tcfg.port = 0
            tcfg.boundAddress = "127.0.0.1"
            self.transports[name] = self.ep.transportCreate(kind, tcfg)
        self.ep.libStart()

    # -- plumbing --------------------------------------------------------------------------

    def guard(self, where: str) -> _Guard:
        return _Guard(self, where)

    def later(self, delay: float, action: Callable[[], None]) -> None:
        self.timers.append((time.monotonic() + delay, action))

    def run_timers(self) -> None:
        now = time.monotonic()
        due = [t for t in self.timers if t[0] <= now]
        if not due:
            return
        self.timers = [t for t in self.timers if t[0] > now]
        for _, action in due:
            with self.guard("timer"):
                action()

    def when_wav_complete(self, path: str, report: Callable[[bool], None]) -> None:
        """Call ``report(True)`` once the WAV header at ``path`` is final, else after a while."""
        deadline = time.monotonic() + RECORDER_CLOSE_WAIT_S

        def check() -> None:
            complete = wav_is_complete(path)
            if complete or time.monotonic() >= deadline:
                report(complete)
            else:
                self.later(0.02, check)

        self.later(0.0, check)

    def adopt_call(self, account: PhoneAccount, pjsua_call_id: int) -> PhoneCall:
        call = PhoneCall(self, account, self.next_call_id, pjsua_call_id)
        self.next_call_id += 1
        self.calls[call.call_id] = call  # pjsua2 needs the Python object kept alive
        return call

    def transport_info(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for name, tid in self.transports.items():
            host, _, port = self.ep.transportGetInfo(tid).localName.rpartition(":")
            result[name] = {"host": host, "port": int(port)}
        return result

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> None:
        self.events.event("ready", pid=os.getpid(), transports=self.transport_info())
        os.set_blocking(sys.stdin.fileno(), False)
        while self.stop_reason is None:
            self.ep.libHandleEvents(10)
            self.run_timers()
            self.read_commands()
            if self.events.broken:
                self.stop_reason = "event channel closed"
        self.shutdown()

    def read_commands(self) -> None:
        fd = sys.stdin.fileno()
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            return
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self.stop_reason = self.stop_reason or "stdin closed"
            return
        self.stdin_buffer += chunk
        while b"\n" in self.stdin_buffer and self.stop_reason is None:
            line, self.stdin_buffer = self.stdin_buffer.split(b"\n", 1)
            if line.strip():
                self.dispatch(line)

    def dispatch(self, line: bytes) -> None:
        request_id: Any = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            handler = getattr(self, "cmd_" + str(request.get("cmd")), None)
            if handler is None:
                raise CommandError(f"unknown command {request.get('cmd')!r}")
            result = handler(**request.get("args", {}))
        except (CommandError, TypeError, ValueError, KeyError) as exc:
            self.events.send({"type": "reply", "id": request_id, "ok": False,
                              "error": f"{type(exc).__name__}: {exc}"})
        except pj.Error as exc:
            self.events.send({"type": "reply", "id": request_id, "ok": False,
                              "error": f"pjsua: {exc.info()}"})
        else:
            self.events.send({"type": "reply", "id": request_id, "ok": True,
                              "result": result or {}})

    def shutdown(self) -> None:
        """Hang up, close recorders and players, drop calls, then accounts, then libDestroy.

        No Call may outlive libDestroy(): its destructor asserts inside pjsua. Each step is a
        method of its own so that no loop variable keeps a Call alive in this frame.
        """
        self._hang_up_all()
        self._release_all_media()
        self.timers.clear()
        self.calls.clear()
        gc.collect()  # closures may hold calls in reference cycles
        if self.unregister_on_stop:
            self._shut_down_accounts()
        flags = 0 if self.unregister_on_stop else pj.PJSUA_DESTROY_NO_NETWORK
        self.ep.libDestroy(flags)
        self.accounts.clear()
        gc.collect()
        self.events.event("bye", reason=self.stop_reason)

    def _poll_while(self, busy: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and busy():
            self.ep.libHandleEvents(20)
            self.run_timers()

    def _hang_up_all(self) -> None:
        live = [c for c in self.calls.values() if not c.ended]
        for call in live:
            with contextlib.suppress(pj.Error):
                call.hangup(pj.CallOpParam(True))
        self._poll_while(lambda: any(not c.ended for c in live) or bool(self.timers),
                         HANGUP_WAIT_S)

    def _release_all_media(self) -> None:
        for call in self.calls.values():
            call.release_media()  # recorders finish their WAV headers now
        self._poll_while(lambda: bool(self.timers), RECORDER_CLOSE_WAIT_S)

    def _shut_down_accounts(self) -> None:
        for account in self.accounts.values():
            account.shutdown()  # sends an un-REGISTER when registered
        # Give the un-REGISTERs a moment to leave before the transports go away.
        self._poll_while(lambda: True, 0.2)

    # -- commands --------------------------------------------------------------------------

    def account(self, account_id: int) -> PhoneAccount:
        try:
            return self.accounts[int(account_id)]
        except KeyError:
            raise CommandError(f"no account {account_id}") from None

    def call(self, call_id: int) -> PhoneCall:
        try:
            return self.calls[int(call_id)]
        except KeyError:
            raise CommandError(f"no call {call_id}") from None

    def cmd_ping(self) -> dict[str, Any]:
        return {"pid": os.getpid()}

    def cmd_transport_info(self) -> dict[str, Any]:
        return self.transport_info()

    def cmd_shutdown(self, unregister: bool = True) -> None:
        self.unregister_on_stop = unregister
        self.stop_reason = "shutdown command"

    def cmd_add_account(
        self,
        user: str,
        password: str = "",
        domain: str = "127.0.0.1",
        registrar: str | None = None,
        transport: str = "udp",
        expires: int = 300,
        realm: str = "*",
        register: bool = False,
        proxy: str | None = None,
        display_name: str | None = None,
        auto_answer: int | None = None,
        auto_answer_delay: float = 0.0,
        ring: bool = True,
    ) -> dict[str, Any]:
        if transport not in self.transports:
            raise CommandError(f"transport must be one of {sorted(self.transports)}")
        suffix = ";transport=tcp" if transport == "tcp" else ""
        cfg = pj.AccountConfig()
        uri = f"sip:{user}@{domain}"
        cfg.idUri = f'"{display_name}" <{uri}>' if display_name else uri
        cfg.sipConfig.transportId = self.transports[transport]
        if registrar:
            cfg.regConfig.registrarUri = f"sip:{registrar}{suffix}"
            cfg.regConfig.registerOnAdd = register
            cfg.regConfig.timeoutSec = int(expires)
            cfg.regConfig.retryIntervalSec = 0  # report failures, do not retry behind a test
            cfg.regConfig.unregWaitMsec = 1000
        if proxy:
            cfg.sipConfig.proxies.append(f"sip:{proxy};lr{suffix}")
        if password:
            cfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", realm, user, 0, password))
        # Loopback only: nothing to rewrite, no RFC 5626 outbound, no codec-lock re-INVITE.
        cfg.natConfig.sipOutboundUse = 0
        cfg.natConfig.contactRewriteUse = 0
        cfg.natConfig.viaRewriteUse = 0
        cfg.natConfig.sdpNatRewriteUse = 0
        cfg.mediaConfig.lockCodecEnabled = False
        cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        # RTP from a random even port in 40000-49999, clear of the PBX's default 20000-29999.
        cfg.mediaConfig.transportConfig.port = RTP_PORT_MIN
        cfg.mediaConfig.transportConfig.portRange = RTP_PORT_RANGE
        cfg.mediaConfig.transportConfig.randomizePort = True
        account = PhoneAccount(self, self.next_account_id)
        account.ring = ring
        account.auto_answer = auto_answer
        account.auto_answer_delay = float(auto_answer_delay)
        account.create(cfg, not self.accounts)  # the first account is the default one
        self.accounts[account.account_id] = account
        self.next_account_id += 1
        return {"account": account.account_id, "uri": uri}

    def cmd_set_auto_answer(self, account: int, code: int | None = 200,
                            delay: float = 0.0) -> None:
        acc = self.account(account)
        acc.auto_answer = code
        acc.auto_answer_delay = float(delay)

    def cmd_register(self, account: int, renew: bool = True) -> None:
        self.account(account).setRegistration(bool(renew))

    def cmd_unregister(self, account: int) -> None:
        self.account(account).setRegistration(False)

    def cmd_make_call(self, account: int, uri: str,
                      headers: dict[str, str] | None = None) -> dict[str, Any]:
        acc = self.account(account)
        call = PhoneCall(self, acc, self.next_call_id)
        prm = pj.CallOpParam(True)
        for name, value in (headers or {}).items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        call.makeCall(uri, prm)
        self.next_call_id += 1
        self.calls[call.call_id] = call
        return {"call": call.call_id}

    def cmd_answer(self, call: int, code: int = 200, reason: str = "") -> None:
        self.call(call).answer_with(int(code), reason)

    def cmd_hangup(self, call: int, code: int = 0) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = int(code)
        self.call(call).hangup(prm)

    def cmd_hold(self, call: int) -> None:
        self.call(call).setHold(pj.CallOpParam(True))

    def cmd_unhold(self, call: int) -> None:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.call(call).reinvite(prm)

    def cmd_xfer(self, call: int, uri: str) -> None:
        self.call(call).xfer(uri, pj.CallOpParam(True))

    def cmd_xfer_replaces(self, call: int, dest_call: int) -> None:
        self.call(call).xferReplaces(self.call(dest_call), pj.CallOpParam(True))

    def cmd_send_dtmf(self, call: int, digits: str, method: str = "rfc2833",
                      duration_ms: int = 0) -> None:
        if method not in DTMF_METHODS:
            raise CommandError(f"method must be one of {sorted(DTMF_METHODS)}")
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = DTMF_METHODS[method]
        if duration_ms:
            prm.duration = int(duration_ms)
        self.call(call).sendDtmf(prm)

    def cmd_play_tone(self, call: int, freq_hz: float, freq2_hz: float = 0,
                      volume: int = 0) -> dict[str, Any]:
        target = self.call(call)
        tone = pj.ToneDesc()
        tone.freq1 = int(freq_hz)
        tone.freq2 = int(freq2_hz)
        tone.on_msec = 10000
        tone.off_msec = 0
        tone.volume = int(volume)
        tones = pj.ToneDescVector()
        tones.append(tone)
        generator = pj.ToneGenerator()
        generator.createToneGenerator(CLOCK_RATE, 1)
        generator.play(tones, True)
        target.set_source(generator)
        return {"connected": target.audio is not None}

    def cmd_play_wav(self, call: int, path: str, loop: bool = False) -> dict[str, Any]:
        target = self.call(call)
        if not Path(path).is_file():
            raise CommandError(f"no such WAV file: {path}")
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        target.set_source(player)
        return {"connected": target.audio is not None}

    def cmd_stop_play(self, call: int) -> None:
        self.call(call).set_source(None)

    cmd_stop_tone = cmd_stop_play

    def cmd_record(self, call: int, path: str) -> dict[str, Any]:
        target = self.call(call)
        if target.ended:
            raise CommandError(f"call {call} has ended")
        target.start_recording(str(path))
        return {"connected": target.audio is not None}

    def cmd_stop_record(self, call: int) -> None:
        self.call(call).stop_recording()

    def cmd_set_codec_priority(self, codec: str, priority: int) -> dict[str, Any]:
        """``codec`` as pjsua names it (e.g. "G722/16000", "PCMU/8000"); 0 disables it,
        255 puts it first in our offers and answers."""
        self.ep.codecSetPriority(codec, priority)
        return {c.codecId: c.priority for c in self.ep.codecEnum2()}

    def cmd_call_info(self, call: int) -> dict[str, Any]:
        target = self.call(call)
        if target.ended:
            return {"state": "DISCONNECTED"}
        info = target.getInfo()
        codec = ""
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                stream = target.getStreamInfo(index)
                codec = f"{stream.codecName}/{stream.codecClockRate}"
        return {
            "codec": codec,
            "state": CALL_STATES.get(info.state, str(info.state)),
            "code": info.lastStatusCode,
            "reason": info.lastReason,
            "remote_uri": info.remoteUri,
            "local_uri": info.localUri,
            "sip_call_id": info.callIdString,
            "media": [MEDIA_STATUSES.get(m.status, str(m.status)) for m in info.media
                      if m.type == pj.PJMEDIA_TYPE_AUDIO],
        }


class _Guard:
    """Turns an exception inside a pjsua callback into an ``error`` event.

    An exception escaping a SWIG director callback would abort the whole process.
    """

    def __init__(self, agent: SoftphoneAgent, where: str) -> None:
        self.agent = agent
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        detail = exc.info() if isinstance(exc, pj.Error) else f"{type(exc).__name__}: {exc}"
        self.agent.events.event("error", message=f"{self.where}: {detail}")
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--event-fd", type=int, required=True,
                        help="inherited file descriptor for replies and events")
    parser.add_argument("--log-file", default=None, help="pjsua log file")
    parser.add_argument("--log-level", type=int, default=5)
    args = parser.parse_args(argv)
    # pjsua prints to stdout before its log settings apply: send fd 1 to stderr for good.
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    events = EventChannel(args.event_fd)
    try:
        agent = SoftphoneAgent(events, args.log_file, args.log_level)
    except pj.Error as exc:
        events.event("fatal", error=exc.info())
        return 2

    def request_stop(signum: int, frame: object) -> None:
        agent.stop_reason = agent.stop_reason or signal.Signals(signum).name

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    agent.run()
    os.close(args.event_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
