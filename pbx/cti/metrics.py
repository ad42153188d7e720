"""Prometheus metrics at ``/metrics`` (L3), read at scrape time — nothing is counted twice.

A custom collector asks the `MetricsSource` the composition root wires into the desk
(`CtiDesk.metrics_source`) for a `MetricsSnapshot` of the PBX's own counters (calls, queues,
agents, registrations, SIP transactions, RTP) and adds the CTI's (sessions, desktops, logins,
form saves). Without a source, calls, queues and agents come from the desk's own picture and
the SIP/RTP families are left out.

Names follow the Prometheus conventions: ``pbx_`` prefix; one name per thing counted, so that
summing a name over its labels never counts a call twice (``pbx_calls_offered_total`` and
``pbx_calls_answered_total``, not one ``pbx_calls_total`` with both as labels); ``_total`` for
counters, ``_bytes_total`` for bytes, base units (seconds, ratios 0..1); histograms for the
callers' wait, the phones' ring and the agents' talk time per queue
(`pbx.acd.call_times`); ``pbx_build_info``; and prometheus_client's process and platform
collectors (``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ``python_info``).
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from pbx.acd.call_times import HistogramSnapshot
from pbx.cti.auth import CtiAuth
from pbx.cti.control import MetricsSnapshot
from pbx.cti.desk import CtiDesk

CALL_COUNTERS = {  # switchboard counter -> help
    "offered": "Calls offered to the PBX (inbound INVITEs that passed admission, campaigns' "
               "calls)",
    "answered": "Calls answered",
    "rejected": "Calls refused (403, 503, no route …)",
    "completed": "Calls ended",
}
RTP_NAMES = {  # media session counter -> metric name (without _total)
    "packets_in": "pbx_rtp_packets_received",
    "octets_in": "pbx_rtp_received_bytes",
    "packets_out": "pbx_rtp_packets_sent",
    "octets_out": "pbx_rtp_sent_bytes",
    "rtcp_in": "pbx_rtcp_packets_received",
    "rtcp_out": "pbx_rtcp_packets_sent",
    "rtcp_malformed": "pbx_rtcp_malformed_packets",
    "rtcp_foreign_source": "pbx_rtcp_foreign_source_packets",
}
QUEUE_COUNTERS = {
    "offered": "Calls offered to the queue (also those turned away at the door)",
    "answered": "Queued calls answered by an agent",
    "abandoned": "Queued calls whose caller hung up",
    "overflowed": "Queued calls that left for another reason (max wait, overflow, exit key …)",
}
HISTOGRAMS = {  # kind -> (name, help, labels besides queue)
    "wait": ("pbx_queue_wait_seconds",
             "Time callers waited in the queue, by how they left it", ("outcome",)),
    "ring": ("pbx_queue_ring_seconds",
             "Time an agent's phone rang for a queued call, by whether the agent answered",
             ("outcome",)),
    "talk": ("pbx_queue_talk_seconds", "Agents' talk time on queued calls (wrap-up apart)", ()),
}


class PbxCollector(Collector):
    """Turns a `MetricsSnapshot` and the CTI's counters into metric families."""

    def __init__(self, desk: CtiDesk, auth: CtiAuth, version: str = "unknown") -> None:
        self._desk = desk
        self._auth = auth
        self._version = version

    def collect(self) -> Iterator[Metric]:
        desk = self._desk
        source = desk.metrics_source
        snap = source.metrics_snapshot() if source is not None else None
        own = _desk_snapshot(desk)
        base = snap or own
        info = GaugeMetricFamily("pbx_build_info", "The running PBX's version (always 1)",
                                 labels=["version", "python_version"])
        info.add_metric([self._version, platform.python_version()], 1)
        yield info
        yield _gauge("pbx_calls_active", "Calls in progress", base.calls_active)
        for key, value in sorted(base.calls_total.items()):
            yield _counter(f"pbx_calls_{key}", CALL_COUNTERS.get(key, f"Calls {key}"), value)
        yield _labelled(GaugeMetricFamily, "pbx_queue_waiting", "Callers waiting, by queue",
                        "queue", (snap and snap.queue_waiting) or own.queue_waiting)
        yield _labelled(GaugeMetricFamily, "pbx_queue_longest_wait_seconds",
                        "Longest current wait, by queue", "queue",
                        (snap and snap.queue_longest_wait_s) or own.queue_longest_wait_s)
        yield _labelled(GaugeMetricFamily, "pbx_agents", "Agents, by state", "state",
                        (snap and snap.agents_by_state) or own.agents_by_state)
        if snap is not None:
            yield from _queue_families(snap)
            yield _gauge("pbx_registrations", "Registered contacts", snap.registrations)
            yield _gauge("pbx_sip_transactions_active", "SIP transactions alive",
                         snap.sip_transactions_active)
            for key, value in sorted(snap.sip_total.items()):
                yield _counter(f"pbx_sip_{key}", f"SIP: {key.replace('_', ' ')}", value)
            for key, value in sorted(snap.rtp_total.items()):
                name = RTP_NAMES.get(key, f"pbx_rtp_{key}")
                yield _counter(name, f"RTP: {key.replace('_', ' ')}", value)
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


def _queue_families(snap: MetricsSnapshot) -> Iterator[Metric]:
    for key, documentation in QUEUE_COUNTERS.items():
        family = CounterMetricFamily(f"pbx_queue_calls_{key}", documentation, labels=["queue"])
        for queue, counts in sorted(snap.queue_calls.items()):
            family.add_metric([queue], counts.get(key, 0))
        yield family
    yield _labelled(GaugeMetricFamily, "pbx_queue_service_level_ratio",
                    "Calls answered within the queue's service-level time, of all that left "
                    "the queue (answered, abandoned or overflowed)", "queue",
                    snap.queue_service_level)
    yield _labelled(GaugeMetricFamily, "pbx_queue_service_level_threshold_seconds",
                    "The queue's service-level time (service_level_s)", "queue",
                    snap.queue_service_level_s)
    for kind, (name, documentation, labels) in HISTOGRAMS.items():
        histograms = HistogramMetricFamily(name, documentation, labels=["queue", *labels])
        for (of_kind, queue, outcome), histogram in snap.call_times.items():
            if of_kind == kind:
                histograms.add_metric([queue, *([outcome] if labels else [])],
                                      _buckets(histogram), histogram.sum_s)
        yield histograms


def _buckets(histogram: HistogramSnapshot) -> list[tuple[str, float]]:
    # the exposition's `le` labels: "5.0", "+Inf"
    return [("+Inf" if bound == float("inf") else repr(float(bound)), count)
            for bound, count in histogram.buckets]


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pbx")
    except PackageNotFoundError:
        return "unknown"


def metrics_endpoint(desk: CtiDesk, auth: CtiAuth) -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /metrics`` handler, with its own registry (not the process-global one).
    Who may call it is decided in front of it (`pbx.cti.operations`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PbxCollector(desk, auth, _version()))
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, …_resident_memory_bytes …
    PlatformCollector(registry=registry)  # python_info

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
