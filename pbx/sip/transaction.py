"""The four SIP transaction state machines (RFC 3261 §17, with the RFC 6026 Accepted state) — L1.

Theory of operation
-------------------
A transaction never does I/O and never reads a clock. It is owned by a `TransactionHost` (the
`SipEndpoint`) and talks to it through four calls: `send(tx, data)` to put bytes on the wire
towards the transaction's peer, `arm(tx, timer, delay)` / `disarm(tx, timer)` for the lettered
timers, `emit(event)` to report upwards, and `finished(tx)` when it reaches Terminated. The host
feeds it what arrives (`receive_request`, `receive_response`), what the transaction user sends
(`respond`), and fired timers (`timer_fired`).

Each machine's legal transitions are a table; every state change goes through `_set_state`,
which raises `LocalProtocolError` on a transition the table does not allow. Retransmissions of
requests are absorbed here (the last response is sent again); retransmissions of responses are
absorbed by client transactions once a final response has been passed up.

Over reliable transports (TCP) the retransmit timers A, E and G are never armed and the
wait timers D, I, J and K are zero (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pbx.errors import LocalProtocolError
from pbx.sip.message import Request, Response
from pbx.sip.timers import TimerSettings

if TYPE_CHECKING:
    from pbx.sip.endpoint import Address


class TxState(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


S = TxState

# Legal transitions of each machine (RFC 3261 Figures 5–8, RFC 6026 Figures 5 and 7).
CLIENT_INVITE_TABLE = frozenset(
    {
        (S.CALLING, S.PROCEEDING),
        (S.CALLING, S.ACCEPTED),
        (S.CALLING, S.COMPLETED),
        (S.CALLING, S.TERMINATED),
        (S.PROCEEDING, S.ACCEPTED),
        (S.PROCEEDING, S.COMPLETED),
        (S.PROCEEDING, S.TERMINATED),
        (S.ACCEPTED, S.TERMINATED),
        (S.COMPLETED, S.TERMINATED),
    }
)
CLIENT_NON_INVITE_TABLE = frozenset(
    {
        (S.TRYING, S.PROCEEDING),
        (S.TRYING, S.COMPLETED),
        (S.TRYING, S.TERMINATED),
        (S.PROCEEDING, S.COMPLETED),
        (S.PROCEEDING, S.TERMINATED),
        (S.COMPLETED, S.TERMINATED),
    }
)
SERVER_INVITE_TABLE = frozenset(
    {
        (S.PROCEEDING, S.ACCEPTED),
        (S.PROCEEDING, S.COMPLETED),
        (S.PROCEEDING, S.TERMINATED),
        (S.ACCEPTED, S.TERMINATED),
        (S.COMPLETED, S.CONFIRMED),
        (S.COMPLETED, S.TERMINATED),
        (S.CONFIRMED, S.TERMINATED),
    }
)
SERVER_NON_INVITE_TABLE = frozenset(
    {
        (S.TRYING, S.PROCEEDING),
        (S.TRYING, S.COMPLETED),
        (S.TRYING, S.TERMINATED),
        (S.PROCEEDING, S.COMPLETED),
        (S.PROCEEDING, S.TERMINATED),
        (S.COMPLETED, S.TERMINATED),
    }
)


class TransactionHost(Protocol):
    """What a transaction needs from its owner."""

    timers: TimerSettings

    def send(self, tx: Transaction, data: bytes) -> None: ...

    def arm(self, tx: Transaction, timer: str, delay: float) -> None: ...

    def disarm(self, tx: Transaction, timer: str) -> None: ...

    def emit(self, event: object) -> None: ...

    def finished(self, tx: Transaction) -> None: ...


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction (or a stray one, `transaction` None)."""

    response: Response
    transaction: ClientTransaction | None
    source: Address


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B/F fired on a client transaction, or Timer H (no ACK) on a server one."""

    transaction: Transaction


class Transaction:
    """Common machinery of the four machines."""

    __slots__ = ("host", "key", "request", "method", "peer", "reliable", "state", "timer_seqs")
    TABLE: frozenset[tuple[TxState, TxState]] = frozenset()

    def __init__(
        self,
        host: TransactionHost,
        key: tuple[str, ...],
        request: Request,
        peer: Address,
        initial: TxState,
    ) -> None:
        self.host = host
        self.key = key
        # Released (None) once a non-INVITE server transaction has its final response: it
        # then lives on for Timer J holding only the bytes to resend, which keeps memory flat
        # at thousands of registrations per second.
        self.request: Request | None = request
        self.method = request.method
        self.peer = peer
        self.reliable = peer.transport != "udp"
        self.state = initial
        self.timer_seqs: dict[str, int] = {}

    def _set_state(self, new: TxState) -> None:
        old = self.state
        if (old, new) not in self.TABLE:
            raise LocalProtocolError(f"{type(self).__name__}: illegal {old.value} -> {new.value}")
        self.state = new
        if new is S.TERMINATED:
            for name in list(self.timer_seqs):
                self.host.disarm(self, name)
            self.host.finished(self)

    def timer_fired(self, timer: str, now: float) -> None:
        handler = getattr(self, f"_timer_{timer}", None)
        if handler is None:
            raise LocalProtocolError(f"{type(self).__name__} has no timer {timer}")
        handler(now)

    def terminate(self) -> None:
        """End the transaction now (transport failure, shutdown)."""
        if self.state is not S.TERMINATED:
            self._set_state(S.TERMINATED)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.key[0]} {self.state.value}>"


# ---------------------------------------------------------------- client transactions


class ClientTransaction(Transaction):
    __slots__ = ("data", "interval", "last_response", "sent_request")

    def __init__(
        self,
        host: TransactionHost,
        key: tuple[str, ...],
        request: Request,
        peer: Address,
        initial: TxState,
    ) -> None:
        super().__init__(host, key, request, peer, initial)
        self.sent_request = request
        self.data = request.to_bytes()
        self.interval = host.timers.t1
        self.last_response: Response | None = None

    def start(self) -> None:
        """Send the request and arm the first timers."""
        raise NotImplementedError

    def receive_response(self, response: Response, source: Address, now: float) -> None:
        raise NotImplementedError


class ClientInviteTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 with RFC 6026 §7.2 (Accepted, Timer M)."""

    __slots__ = ("ack_data",)
    TABLE = CLIENT_INVITE_TABLE

    def __init__(self, host: TransactionHost, key: tuple[str, ...], request: Request,
                 peer: Address) -> None:
        super().__init__(host, key, request, peer, S.CALLING)
        self.ack_data: bytes | None = None

    def start(self) -> None:
        self.host.send(self, self.data)
        if not self.reliable:
            self.host.arm(self, "A", self.interval)
        self.host.arm(self, "B", self.host.timers.b)

    def receive_response(self, response: Response, source: Address, now: float) -> None:
        status = response.status
        state = self.state
        if state in (S.CALLING, S.PROCEEDING):
            self.last_response = response
            if status < 200:
                if state is S.CALLING:
                    self.host.disarm(self, "A")
                    self.host.disarm(self, "B")
                    self._set_state(S.PROCEEDING)
                self.host.emit(ResponseReceived(response, self, source))
            elif status < 300:
                self.host.disarm(self, "A")
                self.host.disarm(self, "B")
                self._set_state(S.ACCEPTED)
                self.host.arm(self, "M", self.host.timers.m)
                self.host.emit(ResponseReceived(response, self, source))
            else:
                self.host.disarm(self, "A")
                self.host.disarm(self, "B")
                self._set_state(S.COMPLETED)
                self.ack_data = make_non_2xx_ack(self.sent_request, response).to_bytes()
                self.host.send(self, self.ack_data)
                self.host.arm(self, "D", self.host.timers.d(self.reliable))
                self.host.emit(ResponseReceived(response, self, source))
        elif state is S.ACCEPTED:
            if 200 <= status < 300:
                # 2xx retransmissions (or forks) go to the TU, which re-ACKs (RFC 6026 §7.2).
                self.host.emit(ResponseReceived(response, self, source))
        elif state is S.COMPLETED:
            if status >= 300 and self.ack_data is not None:
                self.host.send(self, self.ack_data)  # absorbed; ACK again (§17.1.1.2)

    def _timer_A(self, now: float) -> None:  # noqa: N802 - RFC timer names
        if self.state is S.CALLING:
            self.host.send(self, self.data)
            self.interval *= 2
            self.host.arm(self, "A", self.interval)

    def _timer_B(self, now: float) -> None:  # noqa: N802
        if self.state is S.CALLING:
            self._set_state(S.TERMINATED)
            self.host.emit(TransactionTimedOut(self))

    def _timer_D(self, now: float) -> None:  # noqa: N802
        self._set_state(S.TERMINATED)

    def _timer_M(self, now: float) -> None:  # noqa: N802
        self._set_state(S.TERMINATED)


