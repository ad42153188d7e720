"""Queue and customer-status settings as typed models (L0, pure: pydantic only, no I/O).

Same style as `pbx.config.schema`: every model forbids unknown keys and is frozen; checks that
relate several fields of one model raise one ``config_rules`` error listing every violation
with its own sub-path, so the loader points each at its own line. `PbxConfig` holds them as
``queues: tuple[QueueConfig, ...]`` and ``customer_statuses: dict[str, CustomerStatusConfig]``;
`check_acd_config` does the checks that span queues, statuses and agents (unique names,
overflow targets that exist, members that are agents). This module imports nothing from
`pbx.config` (which imports it) nor from the rest of `pbx.acd`.

A queue in YAML::

    queues:
      - name: support
        strategy: linear            # see pbx.acd.strategies.STRATEGIES
        ring_timeout_s: 15
        retry_delay_s: 5
        wrap_up_s: 10
        max_wait_s: 600
        overflow: "flow:voicemail"  # flow:NAME | queue:NAME | agent:EXTENSION
        members:
          - { agent: "1001" }
          - { agent: "1002", penalty: 1 }
        escalation:                 # after 30 s waiting, penalty-1 members are hunted too
          - { after_s: 30, max_penalty: 1 }
        announce: { position_every_s: 60, ewt: true, hold_program: default }
    customer_statuses:
      vip:
        priority: 10
        pinning: { wait_for_pinned_s: 60, reserve_pinned_agent: true, fallback: any }
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

# A key path inside the configuration: ("queues", 2, "members", 0, "agent").
Loc = tuple[str | int, ...]

StrategyName = Literal[
    "linear",
    "ring_all",
    "round_robin",
    "longest_idle",
    "fewest_calls",
    "least_talk_time",
    "random",
    "skills",
    "ring_progressively",
]
JoinRule = Literal["always", "staffed", "available"]
LeaveRule = Literal["never", "unstaffed"]
Fallback = Literal["any", "pinned_only"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TARGET = re.compile(r"^(flow|queue|agent):(.+)$")
_EXTENSION = re.compile(r"^[0-9]{1,15}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a name (letters, digits, '_', '.', '-')")
    return value


def _extension(value: str) -> str:
    if not _EXTENSION.match(value):
        raise ValueError(f"{value!r} is not an extension (1 to 15 digits, like '1001')")
    return value


def _target(value: str) -> str:
    match = _TARGET.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not flow:NAME, queue:NAME or agent:EXTENSION")
    kind, rest = match.groups()
    if kind == "agent" and not _EXTENSION.match(rest):
        raise ValueError(f"{value!r}: {rest!r} is not an extension")
    if kind != "agent" and not _NAME.match(rest):
        raise ValueError(f"{value!r}: {rest!r} is not a name")
    return value


# The validators' messages say what was expected; no `Expect` markers, because this module
# imports nothing from pbx.config (pbx.config.schema imports it).
QueueName = Annotated[str, AfterValidator(_name)]
Extension = Annotated[str, AfterValidator(_extension)]
Target = Annotated[str, AfterValidator(_target)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
SkillLevel = Annotated[int, Field(ge=1, le=10)]
PositiveSeconds = Annotated[float, Field(gt=0)]
Seconds = Annotated[float, Field(ge=0)]
Penalty = Annotated[int, Field(ge=0, le=100)]
# Call recording per queue: never, every connected call, or when the agent starts it (desk).
RecordingMode = Literal["never", "always", "on_demand"]
RecordingPrompt = Annotated[str, Field(pattern=r"^[A-Za-z0-9_{}.-]+(/[A-Za-z0-9_{}.-]+)*$")]
DtmfKey = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"]


def _format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _raise(violations: list[tuple[Loc, str]]) -> None:
    # The same error shape as pbx.config.schema, so the loader reports each violation on its line.
    if violations:
        summary = "; ".join(f"{_format_loc(loc)}: {message}" for loc, message in violations)
        raise PydanticCustomError(
            "config_rules", "{summary}", {"summary": summary, "violations": tuple(violations)}
        )


class Section(BaseModel):
    """Base of the ACD models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueMember(Section):
    """One agent in a queue. Members are hunted in list order by ``linear``; a higher
    `penalty` (tier) is tried only after every lower one, or only after escalation allows it."""

    agent: Extension
    penalty: Penalty = 0


