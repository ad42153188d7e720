"""Parsing SIP messages from datagrams and byte streams (RFC 3261 §7, §18.3) — L0, pure.

`parse_message(data)` turns one datagram (or one framed stream message) into a `Request` or
`Response`, or raises `SipParseError` carrying the status to answer with and, in `.partial`, the
headers read so far so a stateless 400 can still be routed. `StreamFramer` cuts a TCP byte
stream into messages by Content-Length (mandatory on streams, §18.3) and skips the CRLF
keep-alives of RFC 5626 §3.5.1.

What is checked here is syntax, held to RFC 3261 and the torture tests of RFC 4475 and RFC 5118
(fixtures in tests/data/torture/): the start line (one SP between its three parts, no `<>`
around the Request-URI, no headers in it, IPv6 hosts in brackets), header syntax with folded
lines anywhere (also inside Via and CSeq), compact forms, header names in any case, the
mandatory headers of a request (Via, From, To, Call-ID, CSeq; a missing Max-Forwards is
tolerated as many UAs omit it), single-value headers present once, CSeq method vs. request
method (methods are case-sensitive, §7.1), Content-Length vs. body, Max-Forwards 0–255, quoting
and `<>` in From, To and Contact, and size limits. A Request-URI whose scheme is not sip: or
sips: is a 416 (§8.2.2.1): everything above the parser assumes a SIP URI. Unknown methods are
not an error here; the endpoint answers them 501.
"""

from __future__ import annotations

import re

from pbx.clock import BRANCH_MAGIC
from pbx.errors import SipParseError
from pbx.sip.message import (
    LIST_HEADERS,
    SIP_VERSION,
    Headers,
    Message,
    Request,
    Response,
    canonical_name,
    header_key,
)
from pbx.sip.uri import split_quoted

DEFAULT_MAX_MESSAGE = 65535
MAX_HEADERS = 256
_REQUIRED = ("via", "from", "to", "call-id", "cseq")
# Headers a message may carry once only (RFC 3261 §7.3.1, §20; RFC 4475 §3.3.8, §3.3.9): two
# of them make the message ambiguous (which dialog, which transaction, where the body ends).
_SINGLE = frozenset({"call-id", "cseq", "from", "to", "content-length", "max-forwards"})
_TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def parse_message(data: bytes, max_size: int = DEFAULT_MAX_MESSAGE) -> Message:
    """Parse one complete SIP message. Raises `SipParseError`."""
    if len(data) > max_size:
        raise SipParseError(f"message of {len(data)} bytes exceeds {max_size}", status=513)
    # §7.5: CRLFs before the start line are ignored (UDP keep-alives glued to a message).
    data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head, body = data[:end], data[end + 4 :]
        sep = "\r\n"
    else:
        end = data.find(b"\n\n")
        if end < 0:
            raise SipParseError("truncated message: no empty line after the headers")
        head, body = data[:end], data[end + 2 :]
        sep = "\n"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("headers are not valid UTF-8") from None
    lines = text.split(sep)
    while lines and not lines[0]:
        del lines[0]  # tolerate leading CRLFs (§7.5)
    if not lines:
        raise SipParseError("empty message")
    start = lines[0]
    headers = _parse_headers(lines, sep)
    message = _start_line(start, headers)
    message.body = _body(body, headers, message)
    if isinstance(message, Request):
        _check_request(message)
    else:
        _check_response(message)
    return message


def _start_line(line: str, headers: Headers) -> Message:
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != SIP_VERSION:
            raise SipParseError(f"unsupported version {version!r}", status=505)
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code[:12]!r}")
        return Response(int(code), reason.strip() or "-", headers)
    # §7.1: Method SP Request-URI SP SIP-Version, single spaces and nothing after the version
    # (RFC 4475 §3.1.2.8-10: LWS in the URI, runs of SP and trailing SP are all 400s).
    parts = line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise SipParseError("bad request line: expected 'METHOD URI SIP/2.0' with single spaces",
                            partial=headers)
    method, uri, version = parts
    if not _TOKEN_CHARS.issuperset(method):
        raise SipParseError(f"bad method {method[:20]!r}", partial=headers)
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"unsupported version {version[:12]!r}", status=505,
                            partial=headers)
    if uri.startswith("<"):
        raise SipParseError("Request-URI in angle brackets", partial=headers)  # RFC 4475 §3.1.2.7
    scheme, colon, _ = uri.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        raise SipParseError(f"Request-URI without scheme: {uri[:40]!r}", partial=headers)
    return Request(method, uri, headers)


# Header names as written (before the colon) already checked, with their look-up keys.
_NAMES: dict[str, str] = {}