class ClientNonInviteTransaction(ClientTransaction):
    """RFC 3261 §17.1.2."""

    __slots__ = ()
    TABLE = CLIENT_NON_INVITE_TABLE

    def __init__(self, host: TransactionHost, key: tuple[str, ...], request: Request,
                 peer: Address) -> None:
        super().__init__(host, key, request, peer, S.TRYING)

    def start(self) -> None:
        self.host.send(self, self.data)
        if not self.reliable:
            self.host.arm(self, "E", self.interval)
        self.host.arm(self, "F", self.host.timers.f)

    def receive_response(self, response: Response, source: Address, now: float) -> None:
        state = self.state
        if state not in (S.TRYING, S.PROCEEDING):
            return  # Completed absorbs retransmitted responses
        self.last_response = response
        if response.status < 200:
            if state is S.TRYING:
                self._set_state(S.PROCEEDING)
            self.host.emit(ResponseReceived(response, self, source))
            return
        self.host.disarm(self, "E")
        self.host.disarm(self, "F")
        self._set_state(S.COMPLETED)
        self.host.emit(ResponseReceived(response, self, source))
        delay = self.host.timers.k(self.reliable)
        if delay:
            self.host.arm(self, "K", delay)
        else:
            self._set_state(S.TERMINATED)

    def _timer_E(self, now: float) -> None:  # noqa: N802
        if self.state in (S.TRYING, S.PROCEEDING):
            self.host.send(self, self.data)
            t = self.host.timers
            # §17.1.2.2: doubles up to T2 in Trying; in Proceeding always T2.
            self.interval = min(self.interval * 2, t.t2) if self.state is S.TRYING else t.t2
            self.host.arm(self, "E", self.interval)

    def _timer_F(self, now: float) -> None:  # noqa: N802
        if self.state in (S.TRYING, S.PROCEEDING):
            self.host.disarm(self, "E")
            self._set_state(S.TERMINATED)
            self.host.emit(TransactionTimedOut(self))

    def _timer_K(self, now: float) -> None:  # noqa: N802
        self._set_state(S.TERMINATED)


