"""`pbx init`'s starter configuration: the example made an installation's own."""

from __future__ import annotations

from itertools import count
from pathlib import Path

import pytest
import yaml

from pbx.cli import main
from pbx.cli_setup import starter_config
from pbx.config.loader import read_config, read_config_text
from pbx.starter import EXAMPLE_CONFIG, PROMPTS


def test_data_dir_prompts_dir_and_fresh_passwords() -> None:
    numbers = count(1)
    text = starter_config(EXAMPLE_CONFIG.read_text(), lambda: f"generated-{next(numbers):02d}x")
    data = yaml.safe_load(text)
    assert data["pbx"]["data_dir"] == "var"
    assert data["media"]["prompts_dir"] == "prompts"
    passwords = [agent["password"] for agent in data["agents"]]
    assert passwords == [f"generated-{n:02d}x" for n in range(1, len(passwords) + 1)]
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    # nothing else changed: same agents, flows, queues, comments kept
    for key in ("sip", "flows", "queues", "dids", "trunks", "http"):
        assert data[key] == example[key], key
    assert text.count("\n#") == EXAMPLE_CONFIG.read_text().count("\n#")
    loaded = read_config_text(text, "pbx.yaml", PROMPTS.parent)
    assert loaded.warnings == ()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "site")]) == 0
    config = tmp_path / "site" / "pbx.yaml"
    before = config.read_text()
    assert config.stat().st_mode & 0o777 == 0o600
    assert read_config(config).config.media.prompts_path == str(tmp_path / "site" / "prompts")
    assert main(["init", str(tmp_path / "site")]) == 1
    assert capsys.readouterr().err.endswith(f"pbx init: {config} exists; nothing written\n")
    assert config.read_text() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "prompts").mkdir()  # a prompts directory of the admin's own
    assert main(["init", str(tmp_path / "other")]) == 1
    assert not (tmp_path / "other" / "pbx.yaml").exists()
