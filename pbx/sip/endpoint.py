"""The SIP endpoint core: parsing, transaction matching, timers, stateless answers — L1, sans-IO.

Theory of operation (the shape of aioquic's connection)
-------------------------------------------------------
The asyncio transport feeds `receive_datagram(data, source, now)` for every datagram (or framed
stream message) and `handle_timer(now)` when the deadline from `get_timer()` passes. The
transaction user (registrar, call layer) calls `send_request(request, destination, now)` and
`respond(server_transaction, response, now)`. After each call the transport drains
`datagrams_to_send()` and `next_event()` and re-arms its one timer from `get_timer()`.

Requests are matched to server transactions by the RFC 3261 §17.2.3 key (branch, sent-by,
method; ACK matches its INVITE), responses to client transactions by (branch, CSeq method)
(§17.1.3). A retransmitted request is absorbed by its transaction; a new one becomes a
`RequestReceived` event carrying its server transaction (an INVITE gets its 100 Trying when the
transport next drains us, unless the TU answered it first). An ACK that matches nothing (the
ACK for a 2xx) and a response that matches nothing (a retransmitted 2xx) are passed up without
a transaction. A method SIP does not define gets 501 through its transaction (§21.5.2) and
never reaches the TU. A malformed request whose Via and CSeq survived gets a stateless answer
with the status its `SipParseError` carries (400, 416, 505, 513) and a reason phrase that says
what is wrong (RFC 4475 §3.3.1 asks for a 400 even when From, To or Call-ID are missing: Via
and CSeq are what the sender matches it by, §17.1.3); anything else malformed, and every
malformed response, is dropped and counted. Received requests get `received`/`rport` on their
top Via (RFC 3261 §18.2.1, RFC 3581 §4), and responses go back where §18.2.2 and RFC 3581 say.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from pbx.clock import BRANCH_MAGIC, IdGenerator
from pbx.errors import SipParseError
from pbx.sip.message import KNOWN_METHODS, Headers, Request, Response, make_response
from pbx.sip.parser import DEFAULT_MAX_MESSAGE, parse_message
from pbx.sip.shedding import QueueShedding, has_to_tag, refusal, scan_branch, scan_invite
from pbx.sip.timers import TimerSettings
from pbx.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    ResponseReceived,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    Transaction,
    TransactionTimedOut,
    TxState,
)

__all__ = [
    "Address",
    "EndpointStats",
    "RequestReceived",
    "ResponseReceived",
    "SipEndpoint",
    "TransactionTimedOut",
    "TransportFailed",
]


class Address(NamedTuple):
    """Where a message came from or goes to. `transport` is "udp", "tcp" or "tls"."""

    transport: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request. `transaction` is None only for an ACK that matches no transaction."""

    request: Request
    transaction: ServerTransaction | None
    source: Address


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """Sending to `destination` failed; `transaction` (if any) has been terminated."""

    destination: Address
    transaction: Transaction | None
    reason: str


@dataclass(slots=True)
class EndpointStats:
    """Counters read by metrics and benchmarks."""

    requests_received: int = 0
    responses_received: int = 0
    retransmissions_absorbed: int = 0
    malformed_dropped: int = 0
    malformed_answered: int = 0
    stray_responses: int = 0
    responses_sent: int = 0
    requests_sent: int = 0
    transaction_timeouts: int = 0
    keepalives: int = 0
    refused_sources: int = 0  # requests dropped unanswered: their source is banned
    server_transactions: int = 0
    client_transactions: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


