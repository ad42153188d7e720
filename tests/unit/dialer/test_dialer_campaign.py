"""The contact book: hand-out order, calling hours per time zone, DNC, retries, final states."""

from __future__ import annotations

import pytest

from pbx.dialer.campaign import (
    Campaign,
    CampaignStateError,
    RecordAttempt,
    SaveContact,
    next_calling_time,
    within_calling_hours,
)
from pbx.dialer.records import ContactRecord, ContactState
from tests.unit.dialer.dialer_harness import (
    BERLIN,
    MONDAY_10,
    NEW_YORK,
    at,
    campaign_config,
    customer,
    customers,
)

S = ContactState


def test_hands_out_contacts_in_order_and_counts_attempts() -> None:
    book = Campaign(campaign_config(), customers(3))
    first = book.take_next(MONDAY_10)
    assert first is not None and first.customer_no == "0001" and first.attempt == 1
    assert book.record("0001").state is S.DIALLING and book.record("0001").attempts == 1
    second = book.take_next(MONDAY_10)
    assert second is not None and second.customer_no == "0002"
    assert book.contacts_left() == 3


def test_calling_hours_follow_the_customer_time_zone() -> None:
    hours = campaign_config().calling_hours  # mon-fri 09:00-20:00
    assert within_calling_hours(hours, BERLIN, at(2026, 3, 2, 9))
    assert not within_calling_hours(hours, BERLIN, at(2026, 3, 2, 8, 59))
    assert not within_calling_hours(hours, BERLIN, at(2026, 3, 2, 20))
    assert not within_calling_hours(hours, BERLIN, at(2026, 3, 7, 12))  # Saturday
    # 10:00 in Berlin is 04:00 in New York: not yet.
    assert not within_calling_hours(hours, NEW_YORK, MONDAY_10)
    assert next_calling_time(hours, NEW_YORK, MONDAY_10) == at(2026, 3, 2, 9, zone=NEW_YORK)
    # Friday 21:00 -> Monday 09:00
    assert next_calling_time(hours, BERLIN, at(2026, 3, 6, 21)) == at(2026, 3, 9, 9)


def test_calling_hours_across_the_dst_change() -> None:
    hours = campaign_config().calling_hours
    # Europe moves to summer time on Sunday 29 March 2026: Monday 09:00 is still 09:00 local.
    opening = next_calling_time(hours, BERLIN, at(2026, 3, 28, 12))
    assert opening == at(2026, 3, 30, 9)
    assert opening - at(2026, 3, 27, 9) == 3 * 86400 - 3600


def test_a_customer_outside_hours_waits_for_the_opening() -> None:
    people = [customer("1", timezone="America/New_York"), customer("2")]
    book = Campaign(campaign_config(), people)
    contact = book.take_next(MONDAY_10)
    assert contact is not None and contact.customer_no == "2"
    assert book.take_next(MONDAY_10) is None
    opening = at(2026, 3, 2, 9, zone=NEW_YORK)
    assert book.next_due_at() == opening
    late = book.take_next(opening)
    assert late is not None and late.customer_no == "1"


def test_unknown_zone_falls_back_to_the_default() -> None:
    book = Campaign(campaign_config(), [customer("1", timezone="Nowhere/City")])
    assert book.take_next(MONDAY_10) is not None


def test_dnc_is_checked_at_every_hand_out() -> None:
    dnc: set[str] = set()
    people = [customer("1", "+491111", "+492222"), customer("2", "+493333")]
    book = Campaign(campaign_config(), people, dnc=dnc)
    dnc.update({"+491111", "+493333"})  # added after the campaign was loaded
    first = book.take_next(MONDAY_10)
    assert first is not None and first.phone == "+492222"
    assert book.take_next(MONDAY_10) is None
    assert book.record("2").state is S.DNC and book.record("2").attempts == 0


def test_no_number_is_invalid() -> None:
    person = customer("1")
    person = type(person)(customer_no="1", name="x", phone_numbers=())
    book = Campaign(campaign_config(), [person])
    assert book.take_next(MONDAY_10) is None
    assert book.record("1").state is S.INVALID and book.is_finished()


def test_retry_delays_per_result_then_exhausted() -> None:
    config = campaign_config(max_attempts=3, retry={"busy": {"delay_s": 60},
                                                    "no_answer": {"delay_s": 600}})
    book = Campaign(config, customers(1))
    now = MONDAY_10
    assert book.take_next(now) is not None
    book.finish("0001", "busy", now + 5)
    record = book.record("0001")
    assert record.state is S.PENDING and record.next_attempt_at == now + 65
    assert book.take_next(now + 64) is None
    again = book.take_next(now + 65)
    assert again is not None and again.attempt == 2
    book.finish("0001", "no_answer", now + 90)
    assert book.record("0001").next_attempt_at == now + 690
    assert book.take_next(now + 690) is not None
    book.finish("0001", "busy", now + 700)
    record = book.record("0001")
    assert record.state is S.EXHAUSTED and record.attempts == 3
    assert record.result_counts == {"busy": 2, "no_answer": 1}
    assert book.is_finished()


