"""What a reload changes (`pbx.config.diff`): the changes per section, the keys that need a
restart, and the configuration actually applied (restart-only sections kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pbx.config import parse_config
from pbx.config.diff import config_changes, live_config, needs_restart
from pbx.config.schema import PbxConfig

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "pbx.yaml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def parsed(data: dict[str, Any]) -> PbxConfig:
    return parse_config(yaml.safe_dump(data), "pbx.yaml")


def test_an_unchanged_file_changes_nothing() -> None:
    old, new = parsed(example()), parsed(example())
    assert config_changes(old, new) == {}
    assert needs_restart(old, new) == []


def test_agents_queues_dids_and_holidays_are_named_and_passwords_never_shown() -> None:
    data = example()
    old = parsed(data)
    data["agents"][1]["password"] = "a-new-secret-42"
    data["agents"][2]["skills"] = {"billing": 5}
    data["agents"].append({"extension": "1011", "name": "New Agent", "password": "pw1011-xyz"})
    removed = data["agents"].pop(0)["extension"]
    for queue in data["queues"]:
        queue["members"] = [m for m in queue["members"] if m["agent"] != removed]
    for customer in data.get("customers", []):
        customer["pinned_agents"] = [a for a in customer.get("pinned_agents", [])
                                     if a != removed]
    data["queues"][0]["ring_timeout_s"] = 33
    data["dids"].append({"number": "+4930999000", "queue": data["queues"][0]["name"]})
    flow, spec = next((n, f) for n, f in data["flows"].items() if f.get("schedules"))
    schedule = next(iter(spec["schedules"]))
    spec["schedules"][schedule]["holidays"] = [*spec["schedules"][schedule].get("holidays", []),
                                               "2031-06-01"]
    new = parsed(data)
    changes = config_changes(old, new)
    second, third = old.agents[1].extension, old.agents[2].extension
    assert changes["agents"] == {"added": ["1011"], "removed": [removed],
                                 "changed": [f"{second} (password)", f"{third} (skills)"]}
    assert data["queues"][0]["name"] in changes["queues"]["changed"]
    assert changes["dids"] == {"added": ["+4930999000"]}
    assert changes["holidays"] == {"changed": [f"{flow}/{schedule}"]}
    assert changes["flows"] == {"changed": [flow]}
    assert "a-new-secret-42" not in repr(changes)
    assert needs_restart(old, new) == []


def test_restart_only_keys_are_reported_and_kept() -> None:
    data = example()
    old = parsed(data)
    data["sip"]["listen"][0]["port"] = 5099
    data["http"]["port"] = 8099
    data["database"] = {"url": "sqlite:////tmp/other.db"}
    data["trunks"][0]["host"] = "192.0.2.7"
    data["queues"][0]["ring_timeout_s"] = 44
    new = parsed(data)
    assert needs_restart(old, new) == ["sip.listen", "database.url", "trunks", "http.port"]
    applied = live_config(old, new)
    assert applied.sip == old.sip and applied.http == old.http
    assert applied.database_url == old.database_url and applied.trunks == old.trunks
    assert applied.queues[0].ring_timeout_s == 44  # what may change live does
    assert set(config_changes(old, applied)) == {"queues"}


def test_api_tokens_change_live_and_are_named_only() -> None:
    data = example()
    old = parsed(data)
    data["http"]["api_tokens"] = [{"name": "ops", "scopes": ["control"],
                                   "token_sha256": "ab" * 32}]
    data["http"]["port"] = 8090
    new = parsed(data)
    assert needs_restart(old, new) == ["http.port"]
    applied = live_config(old, new)
    assert applied.http.port == old.http.port
    assert [t.name for t in applied.http.api_tokens] == ["ops"]
    changes = config_changes(old, applied)
    assert changes["api_tokens"]["added"] == ["ops"]
    assert "ab" * 32 not in repr(changes)


def test_the_desks_settings_apply_but_its_login_limits_wait_for_a_restart() -> None:
    data = example()
    old = parsed(data)
    cti = data.setdefault("cti", {})
    cti["dispositions"] = ["solved", "callback"]
    cti["max_login_failures"] = 9
    new = parsed(data)
    assert needs_restart(old, new) == ["cti.max_login_failures"]
    applied = live_config(old, new)
    assert applied.cti.dispositions == ("solved", "callback")
    assert applied.cti.max_login_failures == old.cti.max_login_failures
    assert config_changes(old, applied) == {"cti": {"changed": ["dispositions"]}}
