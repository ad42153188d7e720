"""SIP URIs and name-addr values (RFC 3261 §19.1, §20.10, §25.1) — L0, pure.

`SipUri.parse` accepts sip: and sips: URIs (`sip:user:password@host:port;params?headers`, IPv6
hosts in brackets); `NameAddr.parse` accepts both header forms, `"Name" <uri>;params` and the bare
`uri;params` form where the parameters belong to the header, not to the URI (§20.10). Equality
follows §19.1.4: scheme, user and password case-sensitive, host case-insensitive, a parameter
present on one side only matters for user, ttl, method, maddr and transport, and URI headers
must all match. Errors are `SipParseError` with a reason that says what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from pbx.errors import SipParseError

# Params that must match when present on either URI (RFC 3261 §19.1.4).
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def split_quoted(value: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes and angle brackets."""
    if sep not in value:
        return [value]
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def parse_params(text: str) -> dict[str, str | None]:
    """Parse `;a=b;c;d="x y"` (leading `;` optional) into an ordered dict, names lower-cased."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    for part in split_quoted(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, val = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise SipParseError(f"empty parameter name in {text!r}")
        params[name] = val.strip() if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def split_host_port(hostport: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` -> (host, port). IPv6 keeps no brackets."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {hostport!r}")
        host = hostport[1:end]
        rest = hostport[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise SipParseError(f"junk after IPv6 reference in {hostport!r}")
        return host, _port(rest[1:], hostport)
    host, colon, port = hostport.partition(":")
    if not host:
        raise SipParseError(f"empty host in {hostport!r}")
    if colon:
        return host, _port(port, hostport)
    return host, None


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SipParseError(f"bad port in {whole!r}")
    return int(text)


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def format_host_port(host: str, port: int | None) -> str:
    return format_host(host) if port is None else f"{format_host(host)}:{port}"


@dataclass(slots=True)
class SipUri:
    """A sip: or sips: URI. Mutable on purpose: a B2BUA builds outgoing URIs by copying."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipParseError(f"not a sip: or sips: URI: {text!r}")
        user: str | None = None
        password: str | None = None
        # §19.1.1/§25.1: userinfo ends at the first "@" (no part of a SIP URI may hold a raw
        # "@" but the separator), and it may itself hold ";", "?", "/" and ":" (RFC 4475
        # §3.1.1.2, §3.1.1.9), so it is cut off before parameters and headers are looked for.
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, pcolon, pw = userinfo.partition(":")
            password = pw if pcolon else None
        rest, _, headers = rest.partition("?")
        hostport, semi, params = rest.partition(";")
        host, port = split_host_port(hostport)
        return cls(
            host=host,
            user=user,
            password=password,
            port=port,
            scheme=scheme,
            params=parse_params(params) if semi else {},
            headers=headers,
        )

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(format_host_port(self.host, self.port))
        if self.params:
            out.append(format_params(self.params))
        if self.headers:
            out.append("?" + self.headers)
        return "".join(out)

    @property
    def transport(self) -> str:
        value = self.params.get("transport")
        return (value or ("tls" if self.scheme == "sips" else "udp")).lower()

    def copy(self) -> SipUri:
        return SipUri(
            self.host, self.user, self.password, self.port, self.scheme, dict(self.params),
            self.headers,
        )

    def equivalent(self, other: SipUri) -> bool:
        """URI comparison of RFC 3261 §19.1.4."""
        if self.scheme != other.scheme or self.port != other.port:
            return False
        if _unescape(self.user) != _unescape(other.user):
            return False
        if _unescape(self.password) != _unescape(other.password):
            return False
        if self.host.lower() != other.host.lower():
            return False
        mine = {k: (v.lower() if v is not None else None) for k, v in self.params.items()}
        theirs = {k: (v.lower() if v is not None else None) for k, v in other.params.items()}
        for name in _SIGNIFICANT_PARAMS:
            if mine.get(name) != theirs.get(name):
                return False
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        return _header_set(self.headers) == _header_set(other.headers)


def _unescape(value: str | None) -> str | None:
    return unquote(value) if value is not None and "%" in value else value


def _header_set(headers: str) -> frozenset[tuple[str, str]]:
    if not headers:
        return frozenset()
    pairs = []
    for item in headers.split("&"):
        name, _, val = item.partition("=")
        pairs.append((unquote(name).lower(), unquote(val)))
    return frozenset(pairs)


@dataclass(slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, a URI, header parameters.

    `uri` is a `SipUri` for sip:/sips:; other schemes (tel:, urn:) are kept verbatim in `raw_uri`.
    """

    uri: SipUri | None
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    raw_uri: str = ""

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if not text:
            raise SipParseError("empty name-addr")
        display: str | None = None
        lt = _find_laquot(text)
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError(f"missing '>' in {text[:60]!r}")
            display = _display_name(text[:lt])
            uri_text = text[lt + 1 : gt]
            if uri_text != uri_text.strip() or not uri_text:
                # §25.1: LAQUOT addr-spec RAQUOT, no LWS inside (RFC 4475 §3.1.2.14).
                raise SipParseError(f"spaces inside <> in {text[:60]!r}")
            rest = text[gt + 1 :].strip()
            if rest and not rest.startswith(";"):
                raise SipParseError(f"junk after '>' in {text[:60]!r}")
            params = parse_params(rest)
        else:
            # addr-spec form: parameters after the URI belong to the header (§20.10), and a
            # URI with headers (or a comma) must be in <> (RFC 4475 §3.1.2.13).
            uri_text, semi, ptext = text.partition(";")
            if "?" in uri_text or '"' in uri_text:
                raise SipParseError(f"a URI with '?' must be enclosed in <>: {text[:60]!r}")
            params = parse_params(ptext) if semi else {}
        uri_text = uri_text.strip()
        if _WHITESPACE.search(uri_text):
            raise SipParseError(f"spaces in the URI {uri_text[:60]!r}")
        scheme = uri_text.partition(":")[0].lower()
        if scheme in ("sip", "sips"):
            return cls(SipUri.parse(uri_text), display, params, uri_text)
        if ":" not in uri_text:
            raise SipParseError(f"URI without a scheme: {uri_text[:60]!r}")
        return cls(None, display, params, uri_text)

    def __str__(self) -> str:
        uri = str(self.uri) if self.uri is not None else self.raw_uri
        name = f'"{_escape_display(self.display_name)}" ' if self.display_name else ""
        return f"{name}<{uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        params = dict(self.params)
        params["tag"] = tag
        uri = self.uri.copy() if self.uri is not None else None
        return NameAddr(uri, self.display_name, params, self.raw_uri)


_WHITESPACE = re.compile(r"\s")
# RFC 3261 §25.1 separators: not allowed in an unquoted display name (RFC 4475 §3.1.2.15).
_SEPARATORS = frozenset('()<>@,;:\\"/[]?={}')


def _find_laquot(text: str) -> int:
    """Index of the "<" that opens a name-addr's URI, skipping a quoted display name."""
    if not text.startswith('"'):
        return text.find("<")
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # quoted-pair (§25.1): the next character is literal, even '"' or NUL
            continue
        if ch == '"':
            return text.find("<", i + 1)
        i += 1
    raise SipParseError(f"unterminated quoted string in {text[:60]!r}")  # RFC 4475 §3.1.2.6


def _display_name(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise SipParseError(f"junk after the quoted display name {text[:60]!r}")
        inner = text[1:-1]
        return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)
    if any(ch in _SEPARATORS for ch in text):
        raise SipParseError(f"display name {text[:40]!r} must be quoted")
    return text


def _escape_display(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')
