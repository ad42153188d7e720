"""`pbx schema`: the JSON schema editors validate pbx.yaml with (the YAML language server)
accepts the shipped example as written and flags what the PBX would refuse."""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pbx.cli import main
from pbx.cli_setup import config_schema

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "pbx.yaml"


def as_json(value: Any) -> Any:
    # what the language server sees: YAML's dates are strings to it
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def errors(data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(config_schema())
    return [".".join(map(str, e.absolute_path)) + ": " + e.message
            for e in validator.iter_errors(as_json(data))]


def test_the_example_validates_against_the_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(config_schema())
    assert errors(yaml.safe_load(EXAMPLE.read_text())) == []


def test_the_schema_flags_unknown_keys_and_wrong_types() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    broken = copy.deepcopy(data)
    broken["sip"]["domian"] = "x"
    broken["http"]["port"] = "eighty"
    broken["flows"]["hotline"]["schedules"]["hotline"]["holidays"] = {
        "country": "DE", "subdivison": "BY"}
    found = errors(broken)
    assert any(e.startswith("sip: Additional properties") and "domian" in e for e in found)
    assert any(e.startswith("http.port: 'eighty'") for e in found)
    assert any("subdivison" in e for e in found), found


def test_pbx_schema_prints_it(capsys: Any) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed["title"] == "pbx configuration (pbx.yaml)"
    assert set(printed["required"]) == {"sip", "agents"}
