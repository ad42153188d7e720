"""Helpers for the dialer tests: campaigns, customers, wall-clock times, a pacer desk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pbx.dialer.campaign import Campaign
from pbx.dialer.events import DialerCommand, DialerEvent, TimerFired
from pbx.dialer.pacing import Pacer
from pbx.dialer.schema import CampaignConfig
from pbx.repositories import Customer

C = TypeVar("C")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(year: int, month: int, day: int, hour: int, minute: int = 0,
       zone: ZoneInfo = BERLIN) -> float:
    """Epoch seconds of a local wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


MONDAY_10 = at(2026, 3, 2, 10)  # Monday 2 March 2026, 10:00 in Berlin


def campaign_config(**settings: Any) -> CampaignConfig:
    settings.setdefault("name", "renewals")
    settings.setdefault("caller_id", "+4930123456")
    settings.setdefault("queue", "outbound")
    return CampaignConfig.model_validate(settings)


def customer(number: str, *phones: str, **fields: Any) -> Customer:
    groups = tuple(fields.pop("groups", ()))
    status = fields.pop("status", "standard")
    language = fields.pop("language", "de")
    return Customer(
        customer_no=number,
        name=f"Customer {number}",
        phone_numbers=phones or (f"+4930555{int(number):04d}",),
        status=status,
        language=language,
        groups=groups,
        fields={k: str(v) for k, v in fields.items()},
    )


def customers(count: int, **fields: Any) -> list[Customer]:
    return [customer(f"{i:04d}", **fields) for i in range(1, count + 1)]


class Desk:
    """A pacer with a fake clock; every command kept."""

    def __init__(self, config: CampaignConfig, people: Sequence[Customer],
                 dnc: Iterable[str] = (), now: float = MONDAY_10, **pacer: Any) -> None:
        self.now = now
        self.dnc = set(dnc)
        self.campaign = Campaign(config, people, dnc=self.dnc)
        self.pacer = Pacer(self.campaign, now=now, **pacer)
        self.log: list[DialerCommand] = []

    def send(self, event: DialerEvent, after: float = 0.0) -> list[DialerCommand]:
        self.now += after
        out = self.pacer.handle(event, self.now)
        self.log += out
        return out

    def advance(self, seconds: float) -> list[DialerCommand]:
        return self.send(TimerFired(), seconds)


def only(commands: Sequence[object], kind: type[C]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]