# ---------------------------------------------------------------- server transactions


class ServerTransaction(Transaction):
    __slots__ = ("last_response", "last_data", "interval", "to_tag")

    def __init__(
        self,
        host: TransactionHost,
        key: tuple[str, ...],
        request: Request,
        peer: Address,
        initial: TxState,
    ) -> None:
        super().__init__(host, key, request, peer, initial)
        self.last_response: Response | None = None
        self.last_data: bytes | None = None
        self.interval = host.timers.t1
        self.to_tag: str | None = None

    def receive_request(self, request: Request, now: float) -> None:
        """A retransmission of the request (or the ACK for an INVITE)."""
        raise NotImplementedError

    def respond(self, response: Response, now: float) -> None:
        raise NotImplementedError

    @property
    def answered(self) -> bool:
        return self.state not in (S.TRYING, S.PROCEEDING)

    def _send_response(self, response: Response) -> None:
        self.last_response = response
        self.last_data = response.to_bytes()
        self.host.send(self, self.last_data)


class ServerInviteTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 with RFC 6026 §7.1 (Accepted, Timer L)."""

    __slots__ = ()
    TABLE = SERVER_INVITE_TABLE

    def __init__(self, host: TransactionHost, key: tuple[str, ...], request: Request,
                 peer: Address) -> None:
        super().__init__(host, key, request, peer, S.PROCEEDING)

    def receive_request(self, request: Request, now: float) -> None:
        if request.method == "ACK":
            if self.state is S.COMPLETED:
                self.host.disarm(self, "G")
                self.host.disarm(self, "H")
                self._set_state(S.CONFIRMED)
                delay = self.host.timers.i(self.reliable)
                if delay:
                    self.host.arm(self, "I", delay)
                else:
                    self._set_state(S.TERMINATED)
            return
        if self.state in (S.PROCEEDING, S.COMPLETED) and self.last_data is not None:
            self.host.send(self, self.last_data)  # §17.2.1: resend the last response
        # Accepted and Confirmed absorb retransmissions silently.

    def respond(self, response: Response, now: float) -> None:
        status = response.status
        state = self.state
        if state is S.PROCEEDING:
            self._send_response(response)
            if status < 200:
                return
            if status < 300:
                self._set_state(S.ACCEPTED)
                self.host.arm(self, "L", self.host.timers.l)
                return
            self._set_state(S.COMPLETED)
            if not self.reliable:
                self.host.arm(self, "G", self.interval)
            self.host.arm(self, "H", self.host.timers.h)
        elif state is S.ACCEPTED and 200 <= status < 300:
            self._send_response(response)  # TU retransmits its 2xx through us (RFC 6026)
        else:
            raise LocalProtocolError(f"cannot send {status} in {state.value}")

    def _timer_G(self, now: float) -> None:  # noqa: N802
        if self.state is S.COMPLETED and self.last_data is not None:
            self.host.send(self, self.last_data)
            self.interval = min(self.interval * 2, self.host.timers.t2)
            self.host.arm(self, "G", self.interval)

    def _timer_H(self, now: float) -> None:  # noqa: N802
        if self.state is S.COMPLETED:
            self.host.disarm(self, "G")
            self._set_state(S.TERMINATED)
            self.host.emit(TransactionTimedOut(self))

    def _timer_I(self, now: float) -> None:  # noqa: N802
        self._set_state(S.TERMINATED)

    def _timer_L(self, now: float) -> None:  # noqa: N802
        self._set_state(S.TERMINATED)


class ServerNonInviteTransaction(ServerTransaction):
    """RFC 3261 §17.2.2."""

    __slots__ = ()
    TABLE = SERVER_NON_INVITE_TABLE

    def __init__(self, host: TransactionHost, key: tuple[str, ...], request: Request,
                 peer: Address) -> None:
        super().__init__(host, key, request, peer, S.TRYING)

    def receive_request(self, request: Request, now: float) -> None:
        if self.state in (S.PROCEEDING, S.COMPLETED) and self.last_data is not None:
            self.host.send(self, self.last_data)
        # Trying: absorb silently (§17.2.2).

    def respond(self, response: Response, now: float) -> None:
        if self.state not in (S.TRYING, S.PROCEEDING):
            raise LocalProtocolError(f"cannot send {response.status} in {self.state.value}")
        self._send_response(response)
        if response.status < 200:
            if self.state is S.TRYING:
                self._set_state(S.PROCEEDING)
            return
        self._set_state(S.COMPLETED)
        self.request = None
        self.last_response = None
        delay = self.host.timers.j(self.reliable)
        if delay:
            self.host.arm(self, "J", delay)
        else:
            self._set_state(S.TERMINATED)

    def _timer_J(self, now: float) -> None:  # noqa: N802
        self._set_state(S.TERMINATED)


def make_non_2xx_ack(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300–699 (RFC 3261 §17.1.1.3)."""
    ack = Request("ACK", invite.uri)
    src = invite.headers
    ack.headers.add("Via", src.get("via") or "")
    for name in ("from", "call-id"):
        value = src.get(name)
        if value is not None:
            ack.headers.add(name, value)
    to = response.headers.get("to")
    ack.headers.add("To", to if to is not None else src.get("to") or "")
    ack.headers.add("CSeq", f"{invite.cseq.number} ACK")
    for route in src.get_all("route"):
        ack.headers.add("Route", route)
    ack.headers.add("Max-Forwards", "70")
    return ack
