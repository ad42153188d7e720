"""The registrar's location table: bindings per address of record, in memory — L2, pure.

The table is the source of truth while the PBX runs; every change is also handed to the caller
as a `changes` mapping so the adapter can write it behind to storage (`LocationStore`), and on
start the table is filled from what storage kept. Times are wall-clock seconds (bindings are
stored and must mean the same after a restart).
"""

from __future__ import annotations

from collections.abc import Iterable

from pbx.repositories import Binding
from pbx.sip.uri import SipUri


class LocationTable:
    """AOR -> bindings, with expiry, and which source addresses phones registered from."""

    def __init__(self) -> None:
        self._by_aor: dict[str, list[Binding]] = {}
        # (host, port) a REGISTER came from -> how many bindings it holds: lets the call side
        # tell, in O(1) per INVITE, a source where a phone lives from one that has none.
        self._sources: dict[tuple[str, int], int] = {}

    def load(self, bindings: Iterable[Binding], now: float) -> int:
        count = 0
        for binding in bindings:
            if binding.expires_at > now:
                self._by_aor.setdefault(binding.aor, []).append(binding)
                self._count_sources((binding,), 1)
                count += 1
        return count

    def current(self, aor: str, now: float) -> list[Binding]:
        return [b for b in self._by_aor.get(aor, ()) if b.expires_at > now]

    def replace(self, aor: str, bindings: list[Binding]) -> None:
        self._count_sources(self._by_aor.get(aor, ()), -1)
        if bindings:
            self._by_aor[aor] = bindings
            self._count_sources(bindings, 1)
        else:
            self._by_aor.pop(aor, None)

    def has_source(self, host: str, port: int) -> bool:
        """Whether some binding was registered from `host`:`port` (expired ones included
        until `expire` drops them)."""
        return (host, port) in self._sources

    def _count_sources(self, bindings: Iterable[Binding], delta: int) -> None:
        sources = self._sources
        for b in bindings:
            key = (b.source_host, b.source_port)
            count = sources.get(key, 0) + delta
            if count > 0:
                sources[key] = count
            else:
                sources.pop(key, None)

    def expire(self, now: float) -> dict[str, tuple[Binding, ...]]:
        """Drop expired bindings; returns the AORs that changed with what is left."""
        changed: dict[str, tuple[Binding, ...]] = {}
        for aor, bindings in list(self._by_aor.items()):
            alive = [b for b in bindings if b.expires_at > now]
            if len(alive) != len(bindings):
                changed[aor] = tuple(alive)
                self.replace(aor, alive)
        return changed

    def aors(self) -> list[str]:
        return list(self._by_aor)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_aor.values())


def same_contact(a: Binding, contact_uri: SipUri, instance_id: str, reg_id: int) -> bool:
    """Whether a REGISTER's contact updates binding `a` (RFC 3261 §10.3 step 7, RFC 5626 §6)."""
    if instance_id and a.instance_id:
        return a.instance_id == instance_id and a.reg_id == reg_id
    try:
        return SipUri.parse(a.contact).equivalent(contact_uri)
    except ValueError:
        return a.contact == str(contact_uri)
