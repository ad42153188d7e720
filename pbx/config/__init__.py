"""The PBX configuration: typed models (`schema`, L0) and the YAML loader (`loader`, L3).

``load_config(path)`` returns a validated `PbxConfig` or raises `ConfigError`, whose issues name
the file, the line and the key path of every problem. The loader's names are imported lazily,
so that pure layers importing `pbx.config.schema` never pull in yaml.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pbx.config.schema import (
    AgentConfig,
    DatabaseConfig,
    GeneralConfig,
    HttpConfig,
    ListenConfig,
    LoggingConfig,
    MediaConfig,
    PbxConfig,
    RegistrarConfig,
    SecurityConfig,
    SipConfig,
    TrunkConfig,
    digest_ha1,
    redact_url,
    summarize,
)

if TYPE_CHECKING:
    from pbx.config.loader import (
        ConfigError,
        ConfigIssue,
        apply_overrides,
        load_config,
        parse_config,
    )

_LOADER_NAMES = frozenset(
    {"ConfigError", "ConfigIssue", "apply_overrides", "load_config", "parse_config"}
)


def __getattr__(name: str) -> Any:
    if name in _LOADER_NAMES:
        return getattr(importlib.import_module("pbx.config.loader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AgentConfig",
    "ConfigError",
    "ConfigIssue",
    "DatabaseConfig",
    "GeneralConfig",
    "HttpConfig",
    "ListenConfig",
    "LoggingConfig",
    "MediaConfig",
    "PbxConfig",
    "RegistrarConfig",
    "SecurityConfig",
    "SipConfig",
    "TrunkConfig",
    "apply_overrides",
    "digest_ha1",
    "load_config",
    "parse_config",
    "redact_url",
    "summarize",
]
