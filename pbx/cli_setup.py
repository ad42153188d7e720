"""`pbx init DIR` and `pbx schema` (L4): starting an installation, and editors' help.

Neither talks to a running PBX; both are for whoever runs the command on the machine.
``pbx init DIR`` writes the example call center's configuration (``DIR/pbx.yaml``, readable
only by its owner: it holds SIP passwords, freshly generated for every agent) and a copy of
the shipped prompts (``DIR/prompts``, to replace with your own recordings); it never
overwrites anything. ``pbx schema`` prints the configuration's JSON schema, for the YAML
language server (``# yaml-language-server: $schema=pbx-schema.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from pbx.config.loader import ConfigError, _read_yaml, read_config_text
from pbx.config.schema import PbxConfig
from pbx.starter import EXAMPLE_CONFIG, PROMPTS

SCHEMA_ID = "https://pbx.invalid/schema/pbx.yaml.json"  # a name, never fetched


def register(sub: Any) -> None:
    init = sub.add_parser(
        "init", help="write a starter configuration and the prompts into DIR (never overwrites)")
    init.add_argument("directory", metavar="DIR")
    init.set_defaults(handler=_init)
    schema = sub.add_parser(
        "schema", help="print the configuration's JSON schema (for editors' YAML support)")
    schema.set_defaults(handler=_schema)


def config_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of the configuration file."""
    schema = PbxConfig.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "pbx configuration (pbx.yaml)"}


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2, ensure_ascii=False))
    return 0


_PASSWORD = re.compile(r"""^(?P<key>\s*(?:-\s*)?password:\s*)(?P<value>"[^"]*"|'[^']*'|[^\s#]+)""")
_DATA_DIR = re.compile(r"^(?P<key>\s*data_dir:\s*)(?P<value>[^\s#]+)")


def starter_config(text: str, password: Any = None) -> str:
    """The example configuration `text` made an installation's own: ``pbx.data_dir`` is
    ``var`` and ``media.prompts_dir`` is ``prompts`` (both beside the file), and every agent
    has a new random SIP password (`password()` makes one; a published example password is
    the first one a scanner tries)."""
    make = password or (lambda: secrets.token_urlsafe(15))
    lines = text.splitlines(keepends=True)
    document = _read_yaml(text, "example")
    data = document.data
    for index in range(len(data.get("agents", ()))):
        line = document.lines.get(("agents", index, "password"))
        if line is not None:
            lines[line - 1] = _PASSWORD.sub(
                lambda m: f'{m["key"]}"{make()}"', lines[line - 1], count=1)
    line = document.lines.get(("pbx", "data_dir"))
    if line is not None:
        lines[line - 1] = _DATA_DIR.sub(lambda m: f"{m['key']}var", lines[line - 1], count=1)
    first_media_key = next(iter(data.get("media") or {}), None)
    line = document.lines.get(("media", first_media_key)) if first_media_key else None
    if line is not None and "prompts_dir" not in data["media"]:
        indent = re.match(r"\s*", lines[line - 1])
        pad = indent.group(0) if indent else "  "
        lines.insert(line - 1, f"{pad}prompts_dir: prompts          # beside this file; "
                               f"replace the WAVs with your own recordings\n")
    return "".join(lines)


def _init(args: argparse.Namespace) -> int:
    target = Path(args.directory)
    config_path, prompts_path = target / "pbx.yaml", target / "prompts"
    for path in (config_path, prompts_path):
        if path.exists() or path.is_symlink():
            print(f"pbx init: {path} exists; nothing written", file=sys.stderr)
            return 1
    text = starter_config(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    try:
        # checked where the shipped prompts are, before anything is written
        read_config_text(text, str(config_path), PROMPTS.parent)
    except ConfigError as exc:  # the shipped example itself is broken: a packaging bug
        print(f"pbx init: the starter configuration is invalid:\n{exc}", file=sys.stderr)
        return 1
    try:
        target.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never replace a file that appeared meanwhile; 0600: it holds passwords.
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        shutil.copytree(PROMPTS, prompts_path)
    except OSError as exc:
        print(f"pbx init: {exc.filename or target}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {config_path} (agents' SIP passwords generated; readable only by you) "
          f"and {prompts_path}\n"
          f"next: pbx check-config {config_path}\n"
          f"      pbx run --config {config_path}")
    return 0
