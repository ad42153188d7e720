"""Outbound campaigns as typed models (L0, pure: pydantic only, no I/O).

Same style as `pbx.acd.schema`: every model forbids unknown keys and is frozen; checks that
relate several fields of one model raise one ``config_rules`` error listing every violation
with its own sub-path. `check_dialer_config` does the checks that span sections (unique
campaign names, queues, customer groups, forms and trunks that exist). This module imports
nothing from `pbx.config` (which is meant to import it) and nothing else from `pbx.dialer`;
only L0 modules (`pbx.acd.schema`, `pbx.ivr.schema`, `pbx.repositories`).

A campaign in YAML::

    campaigns:
      - name: renewals
        target:                       # omitted or "all": every customer
          groups: [berlin, hamburg]   # any of these groups
          statuses: [standard, gold]
          languages: [de]
          fields:                     # every rule must hold (customer.fields.KEY)
            - { key: contract, in: [L-17, L-18] }
            - { key: region, equals: north }
        calling_hours:
          windows: [{ days: mon-fri, start: "09:00", end: "20:00" }]
          timezone_field: timezone    # customer.fields.timezone, else default_timezone
          default_timezone: Europe/Berlin
        caller_id: "+4930123456"
        trunk: carrier
        max_attempts: 5
        retry:                        # per result: delay before the next try, optional cap
          busy: { delay_s: 300 }
          no_answer: { delay_s: 3600 }
          machine: { delay_s: 14400, max_attempts: 2 }
        blending: { pause_above_s: 30, resume_below_s: 10 }
        queue: outbound
        strategy: longest_idle
        form: renewal
        mode: predictive              # preview | progressive | predictive
        max_abandon_rate: 0.03
        abandon_window_s: 3600
        max_dial_level: 3.0
        drop_prompt: "{lang}/all_agents_busy"
        drop_lockout_s: 259200
        amd: { enabled: true, action: leave_message, message_prompt: "{lang}/callback_please" }
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from pbx.acd.schema import RecordingMode, StrategyName
from pbx.ivr.schema import (
    E164Number,
    Language,
    Loc,
    Model,
    PromptRef,
    TimeWindow,
    TimeZoneName,
    did_you_mean,
    raise_violations,
)
from pbx.repositories import Customer

DialMode = Literal["preview", "progressive", "predictive"]
AmdAction = Literal["hangup", "leave_message", "pass_to_agent"]
PreviewTimeoutAction = Literal["dial", "skip"]
# The results an attempt can end with that may be retried (see `RetryPolicy`).
RetryResult = Literal["busy", "no_answer", "failed", "machine", "dropped"]
RETRY_RESULTS: tuple[RetryResult, ...] = ("busy", "no_answer", "failed", "machine", "dropped")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FIELD_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a name (letters, digits, '_', '.', '-')")
    return value


def _field_key(value: str) -> str:
    if not _FIELD_KEY.match(value):
        raise ValueError(f"{value!r} is not a customer field key (letters, digits, '_')")
    return value


def _listed(value: Any) -> Any:
    # `groups: vip` is read as `groups: [vip]`.
    return (value,) if isinstance(value, str) else value


def _scalar_text(value: Any) -> Any:
    # YAML reads 17, 2.5 and yes as numbers and booleans; customer fields are text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


CampaignName = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_name)]
FieldKey = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_field_key)]
FieldValue = Annotated[str, BeforeValidator(_scalar_text)]
Names = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_listed)]
Languages = Annotated[tuple[Language, ...], BeforeValidator(_listed)]
Seconds = Annotated[float, Field(ge=0)]
PositiveSeconds = Annotated[float, Field(gt=0)]


class FieldRule(Model):
    """``{key: contract, equals: L-17}`` or ``{key: region, in: [north, south]}``: the
    customer's ``fields[key]`` equals the value, or one of the values."""

    key: FieldKey
    equals: FieldValue | None = None
    in_: tuple[FieldValue, ...] | None = Field(default=None, alias="in")

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if (self.equals is None) == (self.in_ is None):
            violations.append((("equals",), "give exactly one of equals or in"))
        elif self.in_ is not None and not self.in_:
            violations.append((("in",), "list at least one value"))
        raise_violations(violations)
        return self

    def values(self) -> tuple[str, ...]:
        """The accepted values (one for ``equals``)."""
        return (self.equals,) if self.equals is not None else tuple(self.in_ or ())


def _target(value: Any) -> Any:
    # `target: all` (or omitted) is the empty filter: every customer.
    if value == "all" or value is None:
        return {}
    return value


