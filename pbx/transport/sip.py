"""asyncio UDP and TCP transports for the SIP endpoint — L3 (the only SIP code doing I/O).

One pump (STYLE point 2): every datagram or framed stream message is fed to the sans-IO
`SipEndpoint`; then `pump()` hands the endpoint's events to the transaction user, sends what the
endpoint wants sent, and re-arms the single `loop.call_at` timer from `get_timer()`. No protocol
decision lives here.

UDP sockets get large SO_RCVBUF/SO_SNDBUF (the kernel drops datagrams at a few thousand calls
per second with its 64 KiB default). TCP connections are kept per remote (host, port) so that
responses go back over the connection their request came in on (RFC 3261 §18.2.2); a stream that
cannot be framed is answered 400 where possible and closed.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import time
from collections.abc import Callable
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
        self.framer = StreamFramer(owner.endpoint.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.remote: Address | None = None
        self.outbound_key = outbound_key

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.remote = Address("tcp", str(peer[0]), int(peer[1]))
        self.owner.connections[(self.remote.host, self.remote.port)] = self

    def data_received(self, data: bytes) -> None:
        assert self.remote is not None and self.transport is not None
        owner = self.owner
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            log.info("tcp_unframeable", peer=self.remote.host, port=self.remote.port,
                     reason=exc.reason)
            # Let the endpoint answer what it can of the broken head, then drop the stream.
            head = bytes(self.framer.pending) or data
            owner.endpoint.receive_unframeable(head, exc, self.remote, time.monotonic())
            owner.pump()
            self.transport.close()
            return
        now = time.monotonic()
        for message in messages:
            owner.endpoint.receive_datagram(message, self.remote, now)
        owner.pump()

    def connection_lost(self, exc: Exception | None) -> None:
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
    ) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.socket_buffer_bytes = socket_buffer_bytes
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

    async def listen(self, transport: str, host: str, port: int) -> ListenAddress:
        if transport == "udp":
            bound = await self._listen_udp(host, port)
        elif transport == "tcp":
            bound = await self._listen_tcp(host, port)
        else:
            raise ValueError(f"unsupported transport {transport!r}")
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
