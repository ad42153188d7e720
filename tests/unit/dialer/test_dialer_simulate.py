"""Campaign days through the real pacer: predictive against progressive, final states and
attempt counts, calling hours and the do-not-call list."""

from __future__ import annotations

from collections import Counter
from random import Random

import pytest

from pbx.dialer.campaign import customer_zone, within_calling_hours
from pbx.dialer.records import ContactState
from pbx.dialer.simulate import (
    DialerSimulationSettings,
    Outcome,
    compare_modes,
    format_report,
    simulate_day,
)
from pbx.repositories import Customer
from tests.unit.dialer.dialer_harness import MONDAY_10, at, campaign_config, customer

S = ContactState


def test_predictive_beats_progressive_under_the_abandon_cap(
        capsys: pytest.CaptureFixture[str]) -> None:
    config = campaign_config(
        amd={"enabled": True},
        calling_hours={"windows": [{"days": "mon-sun", "start": "08:00", "end": "22:00"}]},
    )
    people = [customer(f"{i:05d}") for i in range(1, 8001)]
    settings = DialerSimulationSettings(agents=10, hours=4, start_at=at(2026, 3, 2, 9), seed=1)
    reports = compare_modes(config, people, settings)
    with capsys.disabled():
        print("\n" + format_report(reports))
    progressive, predictive = reports["progressive"], reports["predictive"]
    assert progressive.drops == 0
    assert predictive.abandon_rate <= 0.03
    assert predictive.max_window_abandon_rate <= 0.03
    assert predictive.agent_occupancy > progressive.agent_occupancy + 0.03
    assert predictive.connects > progressive.connects


def scripted(customer: Customer, attempt: int, _rng: Random) -> tuple[Outcome, float]:
    """Each customer behaves by the last digit of the number: 0/5 always busy, 1/6 answer,
    2/7 ring out twice then answer, 3/8 an answering machine, 4/9 the call fails."""
    kind = int(customer.customer_no) % 5
    if kind == 0:
        return "busy", 2.0
    if kind == 1:
        return "human", 6.0
    if kind == 2:
        return ("no_answer", 1e9) if attempt <= 2 else ("human", 5.0)
    if kind == 3:
        return "machine", 4.0
    return "failed", 1.0


def test_every_contact_ends_final_with_the_right_attempts() -> None:
    berlin = [customer(f"{i:03d}") for i in range(1, 41)]
    new_york = [customer(f"{i:03d}", timezone="America/New_York") for i in range(41, 61)]
    people = berlin + new_york
    dnc = {people[0].phone_numbers[0], people[45].phone_numbers[0]}  # 001 and 046
    config = campaign_config(
        max_attempts=4,
        retry={"busy": {"delay_s": 120}, "no_answer": {"delay_s": 300},
               "failed": {"delay_s": 60}, "machine": {"delay_s": 600, "max_attempts": 2}},
        amd={"enabled": True},
    )
    settings = DialerSimulationSettings(agents=5, hours=30, start_at=MONDAY_10)
    report = simulate_day(config, people, settings, carrier=scripted, dnc=dnc)
    records = {r.customer_no: r for r in report.final_records}
    dialled = Counter(number for _, number, _, _ in report.dialled)
    expected = {0: (S.EXHAUSTED, 4), 1: (S.DONE, 1), 2: (S.DONE, 3), 3: (S.EXHAUSTED, 2),
                4: (S.EXHAUSTED, 4)}
    for person in people:
        record = records[person.customer_no]
        if person.phone_numbers[0] in dnc:
            assert (record.state, record.attempts) == (S.DNC, 0)
            assert dialled[person.customer_no] == 0
            continue
        state, attempts = expected[int(person.customer_no) % 5]
        assert (record.state, record.attempts) == (state, attempts), person.customer_no
        assert dialled[person.customer_no] == attempts
    assert report.drops == 0
    # the simulator raised on any violation; check the log once more from outside
    hours = config.calling_hours
    by_no = {p.customer_no: p for p in people}
    for when, number, phone, _ in report.dialled:
        assert phone not in dnc
        assert within_calling_hours(hours, customer_zone(hours, by_no[number]), when)
    # New York customers were first dialled at 09:00 their time (15:00 in Berlin)
    first_ny = min(when for when, number, _, _ in report.dialled if int(number) > 40)
    assert first_ny == pytest.approx(at(2026, 3, 2, 15), abs=1)


def test_preview_mode_day() -> None:
    config = campaign_config(mode="preview")
    people = [customer(f"{i:04d}") for i in range(1, 201)]
    settings = DialerSimulationSettings(agents=3, hours=2, start_at=MONDAY_10)
    report = simulate_day(config, people, settings)
    assert report.attempts > 0 and report.drops == 0
    assert report.connects > 0
