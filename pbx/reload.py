"""Reloading the configuration of the running PBX without dropping a call — L4.

`ConfigReloader.reload()` runs for SIGHUP, ``POST /api/admin/reload`` and `pbx reload`, one at a
time:

1. The file the PBX was started with is read and validated again, with the same command-line
   overrides (`pbx.config.loader.load_config` + `apply_overrides`). An invalid file is refused
   with the file:line errors `pbx check-config` prints; nothing changes.
2. What cannot change live (`pbx.config.diff.RESTART_SECTIONS`: addresses, ports, database,
   data directory, media, SIP stack, trunks, the desk's login limits) is kept as it is and
   reported as "needs a restart".
3. Storage first (agents' rows, new or changed customers of the seed, do-not-call numbers): if
   the database fails, nothing else changes.
4. Then, in one step of the event loop (no other task runs in between), every part takes the
   new configuration: the registrar's credentials (the next REGISTER is checked against the new
   password; a removed agent's phones are unregistered), the router (DIDs, dial plan), flows and
   hooks, hold programs, the ACD (`pbx.acd.events.ConfigChanged`: queues, members, strategies,
   timers, agents, skills), the desk and the HTTP API (forms, agents; a removed agent's desktop
   session ends; the API tokens, read first like `pbx run` does — an unreadable token file
   refuses the reload).
5. Campaigns: new ones are loaded, removed ones stopped, changed ones replaced by the new
   definition (restarted when enabled); their calls in progress go on.

Calls keep the objects they run on: a call in its IVR finishes its flow as it started it; a
caller waiting in a queue stays in line under the queue's new settings (a removed queue's
callers go to its overflow target, else stay until answered); a conversation is not touched.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import TYPE_CHECKING, Any

import structlog

from pbx.acd.events import AgentDeviceAvailable, AgentLoggedIn, ConfigChanged
from pbx.acd.model import AgentProfile
from pbx.acd.schema import CustomerStatusConfig
from pbx.call.router import ConfigRouter
from pbx.config.diff import config_changes, live_config, needs_restart
from pbx.config.loader import ConfigError, apply_overrides, load_config
from pbx.config.schema import PbxConfig
from pbx.cti.auth import prune_credentials
from pbx.cti.desk import AgentStatus
from pbx.cti.tokens import ApiTokenError, ApiTokens, load_api_tokens
from pbx.ivr.hooks import load_hooks
from pbx.ivr.validation import hook_specs
from pbx.registrar.registrar import RegistrationChanged

if TYPE_CHECKING:
    from pbx.app import PbxApp

log = structlog.get_logger("pbx.reload")


class ConfigReloader:
    """Re-reads `path` with `overrides` (the keyword arguments of `apply_overrides`) and
    applies it to `app`. See the module docstring."""

    def __init__(self, app: PbxApp, path: str, overrides: dict[str, Any]) -> None:
        self.app = app
        self.path = path
        self.overrides = overrides
        self._lock = asyncio.Lock()
        self.reloads = 0

    def _load(self) -> PbxConfig:
        return apply_overrides(load_config(self.path), **self.overrides)

    async def reload(self, requested_by: str) -> dict[str, Any]:
        """The answer for the API: ``applied``, ``changes``, ``needs_restart`` or ``errors``."""
        async with self._lock:
            try:
                loaded = await asyncio.to_thread(self._load)
            except ConfigError as exc:
                errors = [str(issue) for issue in exc.issues]
                log.error("config_reload_refused", file=self.path, by=requested_by,
                          errors=errors)
                return {"applied": False, "file": self.path, "errors": errors}
            old = self.app.config
            tokens = None
            if loaded.http.api_tokens != old.http.api_tokens:
                try:
                    tokens = await asyncio.to_thread(load_api_tokens, loaded)
                except ApiTokenError as exc:  # as `pbx run` says it
                    error = f"{self.path}: {exc}"
                    log.error("config_reload_refused", file=self.path, by=requested_by,
                              errors=[error])
                    return {"applied": False, "file": self.path, "errors": [error]}
            restart = needs_restart(old, loaded)
            new = live_config(old, loaded)
            changes = config_changes(old, new)
            try:
                warnings = await self._apply(old, new, tokens)
            except Exception as exc:  # storage trouble: the old configuration stays in force
                log.exception("config_reload_failed", file=self.path, by=requested_by)
                return {"applied": False, "file": self.path,
                        "errors": [f"{self.path}: could not apply: {type(exc).__name__}: {exc}"]}
            self.reloads += 1
            log.info("config_reloaded", file=self.path, by=requested_by,
                     changes=changes or None, needs_restart=restart or None)
            if restart:
                log.warning("config_reload_needs_restart", file=self.path, keys=restart,
                            hint="these keys keep their old values until `pbx run` restarts")
            answer: dict[str, Any] = {"applied": True, "file": self.path, "changes": changes,
                                      "needs_restart": restart}
            if warnings:
                answer["warnings"] = warnings
            return answer

    # ------------------------------------------------------------------ applying

    async def _apply(self, old: PbxConfig, new: PbxConfig,
                     tokens: ApiTokens | None) -> list[str]:
        """Storage, then every part at once, then campaigns. Raises when storage fails before
        anything changed; what fails after the switch is logged and returned as a warning."""
        app = self.app
        assert app.db is not None
        db = app.db
        await asyncio.to_thread(db.agent_directory().sync_agents, new.agent_records())
        # The seed as at start: missing customers inserted, a changed entry written only
        # while nobody has edited that customer since the seed wrote it.
        if new.customers != old.customers:
            await asyncio.to_thread(db.customer_directory().seed,
                                    [c.to_customer() for c in new.customers])
        listed = set(old.dnc.numbers)
        numbers = [n for n in new.dnc.numbers if n not in listed]
        if numbers:
            await asyncio.to_thread(db.dialer_store().add_dnc_numbers, numbers, "config")
        hooks, hook_errors = load_hooks(hook_specs(new.flows), importlib.import_module)
        for spec, error in hook_errors.items():
            log.error("hook_unavailable", hook=spec, error=error)
        self._swap(old, new, hooks, tokens)  # no await inside: one step of the loop
        warnings: list[str] = []
        try:
            await self._campaigns(old, new)
        except Exception as exc:
            log.exception("campaign_reload_failed")
            warnings.append(f"campaigns: not all could be loaded ({type(exc).__name__}: {exc})")
        try:
            changed = await asyncio.to_thread(prune_credentials, new, db.cti_store())
            if changed:
                log.info("cti_credentials_changed", agents=changed)
        except Exception as exc:
            log.exception("cti_credentials_sync_failed")
            warnings.append(f"desk credentials: not updated ({type(exc).__name__})")
        return warnings

    def _swap(self, old: PbxConfig, new: PbxConfig, hooks: dict[str, Any],
              tokens: ApiTokens | None) -> None:
        app = self.app
        board, registrar = app.switchboard, app.registrar
        assert board is not None and registrar is not None
        app.config = new
        app.set_credentials(new)
        board.router = ConfigRouter(new)
        board.flows = dict(new.flows)
        board.hooks = dict(hooks)
        board.hold_programs = dict(new.hold_programs)
        enabled = {a.extension: a for a in new.agents if a.enabled}
        desk = app.desk
        if desk is not None:  # new agents first: the desk sees them log in below
            desk.config = new
            started = time.time()
            for extension, agent in enabled.items():
                status = desk.agents.get(extension)
                if status is None:
                    desk.agents[extension] = AgentStatus(extension, agent.name, since=started)
                else:
                    status.name = agent.name
        acd = board.acd
        before = set(acd.agents) if acd is not None else set()
        if acd is not None:
            statuses = dict(new.customer_statuses)
            statuses.setdefault("standard", CustomerStatusConfig())
            board.acd_handle(ConfigChanged(
                tuple(new.effective_queues()),
                tuple(AgentProfile(a.extension, a.name, dict(a.skills))
                      for a in enabled.values()),
                statuses,
                _removed_queue_targets(old, new),
            ))
            now = time.time()
            for extension, agent in enabled.items():
                if extension not in before:  # as at start: logged in, phone if registered
                    if agent.auto_login:
                        board.acd_handle(AgentLoggedIn(extension))
                    if registrar.lookup(extension, now):
                        board.acd_handle(AgentDeviceAvailable(extension))
        self._unregister([a.extension for a in old.agents if a.extension not in enabled])
        if desk is not None:  # removed agents last: the desk has seen them log out
            for extension in [e for e in desk.agents if e not in enabled]:
                del desk.agents[extension]
        if app.intervals is not None:  # new service-level targets for the reports
            app.intervals.stats.configure(new.effective_queues())
        if app.http_reconfigure is not None:
            app.http_reconfigure(new)
        if tokens is not None and app.api_tokens is not None:
            app.api_tokens.replace(tokens)  # shared by every route that takes tokens
        for running in board.campaigns.values():
            queue = acd.queues.get(running.config.queue) if acd is not None else None
            running.members = (frozenset(m.agent for m in queue.members) if queue
                               else frozenset())
        if board.campaigns:
            board.dialer_agents_changed()

    def _unregister(self, extensions: list[str]) -> None:
        # A removed (or disabled) agent's phones take no more calls: their bindings go.
        app = self.app
        assert app.registrar is not None and app.writer is not None
        table = app.registrar.table
        for aor in extensions:
            if table.current(aor, time.time()):
                table.replace(aor, [])
                app.writer.add({aor: ()})
                app.publish_event(RegistrationChanged(aor, (), "unregistered"))

    async def _campaigns(self, old: PbxConfig, new: PbxConfig) -> None:
        board = self.app.switchboard
        assert board is not None
        before = {c.name: c for c in old.campaigns}
        after = {c.name: c for c in new.campaigns}
        for name, config in before.items():
            if after.get(name) != config and name in board.campaigns:
                running = board.campaigns[name]
                try:
                    board.campaign_control(name, "stop")
                except KeyError:
                    pass
                if running.timer is not None:
                    running.timer.cancel()
                for customer_no in list(running.previews):
                    board._release_preview(running, customer_no, cancelled=True)
                del board.campaigns[name]
                log.info("campaign_unloaded", campaign=name,
                         reason="removed" if name not in after else "changed")
        wanted = tuple(c for name, c in after.items() if before.get(name) != c)
        if wanted and board.dialer_store is not None:
            await board.load_campaigns(wanted, board.dialer_store)


def _removed_queue_targets(old: PbxConfig, new: PbxConfig) -> dict[str, str]:
    """For each removed queue with an overflow target that still exists, that target."""
    queues = {q.name for q in new.effective_queues()}
    agents = {a.extension for a in new.agents if a.enabled}
    targets: dict[str, str] = {}
    for queue in old.effective_queues():
        if queue.name in queues or queue.overflow is None:
            continue
        kind, _, name = queue.overflow.partition(":")
        exists = ((kind == "flow" and name in new.flows) or (kind == "queue" and name in queues)
                  or (kind == "agent" and name in agents))
        if exists:
            targets[queue.name] = queue.overflow
    return targets