def _parse_headers(lines: list[str], sep: str) -> Headers:
    # Unfold first (§7.3.1: a line starting with SP or HTAB continues the previous one), so
    # that a fold anywhere, even inside a Via or between two list entries, reads as one value.
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SipParseError("continuation line before the first header")
            unfolded[-1] = f"{unfolded[-1].rstrip()} {line.strip()}"
        else:
            unfolded.append(line)
    if len(unfolded) > MAX_HEADERS:
        raise SipParseError(f"more than {MAX_HEADERS} headers")
    items: list[tuple[str, str, str]] = []
    singles: set[str] = set()
    names = _NAMES
    for line in unfolded:
        name, colon, value = line.partition(":")
        known = names.get(name) if colon else None
        if known is None:
            name = name.rstrip(" \t")  # §7.3.1: HCOLON allows SP/HTAB before the colon
            if not colon or not name or not _TOKEN_CHARS.issuperset(name):
                raise SipParseError(f"malformed header line {line[:40]!r}",
                                    partial=Headers(items))
            key = header_key(name)
            if len(names) < 4096:  # names come from peers: bound the cache
                names[name] = key
        else:
            key = known
        if key in _SINGLE:
            if key in singles:
                count = 1 + sum(1 for k, _, _ in items if k == key)
                raise SipParseError(f"{count} {canonical_name(key)} headers",
                                    partial=Headers(items))
            singles.add(key)
        value = value.strip()
        if key in LIST_HEADERS and "," in value:
            canon = canonical_name(key)
            for part in split_quoted(value, ","):
                part = part.strip()
                if part:
                    items.append((key, canon, part))
        else:
            items.append((key, canonical_name(key), value))
    return Headers(items)


def _body(body: bytes, headers: Headers, message: Message) -> bytes:
    cl = headers.get("content-length")
    if cl is None:
        return body
    headers.remove("content-length")
    if not cl.isdigit():
        # RFC 4475 §3.1.2.3: a negative length is as wrong as a word.
        raise SipParseError(f"bad Content-Length {cl[:24]!r}", partial=headers)
    if len(cl) > 10 or int(cl) > len(body):
        # RFC 4475 §3.1.2.2: on UDP a body shorter than promised is a 400, not a wait.
        raise SipParseError(
            f"Content-Length {cl[:24]} exceeds the {len(body)} body bytes received",
            partial=headers,
        )
    return body[: int(cl)]  # §18.3: extra bytes after Content-Length are discarded on UDP


def _check_request(request: Request) -> None:
    headers = request.headers
    present = {key for key, _, _ in headers._items}
    for key in _REQUIRED:
        if key not in present:
            raise SipParseError(f"missing {canonical_name(key)} header", partial=headers)
    if not (headers.get("call-id") or "").strip():
        raise SipParseError("empty Call-ID header", partial=headers)
    try:
        via = request.top_via  # parse now so a bad Via is a 400, not a later crash
        request.vias  # noqa: B018
        cseq = request.cseq
        request.from_addr  # noqa: B018
        request.to_addr  # noqa: B018
        request.contacts()
    except SipParseError as exc:
        raise SipParseError(exc.reason, exc.status, partial=headers) from None
    if via.branch == BRANCH_MAGIC:
        # RFC 4475 §3.2.1: the RFC 3261 cookie with no id after it matches every other such
        # request; refusing it (statelessly) is what the RFC suggests.
        raise SipParseError(f"Via branch {BRANCH_MAGIC} without a transaction id",
                            partial=headers)
    if cseq.method != request.method:
        raise SipParseError(
            f"CSeq method {cseq.method[:20]} does not match {request.method[:20]}",
            partial=headers,
        )
    mf = headers.get("max-forwards")
    if mf is not None and (not mf.isdigit() or len(mf) > 4 or int(mf) > 255):
        raise SipParseError(f"bad Max-Forwards {mf[:12]!r}", partial=headers)
    _check_request_uri(request)


def _check_response(response: Message) -> None:
    # What the endpoint matches a response by (§17.1.3) must parse: RFC 4475 §3.1.2.5 has a
    # 2**73 CSeq. A bad response is dropped, never answered.
    response.top_via  # noqa: B018
    response.cseq  # noqa: B018


def _check_request_uri(request: Request) -> None:
    uri = request.uri
    scheme = uri.partition(":")[0].lower()
    if scheme not in ("sip", "sips"):
        # §8.2.2.1, RFC 4475 §3.3.2/3.3.3: not a scheme this PBX serves.
        raise SipParseError(f"unsupported URI scheme {scheme[:32]!r}", status=416,
                            partial=request.headers)
    try:
        parsed = request.parsed_uri
    except SipParseError as exc:
        raise SipParseError(f"bad Request-URI: {exc.reason}", partial=request.headers) from None
    if parsed.headers:
        # §19.1.1 (table): headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        raise SipParseError("headers in the Request-URI", partial=request.headers)


class StreamFramer:
    """Cuts a SIP byte stream (TCP) into whole messages by Content-Length (RFC 3261 §18.3).

    `feed(data)` returns the complete messages now available. A header block without
    Content-Length, a bad Content-Length or an oversize message raises `SipParseError`: the
    stream can no longer be framed, so the transport answers 400 if it can and closes it.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size
        self.keepalives = 0

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet framed into a message."""
        return bytes(self._buffer)

    @property
    def pending_size(self) -> int:
        """How many bytes of a message begun but not complete are held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        while True:
            message = self._next()
            if message is None:
                return out
            out.append(message)

    def _next(self) -> bytes | None:
        buf = self._buffer
        # RFC 5626 §3.5.1: CRLF keep-alives between messages.
        skip = 0
        while buf[skip : skip + 2] == b"\r\n":
            skip += 2
        if skip:
            self.keepalives += 1
            del buf[:skip]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self._max_size:
                raise SipParseError("header block too large", status=513)
            return None
        length = _stream_content_length(bytes(buf[:end]))
        total = end + 4 + length
        if total > self._max_size:
            raise SipParseError(f"message of {total} bytes exceeds {self._max_size}", status=513)
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message


def _stream_content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            value = value.strip()
            if not value.isdigit():
                raise SipParseError(f"bad Content-Length {value!r}")
            return int(value)
    raise SipParseError("missing Content-Length on a stream transport")
