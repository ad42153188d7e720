"""CTI: the agent desktop's API, WebSocket, screen-pop forms, wallboard and metrics (L3).

Modules: `permissions` (pure field-permission policy), `auth` (credentials, sessions, CSRF,
lockouts), `forms` (pop payloads, save checks, which forms an agent may open), `desk`
(`CtiDesk`: live agents and calls, push to desktops), `control` (the protocols the PBX
implements), `api` / `rest` / `websocket` (Starlette), `operations` (stats, CDRs,
registrations, campaigns, metrics — and who may read them), `tokens` (API tokens for
monitoring), `metrics` (Prometheus), `openapi`, `perimeter` (client address, body cap, security
headers), `http` (the HTTP app itself, with who may use which route).

Wiring it into the PBX (the composition root, `pbx.app`)
---------------------------------------------------------

1. Implement `pbx.cti.control.CallControl` (``make_call``, ``hang_up``, ``hold``, ``resume``,
   ``transfer``, ``complete_transfer``, ``cancel_transfer``, ``set_disposition``; all async,
   raising `ControlRefused(status, message)` for refusals) over the switchboard, and
   `AgentControl` (``login``, ``logout``, ``pause``, ``ready``) over the ACD service.
   Optionally `QueueStatusSource` (``queue_status()``) and `MetricsSource`
   (``metrics_snapshot()``).
2. At start, after ``Database.open``::

       await asyncio.to_thread(prune_credentials, config, db.cti_store())  # cheap
       desk = CtiDesk(config, call_control, agent_control,
                      queue_status=acd_view, metrics=metrics_view)
       app = build_http_app(self, desk, db, campaigns=self,
                            tokens=load_api_tokens(config))  # pbx.cti.http, pbx.cti.tokens

   (Each agent's stored hash is brought up to date at its first login or first session use;
   `sync_credentials` does all agents at once, one scrypt each.)
3. Report events to the desk from the event-loop thread (any thread works), as they happen:

   ================================================  ===========================================
   PBX event                                         desk call
   ================================================  ===========================================
   ACD command ``AgentStateChanged``                 ``on_agent_state(c.agent, c.new, c.reason,
                                                     c.call, c.queue, c.at)``
   ACD command ``AgentDeviceChanged``                ``on_agent_device(c.agent, c.available)``
   ACD command ``CallJoinedQueue``                   ``on_call_queued(call, queue, caller=…,
                                                     did=…, flow=…, variables=…, customer=…)``
   ACD command ``OfferCall`` (per agent rung)        ``on_call_presented(call, agent, variables,
                                                     customer, queue=…, flow=…, caller=…, did=…)``
   ACD ``CancelOffer`` / ``OfferFailed``             ``on_offer_cancelled(call, agent, reason)``
   agent leg ``Answered`` (``ConnectCall``)          ``on_call_answered(call, agent)``
   ``CallControl.make_call`` placed a call           ``on_call_dialing(call, agent, number,
                                                     customer)``
   hold / resume carried out                         ``on_call_held(call)`` / ``on_call_resumed``
   transfer carried out                              ``on_call_transferred(call, target,
                                                     agent=new agent or None)``
   caller leg ``HungUp`` / ``CallAbandoned``         ``on_call_ended(call, cause)``
   ================================================  ===========================================

   ``call`` is always the waiting caller's leg id (the one the ACD knows). ``variables`` are
   the IVR's call variables; ``customer`` the `Customer` the IVR looked up (or None). Wrap-up
   started/ended events come from ``on_agent_state`` (``wrap_up`` in and out).
"""

from pbx.cti.api import build_cti_routes
from pbx.cti.auth import sync_credentials
from pbx.cti.control import (
    AgentControl,
    CallControl,
    ControlRefused,
    MetricsSnapshot,
    MetricsSource,
    QueueStatus,
    QueueStatusSource,
)
from pbx.cti.desk import CtiDesk

__all__ = [
    "AgentControl",
    "CallControl",
    "ControlRefused",
    "CtiDesk",
    "MetricsSnapshot",
    "MetricsSource",
    "QueueStatus",
    "QueueStatusSource",
    "build_cti_routes",
    "sync_credentials",
]
