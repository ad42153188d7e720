"""media/ never imports pbx/, and its pure layers import no asyncio, socket or time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MEDIA = Path(__file__).resolve().parents[3] / "media"
PURE = ["g711", "rtp", "rtcp", "dtmf", "sdp", "sources", "mixer", "music", "events", "session",
        "recording"]
FORBIDDEN_IN_PURE = {"asyncio", "socket", "time", "selectors", "sqlalchemy", "yaml", "uvloop"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(MEDIA.glob("*.py")), ids=lambda p: p.name)
def test_media_does_not_import_pbx(path: Path) -> None:
    assert not {name for name in imported_modules(path) if name.split(".")[0] == "pbx"}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io_or_clock_reading(module: str) -> None:
    top_level = {name.split(".")[0] for name in imported_modules(MEDIA / f"{module}.py")}
    assert not top_level & FORBIDDEN_IN_PURE
