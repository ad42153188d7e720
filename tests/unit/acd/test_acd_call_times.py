"""Wait, ring and talk histograms from the engine's command stream: every call counted once
per histogram, in the right bucket, by queue and outcome."""

from __future__ import annotations

import pytest

from pbx.acd.call_times import Histogram
from pbx.acd.events import CallAbandoned
from tests.unit.acd.acd_harness import desk, queue


def test_each_call_lands_once_in_each_histogram() -> None:
    d = desk(queue(members=("1001",), wrap_up_s=10, ring_timeout_s=5), agents=("1001",))
    d.enqueue("c1", at=10)
    d.advance(5)  # rang 5 s, no answer
    d.advance(5)  # rings again at 20
    d.advance_to(23)
    d.answer("c1", "1001")  # rang 3 s; waited 13 s
    d.enqueue("c2", at=30)
    d.send(CallAbandoned("c2"), at=75)  # waited 45 s, hung up
    d.advance_to(143)
    d.end("c1", "1001")  # talked 120 s
    times = d.engine.call_times.snapshot()
    assert set(times) == {("wait", "support", "answered"), ("wait", "support", "abandoned"),
                          ("ring", "support", "not_answered"), ("ring", "support", "answered"),
                          ("talk", "support", "completed")}
    answered = times[("wait", "support", "answered")]
    assert (answered.count, answered.sum_s) == (1, pytest.approx(13))
    assert dict(answered.buckets)[10.0] == 0 and dict(answered.buckets)[15.0] == 1
    assert times[("wait", "support", "abandoned")].sum_s == pytest.approx(45)
    assert times[("ring", "support", "not_answered")].sum_s == pytest.approx(5)
    assert times[("ring", "support", "answered")].sum_s == pytest.approx(3)
    talk = times[("talk", "support", "completed")]
    assert talk.count == 1 and talk.sum_s == pytest.approx(120)  # wrap-up not included
    assert talk.buckets[-1] == (float("inf"), 1)


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    histogram = Histogram((5.0, 10.0))
    for value in (0.0, 5.0, 7.5, 10.0, 11.0, -1.0):
        histogram.observe(value)
    snap = histogram.snapshot()
    assert snap.buckets == ((5.0, 3), (10.0, 5), (float("inf"), 6))
    assert snap.count == 6 and snap.sum_s == pytest.approx(33.5)
