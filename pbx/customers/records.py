"""Customer records as the admin API and the import take them — pure (L2): validation with the
PBX's rules, merging into a stored record, the seed's digest, and who a campaign targets.

A record arrives as a JSON-shaped mapping (``customer_no``, ``name``, ``phones``, ``status``,
``language``, ``groups``, ``pinned_agents``, ``fields``; the columns of
`pbx.customers.csvfile`). `validate` checks every value against `CustomerRules` (the
configured statuses and agents, the home country for phone numbers) and returns a
`CustomerPatch` — the attributes the record gives, normalised — or the reason it is refused.
Phone numbers are normalised to E.164 exactly as the dial plan does (`pbx.trunk.dialplan`), so
``030 1234567``, ``+49 (0)30 1234567`` and ``0049301234567`` are one number.

`apply` merges a patch into the stored customer (None: a new one): attributes the patch does
not give stay as stored, ``fields`` keys it gives replace those keys (a None value removes the
key), extra groups (``--group``) are added. A new customer needs a name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pbx.config.schema import PbxConfig
from pbx.dialer.schema import CampaignConfig
from pbx.repositories import Customer
from pbx.trunk.dialplan import DEFAULT_COUNTRY_CODE, InvalidNumber, normalise_dialled

# As `pbx.ivr.schema.CustomerNo` and the dialer's field keys.
CUSTOMER_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FIELD_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
LANGUAGE = re.compile(r"^[a-z]{2}$")
MAX_NAME = 200
MAX_GROUP = 64
MAX_FIELD_VALUE = 2000
MAX_LIST = 20
KNOWN_KEYS = frozenset({"customer_no", "name", "phones", "status", "language", "groups",
                        "pinned_agents", "fields"})
_LIST_SEPARATORS = re.compile(r"[|;,]")


class RecordRefused(ValueError):
    """A record that cannot be stored; the message says which value and why."""


@dataclass(frozen=True, slots=True)
class CustomerRules:
    """What a value must be: `statuses` configured (``standard`` always), `agents` that
    exist (for pinning), `country_code` of the home country (for national numbers)."""

    statuses: frozenset[str]
    agents: frozenset[str]
    country_code: str = DEFAULT_COUNTRY_CODE

    @classmethod
    def of(cls, config: PbxConfig) -> CustomerRules:
        return cls(
            statuses=frozenset({"standard", *config.customer_statuses}),
            agents=frozenset(a.extension for a in config.agents),
            country_code=config.trunks[0].country_code if config.trunks
            else DEFAULT_COUNTRY_CODE,
        )


@dataclass(frozen=True, slots=True)
class CustomerPatch:
    """The attributes a record gives (None: not given, keep the stored one)."""

    customer_no: str
    name: str | None = None
    phone_numbers: tuple[str, ...] | None = None
    status: str | None = None
    language: str | None = None
    groups: tuple[str, ...] | None = None
    pinned_agents: tuple[str, ...] | None = None
    fields: Mapping[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an import did (or, dry, would do): customer numbers created, updated and left
    unchanged, and the refused rows (line, customer number, reason)."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    rejected: tuple[tuple[int, str, str], ...] = field(default_factory=tuple)


def phone_number(value: str, country_code: str) -> str:
    """`value` as E.164; raises `RecordRefused` for anything the dial plan would not dial
    as a full number (short codes, letters, too long)."""
    try:
        number = normalise_dialled(value, country_code).number
    except InvalidNumber:
        raise RecordRefused(f"{value!r} is not a phone number") from None
    if not number.startswith("+"):
        raise RecordRefused(f"{value!r} is not a full phone number (E.164, or national with 0)")
    return number


def validate(record: Mapping[str, Any], rules: CustomerRules, *,
             full: bool = False) -> CustomerPatch:
    """Check `record` (see the module docstring). `full`: every attribute not given takes its
    default (a PUT or a create), else it stays as stored. Raises `RecordRefused`."""
    unknown = sorted(set(record) - KNOWN_KEYS - {"line"})
    if unknown:
        raise RecordRefused(f"unknown attribute {unknown[0]!r} (known: "
                            f"{', '.join(sorted(KNOWN_KEYS))})")
    customer_no = _text(record, "customer_no")
    if not customer_no or not CUSTOMER_NO.match(customer_no):
        raise RecordRefused(f"customer_no {customer_no!r} is not a customer number (letters, "
                            "digits, '_', '.', '-'; at most 64)")
    name = _text(record, "name")
    if name is not None:
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            raise RecordRefused(f"name must be 1 to {MAX_NAME} characters")
    elif full:
        raise RecordRefused("name is required")
    phones = _list(record, "phones")
    if phones is not None:
        phones = tuple(dict.fromkeys(phone_number(p, rules.country_code) for p in phones))
    status = _text(record, "status")
    if status is not None and status not in rules.statuses:
        raise RecordRefused(f"status {status!r} is not configured (customer_statuses: "
                            f"{', '.join(sorted(rules.statuses))})")
    language = _text(record, "language")
    if language is not None:
        language = language.lower()
        if language and not LANGUAGE.match(language):
            raise RecordRefused(f"language {language!r} is not a language code (like de)")
    groups = _list(record, "groups")
    if groups is not None:
        for group in groups:
            if len(group) > MAX_GROUP or _LIST_SEPARATORS.search(group):
                raise RecordRefused(f"group {group!r} is longer than {MAX_GROUP} characters or "
                                    "holds '|', ';' or ','")
        groups = tuple(dict.fromkeys(groups))
    pinned = _list(record, "pinned_agents")
    if pinned is not None:
        for agent in pinned:
            if agent not in rules.agents:
                raise RecordRefused(f"pinned agent {agent!r} is not a configured agent")
        pinned = tuple(dict.fromkeys(pinned))
    fields = _fields(record)
    if full:
        return CustomerPatch(customer_no, name, phones or (), status or "standard",
                             language or "", groups or (), pinned or (),
                             {k: v for k, v in (fields or {}).items() if v is not None})
    return CustomerPatch(customer_no, name, phones, status, language, groups, pinned, fields)


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordRefused(f"{key} must be text, got {type(value).__name__}")
    return str(value).strip()


def _list(record: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise RecordRefused(f"{key} must be a list of text")
    items = tuple(v.strip() for v in value if v.strip())
    if len(items) > MAX_LIST:
        raise RecordRefused(f"{key}: at most {MAX_LIST} entries")
    return items


def _fields(record: Mapping[str, Any]) -> dict[str, str | None] | None:
    value = record.get("fields")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise RecordRefused("fields must be an object of key: text")
    out: dict[str, str | None] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not FIELD_KEY.match(key):
            raise RecordRefused(f"field key {key!r} is not letters, digits, '_' (at most 64)")
        if item is None:
            out[key] = None
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise RecordRefused(f"fields.{key} must be text")
        text = str(item)
        if len(text) > MAX_FIELD_VALUE:
            raise RecordRefused(f"fields.{key} is longer than {MAX_FIELD_VALUE} characters")
        out[key] = text
    return out


def apply(stored: Customer | None, patch: CustomerPatch,
          extra_groups: Sequence[str] = ()) -> Customer:
    """The customer after `patch` (see the module docstring). Raises `RecordRefused` for a
    new customer without a name."""
    if stored is None:
        if patch.name is None:
            raise RecordRefused("name is required for a new customer")
        stored = Customer(customer_no=patch.customer_no, name=patch.name)
    fields = dict(stored.fields)
    for key, value in (patch.fields or {}).items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    groups = patch.groups if patch.groups is not None else tuple(stored.groups)
    groups = tuple(dict.fromkeys((*groups, *extra_groups)))
    return Customer(
        customer_no=stored.customer_no,
        name=patch.name if patch.name is not None else stored.name,
        phone_numbers=patch.phone_numbers if patch.phone_numbers is not None
        else tuple(stored.phone_numbers),
        status=patch.status if patch.status is not None else stored.status,
        language=patch.language if patch.language is not None else stored.language,
        groups=groups,
        pinned_agents=patch.pinned_agents if patch.pinned_agents is not None
        else tuple(stored.pinned_agents),
        fields=fields,
    )


def replace(patch: CustomerPatch) -> Customer:
    """The customer a full record (``validate(..., full=True)``) describes."""
    return apply(None, patch)


def as_record(customer: Customer) -> dict[str, Any]:
    """A customer as the API and the export show it."""
    return {
        "customer_no": customer.customer_no,
        "name": customer.name,
        "phones": list(customer.phone_numbers),
        "status": customer.status,
        "language": customer.language,
        "groups": list(customer.groups),
        "pinned_agents": list(customer.pinned_agents),
        "fields": dict(customer.fields),
    }


def same(a: Customer, b: Customer) -> bool:
    """Equal as stored (tuples and dicts compared by value)."""
    return digest(a) == digest(b)


def digest(customer: Customer) -> str:
    """SHA-256 of the record's content: what the seed remembers of what it wrote."""
    content = [customer.customer_no, customer.name, list(customer.phone_numbers),
               customer.status, customer.language, list(customer.groups),
               list(customer.pinned_agents), sorted(customer.fields.items())]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def targets_nobody(campaigns: Iterable[CampaignConfig],
                   customers: Iterable[Customer]) -> list[str]:
    """Names of the campaigns whose target matches none of `customers`."""
    everyone = list(customers)
    return [c.name for c in campaigns if not any(c.target.matches(x) for x in everyone)]
