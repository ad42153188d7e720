"""Public holidays by country and subdivision, from the `holidays` package (L0, pure data).

A schedule's ``holidays: {country: DE, subdivision: BY, dates: [...]}`` closes on the public
holidays of Bavaria (as the package knows them, for any year) plus the company's own `dates`.
The package is a table of rules (Easter-based feasts, fixed dates, regional days); looking a
day up reads no clock and no file. Each (country, subdivision, year) is computed once.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays


@lru_cache(maxsize=1)
def supported() -> dict[str, tuple[str, ...]]:
    """ISO 3166 country code -> the subdivision codes the package knows for it."""
    return {code: tuple(subs) for code, subs in holidays.list_supported_countries().items()}


def check_region(country: str, subdivision: str | None) -> str | None:
    """Why (`country`, `subdivision`) cannot be looked up, or None when it can."""
    known = supported()
    if country not in known:
        return f"{country!r} is not a country the holidays package knows (ISO 3166 codes, like DE)"
    if subdivision is not None and subdivision not in known[country]:
        return (f"{subdivision!r} is not a subdivision of {country} "
                f"(one of {', '.join(known[country]) or 'none'})")
    return None


@lru_cache(maxsize=256)
def _year(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def is_public_holiday(country: str, subdivision: str | None, day: date) -> bool:
    """Whether `day` is a public holiday of `country` (and `subdivision`, when given)."""
    return day in _year(country, subdivision, day.year)


def holiday_name(country: str, subdivision: str | None, day: date) -> str | None:
    """The holiday's name on `day`, or None (for messages and tests)."""
    names = holidays.country_holidays(country, subdiv=subdivision, years=day.year)
    name = names.get(day)
    return None if name is None else str(name)
