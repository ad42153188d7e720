"""Reading and validating the YAML configuration file (L3).

Theory of operation: the text is *composed* into a YAML node tree first, which keeps the line of
every key and list item; the tree is indexed as ``key path -> line``, then constructed into plain
Python data and validated by `PbxConfig`. Each pydantic error is translated into a `ConfigIssue`
that names the file, the line (for a missing key, the line of the mapping that lacks it), the key
path (``agents[3].password``) and what was expected. All issues are collected; `ConfigError`
carries them and prints one per line, in file order.
"""

from __future__ import annotations

import difflib
import importlib
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from pbx.acd.schema import check_acd_config
from pbx.config import checks
from pbx.config.paths import absolute, resolve_paths
from pbx.config.schema import Expect, Loc, PbxConfig, format_loc
from pbx.dialer.schema import check_dialer_config
from pbx.errors import PbxError
from pbx.ivr.hooks import load_hooks
from pbx.ivr.validation import hook_specs, validate_customers, validate_dids, validate_flows

# Keys whose values are never echoed in an error message.
_SECRET_KEYS = frozenset({"password"})


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file. `line` is 1-based, None when no line applies."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(PbxError):
    """The configuration is invalid; `issues` lists every problem found, in file order."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda issue: (issue.line or 0, issue.path))
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


# --- the YAML document with its line index -----------------------------------------------------


@dataclass
class _Document:
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest ancestor that the file contains."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # YAML reads 2025-02-30 as a date and raises ValueError constructing it; kept as text, it
    # reaches the schema, which says what is wrong with it at its line.
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


class _SafeLoader(yaml.SafeLoader):
    pass


class _CSafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


for _loader in (_SafeLoader, _CSafeLoader):
    _loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)

# libyaml's loader composes the same node tree with the same marks, several times faster; its
# syntax error messages are terser, so a file it rejects is read again by the Python loader.
_FastLoader: type[yaml.SafeLoader] = (
    _CSafeLoader if hasattr(yaml, "CSafeLoader") else _SafeLoader
)


def _read_yaml(text: str, file: str) -> _Document:
    if _FastLoader is not _SafeLoader:
        try:
            return _read_with(_FastLoader, text, file)
        except ConfigError:
            pass
    return _read_with(_SafeLoader, text, file)


def _read_with(loader_class: type[yaml.SafeLoader], text: str, file: str) -> _Document:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        document = _Document(data=None)
        if node is not None:
            _index(node, (), document, loader, file)
            document.data = loader.construct_document(node)
        return document
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_issue(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()


def _syntax_issue(exc: yaml.MarkedYAMLError, file: str) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML syntax error: {exc.problem or exc.context or 'invalid document'}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if "'\\t'" in message:
        message += "; indent with spaces, not tabs"
    elif "<block" in message:
        message += "; check the indentation"
    return ConfigIssue(file, mark.line + 1 if mark is not None else None, "", message)


def _index(
    node: yaml.Node, loc: Loc, document: _Document, loader: yaml.SafeLoader, file: str
) -> None:
    # Record the line of every key and list item; flag duplicate keys, which YAML would
    # otherwise resolve silently in favour of the last one.
    document.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*loc, index), document, loader, file)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            key = _key_of(key_node, loader)
            line = key_node.start_mark.line + 1
            if key in seen:
                document.issues.append(
                    ConfigIssue(
                        file,
                        line,
                        format_loc((*loc, key)),
                        f"duplicate key {key!r} (first at line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            document.lines[(*loc, key)] = line
            _index(value_node, (*loc, key), document, loader, file)


def _key_of(node: yaml.Node, loader: yaml.SafeLoader) -> str | int:
    if node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`, resolved by the constructor
        return "<<"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_object(node)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return value
    return str(node.value)


# --- what was expected at a key path -----------------------------------------------------------


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    # Strip Annotated[...] (keeping its metadata) and Optional[...] layers.
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            args = get_args(annotation)
            annotation, metadata = args[0], [*metadata, *args[1:]]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation, metadata
            annotation = members[0]
        else:
            return annotation, metadata


def _model_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    # Fields by the key the file uses (the alias when there is one).
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _annotation_at(loc: Loc) -> tuple[Any, list[Any]] | None:
    annotation: Any = PbxConfig
    metadata: list[Any] = []
    for part in loc:
        annotation, metadata = _unwrap(annotation, metadata)
        origin, args = get_origin(annotation), get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = _model_fields(annotation).get(str(part))
            if info is None:
                return None
            annotation, metadata = info.annotation, list(info.metadata)
        elif origin in (list, tuple) and isinstance(part, int):
            annotation, metadata = args[0], []
        elif origin is dict:
            annotation, metadata = (args[0] if part == "[key]" else args[1]), []
        else:
            return None
    return _unwrap(annotation, metadata)


def _expected_at(loc: Loc) -> str | None:
    found = _annotation_at(loc)
    return None if found is None else _describe(*found)


def _describe(annotation: Any, metadata: list[Any]) -> str:
    flat: list[Any] = []
    for item in metadata:
        flat.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    for item in flat:
        if isinstance(item, Expect):
            return item.text
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(str(arg) for arg in get_args(annotation))
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + _bounds(flat)
    if annotation is float:
        return "a number" + _bounds(flat)
    if annotation is str:
        return "a non-empty string" if _bound(flat, annotated_types.MinLen) else "a string"
    if origin in (list, tuple):
        return "a list"
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "a mapping"
    return str(annotation)


def _bound(metadata: list[Any], kind: type[Any]) -> Any:
    return next((item for item in metadata if isinstance(item, kind)), None)


def _bounds(metadata: list[Any]) -> str:
    low = _bound(metadata, annotated_types.Ge)
    high = _bound(metadata, annotated_types.Le)
    if low is not None and high is not None:
        return f" from {low.ge} to {high.le}"
    if low is not None:
        return f" of at least {low.ge}"
    if high is not None:
        return f" of at most {high.le}"
    return ""


# --- pydantic errors -> issues -----------------------------------------------------------------

_RANGE_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})
_LENGTH_ERRORS = frozenset({"string_too_short", "string_too_long", "too_short", "too_long"})


def _show(value: Any, secret: bool) -> str:
    if secret:
        return "the given value"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _message(error: ErrorDetails, loc: Loc) -> str:
    kind, value = error["type"], error.get("input")
    expected = _expected_at(loc) or "another value"
    secret = bool(loc) and loc[-1] in _SECRET_KEYS
    shown = _show(value, secret)
    if kind == "missing":
        return f"field required ({expected})"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "literal_error":
        return f"{shown} is not {expected}"
    if kind == "config_rule":
        return error["msg"]
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind in _RANGE_ERRORS:
        return f"{shown} is out of range (expected {expected})"
    if kind in _LENGTH_ERRORS:
        return f"{'too short' if 'short' in kind else 'too long'} (expected {expected})"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads 1001 (and 0123, as octal!) as a number; the fix is quoting.
        quoted = "quotes" if secret else f"quotes: '{value}'"
        return f"expected {expected}, got {'a number' if secret else shown}; write it in {quoted}"
    return f"expected {expected}, got {shown}"


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    found = _annotation_at(loc[:-1])
    model = found[0] if found is not None else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"unknown key {key!r}"
    known = sorted(_model_fields(model))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r} (known keys: {', '.join(known)})"


def _error_locs(errors: list[ErrorDetails]) -> list[tuple[Loc, ErrorDetails]]:
    # Expand section rule errors into one entry per violation; drop the "[key]" marker pydantic
    # adds for mapping keys; drop length errors that only echo failures of the list's items.
    out: list[tuple[Loc, ErrorDetails]] = []
    for error in errors:
        loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
        if error["type"] == "config_rules":
            for sub, message in error.get("ctx", {}).get("violations", ()):
                out.append(((*loc, *sub), {**error, "type": "config_rule", "msg": message}))
        else:
            out.append((loc, error))
    failed = [loc for loc, error in out if error["type"] not in _LENGTH_ERRORS]
    return [
        (loc, error)
        for loc, error in out
        if error["type"] not in _LENGTH_ERRORS
        or not any(len(other) > len(loc) and other[: len(loc)] == loc for other in failed)
    ]


def _issues_from(exc: ValidationError, document: _Document, file: str,
                 prefix: Loc = ()) -> list[ConfigIssue]:
    issues = []
    for inner, error in _error_locs(exc.errors(include_url=False)):
        loc = (*prefix, *inner)
        message = _message(error, loc)
        issues.append(ConfigIssue(file, document.line_of(loc), format_loc(loc), message))
    return issues


# --- public API --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A valid configuration and the warnings about it (valid, probably not meant)."""

    config: PbxConfig
    warnings: tuple[ConfigIssue, ...] = ()