class SipEndpoint:
    """Sans-IO SIP transaction layer. See the module docstring for how it is driven."""

    def __init__(
        self,
        ids: IdGenerator,
        timers: TimerSettings | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
        user_agent: str = "pbx",
    ) -> None:
        self.ids = ids
        self.timers = timers or TimerSettings()
        self.max_message_bytes = max_message_bytes
        self.user_agent = user_agent
        self.stats = EndpointStats()
        self._server: dict[tuple[str, ...], ServerTransaction] = {}
        self._client: dict[tuple[str, ...], ClientTransaction] = {}
        self._outbox: list[tuple[bytes, Address]] = []
        self._trying: list[ServerInviteTransaction] = []  # owed a 100 Trying at the drain
        self._events: list[object] = []
        self._event_pos = 0
        self._heap: list[tuple[float, int, Transaction, str]] = []
        self._timer_seq = 0
        self._now = 0.0
        # Asked before any request makes a transaction: False drops it unanswered (a banned
        # source gets no 100 Trying, no final response, no state, whatever the method).
        self.admit: Callable[[Address], bool] | None = None
        # Overload shedding (pbx/sip/shedding.py): how long the datagram being fed waited in
        # its socket's kernel queue, asked only for new INVITEs while shedding is on.
        self.queue_age: Callable[[], float] | None = None
        self.shedding = QueueShedding()
        self.last_queued_s = 0.0  # the age measured for the INVITE fed last

    # ------------------------------------------------------------------ input

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        self._now = now
        if not data.strip(b"\r\n \t\0"):
            self.stats.keepalives += 1  # CRLF keep-alive (RFC 5626 §3.5.1)
            return
        if self.queue_age is not None:
            if data[:7] == b"INVITE " and self._shed(data, source, now):
                return
            if data[:4] == b"ACK " and self.shedding.remembering \
                    and self.shedding.absorbs(scan_branch(data)):
                return
        try:
            message = parse_message(data, self.max_message_bytes)
        except SipParseError as exc:
            self._malformed(data, exc, source)
            return
        if isinstance(message, Request):
            try:
                self._receive_request(message, source, now)
            except SipParseError as exc:
                self._malformed(data, exc, source)
        else:
            assert isinstance(message, Response)
            self._receive_response(message, source, now)

    def _shed(self, data: bytes, source: Address, now: float) -> bool:
        """Whether a new INVITE that waited too long unread was refused from its raw bytes
        (or dropped: a banned source). See pbx/sip/shedding.py."""
        assert self.queue_age is not None
        queued_s = self.last_queued_s = self.queue_age()
        shedding = self.shedding
        shedding.measured(queued_s)
        if not shedding.limit_s or queued_s <= shedding.limit_s:
            return False
        head = scan_invite(data)
        if head is None or has_to_tag(head.to):
            return False  # the parser's to judge; a re-INVITE of a talking call goes on
        via = head.top_via
        if via.branch.startswith(BRANCH_MAGIC):
            host, port = via.sent_by
            if (via.branch, host, str(port), "INVITE") in self._server:
                return False  # a retransmission of an INVITE being served
        self.stats.requests_received += 1
        if self.admit is not None and not self.admit(source):
            self.stats.refused_sources += 1
            return True
        self._outbox.append((refusal(head, source.host, source.port, self.ids.token(6),
                                     shedding.retry_after_s, self.user_agent), source))
        self.stats.responses_sent += 1
        shedding.shed += 1
        shedding.remember(via.branch, now)
        return True

    def receive_unframeable(self, data: bytes, error: SipParseError, source: Address,
                            now: float) -> None:
        """A stream transport could not frame `data` (RFC 3261 §18.3): answer 400 if the head
        names enough to route a response, with the framing error as the reason."""
        self._now = now
        try:
            message = parse_message(data, self.max_message_bytes)
            partial: object = message.headers
        except SipParseError as exc:
            partial = exc.partial
        self._malformed(data, SipParseError(error.reason, error.status, partial), source)

    def _receive_request(self, request: Request, source: Address, now: float) -> None:
        self.stats.requests_received += 1
        if self.admit is not None and not self.admit(source):
            self.stats.refused_sources += 1
            return
        # RFC 3261 §18.2.1 and RFC 3581 §4: note where the request really came from.
        if request.top_via.mark_received(source.host, source.port):
            request.update_top_via()
        method = request.method
        key = self._server_key(request, "INVITE" if method == "ACK" else method)
        tx = self._server.get(key)
        if tx is not None:
            self.stats.retransmissions_absorbed += method != "ACK"
            tx.receive_request(request, now)
            return
        if method == "ACK":
            self._events.append(RequestReceived(request, None, source))
            return
        reply_to = _reply_address(request, source)
        new_tx: ServerTransaction
        if method == "INVITE":
            new_tx = ServerInviteTransaction(self, key, request, reply_to)
        else:
            new_tx = ServerNonInviteTransaction(self, key, request, reply_to)
        self._server[key] = new_tx
        self.stats.server_transactions += 1
        counts = self.stats.by_method
        counts[method] = counts.get(method, 0) + 1
        if method not in KNOWN_METHODS:
            # §21.5.2: a method we do not recognise for any user (RFC 4475 §3.1.1.2, §3.1.1.5).
            new_tx.respond(make_response(request, 501, to_tag=self.ids.token(6)), now)
            return
        if request.headers.get("max-forwards") == "0" and method not in _MAX_FORWARDS_EXEMPT:
            # §16.3 step 3 / §8.2: a request that has used up its hops goes no further; we
            # would re-originate it (B2BUA), so answer 483 rather than loop it on.
            new_tx.respond(make_response(request, 483), now)
            return
        if isinstance(new_tx, ServerInviteTransaction):
            # §17.2.1: 100 Trying, unless the TU answers within 200 ms. The TU handles this
            # event before the transport drains us, so the 100 is decided at the drain: an
            # INVITE refused, challenged or dropped at once gets that one answer (or none).
            self._trying.append(new_tx)
        elif method == "CANCEL":
            invite_key = self._server_key(request, "INVITE")
            if invite_key not in self._server:
                new_tx.respond(make_response(request, 481), now)
                return
        self._events.append(RequestReceived(request, new_tx, source))

    def _receive_response(self, response: Response, source: Address, now: float) -> None:
        self.stats.responses_received += 1
        try:
            branch = response.top_via.branch
            method = response.cseq.method
        except SipParseError:
            self.stats.malformed_dropped += 1
            return
        tx = self._client.get((branch, method))
        if tx is None:
            self.stats.stray_responses += 1
            self._events.append(ResponseReceived(response, None, source))
            return
        tx.receive_response(response, source, now)

    def _malformed(self, data: bytes, exc: SipParseError, source: Address) -> None:
        headers = exc.partial if isinstance(exc.partial, Headers) else None
        if data.startswith(b"SIP/") or headers is None or not _can_answer(headers):
            self.stats.malformed_dropped += 1
            return
        # Stateless answer (RFC 3261 §8.2.6, §21.4.1): the reason phrase says what is wrong.
        response = Response(exc.status, _reason_phrase(exc.reason))
        for via in headers.get_all("via"):
            response.headers.add("via", via)
        for name in ("from", "to", "call-id", "cseq"):
            first = headers.get(name)  # the first only: the error may be a duplicate
            if first is not None:
                response.headers.add(name, first)
        if response.headers.get("to") and "tag=" not in (response.headers.get("to") or ""):
            response.headers.set("to", f"{response.headers.get('to')};tag={self.ids.token(6)}")
        self.stats.malformed_answered += 1
        self._outbox.append((response.to_bytes(), source))

    # ------------------------------------------------------------------ API for the TU

    def respond(self, tx: ServerTransaction, response: Response, now: float) -> None:
        """Send `response` through its server transaction."""
        self._now = now
        if self.user_agent and "server" not in response.headers:
            response.headers.add("Server", self.user_agent)
        tx.respond(response, now)

    def send_request(self, request: Request, destination: Address, now: float) -> ClientTransaction:
        """Start a client transaction for `request` towards `destination`.

        The request must carry a top Via with a fresh branch (see `new_via`).
        """
        self._now = now
        branch = request.top_via.branch
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = ClientInviteTransaction(self, (branch, "INVITE"), request, destination)
        else:
            tx = ClientNonInviteTransaction(self, (branch, request.method), request, destination)
        self._client[tx.key] = tx
        self.stats.client_transactions += 1
        self.stats.requests_sent += 1
        tx.start()
        return tx

    def refuse_stateless(self, tx: ServerTransaction, response: Response) -> None:
        """Answer `tx`'s request once with `response` and forget the transaction: no
        retransmissions, no state (for requests from sources we do not serve; a retransmitted
        request gets one more answer, never more answers than requests)."""
        if self.user_agent and "server" not in response.headers:
            response.headers.add("Server", self.user_agent)
        self._outbox.append((response.to_bytes(), tx.peer))
        self.stats.responses_sent += 1
        tx.terminate()
        self._server.pop(tx.key, None)

    def drop(self, tx: ServerTransaction) -> None:
        """Forget `tx` without answering its request (a banned source: not even a 403 for it;
        a retransmission is dropped the same way)."""
        tx.terminate()
        self._server.pop(tx.key, None)

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        """Send without a transaction (the ACK for a 2xx, a 2xx retransmission)."""
        self._outbox.append((message.to_bytes(), destination))

    def new_branch(self) -> str:
        return BRANCH_MAGIC + self.ids.token(8)

    def transport_failed(self, destination: Address, reason: str, now: float) -> None:
        """The transport could not reach `destination`: fail its client transactions."""
        self._now = now
        for tx in [t for t in self._client.values() if t.peer == destination]:
            tx.terminate()
            self._events.append(TransportFailed(destination, tx, reason))

    # ------------------------------------------------------------------ output

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        if self._trying:
            self._send_trying()
        out = self._outbox
        self._outbox = []
        return out

    def _send_trying(self) -> None:
        for tx in self._trying:
            request = tx.request
            if tx.last_data is None and tx.state is TxState.PROCEEDING and request is not None \
                    and self._server.get(tx.key) is tx:
                tx.respond(make_response(request, 100), self._now)
        self._trying.clear()

    def next_event(self) -> object | None:
        if self._event_pos < len(self._events):
            event = self._events[self._event_pos]
            self._event_pos += 1
            if self._event_pos == len(self._events):
                self._events.clear()
                self._event_pos = 0
            return event
        return None

    def get_timer(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, tx, name = heapq.heappop(heap)
            if tx.timer_seqs.get(name) != seq:
                continue  # disarmed or re-armed since
            del tx.timer_seqs[name]
            tx.timer_fired(name, now)

    @property
    def transaction_count(self) -> int:
        return len(self._server) + len(self._client)

    # ------------------------------------------------------------------ TransactionHost

    def send(self, tx: Transaction, data: bytes) -> None:
        if isinstance(tx, ServerTransaction):
            self.stats.responses_sent += 1
        self._outbox.append((data, tx.peer))

    def arm(self, tx: Transaction, timer: str, delay: float) -> None:
        self._timer_seq += 1
        tx.timer_seqs[timer] = self._timer_seq
        heapq.heappush(self._heap, (self._now + delay, self._timer_seq, tx, timer))

    def disarm(self, tx: Transaction, timer: str) -> None:
        tx.timer_seqs.pop(timer, None)

    def emit(self, event: object) -> None:
        if isinstance(event, TransactionTimedOut):
            self.stats.transaction_timeouts += 1
        self._events.append(event)

    def finished(self, tx: Transaction) -> None:
        if isinstance(tx, ServerTransaction):
            if self._server.get(tx.key) is tx:
                del self._server[tx.key]
        elif self._client.get(tx.key) is tx:
            del self._client[tx.key]

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _server_key(request: Request, method: str) -> tuple[str, ...]:
        via = request.top_via
        branch = via.branch
        host, port = via.sent_by
        if branch.startswith(BRANCH_MAGIC):
            return (branch, host, str(port), method)
        # RFC 2543 peers (§17.2.3 fallback): match on the dialog and CSeq instead.
        from_tag = request.from_addr.tag or ""
        return (request.call_id, from_tag, str(request.cseq.number), host, str(port), method)


# Requests that end at us and are never forwarded are served even with Max-Forwards: 0.
_MAX_FORWARDS_EXEMPT = frozenset({"REGISTER", "OPTIONS", "ACK", "CANCEL", "BYE"})


def _reply_address(request: Request, source: Address) -> Address:
    """Where responses to `request` go: always back to the address and port the request came
    from (RFC 3581 §4's rport behaviour for every request, as Kamailio's force_rport and
    Asterisk's force_rport=yes do), never to what the sender wrote in its Via: a forged Via
    must not make us send responses and their retransmissions to a third party."""
    return source


def _can_answer(headers: Headers) -> bool:
    # The Via routes the answer back and, with the CSeq method, matches it to the sender's
    # transaction (§17.1.3); without them an answer would reach nobody who could use it.
    return bool(headers.get("via")) and bool(headers.get("cseq"))


def _reason_phrase(reason: str) -> str:
    # A reason phrase is one line of text (RFC 3261 §25.1): no CR/LF, bounded length.
    text = "".join(ch if ch.isprintable() else "?" for ch in reason)
    return text[:120] or "Bad Request"
