"""The configuration models: defaults, semantic checks, HA1 and overrides."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from pbx.config import (
    AgentConfig,
    ConfigError,
    PbxConfig,
    apply_overrides,
    digest_ha1,
    parse_config,
    redact_url,
)

MINIMAL = """\
sip:
  domain: hotline.example
agents:
  - extension: "1001"
    name: Anna
    password: "secret-1"
"""


def minimal(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sip": {"domain": "hotline.example"},
        "agents": [{"extension": "1001", "name": "Anna", "password": "secret-1"}],
    }
    data.update(sections)
    return data


def rule_paths(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.yaml")
    return [(issue.line, issue.path, issue.message) for issue in caught.value.issues]


def test_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.pbx.name == "Hotline" and config.pbx.data_dir == "var"
    assert [entry.describe() for entry in config.sip.listen] == [
        "udp 127.0.0.1:5060",
        "tcp 127.0.0.1:5060",
    ]
    assert (config.sip.t1_ms, config.sip.t2_ms, config.sip.t4_ms) == (500, 4000, 5000)
    assert config.sip.max_message_bytes == 65535
    assert config.sip.socket_buffer_bytes == 4194304
    assert config.sip.user_agent == "pbx/0.1"
    registrar = config.registrar
    assert (registrar.min_expires, registrar.default_expires, registrar.max_expires) == (
        60,
        3600,
        3600,
    )
    assert registrar.max_contacts_per_aor == 10
    assert config.security.auth_algorithms == ("SHA-256", "MD5")
    assert config.security.trusted_networks == ()
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8080)
    assert config.database_url == "sqlite:///var/pbx.db"
    assert (config.logging.level, config.logging.format) == ("info", "auto")
    assert (config.media.rtp_port_min, config.media.rtp_port_max) == (20000, 29999)
    assert config.media.rtp_pairs == 5000
    agent = config.agents[0]
    assert (agent.role, agent.skills, agent.groups, agent.enabled) == ("agent", {}, (), True)
    assert config.trunks == ()


def test_data_dir_placeholder_in_database_url() -> None:
    config = PbxConfig.model_validate(
        minimal(pbx={"data_dir": "/srv/pbx"}, database={"url": "sqlite:///{data_dir}/x.db"})
    )
    assert config.database_url == "sqlite:////srv/pbx/x.db"


def test_models_are_frozen() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(ValidationError):
        config.sip.domain = "other.example"


def test_ipv6_listen_host_accepts_brackets_and_normalises() -> None:
    config = PbxConfig.model_validate(
        minimal(sip={"domain": "h.example", "listen": [{"transport": "udp", "host": "[::1]"}]})
    )
    assert config.sip.listen[0].host == "::1"
    assert config.sip.listen[0].describe() == "udp [::1]:5060"


def test_trusted_network_with_host_bits_suggests_the_network() -> None:
    text = MINIMAL + "security:\n  trusted_networks: [10.1.2.3/8]\n"
    assert rule_paths(text) == [
        (
            8,
            "security.trusted_networks[0]",
            "'10.1.2.3/8' has host bits set; did you mean '10.0.0.0/8'?",
        )
    ]


def test_min_expires_above_max_expires() -> None:
    text = MINIMAL + "registrar:\n  min_expires: 4000\n  max_expires: 3600\n"
    ((line, path, message),) = rule_paths(text)
    assert (line, path) == (8, "registrar.min_expires")
    assert "above max_expires" in message


def test_duplicate_listen_address() -> None:
    text = MINIMAL.replace(
        "  domain: hotline.example\n",
        "  domain: hotline.example\n  listen:\n"
        "    - {transport: udp, host: 127.0.0.1}\n"
        "    - {transport: udp, host: 127.0.0.1, port: 5060}\n",
    )
    ((line, path, message),) = rule_paths(text)
    assert (line, path) == (5, "sip.listen[1]")
    assert "already listen[0]" in message


def test_rtp_range_must_start_even_and_be_ordered() -> None:
    text = MINIMAL + "media:\n  rtp_port_min: 30001\n  rtp_port_max: 30000\n"
    assert [(line, path) for line, path, _ in rule_paths(text)] == [
        (8, "media.rtp_port_min"),
        (9, "media.rtp_port_max"),
    ]


def test_admission_limits() -> None:
    sip = parse_config(MINIMAL).sip
    assert (sip.max_calls, sip.max_calls_per_second, sip.overload_lag_ms) == (None, None, 0)
    text = MINIMAL.replace("sip:\n", "sip:\n  max_calls: 0\n  max_calls_per_second: 2.5\n")
    ((line, path, message),) = rule_paths(text)
    assert (line, path) == (2, "sip.max_calls") and "1" in message


def test_media_codecs_are_known_and_listed_once() -> None:
    assert parse_config(MINIMAL).media.codecs == ["PCMU", "PCMA"]
    wide = parse_config(MINIMAL + "media:\n  codecs: [G722, PCMA]\n")
    assert wide.media.codecs == ["G722", "PCMA"]
    ((line, path, message),) = rule_paths(MINIMAL + "media:\n  codecs: [PCMU, G729]\n")
    assert (line, path) == (8, "media.codecs[1]") and "G722" in message
    ((line, path, message),) = rule_paths(MINIMAL + "media:\n  codecs: [PCMU, PCMU]\n")
    assert (line, path) == (8, "media.codecs") and "twice" in message


def test_registering_trunk_needs_credentials() -> None:
    text = (
        MINIMAL + "trunks:\n  - name: carrier\n    host: sip.carrier.example\n    register: true\n"
    )
    assert [(line, path) for line, path, _ in rule_paths(text)] == [
        (8, "trunks[0].password"),
        (8, "trunks[0].username"),
    ]


def test_trunk_inbound_auth_needs_credentials_and_addresses() -> None:
    text = MINIMAL + (
        "trunks:\n  - name: carrier\n    host: sip.carrier.example\n    inbound_auth: true\n"
    )
    issues = rule_paths(text)
    assert [(line, path) for line, path, _ in issues] == [
        (8, "trunks[0].inbound_addresses"),
        (8, "trunks[0].password"),
        (8, "trunks[0].username"),
    ]
    assert all("inbound_auth" in message for _, _, message in issues)
    config = parse_config(text + "    inbound_addresses: [192.0.2.1]\n"
                          "    username: pbx\n    password: trunk-secret\n")
    assert config.trunks[0].inbound_auth is True
    assert parse_config(MINIMAL + "trunks:\n  - {name: c, host: c.example}\n"
                        ).trunks[0].inbound_auth is False
    ((line, path, message),) = rule_paths(
        MINIMAL + "trunks:\n  - {name: c, host: c.example, inbound_auth: maybe}\n")
    assert path == "trunks[0].inbound_auth"


def test_duplicate_trunk_names_and_bad_inbound_address() -> None:
    text = MINIMAL + (
        "trunks:\n"
        "  - {name: carrier, host: a.example, inbound_addresses: [192.0.2.1, 198.51.100.0/24]}\n"
        "  - {name: carrier, host: b.example}\n"
        "  - {name: other, host: c.example, inbound_addresses: [not-an-ip]}\n"
    )
    issues = rule_paths(text)
    assert [(line, path) for line, path, _ in issues] == [(10, "trunks[2].inbound_addresses[0]")]
    # The duplicate is reported once the list itself is valid.
    text = text.replace("not-an-ip", "203.0.113.9")
    assert [(line, path) for line, path, _ in rule_paths(text)] == [(9, "trunks[1].name")]


def test_http_port_clashing_with_sip_tcp() -> None:
    text = MINIMAL + "http:\n  port: 5060\n"
    ((line, path, message),) = rule_paths(text)
    assert (line, path) == (8, "http.port")
    assert "sip.listen[1] (tcp)" in message


def test_duplicate_auth_algorithm() -> None:
    text = MINIMAL + "security:\n  auth_algorithms: [MD5, MD5]\n"
    assert rule_paths(text)[0][:2] == (8, "security.auth_algorithms[1]")


def test_unknown_database_scheme() -> None:
    text = MINIMAL + "database:\n  url: mysql://pbx@db/pbx\n"
    ((line, path, message),) = rule_paths(text)
    assert (line, path) == (8, "database.url")
    assert "not a database URL" in message


def test_digest_ha1_matches_rfc_7616_definition() -> None:
    # RFC 7616 §3.9.1: Mufasa / http-auth@example.org / Circle of Life.
    assert digest_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "MD5") == (
        hashlib.md5(b"Mufasa:http-auth@example.org:Circle of Life").hexdigest()
    )
    assert digest_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256") == (
        "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
    )
    with pytest.raises(ValueError):
        digest_ha1("a", "b", "c", "SHA-512-256")


def test_agent_record_carries_ha1s_not_the_password() -> None:
    agent = AgentConfig(extension="1001", name="Anna", password="secret-1", role="admin")
    record = agent.to_record("hotline.example")
    assert record.extension == "1001" and record.role == "admin" and record.enabled
    assert record.password_ha1_md5 == agent.ha1("hotline.example", "MD5")
    expected = hashlib.sha256(b"1001:hotline.example:secret-1").hexdigest()
    assert record.password_ha1_sha256 == expected
    assert "secret-1" not in repr(record)


def test_overrides_replace_ports_database_and_level() -> None:
    config = apply_overrides(
        parse_config(MINIMAL),
        sip_port=15060,
        http_port=18080,
        database_url="sqlite:////tmp/x.db",
        log_level="debug",
        log_format="json",
    )
    assert {entry.port for entry in config.sip.listen} == {15060}
    assert config.http.port == 18080
    assert config.database_url == "sqlite:////tmp/x.db"
    assert (config.logging.level, config.logging.format) == ("debug", "json")


def test_data_dir_override_moves_the_default_database() -> None:
    config = apply_overrides(parse_config(MINIMAL), data_dir="/srv/pbx")
    assert config.database_url == "sqlite:////srv/pbx/pbx.db"


def test_invalid_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(parse_config(MINIMAL), sip_port=0, log_level="loud")
    assert [str(issue) for issue in caught.value.issues] == [
        "command line: logging.level: 'loud' is not one of debug, info, warning, error",
        "command line: sip.listen[0].port: the number 0 is out of range"
        " (expected an integer from 1 to 65535)",
        "command line: sip.listen[1].port: the number 0 is out of range"
        " (expected an integer from 1 to 65535)",
    ]


def test_overrides_keep_trunk_register_alias() -> None:
    text = MINIMAL + (
        "trunks:\n  - {name: c, host: c.example, register: true, username: u, password: pw12}\n"
    )
    config = apply_overrides(parse_config(text), sip_port=5090)
    assert config.trunks[0].registers is True


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://pbx:s3cret@db/pbx", "postgresql://pbx:***@db/pbx"),
        ("postgresql+psycopg://pbx@db/pbx", "postgresql+psycopg://pbx@db/pbx"),
        ("sqlite:///var/pbx.db", "sqlite:///var/pbx.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
