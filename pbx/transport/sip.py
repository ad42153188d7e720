"""asyncio UDP and TCP transports for the SIP endpoint — L3 (the only SIP code doing I/O).

One pump (STYLE point 2): every datagram or framed stream message is fed to the sans-IO
`SipEndpoint`; then `pump()` hands the endpoint's events to the transaction user, sends what the
endpoint wants sent, and re-arms the single `loop.call_at` timer from `get_timer()`. No protocol
decision lives here.

UDP sockets get large SO_RCVBUF/SO_SNDBUF (the kernel drops datagrams at a few thousand calls
per second with its 64 KiB default). TCP connections are kept per remote (host, port) so that
responses go back over the connection their request came in on (RFC 3261 §18.2.2); a stream that
cannot be framed is answered 400 where possible and closed.

TCP is guarded like Kamailio's and Asterisk's (`TcpLimits`, config `sip.tcp`): a message begun
but not complete — headers unfinished, or a body shorter than its Content-Length — is cut off
`message_timeout_s` after its first byte, silently (a slow sender is not a malformed one, so no
400); a connection with no message for `idle_timeout_s` is closed. A connection that carries a
live registration binding is kept until `registered_idle_timeout_s`: the registrar records the
REGISTER's source (transport, host, port) and the switchboard sends that phone's calls to that
address, which for TCP is this very connection (the phone listens on no port of its own, RFC
5626 §5), so cutting it would leave the agent unreachable until its next REGISTER. The
transport learns which sources are registered from a callable the composition root passes in
(`registered_sources`), asked at most once a second and only when an idle deadline passes.
Inbound connections beyond `max_connections_per_address` from one host or `max_connections` in
all are aborted at once, logged at most once per host per `refused_log_interval_s`. The
decisions are sans-IO (`TcpStream`, `ConnectionCaps`, driven with `now`); each connection has
one `call_at` timer, moved only when its deadline comes earlier.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, cast

import structlog

from pbx.errors import SipParseError
from pbx.sip.endpoint import Address, SipEndpoint
from pbx.sip.parser import StreamFramer

log = structlog.get_logger("pbx.transport")

_SIOCGSTAMP = 0x8906  # Linux: the arrival time of the last datagram read from a socket

EventHandler = Callable[[object], None]


@dataclass(frozen=True, slots=True)
class ListenAddress:
    transport: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """Timeouts and caps for SIP over TCP (config `sip.tcp`; see the module docstring)."""

    message_timeout_s: float = 30.0
    idle_timeout_s: float = 120.0
    registered_idle_timeout_s: float = 3900.0
    max_connections_per_address: int = 32
    max_connections: int = 2000
    refused_log_interval_s: float = 60.0


RegisteredSources = Callable[[], Collection[tuple[str, int]]]


class TcpStream:
    """One TCP connection's framing and deadlines, sans-IO.

    `receive(data, now)` returns the complete messages (raises `SipParseError` when the stream
    cannot be framed); `sent(now)` notes our own traffic; `deadline(registered)` is when to look
    again and `expired(now, registered)` says why to cut the connection then, or None. A
    message in progress is timed from its first byte, so trickling it in does not help; only
    whole messages, CRLF keep-alives (RFC 5626 §3.5.1) and our sending count as activity.
    """

    def __init__(self, limits: TcpLimits, max_message_bytes: int, now: float) -> None:
        self.limits = limits
        self.framer = StreamFramer(max_message_bytes)
        self.last_activity = now
        self.incomplete_since: float | None = None

    def receive(self, data: bytes, now: float) -> list[bytes]:
        keepalives = self.framer.keepalives
        messages = self.framer.feed(data)
        if messages or self.framer.keepalives != keepalives:
            self.last_activity = now
        if not self.framer.pending_size:
            self.incomplete_since = None
        elif messages or self.incomplete_since is None:
            self.incomplete_since = now  # the first byte of the message now in progress
        return messages

    def sent(self, now: float) -> None:
        self.last_activity = now

    def idle_limit(self, registered: bool) -> float:
        limits = self.limits
        return limits.registered_idle_timeout_s if registered else limits.idle_timeout_s

    def deadline(self, registered: bool = False) -> float:
        at = self.last_activity + self.idle_limit(registered)
        if self.incomplete_since is not None:
            at = min(at, self.incomplete_since + self.limits.message_timeout_s)
        return at

    def idle_due(self, now: float) -> bool:
        """Whether the unregistered idle limit has passed (then ask about a registration)."""
        return now >= self.last_activity + self.limits.idle_timeout_s

    def expired(self, now: float, registered: bool) -> str | None:
        since = self.incomplete_since
        if since is not None and now >= since + self.limits.message_timeout_s:
            return "incomplete_message"
        if now >= self.last_activity + self.idle_limit(registered):
            return "idle_registered" if registered else "idle"
        return None


class ConnectionCaps:
    """Counts inbound TCP connections per remote host and in all, sans-IO: `admit(host)`
    takes a place or refuses, `release(host)` gives it back, `log_refusal(host, now)` says
    whether this refusal should be logged (once per host per interval, so a flood of refused
    connections cannot flood the log)."""

    _MAX_REMEMBERED = 4096

    def __init__(self, limits: TcpLimits) -> None:
        self.limits = limits
        self.by_host: dict[str, int] = {}
        self.total = 0
        self.refused = 0
        self._logged: dict[str, float] = {}

    def admit(self, host: str) -> bool:
        count = self.by_host.get(host, 0)
        if (count >= self.limits.max_connections_per_address
                or self.total >= self.limits.max_connections):
            self.refused += 1
            return False
        self.by_host[host] = count + 1
        self.total += 1
        return True

    def release(self, host: str) -> None:
        count = self.by_host.get(host, 0)
        if count <= 1:
            self.by_host.pop(host, None)
        else:
            self.by_host[host] = count - 1
        self.total = max(0, self.total - 1)

    def log_refusal(self, host: str, now: float) -> bool:
        interval = self.limits.refused_log_interval_s
        last = self._logged.get(host)
        if last is not None and now - last < interval:
            return False
        if len(self._logged) >= self._MAX_REMEMBERED:
            self._logged = {h: t for h, t in self._logged.items() if now - t < interval}
        self._logged[host] = now
        return True


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check here.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        owner = self.owner
        owner._reading = self.sock
        owner.endpoint.receive_datagram(data, Address("udp", addr[0], addr[1]), time.monotonic())
        owner.pump()
        owner._reading = None

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: nothing to do for a stateless datagram socket.
        log.debug("udp_error", error=str(exc))


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport, outbound_key: tuple[str, int] | None = None) -> None:
        self.owner = owner
        self.stream = TcpStream(owner.tcp_limits, owner.endpoint.max_message_bytes,
                                time.monotonic())
        self.transport: asyncio.Transport | None = None
        self.remote: Address | None = None
        self.outbound_key = outbound_key
        self.admitted = False  # holds a place in the owner's ConnectionCaps
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def framer(self) -> StreamFramer:
        return self.stream.framer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.remote = Address("tcp", str(peer[0]), int(peer[1]))
        owner = self.owner
        if self.outbound_key is None:
            if not owner.caps.admit(self.remote.host):
                if owner.caps.log_refusal(self.remote.host, time.monotonic()):
                    log.warning("tcp_refused", peer=self.remote.host, port=self.remote.port,
                                connections=owner.caps.by_host.get(self.remote.host, 0),
                                total=owner.caps.total)
                self.transport.abort()
                return
            self.admitted = True
        owner.connections[(self.remote.host, self.remote.port)] = self
        self._arm(self.stream.deadline())

    def data_received(self, data: bytes) -> None:
        assert self.remote is not None and self.transport is not None
        owner = self.owner
        now = time.monotonic()
        try:
            messages = self.stream.receive(data, now)
        except SipParseError as exc:
            log.info("tcp_unframeable", peer=self.remote.host, port=self.remote.port,
                     reason=exc.reason)
            # Let the endpoint answer what it can of the broken head, then drop the stream.
            head = bytes(self.framer.pending) or data
            owner.endpoint.receive_unframeable(head, exc, self.remote, now)
            owner.pump()
            self.transport.close()
            return
        for message in messages:
            owner.endpoint.receive_datagram(message, self.remote, now)
        if messages:
            owner.pump()
        deadline = self.stream.deadline()
        if deadline < self._timer_at:
            self._arm(deadline)  # a message began: its timeout is earlier than the idle one

    def sent(self) -> None:
        self.stream.sent(time.monotonic())

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.owner._loop.call_at(at, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        if self.transport is None or self.remote is None or self.transport.is_closing():
            return
        now = time.monotonic()
        stream = self.stream
        registered = stream.idle_due(now) and self.owner.is_registered(self.remote)
        reason = stream.expired(now, registered)
        if reason is None:
            self._arm(stream.deadline(registered))
            return
        log.info("tcp_timeout", peer=self.remote.host, port=self.remote.port, reason=reason,
                 pending_bytes=self.framer.pending_size)
        self.owner.stats[reason] = self.owner.stats.get(reason, 0) + 1
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.admitted and self.remote is not None:
            self.owner.caps.release(self.remote.host)
            self.admitted = False
        if self.remote is not None:
            key = (self.remote.host, self.remote.port)
            if self.owner.connections.get(key) is self:
                del self.owner.connections[key]


class SipTransport:
    """Binds sockets, feeds the endpoint, flushes its output, and runs its one timer."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        on_event: EventHandler,
        socket_buffer_bytes: int = 4 * 1024 * 1024,
        tcp_limits: TcpLimits | None = None,
        registered_sources: RegisteredSources | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.socket_buffer_bytes = socket_buffer_bytes
        self.tcp_limits = tcp_limits or TcpLimits()
        self.caps = ConnectionCaps(self.tcp_limits)
        self.stats: dict[str, int] = {}  # TCP connections cut, by reason
        self._registered_sources = registered_sources
        self._registered: Collection[tuple[str, int]] = ()
        self._registered_at = -1e9
        self.connections: dict[tuple[str, int], _TcpConnection] = {}
        self._udp: dict[int, _UdpProtocol] = {}  # address family -> first UDP socket
        self._reading: socket.socket | None = None  # the UDP socket of the datagram in hand
        self._servers: list[asyncio.base_events.Server] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop = asyncio.get_running_loop()
        self.bound: list[ListenAddress] = []
        self._pending_tcp: dict[tuple[str, int], list[bytes]] = {}
        self._pump_soon = False
        self._pumping = False

    def is_registered(self, remote: Address) -> bool:
        """Whether a live registration binding was made over this connection."""
        if self._registered_sources is None:
            return False
        now = time.monotonic()
        if now - self._registered_at >= 1.0:  # one look at the bindings serves a second
            self._registered = self._registered_sources()
            self._registered_at = now
        return (remote.host, remote.port) in self._registered

    async def listen(self, transport: str, host: str, port: int) -> ListenAddress:
        try:
            if transport == "udp":
                bound = await self._listen_udp(host, port)
            elif transport == "tcp":
                bound = await self._listen_tcp(host, port)
            else:
                raise ValueError(f"unsupported transport {transport!r}")
        except OSError as exc:  # in use, not ours to bind: say which, for a one-line error
            shown = f"[{host}]" if ":" in host else host
            raise OSError(exc.errno, f"cannot listen on SIP {transport} {shown}:{port}: "
                                     f"{exc.strerror}") from None
        self.bound.append(bound)
        log.info("sip_listening", transport=bound.transport, host=bound.host, port=bound.port)
        return bound

    async def _listen_udp(self, host: str, port: int) -> ListenAddress:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, opt, self.socket_buffer_bytes)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
        _, protocol = await self._loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), sock=sock
        )
        self._udp.setdefault(family, protocol)
        protocol.sock = sock
        try:  # the first ask turns the kernel's arrival timestamps on for the socket
            fcntl.ioctl(sock.fileno(), _SIOCGSTAMP, bytes(16))
        except OSError:
            pass
        return ListenAddress("udp", host, sock.getsockname()[1])

    async def _listen_tcp(self, host: str, port: int) -> ListenAddress:
        server = await self._loop.create_server(
            lambda: _TcpConnection(self), host, port, reuse_address=True, backlog=1024
        )
        self._servers.append(server)
        return ListenAddress("tcp", host, server.sockets[0].getsockname()[1])

    def datagram_age(self) -> float:
        """How long the datagram being handled now waited in its socket's kernel receive
        queue before it was read, in seconds (0 outside a datagram, or where the kernel has no
        arrival time: Linux SIOCGSTAMP). When the event loop falls behind, datagrams age in
        the socket buffer, where no timer's lateness shows it."""
        sock = self._reading
        if sock is None:
            return 0.0
        try:
            raw = fcntl.ioctl(sock.fileno(), _SIOCGSTAMP, bytes(16))
        except OSError:
            return 0.0
        seconds, micros = struct.unpack("qq", raw)
        return max(0.0, time.time() - (int(seconds) + int(micros) / 1e6))

    # ------------------------------------------------------------------ the pump

    def transmit_soon(self) -> None:
        """Something was handed to the endpoint outside a pump (a call's task, a timer of a
        leg): pump once on the loop's next turn, however often this is asked until then. A
        handler running inside `pump` never re-enters it: the running pump sends what the
        handler queued when its events are done."""
        if not self._pump_soon and not self._pumping:
            self._pump_soon = True
            self._loop.call_soon(self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._pump_soon = False
        self.pump()

    def pump(self) -> None:
        endpoint = self.endpoint
        on_event = self.on_event
        self._pumping = True
        try:
            while True:
                event = endpoint.next_event()
                if event is None:
                    break
                try:
                    on_event(event)
                except Exception:  # a bug in one handler must not stop the switch
                    log.exception("event_handler_failed", event_type=type(event).__name__)
        finally:
            self._pumping = False
        for data, destination in endpoint.datagrams_to_send():
            self._send(data, destination)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            # loop.time() is time.monotonic() on asyncio and uvloop.
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(time.monotonic())
        self.pump()

    def _send(self, data: bytes, destination: Address) -> None:
        if destination.transport == "udp":
            family = socket.AF_INET6 if ":" in destination.host else socket.AF_INET
            protocol = self._udp.get(family)
            if protocol is None or protocol.transport is None:
                log.warning("no_udp_socket", host=destination.host)
                return
            protocol.transport.sendto(data, (destination.host, destination.port))
            return
        connection = self.connections.get((destination.host, destination.port))
        if connection is not None and connection.transport is not None:
            connection.transport.write(data)
            connection.sent()
            return
        self._connect_and_send(data, destination)

    def _connect_and_send(self, data: bytes, destination: Address) -> None:
        key = (destination.host, destination.port)
        pending = self._pending_tcp.get(key)
        if pending is not None:
            pending.append(data)
            return
        self._pending_tcp[key] = [data]
        self._loop.create_task(self._connect(destination))

    async def _connect(self, destination: Address) -> None:
        key = (destination.host, destination.port)
        try:
            _, connection = await self._loop.create_connection(
                lambda: _TcpConnection(self, key), destination.host, destination.port
            )
        except OSError as exc:
            self._pending_tcp.pop(key, None)
            self.endpoint.transport_failed(destination, str(exc), time.monotonic())
            self.pump()
            return
        self.connections[key] = connection
        assert connection.transport is not None
        for data in self._pending_tcp.pop(key, []):
            connection.transport.write(data)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for server in self._servers:
            server.close()
        for protocol in self._udp.values():
            if protocol.transport is not None:
                protocol.transport.close()
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.close()
        for server in self._servers:
            await server.wait_closed()
