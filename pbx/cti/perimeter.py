"""The HTTP perimeter (L3): an ASGI middleware in front of every route of the PBX's HTTP port.

Theory of operation — each request passes three checks before any route sees it:

1. **Who is the client.** The TCP peer, unless it is one of ``http.trusted_proxies``: then the
   ``X-Forwarded-For`` chain is walked from the right (the entry the proxy itself appended)
   past further trusted proxies, and the first address that is not one is the client. From
   anyone else the header is ignored — a client cannot pick the address its failed logins are
   counted against. ``X-Forwarded-Proto: https`` from a trusted proxy marks the request as
   HTTPS (``Secure`` cookies with ``cti.cookie_secure: auto``). The result replaces the ASGI
   scope's ``client`` and ``scheme``, so every route reads it as ``request.client.host`` and
   ``request.url.scheme``. A malformed chain from a trusted proxy is a 400 (it is the proxy's
   bug; guessing would count failures against the wrong address). uvicorn's own
   proxy-header handling must be off (`pbx.app` starts it so), or it would trust loopback.
2. **How big is the body.** A ``Content-Length`` above ``http.max_body_bytes`` is answered 413
   at once, the body unread; a body without a length (chunked) is read up to the limit and
   refused the moment it passes it. What was read is handed on to the route unchanged.
3. **What the browser may do with the answer.** Every response gets `SECURITY_HEADERS`: a
   Content-Security-Policy that lets the desk and the wallboard load only their own scripts,
   styles and WebSocket (no inline code, no framing, no foreign origins), ``X-Frame-Options:
   DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``; answers
   under ``/api/`` and ``/metrics`` are also ``Cache-Control: no-store`` (customer data does
   not belong in caches).

WebSocket handshakes get (1) only: their frames are capped by uvicorn (``ws_max_size``).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import structlog

log = structlog.get_logger("pbx.cti")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_NO_STORE_PREFIXES = ("/api/", "/metrics")
MAX_FORWARDED_HOPS = 16


class BadForwarding(ValueError):
    """A trusted proxy sent an ``X-Forwarded-For`` that is not a list of IP addresses."""


class HttpPerimeter:
    """The middleware (see the module docstring). `trusted_proxies` are networks (CIDR
    strings); raises ValueError for a bad one."""

    def __init__(self, app: Asgi, *, trusted_proxies: Sequence[str] = (),
                 max_body_bytes: int = 64 * 1024) -> None:
        self.app = app
        self.trusted_proxies: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self.max_body_bytes = max_body_bytes
        self.refused_bodies = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            send = _with_security_headers(send, scope["path"].startswith(_NO_STORE_PREFIXES))
        try:
            scope = self.resolve_client(scope)
        except BadForwarding as exc:
            log.warning("http_bad_forwarding", peer=_peer(scope), error=str(exc))
            if scope["type"] == "http":
                await _json_error(send, 400, f"bad X-Forwarded-For from the proxy: {exc}")
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                await _json_error(send, 400, "Content-Length is not a number")
                return
            if int(length) > self.max_body_bytes:
                await self._too_large(scope, send)
                return
            await self.app(scope, receive, send)
            return
        if _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)
            return
        body = await self._read_capped(receive)
        if body is None:
            await self._too_large(scope, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def resolve_client(self, scope: Scope) -> Scope:
        """`scope` with ``client`` and ``scheme`` as the perimeter establishes them."""
        peer = scope.get("client")
        if not self.trusted_proxies or peer is None or not self._is_proxy(peer[0]):
            return scope
        chain = _header(scope, b"x-forwarded-for")
        proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
        if chain is None and not proto:
            return scope
        scope = dict(scope)
        if chain is not None:
            scope["client"] = (self._client_of(chain), 0)
        if proto in ("http", "https"):
            secure = proto == "https"
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = proto
        return scope

    def _client_of(self, chain: str) -> str:
        hops = [hop.strip() for hop in chain.split(",")]
        if len(hops) > MAX_FORWARDED_HOPS:
            raise BadForwarding(f"more than {MAX_FORWARDED_HOPS} hops")
        addresses = [_parse_hop(hop) for hop in hops]
        for address in reversed(addresses):
            if not any(address in network for network in self.trusted_proxies):
                return str(address)
        return str(addresses[0])  # every hop is a proxy of ours: the first one asked

    def _is_proxy(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    async def _read_capped(self, receive: Receive) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts)  # the client went away; the route will see it too
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        self.refused_bodies += 1
        log.info("http_body_too_large", path=scope["path"], peer=_peer(scope),
                 limit=self.max_body_bytes)
        await _json_error(send, 413, f"the body is larger than {self.max_body_bytes} bytes")


def _parse_hop(hop: str) -> _Address:
    text = hop
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise BadForwarding(f"{hop[:64]!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v for k, v in scope.get("headers", ()) if k == name]
    if not values:
        return None
    return ",".join(v.decode("latin-1") for v in values)


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _with_security_headers(send: Send, no_store: bool) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            if no_store and b"cache-control" not in present:
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return sending


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # only ever the disconnect

    return replaying


async def _json_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
