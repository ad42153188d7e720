"""Registering to carrier trunks: the pure `TrunkRegistration` machines driven on the
endpoint with one timer each — L3."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pbx.call.leg_events import SendRequest
from pbx.call.machine import log
from pbx.sip.endpoint import Address
from pbx.trunk.registration import TrunkRegistration

if TYPE_CHECKING:
    from pbx.switchboard.board import Switchboard


class TrunkRegistrations:
    """Part of `Switchboard` (see pbx.switchboard.board)."""

    def start_trunk_registrations(self: Switchboard) -> None:
        """Register to every carrier trunk configured with `register: true`."""
        now = time.monotonic()
        for trunk in self.router.trunks.values():
            if not trunk.registers or not trunk.username or not trunk.password:
                continue
            reg = TrunkRegistration(
                trunk.name,
                self,
                Address(trunk.transport, trunk.host, trunk.port),
                trunk.from_domain or trunk.host,
                trunk.username,
                trunk.password,
                trunk.register_expires,
                f"{self.ids.token(8)}@pbx",
            )
            self.trunk_regs[reg.leg] = reg
            self._run_reg(reg, reg.start(now))

    def _run_reg(self: Switchboard, reg: TrunkRegistration, actions: Iterable[object]) -> None:
        now = time.monotonic()
        before = reg.state
        for action in actions:
            if isinstance(action, SendRequest):
                tx = self.endpoint.send_request(action.request, action.destination, now)
                self._client_tx[tx] = action.leg
        if reg.state is not before:
            status = reg.status()
            level = log.warning if status.state == "failed" else log.info
            level(
                "trunk_registration",
                trunk=reg.trunk,
                state=status.state,
                status=status.last_status,
                error=status.last_error or None,
            )
        handle = self._timers.pop(reg.leg, None)
        if handle is not None:
            handle.cancel()
        deadline = reg.next_deadline()
        if deadline is not None:
            self._timers[reg.leg] = asyncio.get_running_loop().call_at(
                deadline, lambda: self._run_reg(reg, reg.handle_timer(time.monotonic()))
            )
        self.flush()

    def trunk_status(self: Switchboard) -> list[dict[str, object]]:
        return [dataclasses.asdict(reg.status()) for reg in self.trunk_regs.values()]
