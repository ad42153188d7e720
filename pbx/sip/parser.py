"""Parsing SIP messages from datagrams and byte streams (RFC 3261 §7, §18.3) — L0, pure.

`parse_message(data)` turns one datagram (or one framed stream message) into a `Request` or
`Response`, or raises `SipParseError` carrying the status to answer with and, in `.partial`, the
headers read so far so a stateless 400 can still be routed. `StreamFramer` cuts a TCP byte
stream into messages by Content-Length (mandatory on streams, §18.3) and skips the CRLF
keep-alives of RFC 5626 §3.5.1.

What is checked here is syntax only: the start line, header syntax with folded lines, compact
forms, the mandatory headers of a request (Via, From, To, Call-ID, CSeq; a missing Max-Forwards
is tolerated as many UAs omit it), CSeq method vs. request method, Content-Length vs. body, and
size limits.
"""

from __future__ import annotations

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
_TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)


def parse_message(data: bytes, max_size: int = DEFAULT_MAX_MESSAGE) -> Message:
    """Parse one complete SIP message. Raises `SipParseError`."""
    if len(data) > max_size:
        raise SipParseError(f"message of {len(data)} bytes exceeds {max_size}", status=513)
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
    return message


def _start_line(line: str, headers: Headers) -> Message:
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != SIP_VERSION:
            raise SipParseError(f"unsupported version {version!r}", status=505)
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code!r}")
        return Response(int(code), reason.strip() or "-", headers)
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError("bad request line: expected 'METHOD URI SIP/2.0'", partial=headers)
    method, uri, version = parts
    if not method or not _TOKEN_CHARS.issuperset(method):
        raise SipParseError(f"bad method {method!r}", partial=headers)
    if version != SIP_VERSION:
        raise SipParseError(f"unsupported version {version!r}", status=505, partial=headers)
    if ":" not in uri:
        raise SipParseError(f"Request-URI without scheme: {uri!r}", partial=headers)
    return Request(method, uri, headers)


def _parse_headers(lines: list[str], sep: str) -> Headers:
    items: list[tuple[str, str, str]] = []
    count = 0
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            # Folded line (§7.3.1): continues the previous header value.
            if not items:
                raise SipParseError("continuation line before the first header")
            key, name, value = items.pop()
            items.append((key, name, f"{value} {line.strip()}"))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip()
        if not colon or not name or not _TOKEN_CHARS.issuperset(name):
            raise SipParseError(f"malformed header line {line[:40]!r}", partial=Headers(items))
        count += 1
        if count > MAX_HEADERS:
            raise SipParseError(f"more than {MAX_HEADERS} headers", partial=Headers(items))
        key = header_key(name)
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
    for key, _, value in headers._items:
        if key == "content-length":
            cl = value
            headers.remove("content-length")
            break
    else:
        return body
    if not cl.isdigit():
        raise SipParseError(f"bad Content-Length {cl!r}", partial=headers)
    length = int(cl)
    if length > len(body):
        raise SipParseError(
            f"Content-Length {length} exceeds the {len(body)} body bytes received",
            partial=headers,
        )
    return body[:length]  # §18.3: extra bytes after Content-Length are discarded on UDP


def _check_request(request: Request) -> None:
    headers = request.headers
    present = {key for key, _, _ in headers._items}
    for key in _REQUIRED:
        if key not in present:
            raise SipParseError(f"missing {canonical_name(key)} header", partial=headers)
    if not (headers.get("call-id") or "").strip():
        raise SipParseError("empty Call-ID header", partial=headers)
    try:
        request.top_via  # noqa: B018 - parse now so a bad Via is a 400, not a later crash
        cseq = request.cseq
        request.from_addr  # noqa: B018
        request.to_addr  # noqa: B018
    except SipParseError as exc:
        raise SipParseError(exc.reason, exc.status, partial=headers) from None
    if cseq.method != request.method:
        raise SipParseError(
            f"CSeq method {cseq.method} does not match {request.method}", partial=headers
        )
    mf = headers.get("max-forwards")
    if mf is not None and (not mf.strip().isdigit() or int(mf) > 255):
        raise SipParseError(f"bad Max-Forwards {mf!r}", partial=headers)


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