class CustomerFilter(Model):
    """Which customers a campaign calls — a declarative filter, never SQL. Criteria combine
    with AND; within one list any entry matches (a customer in any of `groups`, with a status
    in `statuses`, a language in `languages`), and every field rule must hold. No criteria:
    every customer."""

    groups: Names = ()
    statuses: Names = ()
    languages: Languages = ()
    fields: tuple[FieldRule, ...] = ()

    @property
    def is_everyone(self) -> bool:
        return not (self.groups or self.statuses or self.languages or self.fields)

    def matches(self, customer: Customer) -> bool:
        """The same test in Python (the storage builds it as SQL): for in-memory directories
        and to check the database's selection."""
        return (
            (not self.groups or any(group in self.groups for group in customer.groups))
            and (not self.statuses or customer.status in self.statuses)
            and (not self.languages or customer.language in self.languages)
            and all(customer.fields.get(rule.key) in rule.values() for rule in self.fields)
        )


def _weekday_daytime() -> tuple[TimeWindow, ...]:
    return (TimeWindow.model_validate({"days": "mon-fri", "start": "09:00", "end": "20:00"}),)


class CallingHours(Model):
    """When a customer may be called, in the customer's own time zone: within any of
    `windows` (start <= local time < end). The zone is the customer's ``fields`` entry named
    `timezone_field` when it holds a valid zone name, else `default_timezone`."""

    windows: tuple[TimeWindow, ...] = Field(default_factory=_weekday_daytime, min_length=1)
    timezone_field: FieldKey = "timezone"
    default_timezone: TimeZoneName = "Europe/Berlin"


class RetryRule(Model):
    """After an attempt ended with this result: wait `delay_s` before the next attempt; with
    `max_attempts`, give the contact up once this result has happened that often."""

    delay_s: Seconds
    max_attempts: Annotated[int, Field(ge=1, le=100)] | None = None


class RetryPolicy(Model):
    """``retry:`` — one rule per retryable result. A drop is also held back by the campaign's
    `drop_lockout_s` (whichever ends later)."""

    busy: RetryRule = RetryRule(delay_s=300)
    no_answer: RetryRule = RetryRule(delay_s=3600)
    failed: RetryRule = RetryRule(delay_s=1800)
    machine: RetryRule = RetryRule(delay_s=4 * 3600)
    dropped: RetryRule = RetryRule(delay_s=3600)

    def rule(self, result: RetryResult) -> RetryRule:
        rule: RetryRule = getattr(self, result)
        return rule


class BlendingConfig(Model):
    """Priority of inbound calls: outbound dialling pauses while an inbound caller (in
    `queues`, or any queue when empty) has waited longer than `pause_above_s`, and resumes
    once the longest wait is below `resume_below_s` (default: `pause_above_s`)."""

    pause_above_s: PositiveSeconds | None = None
    resume_below_s: Seconds | None = None
    queues: Names = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if self.resume_below_s is not None:
            if self.pause_above_s is None:
                violations.append((("resume_below_s",), "needs pause_above_s"))
            elif self.resume_below_s > self.pause_above_s:
                violations.append(
                    (("resume_below_s",), f"is above pause_above_s ({self.pause_above_s})")
                )
        raise_violations(violations)
        return self

    @property
    def resume_threshold_s(self) -> float | None:
        if self.pause_above_s is None:
            return None
        return self.pause_above_s if self.resume_below_s is None else self.resume_below_s


class PreviewConfig(Model):
    """Preview mode: the agent sees the customer for up to `timeout_s`, then the call is
    dialled or the contact skipped (`on_timeout`). A skipped contact comes back after
    `skip_retry_s` without an attempt counted."""

    timeout_s: PositiveSeconds = 30.0
    on_timeout: PreviewTimeoutAction = "dial"
    skip_retry_s: Seconds = 3600.0


class AmdConfig(Model):
    """Answering-machine detection on the first `analysis_s` of an answered call. A human
    says a short greeting (at most `max_greeting_s`) and then waits (`silence_after_s` of
    silence); a machine speaks on. `action` for a machine: ``hangup`` (the attempt counts as
    ``machine`` and is retried per ``retry.machine``), ``leave_message`` (play
    `message_prompt`; the contact is then done) or ``pass_to_agent``."""

    enabled: bool = False
    action: AmdAction = "hangup"
    message_prompt: PromptRef | None = None
    analysis_s: Annotated[float, Field(ge=1.0, le=10.0)] = 4.0
    max_greeting_s: Annotated[float, Field(gt=0, le=5.0)] = 1.5
    silence_after_s: Annotated[float, Field(gt=0, le=5.0)] = 0.7
    initial_silence_s: Annotated[float, Field(gt=0, le=10.0)] = 3.5

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if self.action == "leave_message" and self.message_prompt is None:
            violations.append((("message_prompt",), "required when action is leave_message"))
        if self.max_greeting_s + self.silence_after_s > self.analysis_s:
            violations.append(
                (
                    ("analysis_s",),
                    f"{self.analysis_s} s cannot hold a greeting of max_greeting_s and the "
                    "silence after it",
                )
            )
        raise_violations(violations)
        return self


