"""API tokens for scrapers and monitoring (L3): who may read the operations endpoints without
a desktop session.

The admin lists tokens under ``http.api_tokens`` (`pbx.config.schema.ApiTokenConfig`); the
token itself never sits in the configuration file. At start `load_api_tokens` turns each entry
into the SHA-256 of its token: given as such (``token_sha256``), or read from a file
(``token_file``: whitespace around it ignored — the same file Prometheus'
``authorization: credentials_file`` reads) or from an environment variable (``token_env``). A
file or variable that is missing or empty stops the start with a message naming the entry; a
token shorter than `MIN_TOKEN_CHARS` too (a guessable token is no token).

A request's bearer token is hashed once and compared with every configured digest in constant
time (`ApiTokens.match`), so neither the answer nor its timing says how close a guess was.
Tokens are random and long, so an unsalted SHA-256 is what protects them at rest (as session
tokens in the database).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pbx.config.schema import ApiScope, ApiTokenConfig, PbxConfig, format_loc
from pbx.cti.permissions import Principal

MIN_TOKEN_CHARS = 16


class ApiTokenError(Exception):
    """A configured token cannot be loaded; the message names the entry and the cause."""


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One loaded token: its name (for logs), digest, what it may read and as whom."""

    name: str
    digest: bytes
    scopes: frozenset[ApiScope]
    role: str

    @property
    def principal(self) -> Principal:
        """Whom form permissions see when this token reads CDRs: its role, no extension."""
        return Principal(extension="", role=self.role, groups=())


class ApiTokens:
    """The loaded tokens; `match` finds the one a request presents."""

    def __init__(self, tokens: Sequence[ApiToken] = ()) -> None:
        self._tokens = tuple(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def replace(self, tokens: ApiTokens) -> None:
        """A config reload: from now on `tokens` are the valid ones, for every route that
        shares this object (a removed token is refused at its next request)."""
        self._tokens = tokens._tokens

    def match(self, presented: str) -> ApiToken | None:
        """The token whose digest is that of `presented`, or None. Compares with all of them
        (no early exit)."""
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for token in self._tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found


def load_api_tokens(
    config: PbxConfig,
    environ: Mapping[str, str] | None = None,
    read_text: Callable[[Path], str] | None = None,
) -> ApiTokens:
    """Load every ``http.api_tokens`` entry (see the module docstring). Raises
    `ApiTokenError`."""
    env = os.environ if environ is None else environ
    reader = read_text or (lambda path: path.read_text())
    loaded = []
    for index, entry in enumerate(config.http.api_tokens):
        where = format_loc(("http", "api_tokens", index))
        loaded.append(ApiToken(
            name=entry.name,
            digest=_digest(entry, where, env, reader),
            scopes=frozenset(entry.scopes),
            role=entry.role,
        ))
    return ApiTokens(loaded)


def _digest(
    entry: ApiTokenConfig, where: str, env: Mapping[str, str], reader: Callable[[Path], str]
) -> bytes:
    if entry.token_sha256 is not None:
        return bytes.fromhex(entry.token_sha256)
    if entry.token_file is not None:
        path = Path(entry.token_file).expanduser()
        try:
            token = reader(path).strip()
        except OSError as exc:
            raise ApiTokenError(f"{where}.token_file: cannot read {path}: "
                                f"{exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ApiTokenError(f"{where}.token_file: {path} is not text") from None
        source = f"{where}.token_file: {path}"
    else:
        assert entry.token_env is not None
        token = env.get(entry.token_env, "").strip()
        source = f"{where}.token_env: ${entry.token_env}"
    if not token:
        raise ApiTokenError(f"{source} is empty or unset")
    if len(token) < MIN_TOKEN_CHARS:
        raise ApiTokenError(f"{source} holds a token of {len(token)} characters; use at least "
                            f"{MIN_TOKEN_CHARS} random ones (e.g. `openssl rand -hex 32`)")
    return hashlib.sha256(token.encode()).digest()
