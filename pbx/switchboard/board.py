"""The switchboard: the executor of the call machines, and the asyncio side of the call
layer — L3.

Calls are pure (`pbx.call.machine.Call`: the script of one call, its phases and the table of
what each input does in each phase). The switchboard runs them: it receives the SIP events the
endpoint reports for calls (INVITE, ACK, BYE, CANCEL, INFO, UPDATE, REFER, re-INVITE and the
responses to our INVITEs), feeds them to the sans-IO legs of `pbx.call.leg`, carries out the
legs' actions on the endpoint (asking the transport to transmit soon, never pumping it), posts
what the legs report to the call that owns them, and runs each call in one task that feeds its
inputs in order and carries out its commands (media on `media.engine.MediaEngine`, events to
the ACD, the pacer, the desk and the CDR writer). The legs' deadlines run on one
`loop.call_at` per leg, the call's on its task.

The class is assembled from one part per concern: `SipSide` (SIP dispatch, legs, new inbound
calls), `CallExecutor` (running calls), `Queueing` (the ACD engine beside the calls), `Dialing`
(campaigns' pacers) and `TrunkRegistrations`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

from media.engine import MediaEngine
from media.workers import MediaWorkerPool
from pbx.acd.engine import AcdEngine
from pbx.call.admission import Admission
from pbx.call.leg import Leg
from pbx.call.machine import Call, CallRouter
from pbx.clock import IdGenerator
from pbx.config.schema import HoldProgramConfig
from pbx.cti.desk import CtiDesk
from pbx.ivr.hooks import Hook
from pbx.ivr.schema import FlowConfig
from pbx.registrar.registrar import Registrar
from pbx.repositories import AgentDisposition, CallDetailRecord, CustomerDirectory, QueueLogEntry
from pbx.sip.endpoint import SipEndpoint
from pbx.sip.transaction import ClientTransaction
from pbx.storage.recordings import RecordingFiles
from pbx.switchboard.dialing import Dialing, RunningCampaign
from pbx.switchboard.executor import CallExecutor, Inbox
from pbx.switchboard.intervals import IntervalRecorder
from pbx.switchboard.queueing import Queueing
from pbx.switchboard.sip_side import SipSide
from pbx.switchboard.trunks import TrunkRegistrations
from pbx.transport.sip import ListenAddress
from pbx.trunk.registration import TrunkRegistration


class Switchboard(SipSide, CallExecutor, Queueing, TrunkRegistrations, Dialing):
    """See the module docstring. Created by the app once SIP, media and storage are up."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        bound: list[ListenAddress],
        registrar: Registrar,
        media: MediaEngine | MediaWorkerPool,
        router: CallRouter,
        ids: IdGenerator,
        write_cdr: Callable[[CallDetailRecord], None],
        flush: Callable[[], None],
        domain: str,
        flows: Mapping[str, FlowConfig] | None = None,
        hooks: Mapping[str, Hook] | None = None,
        customers: CustomerDirectory | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.bound = bound
        self.registrar = registrar
        self.media = media
        self.router = router
        self.ids = ids
        self.write_cdr = write_cdr
        # where the disposition of a call that already ended goes (behind its CDR)
        self.write_disposition: Callable[[AgentDisposition], None] | None = None
        self.ended_calls: OrderedDict[str, str] = OrderedDict()  # call id -> SIP Call-ID
        # call id -> (disposition, notes) set while the call goes on: into its CDR at the end
        self.dispositions: dict[str, tuple[str, str]] = {}
        self.flush = flush  # ask the transport to send the endpoint's output soon
        self.domain = domain
        self.flows = dict(flows or {})
        self.hooks = dict(hooks or {})
        self.customers = customers
        self.legs: dict[str, Leg] = {}
        self.leg_call: dict[str, Call] = {}
        self.calls: dict[str, Call] = {}
        self._inboxes: dict[str, Inbox] = {}  # call id -> its inputs
        self._amd_paths: dict[str, Path] = {}  # AMD recording -> its file
        self.recording_files: RecordingFiles | None = None  # where call recordings go
        self._dialogs: dict[tuple[str, str], str] = {}  # (Call-ID, our tag) -> leg
        self._pending: dict[tuple[str, str], str] = {}  # (Call-ID, their tag) -> inbound leg
        self._client_tx: dict[ClientTransaction, str] = {}
        self._leg_txs: dict[str, list[ClientTransaction]] = {}  # leg -> its transactions
        self._sessions: dict[str, Call] = {}  # media session -> the call it belongs to
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.trunk_regs: dict[str, TrunkRegistration] = {}
        self.acd: AcdEngine | None = None
        self.hold_programs: dict[str, HoldProgramConfig] = {}
        self._acd_timer: asyncio.TimerHandle | None = None
        self.on_agent_event: Callable[[object], None] | None = None
        self.queue_log: Callable[[QueueLogEntry], None] | None = None
        self.intervals: IntervalRecorder | None = None  # statistics for reports
        self.desk: CtiDesk | None = None  # the CTI desk, told about calls and agents
        self.campaigns: dict[str, RunningCampaign] = {}
        self.dialer_store = None
        self.dnc = set()
        self.accepting = True
        self.admission: Admission | None = None  # limits on new calls (None: take all)
        self.trunk_admission: dict[str, Admission] = {}  # a trunk's own limits
        self.trunk_active: dict[str, int] = {}  # calls in progress per trunk
        # how long the datagram being handled waited unread in its socket (the transport's)
        self.loop_lag_s = 0.0  # how late the event loop ran a timer lately (set by the app)
        self.stats = {"offered": 0, "answered": 0, "rejected": 0, "active": 0, "completed": 0}
        media.add_listener(self._on_media_event)