class EscalationStep(Section):
    """After the caller has waited `after_s`, members up to `max_penalty` are hunted too
    (Asterisk ``penaltychange``, FreeSWITCH tier rules); the caller keeps its place."""

    after_s: PositiveSeconds
    max_penalty: Penalty


class AnnounceConfig(Section):
    """What the caller hears while waiting. The engine only times the announcements (position
    and estimated wait every `position_every_s`, a periodic message every `periodic_every_s`);
    the media side plays them and the hold program in between."""

    hold_program: NonEmptyStr = "default"
    position_every_s: PositiveSeconds | None = None
    ewt: bool = False
    first_after_s: Seconds = 0.0
    periodic_every_s: PositiveSeconds | None = None
    periodic_prompts: tuple[NonEmptyStr, ...] = ()


class WallboardThresholds(Section):
    """``queues[].wallboard`` — when the wallboard colours a queue's figures amber (`*_warn`)
    and red (`*_alert`). The service level is green at or above the queue's
    `service_level_target`, amber down to `service_level_alert`, red below."""

    waiting_warn: Annotated[int, Field(ge=1)] = 3
    waiting_alert: Annotated[int, Field(ge=1)] = 10
    longest_wait_warn_s: PositiveSeconds = 60.0
    longest_wait_alert_s: PositiveSeconds = 180.0
    abandon_rate_warn: Annotated[float, Field(ge=0, le=1)] = 0.05
    abandon_rate_alert: Annotated[float, Field(ge=0, le=1)] = 0.10
    service_level_alert: Annotated[float, Field(ge=0, le=1)] = 0.6

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        for warn, alert in (("waiting_warn", "waiting_alert"),
                            ("longest_wait_warn_s", "longest_wait_alert_s"),
                            ("abandon_rate_warn", "abandon_rate_alert")):
            if getattr(self, warn) > getattr(self, alert):
                violations.append(((warn,), f"must not be above {alert} ({getattr(self, alert)})"))
        _raise(violations)
        return self


class QueueConfig(Section):
    """``queues[]`` — one ACD queue: how agents are hunted and how long callers wait."""

    name: QueueName
    strategy: StrategyName = "linear"
    members: tuple[QueueMember, ...] = ()
    skills: dict[NonEmptyStr, SkillLevel] = Field(default_factory=dict)
    ring_timeout_s: PositiveSeconds = 15.0
    retry_delay_s: Seconds = 5.0
    wrap_up_s: Seconds = 10.0
    ring_progressively_step_s: PositiveSeconds = 10.0
    max_wait_s: PositiveSeconds | None = None
    max_length: Annotated[int, Field(ge=1)] | None = None
    overflow: Target | None = None
    join_when: JoinRule = "always"
    leave_when: LeaveRule = "never"
    service_level_s: PositiveSeconds = 20.0
    # the share of calls to answer within service_level_s (80/20: 0.8), for the wallboard
    service_level_target: Annotated[float, Field(gt=0, le=1)] = 0.8
    wallboard: WallboardThresholds = Field(default_factory=WallboardThresholds)
    auto_pause_after_misses: Annotated[int, Field(ge=1)] | None = None
    start_max_penalty: Penalty = 0
    escalation: tuple[EscalationStep, ...] = ()
    skip_empty_tiers: bool = True
    handle_time_estimate_s: PositiveSeconds = 180.0
    announce: AnnounceConfig = Field(default_factory=AnnounceConfig)
    exit_key: DtmfKey | None = None
    exit_target: Target | None = None
    recording: RecordingMode = "never"
    recording_consent_prompt: RecordingPrompt | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        first: dict[str, int] = {}
        for index, member in enumerate(self.members):
            if member.agent in first:
                violations.append(
                    (
                        ("members", index, "agent"),
                        f"agent {member.agent!r} is already members[{first[member.agent]}]",
                    )
                )
            first.setdefault(member.agent, index)
        previous_after, previous_penalty = 0.0, self.start_max_penalty
        for index, step in enumerate(self.escalation):
            if step.after_s <= previous_after:
                violations.append(
                    (
                        ("escalation", index, "after_s"),
                        f"{step.after_s} is not after the step before",
                    )
                )
            if step.max_penalty <= previous_penalty:
                violations.append(
                    (
                        ("escalation", index, "max_penalty"),
                        f"{step.max_penalty} does not widen the pool (already {previous_penalty})",
                    )
                )
            previous_after, previous_penalty = step.after_s, max(previous_penalty, step.max_penalty)
        if (self.exit_key is None) != (self.exit_target is None):
            present, missing = ("exit_key", "exit_target")[:: 1 if self.exit_key else -1]
            violations.append(((missing,), f"required when {present} is set"))
        if self.recording_consent_prompt is not None and self.recording == "never":
            violations.append((("recording_consent_prompt",),
                               "no call of this queue is recorded (recording: never)"))
        if self.overflow == f"queue:{self.name}":
            violations.append((("overflow",), "a queue cannot overflow into itself"))
        _raise(violations)
        return self

    def max_penalty(self) -> int:
        """The widest tier the queue ever hunts (its members' highest penalty without
        escalation rules; the last escalation step's otherwise)."""
        if self.escalation:
            return self.escalation[-1].max_penalty
        return max((member.penalty for member in self.members), default=0)