def test_per_result_cap() -> None:
    config = campaign_config(max_attempts=10, retry={"machine": {"delay_s": 0,
                                                                 "max_attempts": 2}})
    book = Campaign(config, customers(1))
    for _ in range(2):
        assert book.take_next(MONDAY_10) is not None
        book.answered("0001")
        book.finish("0001", "machine", MONDAY_10)
    assert book.record("0001").state is S.EXHAUSTED and book.record("0001").attempts == 2


def test_a_drop_locks_the_number_out() -> None:
    config = campaign_config(retry={"dropped": {"delay_s": 60}}, drop_lockout_s=7200)
    book = Campaign(config, customers(1))
    assert book.take_next(MONDAY_10) is not None
    book.answered("0001")
    book.finish("0001", "dropped", MONDAY_10 + 20)
    record = book.record("0001")
    assert record.locked_until == MONDAY_10 + 7220
    assert record.next_attempt_at == MONDAY_10 + 7220
    assert book.take_next(MONDAY_10 + 7219) is None
    assert book.take_next(MONDAY_10 + 7220) is not None


def test_connected_and_message_left_are_done() -> None:
    book = Campaign(campaign_config(), customers(2))
    for number, result in (("0001", "connected"), ("0002", "message_left")):
        assert book.take_next(MONDAY_10) is not None
        book.answered(number)
        if result == "connected":
            book.connected(number)
        book.finish(number, result, MONDAY_10 + 100, agent="1001")  # type: ignore[arg-type]
        assert book.record(number).state is S.DONE
    assert book.is_finished()
    stats = book.stats()
    assert stats.connects == 1 and stats.attempts == 2 and stats.contacts_left == 0


def test_writes_for_storage() -> None:
    book = Campaign(campaign_config(), customers(1))
    contact = book.take_next(MONDAY_10)
    assert contact is not None
    book.set_call("0001", "call-1")
    book.finish("0001", "busy", MONDAY_10 + 3)
    writes = book.take_writes()
    assert [type(w) for w in writes] == [SaveContact, RecordAttempt, SaveContact]
    attempt = writes[1]
    assert isinstance(attempt, RecordAttempt)
    assert attempt.attempt.call == "call-1" and attempt.attempt.duration_s == 3.0
    assert attempt.attempt.result == "busy" and attempt.attempt.phone == contact.phone
    assert book.take_writes() == []


def test_stored_live_states_go_back_to_pending() -> None:
    stored = {
        "0001": ContactRecord("renewals", "0001", S.DIALLING, attempts=2),
        "0002": ContactRecord("renewals", "0002", S.DONE, attempts=1),
        "0003": ContactRecord("renewals", "0003", S.PENDING, attempts=1,
                              next_attempt_at=MONDAY_10 + 100),
    }
    book = Campaign(campaign_config(), customers(3), stored)
    assert book.record("0001").state is S.PENDING
    assert book.contacts_left() == 2
    contact = book.take_next(MONDAY_10)
    assert contact is not None and contact.customer_no == "0001" and contact.attempt == 3
    assert book.take_next(MONDAY_10) is None
    assert book.next_due_at() == MONDAY_10 + 100


def test_preview_dial_and_skip() -> None:
    config = campaign_config(mode="preview", preview={"skip_retry_s": 300})
    book = Campaign(config, customers(2))
    shown = book.take_next(MONDAY_10, preview=True)
    assert shown is not None and book.record("0001").state is S.PREVIEW
    assert book.record("0001").attempts == 0
    dialled = book.dial_previewed("0001", MONDAY_10 + 5)
    assert dialled is not None and dialled.attempt == 1
    assert book.take_next(MONDAY_10, preview=True) is not None
    book.skip_previewed("0002", MONDAY_10 + 5)
    assert book.record("0002").state is S.PENDING
    assert book.record("0002").next_attempt_at == MONDAY_10 + 305
    assert book.record("0002").attempts == 0


def test_illegal_changes_raise() -> None:
    book = Campaign(campaign_config(), customers(1))
    with pytest.raises(CampaignStateError):
        book.answered("0001")
    with pytest.raises(CampaignStateError):
        book.finish("0001", "busy", MONDAY_10)
    assert book.take_next(MONDAY_10) is not None
    with pytest.raises(CampaignStateError):
        book.connected("0001")
