"""What a config reload changes, and what it cannot change live (pure; used by `pbx.reload`).

`live_config(old, new)` is the configuration a reload applies: `new`, except what a running
PBX cannot take over without a restart (`RESTART_SECTIONS`: sockets, database, data directory,
media engine, SIP stack, trunks; `RESTART_KEYS`: the HTTP socket and perimeter, the desk's
login limits), which stays as it is; `needs_restart(old, new)` names the keys that differ there
(``sip.listen``, ``http.port`` …). `config_changes(old, new)` says what changed, per section,
as names only — a password is reported as ``1002 (password)``, never shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from pbx.config.schema import PbxConfig

# The sections a running PBX cannot change: listening sockets and addresses, the database,
# the data directory, the media engine's ports and codecs, the SIP stack and its security,
# logging, the trunks (their registrations and the callers they admit).
RESTART_SECTIONS = ("pbx", "sip", "registrar", "security", "database", "logging", "media",
                    "trunks")
# Keys of live sections that still need a restart: the HTTP socket and perimeter (all but the
# API tokens), the desk's login limits and hash cost (set up once), and the CSRF header name the
# open desktops learnt at login.
RESTART_KEYS = {"http": ("host", "port", "trusted_proxies", "trusted_networks", "max_body_bytes"),
                "cti": ("csrf_header", "password_cost", "max_login_failures",
                        "login_failure_window_s", "login_ban_s", "max_account_failures",
                        "account_failure_window_s", "account_lock_s")}

T = TypeVar("T")


def live_config(old: PbxConfig, new: PbxConfig) -> PbxConfig:
    """`new` with the sections of `RESTART_SECTIONS` and the keys of `RESTART_KEYS` taken
    from `old`."""
    update: dict[str, Any] = {name: getattr(old, name) for name in RESTART_SECTIONS}
    for name, keys in RESTART_KEYS.items():
        before = getattr(old, name)
        update[name] = getattr(new, name).model_copy(
            update={key: getattr(before, key) for key in keys})
    return new.model_copy(update=update)


def needs_restart(old: PbxConfig, new: PbxConfig) -> list[str]:
    """The keys of `RESTART_SECTIONS` whose values differ (``sip.listen``, ``trunks`` …)."""
    found: list[str] = []
    for name in RESTART_SECTIONS:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if isinstance(before, BaseModel) and isinstance(after, BaseModel):
            a, b = before.model_dump(), after.model_dump()
            keys = sorted(set(a) | set(b))
            found += [f"{name}.{key}" for key in keys if a.get(key) != b.get(key)]
        else:
            found.append(name)
    for name, fixed in RESTART_KEYS.items():
        before, after = getattr(old, name), getattr(new, name)
        found += [f"{name}.{key}" for key in fixed if getattr(before, key) != getattr(after, key)]
    return found


def _by(items: Iterable[T], key: Callable[[T], str]) -> dict[str, T]:
    return {key(item): item for item in items}


def _compare(before: Mapping[str, Any], after: Mapping[str, Any],
             describe: Callable[[Any, Any], str] | None = None) -> dict[str, list[str]]:
    added = sorted(k for k in after if k not in before)
    removed = sorted(k for k in before if k not in after)
    changed = sorted(
        describe(before[k], after[k]) if describe else k
        for k in after if k in before and before[k] != after[k]
    )
    return {kind: names for kind, names in
            (("added", added), ("removed", removed), ("changed", changed)) if names}


def _agent_change(before: Any, after: Any) -> str:
    a, b = before.model_dump(), after.model_dump()
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"{after.extension} ({', '.join(keys)})"


def _holidays(config: PbxConfig) -> dict[str, tuple[str, ...]]:
    # a calendar as its country, subdivision and own dates: what the file says
    return {f"{flow}/{name}": (schedule.holidays.country or "",
                               schedule.holidays.subdivision or "", *schedule.holidays.dates)
            for flow, spec in config.flows.items()
            for name, schedule in spec.schedules.items()}


def config_changes(old: PbxConfig, new: PbxConfig) -> dict[str, dict[str, list[str]]]:
    """Per section, the names added, removed and changed (sections without change left out)."""
    sections: dict[str, dict[str, list[str]]] = {
        "agents": _compare(_by(old.agents, lambda a: a.extension),
                           _by(new.agents, lambda a: a.extension), _agent_change),
        "queues": _compare(_by(old.effective_queues(), lambda q: q.name),
                           _by(new.effective_queues(), lambda q: q.name)),
        "flows": _compare(old.flows, new.flows),
        "holidays": _compare(_holidays(old), _holidays(new)),
        "dids": _compare(_by(old.dids, lambda d: d.number), _by(new.dids, lambda d: d.number)),
        "forms": _compare(old.forms, new.forms),
        "customers": _compare(_by(old.customers, lambda c: c.customer_no),
                              _by(new.customers, lambda c: c.customer_no)),
        "campaigns": _compare(_by(old.campaigns, lambda c: c.name),
                              _by(new.campaigns, lambda c: c.name)),
        "hold_programs": _compare(old.hold_programs, new.hold_programs),
        "customer_statuses": _compare(old.customer_statuses, new.customer_statuses),
        "cti": _compare(old.cti.model_dump(), new.cti.model_dump()),
        "api_tokens": _compare(_by(old.http.api_tokens, lambda t: t.name),
                               _by(new.http.api_tokens, lambda t: t.name)),
        "dnc": _compare(dict.fromkeys(old.dnc.numbers, ""), dict.fromkeys(new.dnc.numbers, "")),
    }
    if old.dial_plan != new.dial_plan:
        sections["dial_plan"] = {"changed": ["dial_plan"]}
    return {name: found for name, found in sections.items() if found}
