"""Clocks and identifier generators injected into the sans-IO cores (L0).

The cores never read time or randomness themselves: they get `now` as an argument and ids from an
`IdGenerator`. Production wires `SystemIds` (os.urandom); tests wire `CountingIds` so every tag,
branch and nonce in a fixture is predictable.
"""

from __future__ import annotations

import os
from typing import Protocol

BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7


class IdGenerator(Protocol):
    """Source of random identifiers (tags, branches, Call-IDs, nonce secrets)."""

    def token(self, nbytes: int = 8) -> str:
        """A random token of `nbytes` bytes of entropy, URL-safe hex."""
        ...

    def secret(self, nbytes: int = 32) -> bytes: ...


class SystemIds:
    """Identifiers from the operating system's CSPRNG."""

    def token(self, nbytes: int = 8) -> str:
        return os.urandom(nbytes).hex()

    def secret(self, nbytes: int = 32) -> bytes:
        return os.urandom(nbytes)


class CountingIds:
    """Deterministic identifiers for tests: id1, id2, …"""

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._n = 0

    def token(self, nbytes: int = 8) -> str:
        self._n += 1
        return f"{self._prefix}{self._n}"

    def secret(self, nbytes: int = 32) -> bytes:
        self._n += 1
        return f"{self._prefix}{self._n}".encode().ljust(nbytes, b"\0")


def new_branch(ids: IdGenerator) -> str:
    """A Via branch with the RFC 3261 magic cookie."""
    return BRANCH_MAGIC + ids.token(8)
