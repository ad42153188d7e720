"""Composition root: builds the PBX from its configuration and runs it — L4.

`PbxApp(config).start()` opens the database (migrating it), mirrors the agents from the YAML into
it, loads the surviving registrations, binds the SIP sockets and the HTTP port, and runs the
housekeeping tasks (binding expiry, write-behind of bindings to storage). `stop()` stops taking
requests, flushes what is pending and closes everything; SIGTERM and SIGINT call it.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import ipaddress
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from media.engine import EngineStats, MediaEngine, MediaEngineConfig
from media.session import SessionSettings
from media.workers import MediaWorkerPool
from pbx.acd.engine import AcdEngine
from pbx.acd.model import AgentProfile
from pbx.acd.schema import CustomerStatusConfig
from pbx.bus import EventBus
from pbx.call.admission import Admission, AdmissionLimits
from pbx.call.router import ConfigRouter
from pbx.clock import SystemIds
from pbx.config.schema import PbxConfig
from pbx.cti import CtiDesk, MetricsSnapshot
from pbx.cti.auth import prune_credentials
from pbx.cti.control import QueueStatus
from pbx.cti.tokens import ApiTokens, load_api_tokens
from pbx.ivr.hooks import load_hooks
from pbx.ivr.validation import hook_specs
from pbx.registrar.callers import CallerCheck, TrunkSecret
from pbx.registrar.registrar import (
    Registrar,
    RegistrarSettings,
    RegistrationChanged,
    SourceBanned,
)
from pbx.registrar.security import AuthFailureGuard
from pbx.reload import ConfigReloader
from pbx.repositories import AgentDisposition, Binding, CallDetailRecord, QueueLogEntry
from pbx.sip import auth
from pbx.sip.endpoint import Address, RequestReceived, SipEndpoint
from pbx.sip.message import Request, make_response
from pbx.sip.timers import TimerSettings
from pbx.storage import Database
from pbx.storage.recordings import recording_files, retention_loop
from pbx.switchboard import Switchboard
from pbx.switchboard.control import SwitchboardControl
from pbx.switchboard.intervals import IntervalRecorder
from pbx.transport.sip import ListenAddress, SipTransport, TcpLimits

log = structlog.get_logger("pbx")

ALLOWED_METHODS = ("REGISTER", "OPTIONS", "INVITE", "ACK", "CANCEL", "BYE")
WRITE_BEHIND_INTERVAL = 0.25
LAG_PROBE_S = 0.05
# What a REGISTER or an OPTIONS may Require of us: Path (RFC 3327, advertised in OPTIONS).
OUT_OF_DIALOG_EXTENSIONS = frozenset({"path"})
EXPIRY_INTERVAL = 1.0


class BindingWriter:
    """Writes registrar changes to storage behind the hot path, batched per interval."""

    def __init__(self, db: Database) -> None:
        self._store = db.location_store()
        self._pending: dict[str, tuple[Binding, ...]] = {}
        self.batches = 0
        self.written = 0

    def add(self, changes: dict[str, tuple[Binding, ...]]) -> None:
        self._pending.update(changes)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        await asyncio.to_thread(self._store.replace_bindings, batch)
        self.batches += 1
        self.written += len(batch)

    def flush_sync(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, {}
            self._store.replace_bindings(batch)


T = TypeVar("T")


class RowWriter(Generic[T]):
    """Appends rows (queue-log lines, CDRs) behind the call path: `add` only queues, the
    housekeeping loop writes what gathered in one transaction per interval, and shutdown
    writes the rest. A call so never waits for the database, and one commit serves many."""

    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._pending: list[T] = []

    def add(self, row: T) -> None:
        self._pending.append(row)

    async def flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            await asyncio.to_thread(self._write, batch)

    def flush_sync(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._write(batch)


class PbxApp:
    """The running PBX. See the module docstring."""

    def __init__(self, config: PbxConfig, api_tokens: ApiTokens | None = None,
                 config_path: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        """`api_tokens`: the loaded ``http.api_tokens`` (`pbx.cti.tokens.load_api_tokens`,
        which `pbx run` calls first so that an unreadable token file stops it with a message);
        None loads them at start. `config_path` and `overrides` (the command line's, as
        `apply_overrides` takes them): what a reload (SIGHUP, ``POST /api/admin/reload``)
        reads again; without a path the PBX cannot reload."""
        self.config = config
        self.reloader = (ConfigReloader(self, config_path, dict(overrides or {}))
                         if config_path is not None else None)
        self.http_reconfigure: Callable[[PbxConfig], None] | None = None
        self._ha1s: dict[tuple[str, str], str] = {}
        self.api_tokens = api_tokens
        self.ids = SystemIds()
        self.bus = EventBus(on_error=self._subscriber_failed)
        self.db: Database | None = None
        self.endpoint: SipEndpoint | None = None
        self.registrar: Registrar | None = None
        self.transport: SipTransport | None = None
        self.writer: BindingWriter | None = None
        self.media: MediaEngine | MediaWorkerPool | None = None
        self.switchboard: Switchboard | None = None
        self.queue_log: RowWriter[QueueLogEntry] | None = None
        self.cdrs: RowWriter[CallDetailRecord | AgentDisposition] | None = None
        self.intervals: IntervalRecorder | None = None  # queue/agent statistics for reports
        self.desk: CtiDesk | None = None
        self.sip_bound: list[ListenAddress] = []
        self.http_bound: tuple[str, int] | None = None
        self.started_at = time.time()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._reloading: set[asyncio.Task[None]] = set()  # SIGHUP reloads under way
        self._stopped = asyncio.Event()
        self._http_server: object | None = None

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        cfg = self.config
        data_dir = Path(cfg.pbx.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = await asyncio.to_thread(Database.open, cfg.database_url)
        await asyncio.to_thread(self.db.agent_directory().sync_agents, cfg.agent_records())
        self.writer = BindingWriter(self.db)
        self.endpoint = SipEndpoint(
            self.ids,
            TimerSettings(cfg.sip.t1_ms / 1000, cfg.sip.t2_ms / 1000, cfg.sip.t4_ms / 1000),
            cfg.sip.max_message_bytes,
            cfg.sip.user_agent,
        )
        self.registrar = self._build_registrar(data_dir)
        registrar = self.registrar
        # A banned source is dropped for every method, before any transaction (no 100 Trying).
        self.endpoint.admit = lambda source: not registrar.is_banned(source.host, time.time())
        stored = await asyncio.to_thread(self.db.location_store().load_bindings)
        loaded = self.registrar.table.load(stored, time.time())
        tcp = cfg.sip.tcp
        self.transport = SipTransport(
            self.endpoint, self._on_sip_event, cfg.sip.socket_buffer_bytes,
            TcpLimits(tcp.message_timeout_s, tcp.idle_timeout_s, tcp.registered_idle_timeout_s,
                      tcp.max_connections_per_address, tcp.max_connections,
                      tcp.refused_log_interval_s),
            self._registered_tcp_sources,
        )
        for entry in cfg.sip.listen:
            self.sip_bound.append(
                await self.transport.listen(entry.transport, entry.host, entry.port)
            )
        await self._start_calls()
        await self._start_http()
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        _tune_gc()
        log.info(
            "pbx_ready",
            name=cfg.pbx.name,
            domain=cfg.sip.domain,
            sip=[f"{b.transport}:{b.host}:{b.port}" for b in self.sip_bound],
            http=f"{cfg.http.host}:{cfg.http.port}",
            agents=len(cfg.agents),
            bindings_restored=loaded,
        )

    async def _start_calls(self) -> None:
        """The media engine and the switchboard that runs calls over it."""
        cfg = self.config
        assert self.endpoint is not None and self.registrar is not None and self.db is not None
        assert self.transport is not None
        media_config = MediaEngineConfig(
            bind_host=cfg.media.host,
            rtp_port_min=cfg.media.rtp_port_min,
            rtp_port_max=cfg.media.rtp_port_max,
            prompts_dir=cfg.media.prompts_path,
            session=SessionSettings(
                rtp_timeout_s=cfg.media.rtp_timeout_s, codecs=tuple(cfg.media.codecs)
            ),
        )
        if cfg.media.workers:
            self.media = MediaWorkerPool(media_config, workers=cfg.media.workers)
        else:
            self.media = MediaEngine(media_config)
        await self.media.start()
        self.cdrs = RowWriter(self.db.cdr_sink().write_cdrs)
        customers = self.db.customer_directory()
        if cfg.customers:  # inserts what is missing, never overwrites an edit
            seeded = await asyncio.to_thread(customers.seed,
                                             [c.to_customer() for c in cfg.customers])
            log.info("customers_seeded", inserted=len(seeded.inserted),
                     updated=len(seeded.updated), kept_edited=len(seeded.kept))
        hooks, hook_errors = load_hooks(hook_specs(cfg.flows), importlib.import_module)
        for spec, error in hook_errors.items():
            log.error("hook_unavailable", hook=spec, error=error)
        self.switchboard = Switchboard(
            self.endpoint,
            self.sip_bound,
            self.registrar,
            self.media,
            ConfigRouter(cfg),
            self.ids,
            self.cdrs.add,
            self.transport.transmit_soon,
            cfg.sip.domain,
            flows=cfg.flows,
            hooks=hooks,
            customers=customers,
        )
        self.switchboard.callers = self._build_caller_check(self.switchboard.router.trunk_for)
        self.switchboard.recording_files = files = recording_files(cfg)
        self._tasks.append(asyncio.create_task(retention_loop(
            files, self.db.recording_store(), cfg.recording.retention_days,
            cfg.recording.cleanup_interval_s), name="recording-retention"))
        self.switchboard.on_caller_event = self._publish
        self.switchboard.start_trunk_registrations()
        sip = cfg.sip
        if sip.overload_queue_ms:
            self.endpoint.shedding.limit_s = sip.overload_queue_ms / 1000
            self.endpoint.queue_age = self.transport.datagram_age
        if sip.max_calls or sip.max_calls_per_second or sip.overload_lag_ms \
                or sip.overload_queue_ms:
            self.switchboard.admission = Admission(
                AdmissionLimits(sip.max_calls, sip.max_calls_per_second,
                                sip.overload_lag_ms / 1000),
                time.monotonic(),
            )
            self._tasks.append(asyncio.create_task(self._watch_lag(), name="loop-lag"))
        for trunk in cfg.trunks:
            if trunk.max_calls or trunk.max_calls_per_second:
                self.switchboard.trunk_admission[trunk.name] = Admission(
                    AdmissionLimits(trunk.max_calls, trunk.max_calls_per_second),
                    time.monotonic(),
                )
        statuses = dict(cfg.customer_statuses)
        statuses.setdefault("standard", CustomerStatusConfig())
        engine = AcdEngine(
            cfg.effective_queues(),
            [AgentProfile(a.extension, a.name, dict(a.skills)) for a in cfg.agents if a.enabled],
            statuses,
            rng=random.Random(),
            devices_available=False,
            now=time.time(),
        )
        self.switchboard.on_agent_event = self.bus.publish
        self.queue_log = RowWriter(self.db.queue_log().write_queue_events)
        self.switchboard.queue_log = self.queue_log.add
        self.switchboard.write_disposition = self.cdrs.add
        self.intervals = IntervalRecorder(cfg.effective_queues(), self.db.interval_store())
        self.switchboard.intervals = self.intervals
        control = SwitchboardControl(self.switchboard)
        # One scrypt per agent is slow by design: passwords are hashed at each agent's first
        # desktop login; at start only the credentials of removed agents are dropped.
        self._tasks.append(asyncio.create_task(
            self._sync_credentials(), name="cti-credentials"))
        self.desk = CtiDesk(cfg, control, control, queue_status=self, metrics=self)
        self.switchboard.desk = self.desk
        # After the desk exists, so that it sees the agents log in.
        self.switchboard.attach_acd(engine, cfg.hold_programs,
                                    {a.extension for a in cfg.agents if a.auto_login})
        dialer_store = self.db.dialer_store()
        if cfg.dnc.numbers:
            await asyncio.to_thread(dialer_store.add_dnc_numbers, list(cfg.dnc.numbers), "config")
        await self.switchboard.load_campaigns(cfg.campaigns, dialer_store)

    async def _sync_credentials(self) -> None:
        assert self.db is not None
        try:
            changed = await asyncio.to_thread(prune_credentials, self.config,
                                              self.db.cti_store())
            if changed:  # removed agents, or a new desk_password_hash: their sessions ended
                log.info("cti_credentials_changed", agents=changed)
        except Exception:
            log.exception("cti_credentials_sync_failed")

    def _build_registrar(self, data_dir: Path) -> Registrar:
        cfg = self.config
        self.set_credentials(cfg)
        ha1s = self._ha1s

        def lookup(username: str, algorithm: str) -> str | None:
            return ha1s.get((username, algorithm.upper().removesuffix("-SESS")))

        settings = RegistrarSettings(
            domain=cfg.sip.domain,
            min_expires=cfg.registrar.min_expires,
            default_expires=cfg.registrar.default_expires,
            max_expires=cfg.registrar.max_expires,
            max_contacts=cfg.registrar.max_contacts_per_aor,
            algorithms=tuple(cfg.security.auth_algorithms),
        )
        guard = AuthFailureGuard(
            cfg.security.max_auth_failures,
            cfg.security.failure_window_s,
            cfg.security.ban_s,
            cfg.security.trusted_networks,
        )
        nonces = auth.NonceIssuer(_nonce_secret(data_dir), cfg.security.nonce_lifetime_s)
        return Registrar(settings, lookup, nonces, guard)

    def set_credentials(self, cfg: PbxConfig) -> None:
        """The agents' digest credentials (HA1s) the registrar and the call side check; a
        reload replaces them in place, for the next REGISTER or INVITE."""
        ha1s = {(agent.extension, algorithm): agent.ha1(cfg.realm, algorithm)
                for agent in cfg.agents if agent.enabled for algorithm in ("MD5", "SHA-256")}
        self._ha1s.clear()
        self._ha1s.update(ha1s)

    async def reload_config(self, requested_by: str) -> dict[str, Any]:
        """Re-read the config file and apply it (`pbx.reload`); the answer of the reload API."""
        if self.reloader is None:
            return {"applied": False, "errors": ["this PBX was started without a config file"]}
        return await self.reloader.reload(requested_by)

    def _reload_on_signal(self) -> None:
        # Starting (the file is read as it is anyway) or stopping: nothing to reload.
        if self.http_bound is None or self._stopped.is_set():
            log.warning("config_reload_ignored", reason="the PBX is starting or stopping")
            return
        task = asyncio.create_task(self._reload_signalled(), name="reload")
        self._reloading.add(task)
        task.add_done_callback(self._reloading.discard)

    async def _reload_signalled(self) -> None:
        try:
            await self.reload_config("SIGHUP")  # logs what it did
        except Exception:  # a bug in reloading must not leave a task's error unread
            log.exception("config_reload_failed", by="SIGHUP")

    def _build_caller_check(self, trunk_for: Callable[[str], str | None]) -> CallerCheck:
        """Who may place calls: agents' phones by digest (the registrar's credentials, nonces
        and bans), trunks by address, and by digest too where `inbound_auth` says so."""
        assert self.registrar is not None
        cfg = self.config
        secrets = {
            trunk.name: TrunkSecret(trunk.username, {
                algorithm: auth.ha1(algorithm, trunk.username, cfg.realm, trunk.password)
                for algorithm in ("MD5", "SHA-256")
            })
            for trunk in cfg.trunks
            if trunk.inbound_auth and trunk.username and trunk.password
        }
        registrar = self.registrar
        return CallerCheck(registrar.digest, registrar.ha1_lookup, registrar.table, trunk_for,
                           secrets)

    async def _start_http(self) -> None:
        import uvicorn

        from pbx.cti.http import build_http_app

        cfg = self.config
        assert self.desk is not None and self.db is not None
        if self.api_tokens is None:
            self.api_tokens = load_api_tokens(cfg)
        app = build_http_app(self, self.desk, self.db, campaigns=self, tokens=self.api_tokens,
                             intervals=self.intervals)
        self.http_reconfigure = app.state.reconfigure
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=cfg.http.host, port=cfg.http.port, log_level="warning",
                access_log=False, lifespan="off",
                log_config=None,  # its loggers go through structlog (pbx.logs)
                # The perimeter (pbx.cti.perimeter) decides whose X-Forwarded-For counts;
                # uvicorn's own handling would believe any process on loopback.
                proxy_headers=False, server_header=False,
                ws_max_size=cfg.http.max_body_bytes,
            )
        )
        self._http_server = server
        # Bound here, not by uvicorn: a port in use is our OSError (one line from `pbx run`),
        # not uvicorn's log line and exit.
        host = cfg.http.host
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, cfg.http.port))
        except OSError as exc:
            sock.close()
            shown = f"[{host}]" if ":" in host else host
            raise OSError(exc.errno, f"cannot listen on HTTP {shown}:{cfg.http.port}: "
                                     f"{exc.strerror}") from None
        self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # re-raise the bind error
            await asyncio.sleep(0.01)
        self.http_bound = (cfg.http.host, cfg.http.port)
        _warn_about_exposure(cfg)

    async def run(self) -> None:
        """Start, wait for SIGTERM/SIGINT, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopped.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        await self.start()
        await self._stopped.wait()
        log.info("pbx_stopping")
        await self.stop()

    async def stop(self) -> None:
        for reload in list(self._reloading):  # a SIGHUP just before: not applied any more
            reload.cancel()
        if self.switchboard is not None:
            await self.switchboard.shutdown()
            if self.transport is not None:
                self.transport.pump()
        if self.media is not None:
            await self.media.shutdown()
        if self.transport is not None:
            await self.transport.close()
        if self._http_server is not None:
            self._http_server.should_exit = True  # type: ignore[attr-defined]
        for task in self._tasks:
            if task.get_name() != "http":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.writer is not None:
            await asyncio.to_thread(self.writer.flush_sync)
        for rows in (self.queue_log, self.cdrs):
            if rows is not None:
                await asyncio.to_thread(rows.flush_sync)
        if self.intervals is not None:
            try:
                await self.intervals.flush()
            except Exception:
                log.exception("interval_write_failed")
        if self.db is not None:
            self.db.close()
        log.info("pbx_stopped")

    # ------------------------------------------------------------------ SIP events

    def _on_sip_event(self, event: object) -> None:
        if self.switchboard is not None and self.switchboard.on_sip_event(event):
            return
        if isinstance(event, RequestReceived):
            self._on_request(event)

    def _on_request(self, event: RequestReceived) -> None:
        request, tx = event.request, event.transaction
        if tx is None:
            return  # an ACK for a 2xx we never sent: nothing to do yet
        assert self.endpoint is not None and self.registrar is not None
        method = request.method
        now = time.monotonic()
        unsupported = [
            option.strip()
            for value in request.headers.get_all("require")
            for option in value.split(",")
            if option.strip() and option.strip().lower() not in OUT_OF_DIALOG_EXTENSIONS
        ]
        if unsupported and method in ("REGISTER", "OPTIONS"):
            # RFC 3261 §8.2.2.3: an option the request requires and we do not know: 420,
            # naming it (RFC 4475 §3.3.5). Proxy-Require is for proxies; we are none.
            response = make_response(request, 420, to_tag=self.ids.token(6))
            response.headers.add("Unsupported", ", ".join(unsupported))
            self.endpoint.respond(tx, response, now)
            return
        if method == "REGISTER":
            self._on_register(request, event, now)
        elif method == "OPTIONS":
            response = make_response(request, 200, to_tag=self.ids.token(6))
            response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
            response.headers.add("Accept", "application/sdp")
            response.headers.add("Supported", "path")
            self.endpoint.respond(tx, response, now)
        else:
            response = make_response(request, 405, to_tag=self.ids.token(6))
            response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
            self.endpoint.respond(tx, response, now)

    def _registered_tcp_sources(self) -> set[tuple[str, int]]:
        # The TCP connections that carry a live binding: the transport keeps them open past
        # its idle timeout (pbx.transport.sip's docstring says why).
        if self.registrar is None:
            return set()
        table, now = self.registrar.table, time.time()
        return {(b.source_host, b.source_port) for aor in table.aors()
                for b in table.current(aor, now) if b.source_transport == "tcp"}

    def _on_register(self, request: Request, event: RequestReceived, now: float) -> None:
        assert self.endpoint is not None and self.registrar is not None
        assert event.transaction is not None and self.writer is not None
        outcome = self.registrar.handle_register(request, event.source, time.time())
        if outcome.response is not None:
            self.endpoint.respond(event.transaction, outcome.response, now)
        if outcome.changes:
            self.writer.add(outcome.changes)
        for ev in outcome.events:
            self._publish(ev, request.call_id)

    def _publish(self, event: object, call_id: str = "") -> None:
        if isinstance(event, RegistrationChanged):
            if self.switchboard is not None and event.reason != "refreshed":
                self.switchboard.agent_device(event.aor, bool(event.bindings))
            level = log.debug if event.reason == "refreshed" else log.info
            level(
                "registration_" + event.reason,
                aor=event.aor,
                contacts=[b.contact for b in event.bindings],
                source=_fmt_source(event.source),
                call_id=call_id or None,
            )
        elif isinstance(event, SourceBanned):
            log.warning("source_banned", host=event.host, until=event.until,
                        failures=event.failures)
        self.bus.publish(event)

    def publish_event(self, event: object) -> None:
        """Log and publish a registrar event made outside REGISTER (a reload's)."""
        self._publish(event)

    def _subscriber_failed(self, event: object, exc: Exception) -> None:
        log.error("subscriber_failed", event_type=type(event).__name__, error=repr(exc))

    # ------------------------------------------------------------------ housekeeping

    async def _watch_lag(self) -> None:
        """Measure how late the loop runs a timer (for overload shedding) and say, at most every
        10 s, how many calls admission control refused."""
        board = self.switchboard
        assert board is not None and board.admission is not None
        loop = asyncio.get_running_loop()
        reported = self._refused()
        next_report = loop.time() + 10.0

        def report() -> None:
            nonlocal reported
            refused = self._refused()
            if refused != reported:
                log.warning("calls_refused", **{k: refused[k] - reported[k] for k in refused},
                            loop_lag_ms=round(board.loop_lag_s * 1000))
                reported = refused

        try:
            while True:
                started = loop.time()
                await asyncio.sleep(LAG_PROBE_S)
                lag = loop.time() - started - LAG_PROBE_S
                # rises at once, decays over a few probes: one late timer is not an overload
                board.loop_lag_s = max(lag, board.loop_lag_s * 0.5)
                if loop.time() >= next_report:
                    next_report = loop.time() + 10.0
                    report()
        finally:
            report()  # what was refused since the last report, also when stopping

    async def _housekeeping(self) -> None:
        assert self.registrar is not None and self.writer is not None
        next_expiry = 0.0
        while True:
            await asyncio.sleep(WRITE_BEHIND_INTERVAL)
            mono = time.monotonic()
            if mono >= next_expiry:
                next_expiry = mono + EXPIRY_INTERVAL
                changes, events = self.registrar.expire(time.time())
                if changes:
                    self.writer.add(changes)
                for ev in events:
                    self._publish(ev)
                if self.switchboard is not None and self.switchboard.campaigns:
                    self.switchboard.dialer_inbound_waits()  # blending: waits grow by the second
            try:
                await self.writer.flush()
            except Exception:
                log.exception("binding_write_failed")
            if isinstance(self.media, MediaWorkerPool):
                try:
                    await self.media.stats()
                except Exception:
                    log.exception("media_stats_failed")
            for rows, failure in ((self.queue_log, "queue_log_write_failed"),
                                  (self.cdrs, "cdr_write_failed")):
                if rows is not None:
                    try:
                        await rows.flush()
                    except Exception:
                        log.exception(failure)
            if self.intervals is not None:
                await self.intervals.flush_due()

    # ------------------------------------------------------------------ read-only views

    def registrations(self) -> list[Binding]:
        assert self.registrar is not None
        now = time.time()
        return [b for aor in self.registrar.table.aors()
                for b in self.registrar.table.current(aor, now)]

    def _acd_snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Live queue and agent statistics (issue 5 item 6) for /api/stats and the wallboard."""
        acd = self.switchboard.acd if self.switchboard is not None else None
        if acd is None:
            return {}
        now = time.time()
        queues = [_snapshot(acd.stats.queue(name, now)) for name in acd.stats.queues()]
        agents = []
        for ext in acd.stats.agents():
            snap = _snapshot(acd.stats.agent(ext, now))
            snap["time_by_state"] = {getattr(k, "value", str(k)): v
                                     for k, v in acd.stats.agent(ext, now).time_by_state.items()}
            seat = acd.agents.get(ext)
            snap["pause_reason"] = seat.pause_reason if seat is not None else ""
            snap["phone"] = seat.device_available if seat is not None else False
            agents.append(snap)
        return {"queues": queues, "agents": agents}

    def queue_status(self) -> list[QueueStatus]:
        """Every configured queue's live figures for the wallboard, from the ACD's statistics
        (a queue with no call yet included), with its service-level target and thresholds."""
        acd = self.switchboard.acd if self.switchboard is not None else None
        if acd is None:
            return []
        now = time.time()
        out = []
        for name, queue in acd.queues.items():
            if name not in acd.stats.queues():
                continue
            snap = acd.stats.queue(name, now)
            members = [agent for agent, _ in acd.members(name)]
            out.append(QueueStatus(
                name=name, waiting=snap.waiting,
                longest_wait_s=round(snap.longest_wait_s, 1), answered=snap.answered,
                abandoned=snap.abandoned, service_level=snap.service_level,
                agents_staffed=sum(1 for a in members if a.staffed),
                agents_available=sum(1 for a in members if a.huntable),
                offered=snap.offered, asa_s=snap.asa_s, aht_s=snap.aht_s,
                abandon_rate=snap.abandon_rate, service_level_s=queue.service_level_s,
                service_level_target=queue.service_level_target,
                thresholds=queue.wallboard.model_dump(),
            ))
        return out

    def metrics_snapshot(self) -> MetricsSnapshot:
        """The counters /metrics exports (pbx.cti.metrics)."""
        assert self.endpoint is not None and self.registrar is not None
        board = self.switchboard
        snapshot = self._acd_snapshot()
        queues = snapshot.get("queues", [])
        by_state: dict[str, int] = {}
        for agent in snapshot.get("agents", []):
            by_state[str(agent["state"])] = by_state.get(str(agent["state"]), 0) + 1
        engine = self._media_stats()
        rtp = asdict(engine.sessions) if engine is not None else {}
        acd = board.acd if board is not None else None
        return MetricsSnapshot(
            calls_active=board.stats["active"] if board else 0,
            calls_total={k: v for k, v in (board.stats if board else {}).items()
                         if k != "active"},
            queue_waiting={str(q["queue"]): int(q["waiting"]) for q in queues},
            queue_longest_wait_s={str(q["queue"]): float(q["longest_wait_s"]) for q in queues},
            agents_by_state=by_state,
            registrations=len(self.registrar.table),
            sip_transactions_active=self.endpoint.transaction_count,
            sip_total={k: v for k, v in asdict(self.endpoint.stats).items()
                       if isinstance(v, int)},
            rtp_total={k: v for k, v in rtp.items() if isinstance(v, int)},
            media_sessions_active=engine.sessions_open if engine is not None else 0,
            queue_calls={str(q["queue"]): {key: int(q[key]) for key in
                                           ("offered", "answered", "abandoned", "overflowed")}
                         for q in queues},
            queue_service_level={str(q["queue"]): float(q["service_level"]) for q in queues
                                 if q["service_level"] is not None},
            queue_service_level_s={q.name: q.service_level_s
                                   for q in self.config.effective_queues()},
            call_times=acd.call_times.snapshot() if acd is not None else {},
        )

    def campaign_status(self) -> list[dict[str, object]]:
        return self.switchboard.campaign_status() if self.switchboard else []

    def campaign_control(self, name: str, action: str) -> None:
        if self.switchboard is None:
            raise KeyError(name)
        self.switchboard.campaign_control(name, action)

    def dnc_changed(self, added: list[str], removed: list[str]) -> None:
        if self.switchboard is not None:
            self.switchboard.dnc_changed(added, removed)

    def customers_changed(self) -> None:
        if self.switchboard is not None:
            task = asyncio.create_task(self.switchboard.refresh_campaign_targets(),
                                       name="campaign-targets")
            self._background.add(task)  # kept until done (the loop holds tasks weakly)
            task.add_done_callback(self._background.discard)

    def preview_decided(self, agent: str, customer_no: str, dial: bool) -> None:
        if self.switchboard is None:
            raise KeyError(customer_no)
        self.switchboard.preview_decided(agent, customer_no, dial)

    def _media_stats(self) -> EngineStats | None:
        # worker processes answer asynchronously: their sums are refreshed by housekeeping
        if isinstance(self.media, MediaWorkerPool):
            return self.media.last_stats
        return self.media.stats() if self.media is not None else None

    def recent_queue_events(self, limit: int) -> list[QueueLogEntry]:
        assert self.db is not None
        return self.db.queue_log().recent_queue_events(limit)

    def calls_in_progress(self) -> list[dict[str, object]]:
        """The calls in progress, for `/api/calls` and `pbx calls` (times ISO 8601, UTC)."""
        board = self.switchboard
        if board is None:
            return []
        return [
            {
                "id": call.id,
                "phase": str(call.phase),
                "direction": call.direction,
                "caller": call.caller_number,
                "did": call.did,
                "queue": call.queue,
                "agent": call.agent,
                "on_hold": call.on_hold,
                "started_at": _iso(call.started_at),
                "answered_at": _iso(call.answered_at) if call.answered_at else None,
            }
            for call in list(board.calls.values())
        ]

    def recent_cdrs(self, limit: int) -> list[CallDetailRecord]:
        assert self.db is not None
        return self.db.cdr_sink().recent_cdrs(limit)

    def _refused(self) -> dict[str, int]:
        """New calls refused so far, by rule: the call layer's limits and the SIP layer's
        queue-age shedding ("queue")."""
        board, endpoint = self.switchboard, self.endpoint
        refused = dict(board.admission.refused) if board and board.admission else {}
        if endpoint is not None:
            refused["queue"] = endpoint.shedding.shed
        return refused

    def stats(self) -> dict[str, object]:
        assert self.endpoint is not None and self.registrar is not None
        return {
            "uptime_s": round(time.time() - self.started_at, 3),
            "sip": asdict(self.endpoint.stats),
            "transactions_active": self.endpoint.transaction_count,
            "registrar": asdict(self.registrar.stats),
            "bindings": len(self.registrar.table),
            "bindings_written": self.writer.written if self.writer else 0,
            "calls": dict(self.switchboard.stats) if self.switchboard else {},
            "callers": asdict(self.switchboard.callers.stats)
            if self.switchboard and self.switchboard.callers else {},
            "admission": {
                "refused": self._refused(),
                "queued_ms": dict(self.endpoint.shedding.queued_ms),
                "acks_absorbed": self.endpoint.shedding.acks_absorbed,
                "loop_lag_ms": round(self.switchboard.loop_lag_s * 1000, 1),
            } if self.switchboard and self.switchboard.admission else {},
            "trunks": self.switchboard.trunk_status() if self.switchboard else [],
            "media": asdict(stats) if (stats := self._media_stats()) else {},
            **self._acd_snapshot(),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _snapshot(value: object) -> dict[str, object]:
    data = asdict(value)  # type: ignore[call-overload]
    return {k: (v.value if hasattr(v, "value") else v) for k, v in data.items()}


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the SIP hot path.

    SIP messages and transactions form no reference cycles, but at thousands of requests per
    second tens of thousands of them are alive (Timer J keeps each for 32 s), and the default
    thresholds make the collector rescan them many times a second. Everything built at start
    (config, agents, code) is frozen out of the collector's view, and young collections run
    less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 50)


def _warn_about_exposure(cfg: PbxConfig) -> None:
    """Say at start what docs/SECURITY.md asks the admin to fix: the desk's port reachable
    from elsewhere without a TLS proxy in front, or a database file others can read."""
    if not ipaddress.ip_address(cfg.http.host).is_loopback and not cfg.http.trusted_proxies:
        log.warning("http_exposed", host=cfg.http.host, port=cfg.http.port,
                    advice="serve the desk through a TLS reverse proxy; keep http.host on "
                           "127.0.0.1 and list the proxy in http.trusted_proxies")
    url = cfg.database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            return
        if mode & 0o077:
            log.warning("database_file_readable_by_others", path=str(path), mode=oct(mode),
                        advice=f"chmod 600 {path}")


def _nonce_secret(data_dir: Path) -> bytes:
    """The nonce key, kept in the data directory so nonces stay valid across a restart."""
    path = data_dir / "nonce.key"
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


def _fmt_source(source: Address | None) -> str | None:
    if source is None:
        return None
    return f"{source.transport}:{source.host}:{source.port}"