def parse_config(text: str, file: str = "<string>", base_dir: Path | None = None) -> PbxConfig:
    """Validate the YAML `text`; `file` is the name error messages use.

    With `base_dir` (the directory the file is in), relative paths in the result are made
    absolute against it (`pbx.config.paths`); without, they are left as written and the
    prompts are looked for relative to the current directory.
    Raises `ConfigError` listing every problem found.
    """
    return read_config_text(text, file, base_dir).config


def read_config_text(text: str, file: str = "<string>",
                     base_dir: Path | None = None) -> LoadedConfig:
    """`parse_config`, with the warnings."""
    document = _read_yaml(text, file)
    if not isinstance(document.data, dict):
        got = "an empty file" if document.data is None else _show(document.data, False)
        expected = "a mapping with at least the keys sip and agents"
        line = document.line_of(()) or 1
        raise ConfigError([ConfigIssue(file, line, "", f"expected {expected}, got {got}")])
    issues = list(document.issues)
    config: PbxConfig | None = None
    try:
        config = PbxConfig.model_validate(document.data)
    except ValidationError as exc:
        issues += _issues_from(exc, document, file)
    if issues or config is None:
        raise ConfigError(issues)
    resolved = resolve_paths(config, base_dir or Path.cwd())
    issues = [
        ConfigIssue(file, document.line_of(loc), format_loc(loc), message)
        for loc, message in cross_references(resolved)
    ]
    if issues:
        raise ConfigError(issues)
    warned = sorted(
        (ConfigIssue(file, document.line_of(loc), format_loc(loc), f"warning: {message}")
         for loc, message in checks.warnings(config)),
        key=lambda issue: (issue.line or 0, issue.path),
    )
    return LoadedConfig(resolved if base_dir is not None else config, tuple(warned))


