"""The field-permission policy: the most specific rule wins (agent > group > role > default)."""

from __future__ import annotations

import pytest

from pbx.config.schema import FieldPermissions, FormFieldConfig
from pbx.cti.permissions import Access, Principal, effective_access, field_access

RULES = FieldPermissions(
    default="read_only",
    roles={"supervisor": "read_write", "agent": "hidden"},
    groups={"billing": "read_write", "trainees": "hidden"},
    agents={"1003": "hidden", "1004": "read_write"},
)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (Principal("1001", "agent"), Access.HIDDEN),  # role rule
        (Principal("1001", "admin"), Access.READ_ONLY),  # no rule for admins: default
        (Principal("1001", "supervisor"), Access.READ_WRITE),
        (Principal("1001", "agent", ("billing",)), Access.READ_WRITE),  # group beats role
        (Principal("1001", "supervisor", ("trainees",)), Access.HIDDEN),  # group narrows too
        (Principal("1001", "agent", ("trainees", "billing")), Access.READ_WRITE),  # most permissive
        (Principal("1001", "agent", ("other",)), Access.HIDDEN),  # unrelated group: role
        (Principal("1003", "supervisor", ("billing",)), Access.HIDDEN),  # agent beats all
        (Principal("1004", "agent", ("trainees",)), Access.READ_WRITE),
    ],
)
def test_most_specific_rule_wins(who: Principal, expected: Access) -> None:
    assert effective_access(RULES, who) is expected


def test_default_applies_without_rules() -> None:
    assert effective_access(FieldPermissions(), Principal("1", "admin")) is Access.READ_ONLY
    rules = FieldPermissions(default="hidden")
    assert effective_access(rules, Principal("1", "agent", ("x",))) is Access.HIDDEN


def test_levels_are_ordered_and_named() -> None:
    assert Access.HIDDEN < Access.READ_ONLY < Access.READ_WRITE
    assert [a.label for a in Access] == ["hidden", "read_only", "read_write"]
    assert Access.parse("read_write") is Access.READ_WRITE


def test_source_that_cannot_be_written_caps_at_read_only() -> None:
    # The config refuses read_write grants on such sources; the policy caps them regardless.
    field = FormFieldConfig.model_construct(
        name="waited", source="call.waited_s",
        permissions=FieldPermissions(default="read_write"),
    )
    assert field_access(field, Principal("1001", "agent")) is Access.READ_ONLY
    ivr = FormFieldConfig(name="concern", source="concern",
                          permissions=FieldPermissions(default="read_write"))
    assert field_access(ivr, Principal("1001", "agent")) is Access.READ_WRITE
