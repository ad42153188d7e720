"""Admission control: concurrent-call cap, calls-per-second bucket, shedding on loop lag."""

from __future__ import annotations

from pbx.call.admission import Admission, AdmissionLimits


def test_nothing_configured_takes_every_call() -> None:
    admission = Admission(AdmissionLimits(), now=0.0)
    assert all(admission.check(10_000, t / 1000, loop_lag_s=5.0) is None for t in range(1000))


def test_concurrent_call_cap() -> None:
    admission = Admission(AdmissionLimits(max_calls=2), now=0.0)
    assert admission.check(1, 0.0, 0.0) is None
    refusal = admission.check(2, 0.0, 0.0)
    assert refusal is not None and refusal.retry_after_s == 5 and "2 calls" in refusal.reason
    assert admission.refused == {"max_calls": 1, "rate": 0, "overload": 0}


def test_rate_allows_a_one_second_burst_then_the_sustained_rate() -> None:
    admission = Admission(AdmissionLimits(max_calls_per_second=10), now=0.0)
    burst = [admission.check(0, 0.0, 0.0) for _ in range(15)]
    assert sum(r is None for r in burst) == 10  # the bucket holds one second's worth
    # then 100 offers per second for 5 s: 10 per second get through, the rest is refused
    taken = sum(admission.check(0, 0.01 * i, 0.0) is None for i in range(1, 501))
    assert 49 <= taken <= 51
    assert admission.refused["rate"] == 5 + 500 - taken


def test_fractional_rate_and_refill_cap() -> None:
    admission = Admission(AdmissionLimits(max_calls_per_second=0.5), now=0.0)
    assert admission.check(0, 0.0, 0.0) is None  # a bucket of at least one call
    assert admission.check(0, 1.0, 0.0) is not None
    assert admission.check(0, 2.0, 0.0) is None  # one call per 2 s
    # a long quiet spell refills only to the bucket's size
    assert admission.check(0, 100.0, 0.0) is None
    assert admission.check(0, 100.0, 0.0) is not None


def test_shedding_on_loop_lag() -> None:
    admission = Admission(AdmissionLimits(overload_lag_s=0.2), now=0.0)
    assert admission.check(0, 0.0, loop_lag_s=0.19) is None
    refusal = admission.check(0, 0.0, loop_lag_s=0.35)
    assert refusal is not None and refusal.retry_after_s == 1 and "350 ms" in refusal.reason
    assert admission.refused["overload"] == 1