def available_prompts(directory: Path) -> set[str] | None:
    """Prompt names ("de/greeting") under `directory`, or None when it does not exist."""
    if not directory.is_dir():
        return None
    return {str(p.relative_to(directory).with_suffix("")) for p in directory.rglob("*.wav")}


def cross_references(config: PbxConfig) -> list[tuple[Loc, str]]:
    """Checks that span sections: flows' prompts, queues, agents and hooks; DIDs' targets;
    customers' pinned agents; the prompts of hold programs, queue announcements and
    campaigns. `config`'s paths must be resolved (`pbx.config.paths.resolve_paths`)."""
    prompts_dir = Path(config.media.prompts_path)
    available = available_prompts(prompts_dir)
    agents = {a.extension for a in config.agents}
    queues = {queue.name for queue in config.effective_queues()}
    _, hook_errors = load_hooks(hook_specs(config.flows), importlib.import_module)
    violations: list[tuple[Loc, str]] = []
    if available is None:
        violations.append((("media", "prompts_dir"),
                           f"the prompts directory {prompts_dir} does not exist"))
    violations += validate_flows(config.flows, available, queues, agents, hook_errors)
    violations += validate_dids(config.dids, config.flows, queues, agents)
    violations += validate_customers(config.customers, agents)
    violations += check_acd_config(config.queues, config.customer_statuses, agents)
    violations += check_dialer_config(config.campaigns, queues, None, set(config.forms),
                                      {t.name for t in config.trunks})
    violations += checks.hold_program_problems(config)
    if available is not None:
        violations += checks.prompt_problems(config, available)
    violations += consent_prompt_errors(config, available)
    return violations


