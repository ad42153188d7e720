"""IVR flows, DID routes and customer seeds as configuration models (pydantic, pure).

A flow is a state machine of named nodes, declared in YAML::

    flows:
      hotline:
        language: de                 # prompts "{lang}/…" use this until a node sets `language`
        languages: [de, en]          # every language the flow can speak (checked at load)
        start: greeting
        max_duration_s: 300
        nodes:
          greeting: {type: play, prompt: "{lang}/greeting", next: concern}
          concern:
            type: menu
            prompt: "{lang}/concern_menu"
            options: {"1": billing, "2": technik}
            on_failure: operator
          ...

Node types: `play`, `menu`, `collect`, `lookup`, `set`, `branch`, `queue`, `transfer`,
`hangup`, `hook` (one model each below). A `FlowConfig` that exists is structurally sound: its
model validator rejects unknown target nodes, nodes unreachable from the start, loops of nodes
none of which waits (plays a prompt or reads digits), unknown schedules and languages, each as a
violation with its own key path. What needs the outside world (prompt files, queues, agents,
hook functions) is checked by `pbx.ivr.validation.validate_flows`.

This module imports nothing from `pbx.config` so that `pbx.config.schema` can import it; its
violations use the same ``config_rules`` error shape, which the config loader expands into one
issue per sub-path, each with its file and line.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pbx.ivr.events import LookupKey
from pbx.ivr.public_holidays import check_region
from pbx.ivr.templates import TEMPLATE
from pbx.repositories import Customer

# A key path inside the configuration: ("flows", "hotline", "nodes", "menu", "options", "1").
Loc = tuple[str | int, ...]
Violation = tuple[Loc, str]


def raise_violations(violations: list[Violation]) -> None:
    """Raise one ``config_rules`` error carrying every violation (the loader's shape)."""
    if violations:
        summary = "; ".join(f"{_dotted(loc)}: {message}" for loc, message in violations)
        raise PydanticCustomError(
            "config_rules", "{summary}", {"summary": summary, "violations": tuple(violations)}
        )


def _dotted(loc: Loc) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def did_you_mean(name: str, known: Iterator[str] | list[str] | set[str]) -> str:
    """``"; did you mean 'x'?"`` when a known name is close to `name`, else ``""``."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class Model(BaseModel):
    """Base of the IVR models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- value types -------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$")
_PROMPT = re.compile(r"^[A-Za-z0-9_{}./-]+$")
_DIGIT = re.compile(r"^[0-9*#]$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_EXTENSION = re.compile(r"^[0-9]{1,15}$")
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_HOOK = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_ANNUAL = re.compile(r"^(?:--)?(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _template(value: str) -> str:
    if not TEMPLATE.match(value):
        raise ValueError(f"{value!r} has a malformed placeholder (write {{name}}, like {{lang}})")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name (like 'Europe/Berlin')") from None
    return value


def _time_of_day(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080.
        raise ValueError("write times in quotes, like '08:00' (YAML reads 8:00 as a number)")
    if isinstance(value, str) and not _TIME.match(value):
        raise ValueError(f"{value!r} is not a time of day (like '08:00' or '24:00')")
    return value


def _weekdays(value: Any) -> Any:
    # "mon-fri", "mon-fri,sat" or a list of such parts -> a sorted tuple of day numbers (mon=0).
    parts = value if isinstance(value, list | tuple) else [value]
    days: set[int] = set()
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(f"expected weekdays like 'mon-fri' or [sat, sun], got {part!r}")
        for item in part.replace(" ", "").lower().split(","):
            first, _, last = item.partition("-")
            if first not in WEEKDAYS or (last and last not in WEEKDAYS):
                raise ValueError(f"{item!r} is not a weekday or range (mon … sun, like 'mon-fri')")
            start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
            wraps = start > end  # "sat-mon"
            days.update([*range(start, 7), *range(end + 1)] if wraps else range(start, end + 1))
    return tuple(sorted(days))


def _holiday(value: Any) -> Any:
    # A date (2025-12-25, read by YAML as a date) or an annual date "12-25" (one that exists in
    # some year: "02-29" yes, "02-30" no).
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if _ANNUAL.match(value):
            month, day = value.removeprefix("--").split("-")
            try:
                return date(2000, int(month), int(day)).strftime("%m-%d")
            except ValueError:
                pass
        else:
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                pass
    raise ValueError(f"{value!r} is not a date (like 2025-12-25) or an annual date ('12-25')")


def _prompts(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _scalar_text(value: Any) -> Any:
    # YAML turns 1, 2.5, yes and 2025-12-25 into numbers, booleans and dates; values are text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | date):
        return str(value)
    return value


NodeName = Annotated[str, _matching(_NAME, "a node name (letters, digits, '_', '.', '-')")]
VariableName = Annotated[str, _matching(_VARIABLE, "a variable name (like customer.status)")]
PromptRef = Annotated[
    str,
    _matching(_PROMPT, "a prompt name (like de/greeting or {lang}/greeting)"),
    AfterValidator(_template),
]
Prompts = Annotated[tuple[PromptRef, ...], BeforeValidator(_prompts)]
Text = Annotated[str, BeforeValidator(_scalar_text)]
TextTemplate = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_template)]
Digit = Annotated[str, _matching(_DIGIT, "a key (0-9, * or #)")]
Language = Annotated[str, _matching(_LANGUAGE, "a language code (like de or en)")]
Extension = Annotated[str, _matching(_EXTENSION, "an extension (digits, like '1001')")]
PhoneNumber = Annotated[str, _matching(_NUMBER, "a phone number (like '+4930123456')")]
E164Number = Annotated[str, _matching(_E164, "an E.164 number (like '+4930123456')")]
Regex = Annotated[str, AfterValidator(_regex)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
TimeOfDay = Annotated[str, BeforeValidator(_time_of_day)]
Weekdays = Annotated[
    tuple[int, ...], BeforeValidator(_weekdays, json_schema_input_type=str | list[str])
]
Seconds = Annotated[float, Field(ge=0.1, le=86400)]
Retries = Annotated[int, Field(ge=0, le=20)]
HookSpec = Annotated[str, _matching(_HOOK, "a hook 'module:function' (like mypbx.hooks:check)")]


def minutes_of(time_of_day: str) -> int:
    """``"08:30"`` -> 510 (minutes since midnight)."""
    hours, minutes = time_of_day.split(":")
    return int(hours) * 60 + int(minutes)


# --- schedules ---------------------------------------------------------------------------------


class TimeWindow(Model):
    """``{days: mon-fri, start: "08:00", end: "18:00"}`` — on these weekdays, start <= t < end."""

    days: Weekdays = (0, 1, 2, 3, 4, 5, 6)
    start: TimeOfDay
    end: TimeOfDay

    @model_validator(mode="after")
    def _check(self) -> Self:
        if minutes_of(self.end) <= minutes_of(self.start):
            raise_violations([(("end",), f"{self.end} is not after start ({self.start})")])
        return self


class HolidayCalendar(Model):
    """The days a schedule is closed: the public holidays of `country` (ISO 3166 code, like DE)
    and its `subdivision` (like BY), looked up in the `holidays` package for any year, plus the
    company's own `dates` (2025-12-24, or '12-24' every year). Written in the file either as
    ``holidays: {country: DE, subdivision: BY, dates: [...]}`` or as a plain list of dates."""

    country: str | None = None
    subdivision: str | None = None
    dates: tuple[str, ...] = ()


class _HolidayCalendarInput(Model):
    # The JSON schema of the mapping form (editors); validation is `_holiday_calendar`.
    country: str | None = None
    subdivision: str | None = None
    dates: list[str | date] = []


_CALENDAR_KEYS = ("country", "subdivision", "dates")


def _holiday_dates(values: Any, loc: Loc, out: list[str], violations: list[Violation]) -> None:
    if not isinstance(values, list | tuple):
        violations.append((loc, "expected a list of dates (like 2025-12-25 or '12-25')"))
        return
    for index, value in enumerate(values):
        try:
            out.append(_holiday(value))
        except ValueError as exc:
            violations.append(((*loc, index), str(exc)))


def _holiday_calendar(value: Any) -> HolidayCalendar:
    # Either form; every problem reported at its own sub-path (one config_rules error).
    if isinstance(value, HolidayCalendar):
        return value
    violations: list[Violation] = []
    dates: list[str] = []
    if isinstance(value, list | tuple):
        _holiday_dates(value, (), dates, violations)
        raise_violations(violations)
        return HolidayCalendar(dates=tuple(dates))
    if not isinstance(value, dict):
        raise ValueError("expected a list of dates or a mapping {country, subdivision, dates}")
    for key in value:
        if key not in _CALENDAR_KEYS:
            hint = did_you_mean(str(key), list(_CALENDAR_KEYS))
            violations.append(((str(key),), f"unknown key {key!r}{hint}"))
    country, subdivision = value.get("country"), value.get("subdivision")
    for key, given in (("country", country), ("subdivision", subdivision)):
        if given is not None and not isinstance(given, str):
            violations.append(((key,), f"expected a code like {'DE' if key == 'country' else 'BY'}"
                                       f", got {given!r}"))
    _holiday_dates(value.get("dates", []), ("dates",), dates, violations)
    if not violations:
        if subdivision is not None and country is None:
            violations.append((("country",), "required when subdivision is given"))
        elif country is not None:
            problem = check_region(country, subdivision)
            if problem is not None:
                key = "country" if subdivision is None or "subdivision" not in problem else \
                    "subdivision"
                violations.append(((key,), problem))
    raise_violations(violations)
    return HolidayCalendar(country=country, subdivision=subdivision, dates=tuple(dates))


Holidays = Annotated[
    HolidayCalendar,
    BeforeValidator(_holiday_calendar,
                    json_schema_input_type=list[str | date] | _HolidayCalendarInput),
]


class Schedule(Model):
    """Business hours: open within any of `hours`, closed on `holidays` (see
    `HolidayCalendar`). `timezone` defaults to the time zone the PBX runs the IVR in."""

    timezone: TimeZoneName | None = None
    hours: tuple[TimeWindow, ...] = Field(min_length=1)
    holidays: Holidays = HolidayCalendar()


# --- branch conditions -------------------------------------------------------------------------

_VAR_TESTS = ("equals", "not_equals", "in", "matches", "exists")
_FORMS = ("var", "open", "holiday", "time", "all", "any", "not")


class Condition(Model):
    """One test, in exactly one of these forms:

    - ``{var: customer.status, equals: vip}``; instead of ``equals`` also ``not_equals``,
      ``in: [gold, vip]``, ``matches: "[0-9]{6}"`` (the whole value must match) or
      ``exists: true|false`` (set and not empty);
    - ``{open: hotline}``: within the schedule's hours and not on one of its holidays;
    - ``{holiday: hotline}``: today is one of the schedule's holidays;
    - ``{time: {days: sat, start: "10:00", end: "14:00"}}``;
    - ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``.
    """

    var: VariableName | None = None
    equals: Text | None = None
    not_equals: Text | None = None
    in_: tuple[Text, ...] | None = Field(default=None, alias="in")
    matches: Regex | None = None
    exists: bool | None = None
    open_: NodeName | None = Field(default=None, alias="open")
    holiday: NodeName | None = None
    time: TimeWindow | None = None
    all_: tuple[Condition, ...] | None = Field(default=None, alias="all", min_length=1)
    any_: tuple[Condition, ...] | None = Field(default=None, alias="any", min_length=1)
    not_: Condition | None = Field(default=None, alias="not")

    def _given(self, keys: tuple[str, ...]) -> list[str]:
        return [key for key in keys if getattr(self, _ATTR.get(key, key)) is not None]

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[Violation] = []
        forms = self._given(_FORMS)
        tests = self._given(_VAR_TESTS)
        if len(forms) != 1:
            what = "none" if not forms else ", ".join(forms)
            violations.append(((), f"expected exactly one of {', '.join(_FORMS)}; got {what}"))
        elif forms == ["var"] and len(tests) != 1:
            what = "none" if not tests else ", ".join(tests)
            violations.append(
                (("var",), f"expected exactly one test ({', '.join(_VAR_TESTS)}); got {what}")
            )
        elif forms != ["var"] and tests:
            violations.append(((tests[0],), f"{tests[0]!r} needs a 'var' to test"))
        raise_violations(violations)
        return self

    def schedules(self, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
        """(loc, name) of every schedule this condition names, nested ones included."""
        if self.open_ is not None:
            yield (*loc, "open"), self.open_
        if self.holiday is not None:
            yield (*loc, "holiday"), self.holiday
        for key, items in (("all", self.all_), ("any", self.any_)):
            for index, item in enumerate(items or ()):
                yield from item.schedules((*loc, key, index))
        if self.not_ is not None:
            yield from self.not_.schedules((*loc, "not"))


_ATTR = {"in": "in_", "open": "open_", "all": "all_", "any": "any_", "not": "not_"}


# --- nodes -------------------------------------------------------------------------------------


class NodeBase(Model):
    """Fields and graph queries every node has."""

    WAITS: ClassVar[bool] = False  # plays a prompt or waits for digits (breaks a loop)

    def targets(self) -> Iterator[tuple[Loc, str]]:
        """(key path inside the node, node name) of every node this one can go to."""
        yield from ()

    def prompt_refs(self) -> Iterator[tuple[Loc, str]]:
        """(key path inside the node, prompt template) of every prompt this node can play."""
        yield from ()


def _prompt_locs(key: str, prompts: tuple[str, ...]) -> Iterator[tuple[Loc, str]]:
    for index, prompt in enumerate(prompts):
        yield (key, index), prompt


class PlayNode(NodeBase):
    """Play a prompt or a playlist, then go to `next`. With `barge_in` a key stops it (the key
    is kept for the next menu or collect: type-ahead)."""

    WAITS: ClassVar[bool] = True
    type: Literal["play"]
    prompt: Prompts = Field(min_length=1)
    barge_in: bool = False
    next: NodeName

    def targets(self) -> Iterator[tuple[Loc, str]]:
        yield ("next",), self.next

    def prompt_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from _prompt_locs("prompt", self.prompt)


class MenuNode(NodeBase):
    """Play `prompt` and go to the node of the key pressed. A wrong key plays `invalid_prompt`,
    silence for `timeout_s` plays `timeout_prompt`; then the prompt again, up to `max_retries`
    times, after which the call goes to `on_failure` (or is hung up). `variable` stores the key."""

    WAITS: ClassVar[bool] = True
    type: Literal["menu"]
    prompt: Prompts = Field(min_length=1)
    options: dict[Digit, NodeName] = Field(min_length=1)
    variable: VariableName | None = None
    barge_in: bool = True
    timeout_s: Seconds = 5.0
    max_retries: Retries = 2
    invalid_prompt: Prompts = ()
    timeout_prompt: Prompts = ()
    on_failure: NodeName | None = None

    def targets(self) -> Iterator[tuple[Loc, str]]:
        for digit, target in self.options.items():
            yield ("options", digit), target
        if self.on_failure is not None:
            yield ("on_failure",), self.on_failure

    def prompt_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from _prompt_locs("prompt", self.prompt)
        yield from _prompt_locs("invalid_prompt", self.invalid_prompt)
        yield from _prompt_locs("timeout_prompt", self.timeout_prompt)


def _confirm(value: Any) -> Any:
    # `confirm: true` asks for a read-back with the default prompts.
    if value is True:
        return {}
    if value is False:
        return None
    return value


class ConfirmConfig(Model):
    """Read-back of a collected entry: `intro` ("you entered"), each digit as `digit_prompt`
    (``{digit}`` is the digit), then `prompt` ("press 1 to confirm, 2 to re-enter")."""

    intro: Prompts = ("{lang}/you_entered",)
    digit_prompt: PromptRef = "{lang}/numbers/{digit}"
    prompt: Prompts = ("{lang}/confirm_entry",)
    confirm_digit: Digit = "1"
    reenter_digit: Digit = "2"
    timeout_s: Seconds = 5.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.confirm_digit == self.reenter_digit:
            raise_violations(
                [(("reenter_digit",), f"{self.reenter_digit!r} is also confirm_digit")]
            )
        return self


class CollectNode(NodeBase):
    """Read `min_digits`..`max_digits` digits (0-9) into `variable`. Entry ends at the
    `terminator` key, at `max_digits`, or after `inter_digit_timeout_s` of silence; the entry
    must fully match `pattern` when given. With `confirm` the entry is read back first.
    Failures (too short, no match, no key within `first_digit_timeout_s`) retry like a menu."""

    WAITS: ClassVar[bool] = True
    type: Literal["collect"]
    prompt: Prompts = Field(min_length=1)
    variable: VariableName
    min_digits: Annotated[int, Field(ge=1, le=64)] = 1
    max_digits: Annotated[int, Field(ge=1, le=64)] = 20
    terminator: Digit | None = "#"
    first_digit_timeout_s: Seconds = 5.0
    inter_digit_timeout_s: Seconds = 3.0
    pattern: Regex | None = None
    confirm: Annotated[ConfirmConfig | None, BeforeValidator(_confirm)] = None
    barge_in: bool = True
    max_retries: Retries = 2
    invalid_prompt: Prompts = ()
    timeout_prompt: Prompts = ()
    on_failure: NodeName | None = None
    next: NodeName

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[Violation] = []
        if self.max_digits < self.min_digits:
            violations.append(
                (("max_digits",), f"{self.max_digits} is below min_digits ({self.min_digits})")
            )
        if self.terminator is not None and self.terminator.isdigit():
            violations.append((("terminator",), "must be * or # (digits are the entry)"))
        raise_violations(violations)
        return self

    def targets(self) -> Iterator[tuple[Loc, str]]:
        yield ("next",), self.next
        if self.on_failure is not None:
            yield ("on_failure",), self.on_failure

    def prompt_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from _prompt_locs("prompt", self.prompt)
        yield from _prompt_locs("invalid_prompt", self.invalid_prompt)
        yield from _prompt_locs("timeout_prompt", self.timeout_prompt)
        if self.confirm is not None:
            for loc, prompt in _prompt_locs("intro", self.confirm.intro):
                yield ("confirm", *loc), prompt
            for digit in "0123456789":
                yield (
                    ("confirm", "digit_prompt"),
                    self.confirm.digit_prompt.replace("{digit}", digit),
                )
            for loc, prompt in _prompt_locs("prompt", self.confirm.prompt):
                yield ("confirm", *loc), prompt


class LookupNode(NodeBase):
    """Look the customer up by `phone` (default: the caller's number, variable ``caller``) or by
    `customer_no` (default variable ``customer_no``). When found, its fields become variables
    ``customer.customer_no``, ``customer.name``, ``customer.status``, ``customer.language``,
    ``customer.groups``, ``customer.pinned_agents`` (comma-separated) and
    ``customer.fields.<key>``; the call goes to `found` or `not_found`."""

    type: Literal["lookup"]
    by: LookupKey = "phone"
    variable: VariableName | None = None
    found: NodeName
    not_found: NodeName
    timeout_s: Seconds = 3.0

    @property
    def source_variable(self) -> str:
        return self.variable or ("caller" if self.by == "phone" else "customer_no")

    def targets(self) -> Iterator[tuple[Loc, str]]:
        yield ("found",), self.found
        yield ("not_found",), self.not_found


class SetNode(NodeBase):
    """Set call variables (values may name others: ``"{customer.status}"``), go to `next`."""

    type: Literal["set"]
    variables: dict[VariableName, TextTemplate] = Field(min_length=1)
    next: NodeName

    def targets(self) -> Iterator[tuple[Loc, str]]:
        yield ("next",), self.next


class BranchCase(Model):
    when: Condition
    next: NodeName


class BranchNode(NodeBase):
    """Go to the `next` of the first case whose condition holds, else to `default`."""

    type: Literal["branch"]
    cases: tuple[BranchCase, ...] = Field(min_length=1)
    default: NodeName

    def targets(self) -> Iterator[tuple[Loc, str]]:
        for index, case in enumerate(self.cases):
            yield ("cases", index, "next"), case.next
        yield ("default",), self.default


class QueueNode(NodeBase):
    """Hand the call to `queue` (after `prompt`, if given). `queue`, `priority` and `skills`
    may name variables, like ``priority: "{priority}"`` or ``skills: ["{language}"]``; a
    priority that does not render to an integer counts as 0."""

    type: Literal["queue"]
    queue: TextTemplate = Field(min_length=1)
    priority: Annotated[int, Field(ge=0, le=1000)] | TextTemplate = 0
    skills: tuple[TextTemplate, ...] = ()
    prompt: Prompts = ()

    def prompt_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from _prompt_locs("prompt", self.prompt)


class TransferNode(NodeBase):
    """Transfer the call (after `prompt`, if given) to exactly one of: an `agent`, another
    `extension`, or an external `number` (through the trunk, subject to the dial plan)."""

    type: Literal["transfer"]
    agent: Extension | None = None
    extension: Extension | None = None
    number: PhoneNumber | None = None
    prompt: Prompts = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        given = [key for key in ("agent", "extension", "number") if getattr(self, key)]
        if len(given) != 1:
            what = "none" if not given else ", ".join(given)
            message = f"expected exactly one of agent, extension, number; got {what}"
            raise_violations([((), message)])
        return self

    @property
    def target(self) -> str:
        """``agent:1001``, ``extension:2000`` or ``number:+4930…`` (the `Transfer` target)."""
        for key in ("agent", "extension", "number"):
            value = getattr(self, key)
            if value:
                return f"{key}:{value}"
        raise AssertionError("validated: one target is set")

    def prompt_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from _prompt_locs("prompt", self.prompt)


class HangupNode(NodeBase):
    """Play `prompt` (a goodbye), if given, and hang up."""

    type: Literal["hangup"]
    prompt: Prompts = ()
    cause: Annotated[str, Field(min_length=1)] = "normal"

    def prompt_refs(self) -> Iterator[tuple[Loc, str]]:
        yield from _prompt_locs("prompt", self.prompt)


class HookNode(NodeBase):
    """Run the admin's own program `function` (``module:function``; see `pbx.ivr.hooks`). It
    may play prompts and read digits over several rounds, then names the next node, which must
    be one of `targets`. An exception, an unknown target or more than `max_rounds` rounds go to
    `on_error` (or hang up). `options` are passed to the function unchanged."""

    type: Literal["hook"]
    function: HookSpec
    targets_: tuple[NodeName, ...] = Field(alias="targets", min_length=1)
    on_error: NodeName | None = None
    options: dict[VariableName, Text] = Field(default_factory=dict)
    timeout_s: Seconds = 5.0
    max_rounds: Annotated[int, Field(ge=1, le=100)] = 20

    def targets(self) -> Iterator[tuple[Loc, str]]:
        for index, target in enumerate(self.targets_):
            yield ("targets", index), target
        if self.on_error is not None:
            yield ("on_error",), self.on_error


NODE_TYPES: dict[str, type[NodeBase]] = {
    "play": PlayNode,
    "menu": MenuNode,
    "collect": CollectNode,
    "lookup": LookupNode,
    "set": SetNode,
    "branch": BranchNode,
    "queue": QueueNode,
    "transfer": TransferNode,
    "hangup": HangupNode,
    "hook": HookNode,
}
AnyNode = (
    PlayNode
    | MenuNode
    | CollectNode
    | LookupNode
    | SetNode
    | BranchNode
    | QueueNode
    | TransferNode
    | HangupNode
    | HookNode
)


def _node(value: Any) -> AnyNode:
    # Dispatch on `type` by hand (not a pydantic discriminated union): errors then keep the
    # node's own key path (nodes.menu.timeout_s), without the tag pydantic would insert.
    if isinstance(value, NodeBase):
        return value  # type: ignore[return-value]
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping with a type ({', '.join(NODE_TYPES)})")
    kind = value.get("type")
    model = NODE_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        if kind is None:
            raise_violations([((), f"field 'type' required ({', '.join(NODE_TYPES)})")])
        hint = did_you_mean(str(kind), set(NODE_TYPES))
        message = f"{kind!r} is not a node type ({', '.join(NODE_TYPES)}){hint}"
        raise_violations([(("type",), message)])
    return model.model_validate(value)  # type: ignore[union-attr, return-value]


Node = Annotated[AnyNode, PlainValidator(_node)]


# --- flows -------------------------------------------------------------------------------------


class FlowConfig(Model):
    """One IVR flow: its nodes, where it starts, its languages, schedules and time limit.

    When `max_duration_s` is reached the call goes to `on_max_duration` (once), or is hung up.
    """

    language: Language = "de"
    languages: tuple[Language, ...] = ()
    start: NodeName
    max_duration_s: Seconds = 600.0
    on_max_duration: NodeName | None = None
    timezone: TimeZoneName | None = None
    schedules: dict[NodeName, Schedule] = Field(default_factory=dict)
    nodes: dict[NodeName, Node] = Field(min_length=1)

    @property
    def all_languages(self) -> tuple[str, ...]:
        """`language` and `languages`, without repeats: what ``{lang}`` can stand for."""
        return tuple(dict.fromkeys((self.language, *self.languages)))

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations = _unknown_targets(self)
        if not violations:  # the graph checks need every edge to land on a node
            violations += _unreachable(self) + _loops_without_wait(self)
        violations += _unknown_schedules(self) + _unknown_languages(self)
        raise_violations(violations)
        return self

    def edges(self, name: str) -> list[str]:
        return [target for _, target in self.nodes[name].targets()]


def _unknown_targets(flow: FlowConfig) -> list[Violation]:
    out: list[Violation] = []

    def check(loc: Loc, target: str) -> None:
        if target not in flow.nodes:
            hint = did_you_mean(target, set(flow.nodes))
            out.append((loc, f"unknown node {target!r}{hint}"))

    check(("start",), flow.start)
    if flow.on_max_duration is not None:
        check(("on_max_duration",), flow.on_max_duration)
    for name, node in flow.nodes.items():
        for loc, target in node.targets():
            check(("nodes", name, *loc), target)
    return out


def _unreachable(flow: FlowConfig) -> list[Violation]:
    entries = [flow.start] + ([flow.on_max_duration] if flow.on_max_duration else [])
    seen = set(entries)
    stack = list(entries)
    while stack:
        for target in flow.edges(stack.pop()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return [
        (("nodes", name), f"unreachable: no path from start node {flow.start!r} leads here")
        for name in flow.nodes
        if name not in seen
    ]


def _loops_without_wait(flow: FlowConfig) -> list[Violation]:
    # Cycles in the graph of nodes that neither play nor read digits would spin forever
    # without the caller being able to do anything: find them by depth-first search.
    instant = {name for name, node in flow.nodes.items() if not node.WAITS}
    out: list[Violation] = []
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for target in flow.edges(name):
            if target not in instant:
                continue
            if state.get(target) == 1:
                cycle = path[path.index(target) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    shown = " -> ".join([*cycle, target])
                    out.append(
                        (
                            ("nodes", target),
                            f"loop without a wait: {shown} (none of these nodes plays a prompt"
                            " or waits for keys)",
                        )
                    )
            elif target not in state:
                visit(target, path)
        path.pop()
        state[name] = 2

    for name in flow.nodes:
        if name in instant and name not in state:
            visit(name, [])
    return out


def _unknown_schedules(flow: FlowConfig) -> list[Violation]:
    out: list[Violation] = []
    for name, node in flow.nodes.items():
        if isinstance(node, BranchNode):
            for index, case in enumerate(node.cases):
                for loc, schedule in case.when.schedules(("nodes", name, "cases", index, "when")):
                    if schedule not in flow.schedules:
                        hint = did_you_mean(schedule, set(flow.schedules))
                        known = ", ".join(flow.schedules) or "none declared under schedules"
                        out.append((loc, f"unknown schedule {schedule!r} ({known}){hint}"))
    return out


def _unknown_languages(flow: FlowConfig) -> list[Violation]:
    out: list[Violation] = []
    for name, node in flow.nodes.items():
        if isinstance(node, SetNode):
            value = node.variables.get("language")
            if value is not None and "{" not in value and value not in flow.all_languages:
                out.append(
                    (
                        ("nodes", name, "variables", "language"),
                        f"{value!r} is not one of the flow's languages"
                        f" ({', '.join(flow.all_languages)}); add it to languages",
                    )
                )
    return out


Flows = dict[NodeName, FlowConfig]


# --- DID routes --------------------------------------------------------------------------------


_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
QueueName = Annotated[str, _matching(_QUEUE, "a queue name (letters, digits, '_', '.', '-')")]


class DidRoute(Model):
    """A dialled number and where its calls go: exactly one of an IVR `flow`, a `queue` or an
    `agent`. `language` is the caller's language for the flow's ``{lang}`` prompts."""

    number: PhoneNumber
    flow: NodeName | None = None
    queue: QueueName | None = None
    agent: Extension | None = None
    language: Language | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        given = [key for key in ("flow", "queue", "agent") if getattr(self, key)]
        if len(given) != 1:
            what = "none" if not given else ", ".join(given)
            raise_violations([((), f"expected exactly one of flow, queue, agent; got {what}")])
        return self


# --- customers ---------------------------------------------------------------------------------

_CUSTOMER_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CustomerNo = Annotated[
    str, _matching(_CUSTOMER_NO, "a customer number (letters, digits, like '100001')")
]


class CustomerSeed(Model):
    """A customer declared in the configuration (``customers:``), upserted into the customer
    directory at start. `pinned_agents` are extensions that serve this customer first."""

    customer_no: CustomerNo
    name: Annotated[str, Field(min_length=1)]
    phones: tuple[E164Number, ...] = ()
    status: Annotated[str, Field(min_length=1, max_length=32)] = "standard"
    language: Language | None = None
    groups: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    pinned_agents: tuple[Extension, ...] = ()
    fields: dict[str, Text] = Field(default_factory=dict)

    def to_customer(self) -> Customer:
        return Customer(
            customer_no=self.customer_no,
            name=self.name,
            phone_numbers=self.phones,
            status=self.status,
            language=self.language or "",
            groups=self.groups,
            pinned_agents=self.pinned_agents,
            fields=dict(self.fields),
        )
