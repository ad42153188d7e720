"""SIP requests and responses: headers, Via, CSeq and serialization (RFC 3261 §7, §20) — L0.

Headers are kept as an ordered list of `(key, name, value)` triples: `key` is the lower-case long
form used for look-ups (compact forms are expanded by the parser), `name` is how the header is
written on the wire. Values are stored raw and parsed on demand (`vias`, `from_addr`, `cseq`…),
because most messages a registrar sees are answered after reading five headers out of fifteen.
`Content-Length` is never stored: serialization writes it from the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pbx.errors import SipParseError
from pbx.sip.uri import (
    NameAddr,
    SipUri,
    format_host_port,
    format_params,
    parse_params,
    split_host_port,
)

SIP_VERSION = "SIP/2.0"

# The methods SIP defines (RFC 3261 §7.1 and the extensions registered with IANA). Anything
# else is unknown to us: the endpoint answers 501 (§21.5.2); a known method a part of the PBX
# does not serve gets 405 with Allow from that part (§8.2.1). Methods are case-sensitive.
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)

# RFC 3261 §7.3.3 and §20: compact forms.
COMPACT_FORMS = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "u": "allow-events",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    "y": "identity",
}

_CANONICAL = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "p-asserted-identity": "P-Asserted-Identity",
    "p-preferred-identity": "P-Preferred-Identity",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

# Headers whose comma-separated values are separate entries (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset(
    {
        "via",
        "route",
        "record-route",
        "contact",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "path",
    }
)

REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


_KEYS: dict[str, str] = {}


def header_key(name: str) -> str:
    """The look-up key of a header name: lower case, compact forms expanded."""
    key = _KEYS.get(name)
    if key is None:
        lowered = name.lower()
        key = COMPACT_FORMS.get(lowered, lowered)
        if len(_KEYS) < 4096:  # names come from peers: bound the cache
            _KEYS[name] = key
    return key


def canonical_name(key: str) -> str:
    name = _CANONICAL.get(key)
    if name is None:
        name = "-".join(part.capitalize() for part in key.split("-"))
        _CANONICAL[key] = name
    return name


class Headers:
    """Ordered, multi-valued SIP headers with case-insensitive, compact-aware look-up."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str, str]] | None = None) -> None:
        self._items: list[tuple[str, str, str]] = items if items is not None else []

    def add(self, name: str, value: str) -> None:
        key = header_key(name)
        self._items.append((key, canonical_name(key) if name.islower() else name, value))

    def add_first(self, name: str, value: str) -> None:
        key = header_key(name)
        self._items.insert(0, (key, canonical_name(key) if name.islower() else name, value))

    def get(self, name: str) -> str | None:
        key = header_key(name)
        for k, _, v in self._items:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        key = header_key(name)
        return [v for k, _, v in self._items if k == key]

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` with one value, at the position of the first."""
        key = header_key(name)
        for i, (k, n, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (k, n, value)
                self._items[i + 1 :] = [t for t in self._items[i + 1 :] if t[0] != key]
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = header_key(name)
        self._items = [t for t in self._items if t[0] != key]

    def replace_first(self, name: str, value: str) -> None:
        key = header_key(name)
        for i, (k, n, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (k, n, value)
                return
        self.add(name, value)

    def remove_first(self, name: str) -> None:
        key = header_key(name)
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                del self._items[i]
                return

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(k == key for k, _, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._items:
            yield name, value

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        return Headers(list(self._items))


_VIA_PROTOCOL = re.compile(r"\s*([^/\s]+)\s*/\s*([^/\s]+)\s*/\s*([^/\s;]+)(?:\s+(.*)|\s*$)",
                           re.DOTALL)


@dataclass(slots=True)
class Via:
    """One Via entry (RFC 3261 §20.42, RFC 3581 rport)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        # §7.3.1/§20.42: LWS is allowed around the slashes of sent-protocol and around ";"
        # and "=" (RFC 4475 §3.1.1.1 folds a Via in the middle of "SIP / 2.0 / UDP").
        match = _VIA_PROTOCOL.match(text)
        if match is None:
            raise SipParseError(f"bad Via protocol {text.strip()[:30]!r}")
        name, version, transport, rest = match.groups()
        if name.upper() != "SIP":
            raise SipParseError(f"bad Via protocol {name[:12]!r}")
        if version != "2.0":
            raise SipParseError(f"bad Via version {version[:12]!r}")
        rest = (rest or "").strip()
        if not rest:
            raise SipParseError("Via without sent-by")
        sent_by, semi, ptext = rest.partition(";")
        host, port = split_host_port(sent_by.strip().replace(" ", ""))
        return cls(transport.upper(), host, port, parse_params(ptext) if semi else {})

    def __str__(self) -> str:
        return (
            f"SIP/2.0/{self.transport} {format_host_port(self.host, self.port)}"
            f"{format_params(self.params)}"
        )

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""

    def mark_received(self, host: str, port: int) -> bool:
        """Note where the request really came from (RFC 3261 §18.2.1: ``received`` when the
        sent-by host differs; RFC 3581 §4: an empty ``rport`` gets the source port, and then
        ``received`` too). Whether anything changed."""
        changed = False
        if self.host != host:
            self.params["received"] = host
            changed = True
        if "rport" in self.params and self.params["rport"] is None:
            self.params["rport"] = str(port)
            self.params.setdefault("received", host)
            changed = True
        return changed

    @property
    def sent_by(self) -> tuple[str, int]:
        return self.host.lower(), self.port or 5060


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        num, method = (text.split(None, 1) + [""])[:2]
        method = method.strip()
        # The method stays as written: methods are case-sensitive (§7.1), and §8.2 compares it
        # with the request's own.
        if not num.isdigit() or not method or len(num) > 10 or int(num) >= 2**31:
            raise SipParseError(f"bad CSeq {text[:40]!r}")
        return cls(int(num), method)

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


class Message:
    """What requests and responses share: headers, body and parsed views of key headers."""

    __slots__ = ("headers", "body", "_vias", "_from", "_to", "_cseq", "_contacts")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self._vias: list[Via] | None = None
        self._from: NameAddr | None = None
        self._to: NameAddr | None = None
        self._cseq: CSeq | None = None
        self._contacts: tuple[NameAddr, ...] | None = None

    # Parsed views. They are cached; use the setters below to change them.
    @property
    def vias(self) -> list[Via]:
        if self._vias is None:
            self._vias = [Via.parse(v) for v in self.headers.get_all("via")]
        return self._vias

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise SipParseError("missing Via")
        return vias[0]

    def update_top_via(self) -> None:
        """Write back a change made to `top_via` (e.g. received/rport)."""
        self.headers.replace_first("via", str(self.top_via))

    @property
    def call_id(self) -> str:
        value = self.headers.get("call-id")
        if not value:
            raise SipParseError("missing Call-ID")
        return value

    @property
    def cseq(self) -> CSeq:
        if self._cseq is None:
            value = self.headers.get("cseq")
            if value is None:
                raise SipParseError("missing CSeq")
            self._cseq = CSeq.parse(value)
        return self._cseq

    @property
    def from_addr(self) -> NameAddr:
        if self._from is None:
            value = self.headers.get("from")
            if value is None:
                raise SipParseError("missing From")
            self._from = NameAddr.parse(value)
        return self._from

    @property
    def to_addr(self) -> NameAddr:
        if self._to is None:
            value = self.headers.get("to")
            if value is None:
                raise SipParseError("missing To")
            self._to = NameAddr.parse(value)
        return self._to

    def set_to(self, value: NameAddr) -> None:
        self._to = value
        self.headers.set("to", str(value))

    def set_from(self, value: NameAddr) -> None:
        self._from = value
        self.headers.set("from", str(value))

    def contacts(self) -> list[NameAddr]:
        # parsed once (the parser checks them, the registrar reads them); headers changed
        # through `headers` afterwards are not seen here, as for the other parsed views
        if self._contacts is None:
            self._contacts = tuple(NameAddr.parse(v) for v in self.headers.get_all("contact")
                                   if v.strip() != "*")
        return list(self._contacts)

    def _serialize(self, start_line: str) -> bytes:
        parts = [start_line]
        for _, name, value in self.headers._items:
            if name != "Content-Length":
                parts.append(f"{name}: {value}")
        parts.append(f"Content-Length: {len(self.body)}")
        parts.append("")
        parts.append("")
        return "\r\n".join(parts).encode() + self.body


class Request(Message):
    """A SIP request. `uri` is the Request-URI as written; `parsed_uri` parses it."""

    __slots__ = ("method", "uri", "_parsed_uri")

    def __init__(
        self, method: str, uri: str, headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri
        self._parsed_uri: SipUri | None = None

    @property
    def parsed_uri(self) -> SipUri:
        if self._parsed_uri is None:
            self._parsed_uri = SipUri.parse(self.uri)
        return self._parsed_uri

    def to_bytes(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} {SIP_VERSION}")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("status", "reason")

    def __init__(
        self, status: int, reason: str = "", headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason or REASON_PHRASES.get(status, "Unknown")

    def to_bytes(self) -> bytes:
        return self._serialize(f"{SIP_VERSION} {self.status} {self.reason}")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def make_response(
    request: Request, status: int, reason: str = "", to_tag: str | None = None
) -> Response:
    """A response to `request` with the headers RFC 3261 §8.2.6.2 copies.

    `to_tag` is added when the request's To has none (the UAS's dialog tag); 100 Trying never
    gets one. Record-Route is copied into responses that can establish a dialog (§12.1.1).
    """
    headers = Headers()
    src = request.headers
    add_tag = bool(to_tag) and status != 100 and request.to_addr.tag is None
    for key, name, value in src._items:
        if key in ("via", "from", "call-id", "cseq"):
            headers._items.append((key, name, value))
        elif key == "record-route" and 100 < status < 300:
            headers._items.append((key, name, value))
        elif key == "to":
            if add_tag:
                value = f"{value};tag={to_tag}"
            headers._items.append((key, name, value))
    return Response(status, reason, headers)
