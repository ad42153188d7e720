"""Flow errors reach the admin with file and line, through the configuration loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx.config.loader import ConfigError, parse_config
from pbx.config.schema import PbxConfig

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    "flows" not in PbxConfig.model_fields, reason="flows are not wired into PbxConfig yet"
)


EXAMPLE = (ROOT / "config" / "pbx.yaml").read_text(encoding="utf-8")
IVR_PART = EXAMPLE.index("# --- dialled numbers (DIDs)")


def config_with(fragment: str) -> str:
    """The example configuration without its IVR part, plus `fragment`."""
    return EXAMPLE[:IVR_PART] + "\n" + fragment


def issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "pbx.yaml")
    return [str(issue) for issue in caught.value.issues]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_example_fragment_loads() -> None:
    config = parse_config(EXAMPLE, "config/pbx.yaml")
    assert set(config.flows) == {"hotline"}


def test_structural_errors_name_file_line_and_path() -> None:
    text = config_with(
        """
flows:
  hotline:
    start: menu
    nodes:
      menu:
        type: menu
        prompt: de/main_menu
        options: {"1": queue, "2": byee}
      queue: {type: queue, queue: first-level}
      bye: {type: hangup}
"""
    )
    assert issues(text) == [
        f"pbx.yaml:{line_of(text, 'byee')}: flows.hotline.nodes.menu.options.2: unknown node"
        " 'byee'; did you mean 'bye'?"
    ]


def test_field_errors_name_file_line_and_path() -> None:
    text = config_with(
        """
flows:
  hotline:
    start: number
    nodes:
      number:
        type: collect
        prompt: de/enter_customer_number
        variable: customer_no
        pattern: "[0-9"
        next: bye
      bye: {type: hangpu}
"""
    )
    found = issues(text)
    pattern_line = line_of(text, 'pattern: "[0-9')
    assert found[0].startswith(f"pbx.yaml:{pattern_line}: ")
    assert (
        "flows.hotline.nodes.number.pattern: '[0-9' is not a valid regular expression" in found[0]
    )
    assert found[1].startswith(f"pbx.yaml:{line_of(text, 'hangpu')}: flows.hotline.nodes.bye.type")
