"""The ``forms:``, ``cti:`` and ``http:`` configuration sections: defaults and error
messages."""

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
    assert cti.csrf_header == "X-CSRF-Token" and cti.cookie_secure == "auto"
    assert "resolved" in cti.dispositions
    assert (cti.max_account_failures, cti.account_failure_window_s, cti.account_lock_s) == (
        10, 600, 300)
    assert cti.search_min_chars == 3
    http = config.http
    assert http.trusted_proxies == () and http.trusted_networks == ()  # not SIP's trust
    assert http.api_tokens == () and http.max_body_bytes == 65536
    assert config.agents[0].desk_password_hash is None


def test_http_perimeter_keys() -> None:
    config = parse_config(BASE + """http:
  trusted_proxies: [10.0.0.0/8, "::1/128"]
  trusted_networks: [192.0.2.0/24]
  max_body_bytes: 4096
  api_tokens:
    - {name: prometheus, token_file: /etc/pbx/metrics.token, scopes: [metrics]}
    - {name: export, token_env: PBX_EXPORT_TOKEN, scopes: [cdrs, stats], role: admin}
    - {name: hashed, token_sha256: "%s"}
cti: {cookie_secure: true}
""" % ("AB" * 32))
    first, second, third = config.http.api_tokens
    assert first.scopes == ("metrics",) and first.role == "supervisor"
    assert second.token_env == "PBX_EXPORT_TOKEN" and second.role == "admin"
    assert third.token_sha256 == "ab" * 32 and third.scopes == ("metrics", "stats")
    assert config.cti.cookie_secure is True


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("http: {api_tokens: [{name: a}]}", "http.api_tokens[0]", "exactly one of"),
        ("http: {api_tokens: [{name: a, token_env: X, token_file: /f}]}", "http.api_tokens[0]",
         "got token_file, token_env"),
        ("http: {api_tokens: [{name: a, token_sha256: abc}]}",
         "http.api_tokens[0].token_sha256", "not a SHA-256 digest"),
        ("http: {api_tokens: [{name: a, token_env: '1X'}]}", "http.api_tokens[0].token_env",
         "not an environment variable name"),
        ("http: {api_tokens: [{name: a, token_env: X, scopes: [phones]}]}",
         "http.api_tokens[0].scopes[0]", ""),
        ("http: {api_tokens: [{name: a, token_env: X, scopes: [cdrs, cdrs]}]}",
         "http.api_tokens[0].scopes[1]", "listed twice"),
        ("http: {api_tokens: [{name: a, token_env: X, role: agent}]}",
         "http.api_tokens[0].role", ""),
        ("http: {api_tokens: [{name: a, token_env: X}, {name: a, token_env: Y}]}",
         "http.api_tokens[1].name", "duplicate name 'a'"),
        ("http: {trusted_proxies: [10.0.0.1/8]}", "http.trusted_proxies[0]",
         "did you mean '10.0.0.0/8'"),
        ("http: {max_body_bytes: 10}", "http.max_body_bytes", ""),
        ("cti: {cookie_secure: sometimes}", "cti.cookie_secure", "true, false or auto"),
        ("cti: {search_min_chars: 1}", "cti.search_min_chars", ""),
    ],
)
def test_perimeter_errors_name_the_key(text: str, path: str, message: str) -> None:
    found = issues(BASE + text + "\n")
    assert any(p == path and message in m for _, p, m in found), found


def test_desk_password_hash_must_come_from_hash_password() -> None:
    good = "scrypt$10$8$1$Hpb7TGzjUjAADsBRs60KDA$qttgsprYDwdfDsrFJNFuNP_5OdzHT6r8o4N3RhERP38"
    agent = f"groups: [billing], desk_password_hash: '{good}'}}"
    config = parse_config(BASE.replace("groups: [billing]}", agent)
                          + "cti: {password_cost: 10}\n")
    assert config.agents[0].desk_password_hash == good
    # Another cost than the configured one would time this agent's logins apart.
    found = issues(BASE.replace("groups: [billing]}", agent))
    assert [(p, m) for _, p, m in found] == [(
        "agents[0].desk_password_hash",
        "made with cost 10, but cti.password_cost is 14; hash it again with "
        "`pbx hash-password --cost 14`")]
    for bad in ("secret", good.replace("scrypt$10$", "scrypt$30$"), "md5$10$8$1$abc$def"):
        found = issues(BASE.replace("groups: [billing]}",
                                    f"groups: [billing], desk_password_hash: '{bad}'}}"))
        assert [(p, "pbx hash-password" in m) for _, p, m in found] == [
            ("agents[0].desk_password_hash", True)]


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
