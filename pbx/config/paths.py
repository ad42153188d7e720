"""Where the configuration's relative paths point (L3): at the configuration file's directory.

A configuration names files and directories: ``pbx.data_dir`` (database, nonce key,
recordings), ``media.prompts_dir``, a SQLite ``database.url``, ``http.api_tokens[].token_file``.
A relative one is taken relative to the directory of the file that names it, never to the
shell's current directory, so ``pbx run --config /etc/pbx/pbx.yaml`` and
``pbx check-config /etc/pbx/pbx.yaml`` find the same files from anywhere (the rule nginx and
systemd follow for their own files). Paths given on the command line (``--data-dir``,
``--db``) are the shell's and stay relative to its directory. ``~`` is expanded.
"""

from __future__ import annotations

import os
from pathlib import Path

from pbx.config.schema import PbxConfig

_SQLITE = "sqlite:///"
_MEMORY = ("", ":memory:")


def absolute(path: str, base: Path) -> str:
    """`path` (``~`` expanded) if absolute, else `base` / `path`; as text."""
    expanded = Path(path).expanduser()
    return os.path.normpath(expanded if expanded.is_absolute() else base / expanded)


def sqlite_url(url: str, base: Path) -> str:
    """A ``sqlite:///relative/file`` URL made absolute against `base`; any other URL (an
    absolute file, memory, PostgreSQL, the ``{data_dir}`` placeholder) unchanged."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return url
    file, query_sep, query = rest.partition("?")
    if file in _MEMORY or file.startswith(("/", "{data_dir}")):
        return url
    return f"{scheme}:///{absolute(file, base)}{query_sep}{query}"


def resolve_paths(config: PbxConfig, base: Path) -> PbxConfig:
    """`config` with every relative path made absolute against `base` (the configuration
    file's directory), and ``media.prompts_dir`` set (unset: the prompts shipped with the
    PBX). The result validates exactly as `config` did: only path strings change."""
    base = base.resolve()
    media = config.media.model_copy(
        update={"prompts_dir": absolute(config.media.prompts_path, base)})
    general = config.pbx.model_copy(update={"data_dir": absolute(config.pbx.data_dir, base)})
    database = config.database
    if database.url is not None:
        database = database.model_copy(update={"url": sqlite_url(database.url, base)})
    tokens = tuple(
        token.model_copy(update={"token_file": absolute(token.token_file, base)})
        if token.token_file is not None else token
        for token in config.http.api_tokens
    )
    http = config.http.model_copy(update={"api_tokens": tokens})
    return config.model_copy(
        update={"pbx": general, "media": media, "database": database, "http": http})
