"""Who may see and change a form field — the CTI's policy, pure (no I/O, no clock).

The admin writes rules per field (`pbx.config.schema.FieldPermissions`)::

    permissions:
      default: read_only              # everyone not matched below
      roles:  {supervisor: read_write}
      groups: {billing: read_write, trainees: hidden}
      agents: {"1003": hidden}

Levels, from least to most: ``hidden`` (not sent to the desktop at all), ``read_only`` (shown,
never written), ``read_write`` (shown and saved).

The most specific rule wins, in this order:

1. a rule for the agent's own extension;
2. rules for the agent's groups: when several of the agent's groups have a rule, the most
   permissive of them applies (groups grant rights; an agent in ``billing`` and ``trainees``
   above may write);
3. a rule for the agent's role (agent, supervisor, admin — no role implies another's rights);
4. the field's ``default``.

A more specific rule may narrow as well as widen: ``agents: {"1003": hidden}`` hides the field
from 1003 even if its group may write it. Whatever the rules say, a field fed from a computed
value or the customer's key can never be written (the configuration refuses such a grant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from pbx.config.schema import FieldPermissions, FormFieldConfig, source_is_writable


class Access(IntEnum):
    """A permission level; the order is "how much", so `max` picks the most permissive."""

    HIDDEN = 0
    READ_ONLY = 1
    READ_WRITE = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Access:
        return cls[text.upper()]


@dataclass(frozen=True, slots=True)
class Principal:
    """Whom a decision is for: an agent's extension, role and groups (from the config)."""

    extension: str
    role: str
    groups: Sequence[str] = ()


def effective_access(rules: FieldPermissions, who: Principal) -> Access:
    """The permission `who` has under `rules` (see the module docstring for the order)."""
    if who.extension in rules.agents:
        return Access.parse(rules.agents[who.extension])
    granted = [Access.parse(rules.groups[group]) for group in who.groups if group in rules.groups]
    if granted:
        return max(granted)
    role_rule = rules.roles.get(who.role)  # type: ignore[call-overload]
    if role_rule is not None:
        return Access.parse(role_rule)
    return Access.parse(rules.default)


def field_access(form_field: FormFieldConfig, who: Principal) -> Access:
    """`effective_access` of a field, capped at read-only when its source cannot be written."""
    access = effective_access(form_field.permissions, who)
    if access is Access.READ_WRITE and not source_is_writable(form_field.source):
        return Access.READ_ONLY
    return access