class CampaignConfig(Model):
    """``campaigns[]`` — one outbound campaign: whom to call, when, how often, how fast, and
    where answered calls go (the ACD `queue`, with `strategy` if given instead of the
    queue's own, and the screen-pop `form`). The do-not-call list is always honoured; there
    is deliberately no switch for it."""

    name: CampaignName
    enabled: bool = True
    target: Annotated[CustomerFilter, BeforeValidator(_target)] = CustomerFilter()
    calling_hours: CallingHours = CallingHours()
    caller_id: E164Number
    caller_name: str = ""
    trunk: Annotated[str, Field(min_length=1)] | None = None  # default: the first trunk
    ring_timeout_s: Annotated[float, Field(ge=5, le=120)] = 25.0
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    retry: RetryPolicy = RetryPolicy()
    blending: BlendingConfig = BlendingConfig()
    queue: Annotated[str, Field(min_length=1)]
    strategy: StrategyName | None = None
    priority: Annotated[int, Field(ge=-100, le=100)] = 0
    form: Annotated[str, Field(min_length=1)] | None = None
    mode: DialMode = "progressive"
    preview: PreviewConfig = PreviewConfig()
    max_abandon_rate: Annotated[float, Field(ge=0, le=0.5)] = 0.03
    abandon_window_s: PositiveSeconds = 3600.0
    max_dial_level: Annotated[float, Field(ge=1.0, le=10.0)] = 3.0
    max_lines: Annotated[int, Field(ge=1)] | None = None
    drop_after_s: Annotated[float, Field(gt=0, le=10)] = 2.0
    drop_prompt: PromptRef | None = "{lang}/all_agents_busy"
    drop_lockout_s: Seconds = 72 * 3600.0
    amd: AmdConfig = AmdConfig()
    recording: RecordingMode = "never"
    recording_consent_prompt: PromptRef | None = None

    @model_validator(mode="after")
    def _check_recording(self) -> Self:
        if self.recording_consent_prompt is not None and self.recording == "never":
            raise_violations([(("recording_consent_prompt",),
                               "no call of this campaign is recorded (recording: never)")])
        return self


class DncConfig(Model):
    """``dnc:`` — numbers never to call (E.164). They are added to the stored do-not-call
    list at start (with reason "config"); numbers added over the API stay there too."""

    numbers: tuple[E164Number, ...] = ()


def check_dialer_config(
    campaigns: Sequence[CampaignConfig],
    known_queues: Iterable[str],
    known_groups: Iterable[str] | None = None,
    known_forms: Iterable[str] | None = None,
    known_trunks: Iterable[str] | None = None,
) -> list[tuple[Loc, str]]:
    """Violations that span sections, each with its path from the file's root: duplicate
    campaign names, queues (also blending queues), forms and trunks that do not exist, and
    target groups no configured customer or agent has (when `known_groups` is given — leave
    it None when customers are imported into the database outside the configuration). The
    lead's `PbxConfig` validator raises them together with its own."""
    violations: list[tuple[Loc, str]] = []
    queues = set(known_queues)
    groups = None if known_groups is None else set(known_groups)
    forms = None if known_forms is None else set(known_forms)
    trunks = None if known_trunks is None else set(known_trunks)
    first: dict[str, int] = {}
    for index, campaign in enumerate(campaigns):
        loc: Loc = ("campaigns", index)
        if campaign.name in first:
            violations.append(
                (
                    (*loc, "name"),
                    f"duplicate name {campaign.name!r} "
                    f"(first at campaigns[{first[campaign.name]}])",
                )
            )
        first.setdefault(campaign.name, index)
        if campaign.queue not in queues:
            violations.append(
                ((*loc, "queue"), f"no queue named {campaign.queue!r}"
                 + did_you_mean(campaign.queue, queues))
            )
        for q_index, queue in enumerate(campaign.blending.queues):
            if queue not in queues:
                violations.append(
                    ((*loc, "blending", "queues", q_index), f"no queue named {queue!r}"
                     + did_you_mean(queue, queues))
                )
        if groups is not None:
            for g_index, group in enumerate(campaign.target.groups):
                if group not in groups:
                    violations.append(
                        ((*loc, "target", "groups", g_index), f"no customer group {group!r}"
                         + did_you_mean(group, groups))
                    )
        if forms is not None and campaign.form is not None and campaign.form not in forms:
            violations.append(
                ((*loc, "form"), f"no form named {campaign.form!r}"
                 + did_you_mean(campaign.form, forms))
            )
        if trunks is not None:
            if campaign.trunk is not None and campaign.trunk not in trunks:
                violations.append(
                    ((*loc, "trunk"), f"no trunk named {campaign.trunk!r}"
                     + did_you_mean(campaign.trunk, trunks))
                )
            if campaign.trunk is None and not trunks:
                violations.append(((*loc, "trunk"), "an outbound campaign needs a trunk"))
    return violations
