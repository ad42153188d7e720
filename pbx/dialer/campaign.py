"""The contact book of one campaign: who is due, attempts, retries, final states (L2, pure).

Theory of operation. A `Campaign` holds one `ContactRecord` per target customer and a heap of
pending contacts by the time they are due. `take_next(now)` pops due contacts until one may be
called *now* and hands it out (marked ``dialling``, or ``preview`` for an agent to decide):

- the do-not-call list is checked at every hand-out, against every number of the customer
  (the first number not on the list is dialled; none left: final state ``dnc``);
- a contact locked out after a drop, or outside the calling hours in the customer's own time
  zone (``fields[timezone_field]`` or the default zone), goes back on the heap, due when the
  lock ends or the next calling window opens;
- a customer without a phone number ends as ``invalid``.

The caller then reports the attempt's progress (`answered`, `connected`) and its end
(`finish(customer_no, result, now)`): ``connected`` and ``message_left`` make the contact
``done``; a retryable result (busy, no_answer, failed, machine, dropped) schedules the next
attempt after the configured delay (a drop also locks the number for ``drop_lockout_s``), or
ends the contact as ``exhausted`` once ``max_attempts`` attempts were made, or the result's own
``max_attempts`` was reached. States change only through `_set_state`, along `_ALLOWED`; an
illegal change raises `CampaignStateError`.

Every change is queued as a `SaveContact` / `RecordAttempt` for the storage adapter; the pacer
drains them with `take_writes()`. Nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import logging
import zoneinfo
from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pbx.dialer.records import (
    FINAL_STATES,
    LIVE_STATES,
    AttemptRecord,
    ContactRecord,
    ContactState,
    DialResult,
)
from pbx.dialer.schema import RETRY_RESULTS, CallingHours, CampaignConfig, RetryResult
from pbx.errors import PbxError
from pbx.ivr.schema import minutes_of
from pbx.repositories import Customer

log = logging.getLogger(__name__)

S = ContactState
# Which state may follow which; anything else is a bug in the caller (CampaignStateError).
_ALLOWED: Mapping[ContactState, frozenset[ContactState]] = {
    S.PENDING: frozenset({S.DIALLING, S.PREVIEW, S.DNC, S.INVALID, S.EXHAUSTED}),
    S.PREVIEW: frozenset({S.DIALLING, S.PENDING, S.DNC}),
    S.DIALLING: frozenset({S.ANSWERED, S.PENDING, S.EXHAUSTED}),
    S.ANSWERED: frozenset({S.CONNECTED, S.DONE, S.PENDING, S.EXHAUSTED}),
    S.CONNECTED: frozenset({S.DONE}),
    S.DONE: frozenset(),
    S.DNC: frozenset(),
    S.EXHAUSTED: frozenset(),
    S.INVALID: frozenset(),
}
# Results that end a contact for good whatever the attempts left.
_FINAL_RESULTS: frozenset[str] = frozenset({"connected", "message_left"})


class CampaignStateError(PbxError):
    """A contact was told something that does not fit its state (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact handed out to be dialled (or previewed): `attempt` is this attempt's number
    (1 for the first call)."""

    customer_no: str
    phone: str
    attempt: int
    language: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class SaveContact:
    """Persist the contact's new state."""

    record: ContactRecord


@dataclass(frozen=True, slots=True)
class RecordAttempt:
    """Persist a finished attempt."""

    attempt: AttemptRecord


CampaignWrite = SaveContact | RecordAttempt


@dataclass(frozen=True, slots=True)
class ContactStats:
    """Stored-state statistics of a campaign: contacts per state, attempts and results."""

    contacts: int
    contacts_left: int
    by_state: Mapping[str, int]
    attempts: int
    results: Mapping[str, int]

    @property
    def connects(self) -> int:
        return self.results.get("connected", 0)

    @property
    def drops(self) -> int:
        return self.results.get("dropped", 0)


# ------------------------------------------------------------------ calling hours


def _local_at(day: datetime, minutes: int, zone: zoneinfo.ZoneInfo) -> float:
    # Wall-clock arithmetic: 09:00 stays 09:00 local on a DST change day; 24:00 is next 00:00.
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    return (midnight + timedelta(minutes=minutes)).timestamp()


def next_calling_time(hours: CallingHours, zone: zoneinfo.ZoneInfo, now: float) -> float | None:
    """`now` when it lies within a calling window in `zone`, else the start of the next
    window (within the coming week), None when the windows never open."""
    today = datetime.fromtimestamp(now, zone)
    best: float | None = None
    for offset in range(-1, 8):
        day = today + timedelta(days=offset)
        for window in hours.windows:
            if day.weekday() not in window.days:
                continue
            start = _local_at(day, minutes_of(window.start), zone)
            end = _local_at(day, minutes_of(window.end), zone)
            if start <= now < end:
                return now
            if start > now and (best is None or start < best):
                best = start
    return best


def within_calling_hours(hours: CallingHours, zone: zoneinfo.ZoneInfo, now: float) -> bool:
    return next_calling_time(hours, zone, now) == now


_ZONES: dict[str, zoneinfo.ZoneInfo | None] = {}


def zone_of(name: str) -> zoneinfo.ZoneInfo | None:
    """The time zone of that name, None when there is none (cached)."""
    if name not in _ZONES:
        try:
            _ZONES[name] = zoneinfo.ZoneInfo(name) if name else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            _ZONES[name] = None
    return _ZONES[name]


def customer_zone(hours: CallingHours, customer: Customer) -> zoneinfo.ZoneInfo:
    """The customer's own zone (``fields[timezone_field]``), else the default zone."""
    zone = zone_of(customer.fields.get(hours.timezone_field, ""))
    if zone is None:
        zone = zone_of(hours.default_timezone)
    assert zone is not None  # the schema checked the default zone
    return zone


# ------------------------------------------------------------------ the campaign


class Campaign:
    """The contacts of one campaign. Built from the target customers (`customers`, as the
    storage selected them) and their stored records (`stored`, by customer number); records of
    live calls from before a restart go back to pending, their attempts kept. `dnc` is the
    do-not-call list, looked up at every hand-out (keep it current: a set the service updates
    when numbers are added). Raises `CampaignStateError` on an illegal state change."""

    def __init__(
        self,
        config: CampaignConfig,
        customers: Iterable[Customer],
        stored: Mapping[str, ContactRecord] | None = None,
        dnc: Container[str] = frozenset(),
    ) -> None:
        self.config = config
        self._dnc = dnc
        self._customers: dict[str, Customer] = {}
        self._records: dict[str, ContactRecord] = {}
        self._due: list[tuple[float, int, str]] = []  # (due at, order, customer_no)
        self._order: dict[str, int] = {}
        self._started: dict[str, tuple[float, str, str]] = {}  # no -> (started, phone, call)
        self._writes: list[CampaignWrite] = []
        self._left = 0  # contacts not in a final state
        stored = stored or {}
        for order, customer in enumerate(sorted(customers, key=lambda c: c.customer_no)):
            number = customer.customer_no
            self._customers[number] = customer
            self._order[number] = order
            record = stored.get(number) or ContactRecord(config.name, number)
            if record.state in LIVE_STATES:
                record = replace(record, state=S.PENDING)
                self._writes.append(SaveContact(record))
            self._records[number] = record
            self._left += record.state not in FINAL_STATES
            if record.state is S.PENDING:
                self._push(number, record.next_attempt_at or 0.0)

    def add_customers(self, customers: Iterable[Customer]) -> int:
        """Customers who match the target now: new ones become pending contacts, due at once
        (after the ones already waiting); the ones the campaign has keep their state and get
        their current data. How many were new."""
        added = 0
        order = len(self._order)
        for customer in sorted(customers, key=lambda c: c.customer_no):
            number = customer.customer_no
            known = number in self._customers
            self._customers[number] = customer
            if known:
                continue
            self._order[number] = order
            order += 1
            self._records[number] = ContactRecord(self.config.name, number)
            self._left += 1
            self._push(number, 0.0)
            added += 1
        return added

    # ------------------------------------------------------------------ queries

    @property
    def name(self) -> str:
        return self.config.name

    def record(self, customer_no: str) -> ContactRecord:
        return self._records[customer_no]

    def records(self) -> list[ContactRecord]:
        return list(self._records.values())

    def customer(self, customer_no: str) -> Customer:
        return self._customers[customer_no]

    def contacts_left(self) -> int:
        return self._left

    def is_finished(self) -> bool:
        return self._left == 0

    def next_due_at(self) -> float | None:
        """When the earliest pending contact is due (it may still be outside its hours)."""
        while self._due and self._stale(self._due[0]):
            heapq.heappop(self._due)
        return self._due[0][0] if self._due else None

    def stats(self) -> ContactStats:
        by_state = Counter(str(r.state) for r in self._records.values())
        results: Counter[str] = Counter()
        for record in self._records.values():
            results.update(record.result_counts)
        return ContactStats(
            contacts=len(self._records),
            contacts_left=self.contacts_left(),
            by_state=dict(by_state),
            attempts=sum(r.attempts for r in self._records.values()),
            results=dict(results),
        )

    def take_writes(self) -> list[CampaignWrite]:
        """The records changed since the last call, for the storage adapter, in order."""
        writes, self._writes = self._writes, []
        return writes

    # ------------------------------------------------------------------ hand-out

    def take_next(self, now: float, *, preview: bool = False) -> Contact | None:
        """The next contact that may be called now, marked ``dialling`` (its attempt counted)
        or ``preview``; None when nobody is due."""
        while self._due and self._due[0][0] <= now:
            entry = heapq.heappop(self._due)
            if self._stale(entry):
                continue
            number = entry[2]
            record = self._records[number]
            customer = self._customers[number]
            if record.locked_until is not None and record.locked_until > now:
                self._push(number, record.locked_until)
                continue
            if not customer.phone_numbers:
                self._set_state(number, S.INVALID, last_result="no_number")
                continue
            phone = next((p for p in customer.phone_numbers if p not in self._dnc), None)
            if phone is None:
                self._set_state(number, S.DNC, last_result="dnc")
                continue
            hours = self.config.calling_hours
            opening = next_calling_time(hours, customer_zone(hours, customer), now)
            if opening is None:
                self._set_state(number, S.EXHAUSTED, last_result="no_calling_hours")
                continue
            if opening > now:
                self._push(number, opening)
                continue
            if preview:
                self._set_state(number, S.PREVIEW)
            else:
                self._start(number, phone, now)
            return Contact(number, phone, record.attempts + 1, customer.language, customer.name)
        return None

    def may_call(self, customer_no: str, now: float) -> str | None:
        """The number to dial for this contact right now, or None when DNC, its lock-out or
        its calling hours forbid it (checked again when a preview turns into a dial)."""
        customer = self._customers[customer_no]
        record = self._records[customer_no]
        if record.locked_until is not None and record.locked_until > now:
            return None
        hours = self.config.calling_hours
        if not within_calling_hours(hours, customer_zone(hours, customer), now):
            return None
        return next((p for p in customer.phone_numbers if p not in self._dnc), None)

    def dial_previewed(self, customer_no: str, now: float, call: str = "") -> Contact | None:
        """The agent chose to dial the previewed contact: ``dialling`` with its attempt
        counted; None (and the contact back to pending, or ``dnc``) when it may not be called
        now."""
        self._expect(customer_no, S.PREVIEW)
        phone = self.may_call(customer_no, now)
        customer = self._customers[customer_no]
        if phone is None:
            if all(p in self._dnc for p in customer.phone_numbers):
                self._set_state(customer_no, S.DNC, last_result="dnc")
            else:
                self._set_state(customer_no, S.PENDING)
                self._push(customer_no, now)
            return None
        self._start(customer_no, phone, now, call)
        attempt = self._records[customer_no].attempts
        return Contact(customer_no, phone, attempt, customer.language, customer.name)

    def skip_previewed(self, customer_no: str, now: float, *, released: bool = False) -> None:
        """The agent skipped the previewed contact: back to pending after ``skip_retry_s``,
        no attempt counted. `released`: the preview was withdrawn (campaign stopped), due
        again at once."""
        self._expect(customer_no, S.PREVIEW)
        if released:
            self._set_state(customer_no, S.PENDING)
            self._push(customer_no, now)
            return
        due = now + self.config.preview.skip_retry_s
        self._set_state(customer_no, S.PENDING, next_attempt_at=due, last_result="skipped")
        self._push(customer_no, due)

    def set_call(self, customer_no: str, call: str) -> None:
        """Name the call of the attempt in progress (for the attempt record)."""
        started, phone, _ = self._started[customer_no]
        self._started[customer_no] = (started, phone, call)

    # ------------------------------------------------------------------ progress and results

    def answered(self, customer_no: str) -> None:
        self._expect(customer_no, S.DIALLING)
        self._set_state(customer_no, S.ANSWERED)

    def connected(self, customer_no: str) -> None:
        self._expect(customer_no, S.ANSWERED)
        self._set_state(customer_no, S.CONNECTED)

    def finish(self, customer_no: str, result: DialResult, now: float, agent: str = "") -> None:
        """The attempt in progress ended with `result`: record it and decide what next."""
        record = self._records[customer_no]
        if record.state not in (S.DIALLING, S.ANSWERED, S.CONNECTED):
            raise CampaignStateError(
                f"{self.name}/{customer_no}: attempt result {result!r} while {record.state}"
            )
        started, phone, call = self._started.pop(customer_no)
        self._writes.append(
            RecordAttempt(
                AttemptRecord(self.name, customer_no, phone, record.attempts, started, result,
                              round(now - started, 3), agent, call)
            )
        )
        counts = dict(record.result_counts)
        counts[result] = counts.get(result, 0) + 1
        if result in _FINAL_RESULTS:
            self._set_state(customer_no, S.DONE, last_result=result, result_counts=counts,
                            next_attempt_at=None)
            return
        if result not in RETRY_RESULTS:
            raise CampaignStateError(f"{self.name}/{customer_no}: unknown result {result!r}")
        retry: RetryResult = result
        rule = self.config.retry.rule(retry)
        locked_until = record.locked_until
        due = now + rule.delay_s
        if retry == "dropped":
            locked_until = now + self.config.drop_lockout_s
            due = max(due, locked_until)
        exhausted = record.attempts >= self.config.max_attempts or (
            rule.max_attempts is not None and counts[result] >= rule.max_attempts
        )
        if exhausted:
            self._set_state(customer_no, S.EXHAUSTED, last_result=result, result_counts=counts,
                            next_attempt_at=None, locked_until=locked_until)
            return
        self._set_state(customer_no, S.PENDING, last_result=result, result_counts=counts,
                        next_attempt_at=due, locked_until=locked_until)
        self._push(customer_no, due)

    # ------------------------------------------------------------------ helpers

    def _start(self, customer_no: str, phone: str, now: float, call: str = "") -> None:
        record = self._records[customer_no]
        self._set_state(customer_no, S.DIALLING, attempts=record.attempts + 1,
                        next_attempt_at=None)
        self._started[customer_no] = (now, phone, call)

    def _push(self, customer_no: str, due: float) -> None:
        heapq.heappush(self._due, (due, self._order[customer_no], customer_no))

    def _stale(self, entry: tuple[float, int, str]) -> bool:
        # A heap entry stays behind when its contact was handed out or rescheduled.
        record = self._records[entry[2]]
        if record.state is not S.PENDING:
            return True
        due = max(record.next_attempt_at or 0.0, 0.0)
        return entry[0] < due

    def _expect(self, customer_no: str, state: ContactState) -> None:
        actual = self._records[customer_no].state
        if actual is not state:
            raise CampaignStateError(f"{self.name}/{customer_no}: is {actual}, not {state}")

    def _set_state(self, customer_no: str, state: ContactState, **changes: Any) -> None:
        record = self._records[customer_no]
        if state is not record.state and state not in _ALLOWED[record.state]:
            raise CampaignStateError(
                f"{self.name}/{customer_no}: {record.state} -> {state} is not allowed"
            )
        log.debug("contact %s/%s: %s -> %s", self.name, customer_no, record.state, state)
        updated = replace(record, state=state, **changes)
        self._left -= state in FINAL_STATES and record.state not in FINAL_STATES
        self._records[customer_no] = updated
        self._writes.append(SaveContact(updated))
