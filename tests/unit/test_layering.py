"""The layering of ../shared/DESIGN.md, enforced: imports only point downwards, and the pure
layers (L0–L2) import no I/O, clock or storage modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Most specific prefix wins.
LAYERS = {
    "pbx.app": 4,
    "pbx.cli": 4,
    "pbx.cli_setup": 4,
    "pbx.reload": 4,
    "pbx.transport": 3,
    "pbx.storage": 3,
    "pbx.cti": 3,
    "pbx.web": 3,
    "pbx.config.loader": 3,
    "pbx.config": 3,  # the package re-exports the loader
    "pbx.config.schema": 0,
    "pbx.logs": 3,
    "pbx.call": 2,
    "pbx.call.events": 0,
    "pbx.ivr.schema": 0,
    "pbx.ivr.events": 0,
    "pbx.ivr.templates": 0,
    "pbx.ivr.public_holidays": 0,
    "pbx.acd.schema": 0,
    "pbx.dialer.schema": 0,
    "pbx.switchboard": 3,
    "pbx.registrar": 2,
    "pbx.trunk": 2,
    "pbx.ivr": 2,
    "pbx.acd": 2,
    "pbx.dialer": 2,
    "pbx.customers": 2,
    "pbx.customers.csvfile": 0,
    "pbx.cli_customers": 4,
    "pbx.cli_control": 4,
    "pbx.sip.transaction": 1,
    "pbx.sip.endpoint": 1,
    "pbx.sip.dialog": 1,
    "pbx.sip": 0,
    "pbx": 0,
    "media.engine": 3,
    "media.build_prompts": 3,
    "media.workers": 3,
    "media.session": 1,
    "media.monitor": 1,  # wires sessions together (sans-IO)
    "media": 0,
}
IMPURE = {"asyncio", "socket", "time", "sqlalchemy", "yaml", "threading", "selectors",
          "uvloop", "starlette", "uvicorn", "subprocess", "alembic"}


def layer_of(module: str) -> int:
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return LAYERS[best]


def modules() -> list[tuple[str, Path]]:
    out = []
    for package in ("pbx", "media"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic scripts belong to the storage adapter
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            out.append((name, path))
    return out


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: str(v))
def test_imports_point_downwards(module: str, path: Path) -> None:
    mine = layer_of(module)
    for target in imports(path):
        root = target.split(".")[0]
        if module.startswith("media") and root == "pbx":
            pytest.fail(f"{module}: media must not import pbx ({target})")
        if root in ("pbx", "media"):
            assert layer_of(target) <= mine, (
                f"{module} (L{mine}) imports {target} (L{layer_of(target)})"
            )
        elif mine <= 2:
            assert root not in IMPURE, f"{module} (L{mine}, pure) imports {target}"
