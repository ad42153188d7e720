"""The ``forms:`` and ``cti:`` configuration sections: defaults and error messages."""

from __future__ import annotations

import pytest

from pbx.config import ConfigError, parse_config
from tests.unit.cti.fakes import CONFIG

BASE = """\
sip: {domain: hotline.example}
agents:
  - {extension: "1001", name: Anna, password: secret-1, groups: [billing]}
"""


def issues(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.yaml")
    return [(issue.line, issue.path, issue.message) for issue in caught.value.issues]


def test_defaults() -> None:
    config = parse_config(BASE)
    assert config.forms == {}
    cti = config.cti
    assert cti.session_lifetime_s == 43200 and cti.password_cost == 14
    assert cti.csrf_header == "X-CSRF-Token" and not cti.cookie_secure
    assert "resolved" in cti.dispositions


def test_example_config_parses() -> None:
    config = parse_config(CONFIG)
    form = config.forms["default"]
    assert [f.name for f in form.fields][:3] == ["customer_no", "name", "contract"]
    assert form.fields[0].permissions.default == "read_only"
    assert form.field("tier") is not None and form.field("nope") is None
    assert form.fields[1].shown_label == "name" and form.fields[0].shown_label == "Customer no."


@pytest.mark.parametrize(
    ("field", "path", "message"),
    [
        ("{name: x, source: customer.nope}", "forms.default.fields[0].source",
         "is not a customer field"),
        ("{name: x, source: call.nope}", "forms.default.fields[0].source",
         "is not a computed value"),
        ("{name: x, source: 'bad name'}", "forms.default.fields[0].source",
         "is not an IVR variable name"),
        ("{name: 'x y'}", "forms.default.fields[0].name", "is not a field name"),
        ("{name: x, type: select}", "forms.default.fields[0].options",
         "a select needs at least one option"),
        ("{name: x, options: [a]}", "forms.default.fields[0].options", "only a select"),
        ("{name: x, type: color}", "forms.default.fields[0].type", ""),
        ("{name: x, source: call.waited_s, permissions: {roles: {admin: read_write}}}",
         "forms.default.fields[0].permissions.roles.admin", "cannot be written"),
        ("{name: x, source: customer.customer_no, permissions: {default: read_write}}",
         "forms.default.fields[0].permissions.default", "cannot be written"),
        ("{name: x, permissions: {agents: {'1099': hidden}}}",
         "forms.default.fields[0].permissions.agents.1099", "no agent with extension '1099'"),
        ("{name: x, permissions: {groups: {bling: hidden}}}",
         "forms.default.fields[0].permissions.groups.bling", "no agent is in group 'bling'"),
        ("{name: x, permissions: {roles: {boss: hidden}}}",
         "forms.default.fields[0].permissions.roles.boss", ""),
        ("{name: x, permissions: {default: writable}}",
         "forms.default.fields[0].permissions.default", ""),
        ("{name: x, validation: {min_length: 5, max_length: 2}}",
         "forms.default.fields[0].validation.min_length", "is above max_length"),
        ("{name: x, validation: {pattern: '[a-'}}",
         "forms.default.fields[0].validation.pattern", "not a valid regular expression"),
    ],
)
def test_field_errors_name_the_key(field: str, path: str, message: str) -> None:
    found = issues(BASE + f"forms:\n  default:\n    fields:\n      - {field}\n")
    assert any(p == path and message in m for _, p, m in found), found
    assert all(line == 7 for line, p, _ in found if p == path)


def test_duplicate_field_names() -> None:
    text = BASE + "forms:\n  default:\n    fields:\n      - {name: a}\n      - {name: a}\n"
    assert any("duplicate name 'a'" in m for _, _, m in issues(text))


def test_cti_section_errors() -> None:
    found = issues(BASE + "cti: {password_cost: 30, csrf_header: 'x y', dispositions: []}\n")
    paths = {p for _, p, _ in found}
    assert {"cti.password_cost", "cti.csrf_header", "cti.dispositions"} <= paths