class PinningRule(Section):
    """What a call pinned to its customer's own agents does when they are busy: wait up to
    `wait_for_pinned_s` for one of them (holding — reserving — a pinned agent who finishes
    a call meanwhile when `reserve_pinned_agent`), then go to any agent, or keep waiting for
    the pinned agents only."""

    wait_for_pinned_s: Seconds = 0.0
    reserve_pinned_agent: bool = False
    fallback: Fallback = "any"


class CustomerStatusConfig(Section):
    """``customer_statuses.<name>`` — a customer status (standard, gold, vip …): its queue
    priority (higher is served first), its pinning rule and optionally its own hold program."""

    priority: Annotated[int, Field(ge=-100, le=100)] = 0
    pinning: PinningRule = Field(default_factory=PinningRule)
    hold_program: NonEmptyStr | None = None


def check_acd_config(
    queues: Sequence[QueueConfig],
    customer_statuses: Mapping[str, CustomerStatusConfig],
    agent_extensions: Iterable[str] | None = None,
) -> list[tuple[Loc, str]]:
    """Violations that span sections, each with its path from the file's root: duplicate
    queue names, overflow/exit targets naming unknown queues or agents, members that are not
    agents (when `agent_extensions` is given), status names that are not names. The lead's
    `PbxConfig` validator raises them together with its own."""
    violations: list[tuple[Loc, str]] = []
    agents = None if agent_extensions is None else set(agent_extensions)
    names: dict[str, int] = {}
    for index, queue in enumerate(queues):
        if queue.name in names:
            violations.append(
                (
                    ("queues", index, "name"),
                    f"duplicate name {queue.name!r} (first at queues[{names[queue.name]}])",
                )
            )
        names.setdefault(queue.name, index)
    for index, queue in enumerate(queues):
        for key in ("overflow", "exit_target"):
            target = getattr(queue, key)
            if target is None:
                continue
            kind, rest = target.split(":", 1)
            if kind == "queue" and rest not in names:
                violations.append((("queues", index, key), f"no queue named {rest!r}"))
            if kind == "agent" and agents is not None and rest not in agents:
                violations.append((("queues", index, key), f"no agent with extension {rest!r}"))
        if agents is not None:
            for m_index, member in enumerate(queue.members):
                if member.agent not in agents:
                    violations.append(
                        (
                            ("queues", index, "members", m_index, "agent"),
                            f"no agent with extension {member.agent!r}",
                        )
                    )
    for status in customer_statuses:
        if not _NAME.match(status):
            violations.append((("customer_statuses", status), f"{status!r} is not a name"))
    return violations
