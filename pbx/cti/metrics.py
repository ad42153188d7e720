"""Prometheus metrics at ``/metrics`` (L3), read at scrape time — nothing is counted twice.

A custom collector asks the `MetricsSource` the composition root wires into the desk
(`CtiDesk.metrics_source`) for a `MetricsSnapshot` of the PBX's own counters (calls, queues,
agents, registrations, SIP transactions, RTP) and adds the CTI's (sessions, desktops, logins,
form saves). Without a source, calls, queues and agents come from the desk's own picture and
the SIP/RTP families are left out.

Names follow Prometheus conventions: ``pbx_`` prefix, ``_total`` for counters, base units
(seconds). Label values are the mapping keys of the snapshot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from pbx.cti.auth import CtiAuth
from pbx.cti.control import MetricsSnapshot
from pbx.cti.desk import CtiDesk


class PbxCollector(Collector):
    """Turns a `MetricsSnapshot` and the CTI's counters into metric families."""

    def __init__(self, desk: CtiDesk, auth: CtiAuth) -> None:
        self._desk = desk
        self._auth = auth

    def collect(self) -> Iterator[Metric]:
        desk = self._desk
        source = desk.metrics_source
        snap = source.metrics_snapshot() if source is not None else None
        own = _desk_snapshot(desk)
        base = snap or own
        yield _gauge("pbx_calls_active", "Calls in progress", base.calls_active)
        yield _labelled(CounterMetricFamily, "pbx_calls", "Calls finished, by outcome",
                        "outcome", base.calls_total)
        yield _labelled(GaugeMetricFamily, "pbx_queue_waiting", "Callers waiting, by queue",
                        "queue", (snap and snap.queue_waiting) or own.queue_waiting)
        yield _labelled(GaugeMetricFamily, "pbx_queue_longest_wait_seconds",
                        "Longest current wait, by queue", "queue",
                        (snap and snap.queue_longest_wait_s) or own.queue_longest_wait_s)
        yield _labelled(GaugeMetricFamily, "pbx_agents", "Agents, by state", "state",
                        (snap and snap.agents_by_state) or own.agents_by_state)
        if snap is not None:
            yield _gauge("pbx_registrations", "Registered contacts", snap.registrations)
            yield _gauge("pbx_sip_transactions_active", "SIP transactions alive",
                         snap.sip_transactions_active)
            yield _labelled(CounterMetricFamily, "pbx_sip", "SIP counters", "counter",
                            snap.sip_total)
            yield _labelled(CounterMetricFamily, "pbx_rtp", "RTP counters", "counter",
                            snap.rtp_total)
            yield _gauge("pbx_media_sessions_active", "Open media sessions",
                         snap.media_sessions_active)
        yield _gauge("pbx_cti_sessions", "Logged-in desktop sessions", self._auth.active_sessions)
        yield _gauge("pbx_cti_websocket_clients", "Connected desktops", desk.client_count)
        yield _counter("pbx_cti_logins", "Successful desktop logins", self._auth.logins)
        yield _counter("pbx_cti_login_failures", "Failed desktop logins",
                       self._auth.login_failures)
        yield _counter("pbx_cti_logins_refused", "Desktop logins refused while the source "
                       "was banned or the account locked", self._auth.logins_refused)
        yield _counter("pbx_cti_form_saves", "Form saves stored", desk.form_saves)


def _desk_snapshot(desk: CtiDesk) -> MetricsSnapshot:
    queues = desk.queue_list()
    return MetricsSnapshot(
        calls_active=sum(1 for c in desk.calls.values() if c.state != "ended"),
        queue_waiting={q.name: q.waiting for q in queues},
        queue_longest_wait_s={q.name: q.longest_wait_s for q in queues},
        agents_by_state=dict(Counter(a.state for a in desk.agents.values())),
    )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _labelled(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    documentation: str,
    label: str,
    values: Mapping[str, float],
) -> Metric:
    family = kind(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def metrics_endpoint(desk: CtiDesk, auth: CtiAuth) -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /metrics`` handler, with its own registry (not the process-global one).
    Who may call it is decided in front of it (`pbx.cti.operations`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PbxCollector(desk, auth))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
