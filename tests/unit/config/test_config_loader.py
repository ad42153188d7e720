"""Loading config/pbx.yaml and reporting bad files with file, line, key path and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx.config import ConfigError, ConfigIssue, load_config, parse_config, summarize

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "pbx.yaml"
BAD = ROOT / "tests" / "data" / "config"


def issues_of(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.issues


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.pbx.name == "Muster Hotline"
    assert config.sip.domain == "hotline.example"
    assert [a.extension for a in config.agents] == [str(n) for n in range(1001, 1011)]
    roles = {a.extension: a.role for a in config.agents}
    assert roles["1009"] == "supervisor" and roles["1010"] == "admin"
    assert {(e.transport, e.host, e.port) for e in config.sip.listen} == {
        ("udp", "127.0.0.1", 5060),
        ("tcp", "127.0.0.1", 5060),
        ("udp", "::1", 5060),
        ("tcp", "::1", 5060),
    }
    (trunk,) = config.trunks
    assert set(trunk.inbound_addresses) == {"127.0.0.1/32", "::1/128"}
    # data_dir ../var is relative to config/: the repository's var/, from any directory
    assert config.database_url == f"sqlite:///{ROOT / 'var' / 'pbx.db'}"


def test_example_config_loads_from_str_path() -> None:
    assert load_config(str(EXAMPLE)).agents[0].name == "Anna Schmidt"


def test_summary_names_agents_trunks_addresses_and_database() -> None:
    text = summarize(load_config(EXAMPLE))
    assert "Muster Hotline" in text
    assert "agents: 10" in text and "1 supervisor" in text and "1 admin" in text
    assert "udp [::1]:5060" in text and "tcp 127.0.0.1:5060" in text
    assert "carrier" in text
    assert f"sqlite:///{ROOT / 'var' / 'pbx.db'}" in text
    assert "HTTP: 127.0.0.1:8080; trusted proxies: none; API tokens: none" in text


@pytest.mark.parametrize(
    ("fixture", "line", "path", "message"),
    [
        ("missing_password.yaml", 8, "agents[3].password", "field required (a string"),
        ("bad_transport.yaml", 5, "sip.listen[0].transport", "'sctp' is not one of udp, tcp"),
        ("duplicate_extension.yaml", 7, "agents[2].extension", "duplicate extension '1001'"),
        ("expires_order.yaml", 6, "registrar.default_expires", "not between min_expires (60)"),
        ("listen_hostname.yaml", 6, "sip.listen[1].host", "not an IPv4 or IPv6 address"),
        ("extension_letters.yaml", 6, "agents[1].extension", "'10a2' is not an extension"),
        ("extension_number.yaml", 5, "agents[0].extension", "write it in quotes: '1001'"),
        ("port_range.yaml", 5, "http.port", "out of range (expected an integer from 1 to 65535)"),
        ("duplicate_key.yaml", 6, "sip", "duplicate key 'sip' (first at line 2)"),
        ("missing_domain.yaml", 5, "sip.domain", "field required (a domain name"),
        ("not_a_mapping.yaml", 2, "", "expected a mapping with at least the keys sip and agents"),
    ],
)
def test_bad_file_names_file_line_and_path(
    fixture: str, line: int, path: str, message: str
) -> None:
    (issue,) = issues_of(BAD / fixture)
    assert issue.file == str(BAD / fixture)
    assert (issue.line, issue.path) == (line, path)
    assert message in issue.message


def test_error_text_is_file_line_path_message() -> None:
    error = pytest.raises(ConfigError, load_config, BAD / "bad_transport.yaml").value
    assert str(error) == (
        f"{BAD / 'bad_transport.yaml'}:5: sip.listen[0].transport: 'sctp' is not one of udp, tcp"
    )


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    issues = issues_of(BAD / "unknown_key.yaml")
    by_path = {issue.path: issue for issue in issues}
    unknown = by_path["agents[1].pasword"]
    assert unknown.line == 10
    assert unknown.message == "unknown key 'pasword'; did you mean 'password'?"
    # The misspelt key also leaves the real one missing, reported at the item's line.
    assert by_path["agents[1].password"].line == 8


def test_unknown_key_without_close_match_lists_known_keys() -> None:
    text = "sip: {domain: x.example}\nagents: []\nhttp: {colour: red}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "inline.yaml")
    (issue,) = caught.value.issues
    assert str(issue).startswith("inline.yaml:3: http.colour: unknown key 'colour' (known keys:")
    assert "api_tokens, host, max_body_bytes, port, trusted_networks" in issue.message


def test_yaml_syntax_error_names_the_line() -> None:
    (issue,) = issues_of(BAD / "syntax_error.yaml")
    assert issue.line == 7
    assert issue.message.startswith("YAML syntax error:")
    assert "indentation" in issue.message


def test_tab_indentation_is_explained() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("sip:\n\tdomain: x\n", "tabs.yaml")
    (issue,) = caught.value.issues
    assert issue.line == 2 and "not tabs" in issue.message


def test_all_errors_are_collected_in_file_order() -> None:
    issues = issues_of(BAD / "many_errors.yaml")
    assert [(issue.line, issue.path) for issue in issues] == [
        (4, "pbx.datadir"),
        (5, "sip.domain"),
        (7, "sip.listen[0].transport"),
        (10, "registrar.default_expires"),
        (12, "logging.level"),
        (14, "agents[0].password"),
        (18, "agents[1].password"),
        (19, "agents[1].skills.german"),
        (24, "trunks[0].caller_id"),
    ]
    messages = {issue.path: issue.message for issue in issues}
    assert messages["pbx.datadir"] == "unknown key 'datadir'; did you mean 'data_dir'?"
    assert messages["logging.level"] == "'verbose' is not one of debug, info, warning, error"
    assert "out of range (expected an integer from 1 to 10)" in messages["agents[1].skills.german"]


def test_passwords_are_never_echoed() -> None:
    text = (
        "sip: {domain: x.example}\n"
        "agents:\n"
        "  - {extension: '1001', name: A, password: 'ab'}\n"
        "  - {extension: '1002', name: B, password: 98}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    rendered = str(caught.value)
    assert "'ab'" not in rendered and "98" not in rendered
    assert [issue.path for issue in caught.value.issues] == [
        "agents[0].password",
        "agents[1].password",
    ]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    (issue,) = issues_of(tmp_path / "absent.yaml")
    assert issue.line is None and "cannot read" in issue.message


def test_empty_file_is_a_config_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    (issue,) = issues_of(empty)
    assert issue.line == 1 and "got an empty file" in issue.message


def test_unsafe_yaml_tags_are_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("sip: !!python/object/apply:os.system ['true']\nagents: []\n")
    assert caught.value.issues[0].line == 1


def test_yaml_anchors_and_merge_keys() -> None:
    text = (
        "sip: {domain: x.example}\n"
        "agents:\n"
        "  - &seat\n"
        "    extension: '1001'\n"
        "    name: Anna\n"
        "    password: 'secret-1'\n"
        "    groups: [billing]\n"
        "  - <<: *seat\n"
        "    extension: '1002'\n"
        "    name: Ben\n"
    )
    config = parse_config(text)
    assert config.agents[1].groups == ("billing",)
    assert config.agents[1].password == "secret-1"