def consent_prompt_errors(config: PbxConfig, prompts: set[str] | None) -> list[tuple[Loc, str]]:
    """Recording consent announcements missing from the prompts directory (``{lang}`` in
    every language the flows speak)."""
    if prompts is None:
        return []
    languages = sorted({lang for flow in config.flows.values() for lang in flow.all_languages}
                       or {"de"})
    out: list[tuple[Loc, str]] = []
    wanted: list[tuple[Loc, str | None]] = []
    for i, queue in enumerate(config.queues):
        wanted.append((("queues", i, "recording_consent_prompt"), queue.recording_consent_prompt))
    for i, campaign in enumerate(config.campaigns):
        wanted.append((("campaigns", i, "recording_consent_prompt"),
                       campaign.recording_consent_prompt))
    for loc, prompt in wanted:
        if prompt is not None:
            names = {prompt.replace("{lang}", lang) for lang in languages}
            missing = sorted(name for name in names if name not in prompts)
            if missing:
                out.append((loc, f"no prompt {', '.join(missing)} in the prompts directory"))
    return out


def load_config(path: str | Path) -> PbxConfig:
    """Read and validate the configuration file at `path`; relative paths in it are made
    absolute against the file's directory.

    Raises `ConfigError` (every problem, each with file, line and key path) when the file cannot
    be read, is not valid YAML, or does not describe a valid configuration.
    """
    return read_config(path).config


def read_config(path: str | Path) -> LoadedConfig:
    """`load_config`, with the warnings (for `pbx check-config` and `pbx run` to print)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, None, "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(file, None, "", f"not UTF-8 text: {exc.reason}")]) from None
    return read_config_text(text, file, Path(path).parent)


def apply_overrides(
    config: PbxConfig,
    *,
    sip_port: int | None = None,
    http_port: int | None = None,
    database_url: str | None = None,
    data_dir: str | None = None,
    log_level: str | None = None,
    log_format: str | None = None,
) -> PbxConfig:
    """`config` with command-line overrides applied and validated again.

    `sip_port` replaces the port of every SIP listen address. Raises `ConfigError` (file
    ``command line``) when an override is invalid.
    """
    # Only the sections a flag touches are dumped and validated again: a full dump and
    # re-validation would round-trip every flow and queue for nothing.
    changes: dict[str, dict[str, Any]] = {}

    def section(name: str) -> dict[str, Any]:
        if name not in changes:
            changes[name] = getattr(config, name).model_dump(by_alias=True)
        return changes[name]

    if sip_port is not None:
        sip = section("sip")
        sip["listen"] = [{**entry, "port": sip_port} for entry in sip["listen"]]
    if http_port is not None:
        section("http")["port"] = http_port
    if database_url is not None:
        section("database")["url"] = database_url
    if data_dir is not None:  # the command line's paths are the shell's
        section("pbx")["data_dir"] = absolute(data_dir, Path.cwd())
    if log_level is not None:
        section("logging")["level"] = log_level
    if log_format is not None:
        section("logging")["format"] = log_format
    if not changes:
        return config
    updated: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    for name, data in changes.items():
        try:
            updated[name] = type(getattr(config, name)).model_validate(data)
        except ValidationError as exc:
            issues += _issues_from(exc, _Document(data=changes), "command line", (name,))
    if issues:
        raise ConfigError(issues)
    result = config.model_copy(update=updated)
    try:
        # The whole-file checks again (e.g. the HTTP port against the SIP TCP ports).
        PbxConfig.model_validate(result.__dict__ | {})
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc, _Document(data=changes), "command line")) from None
    return result
