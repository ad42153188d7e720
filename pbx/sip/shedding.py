"""Overload shedding at the SIP layer: refuse late INVITEs before they are parsed — L1, sans-IO.

Theory of operation
-------------------
Past its capacity a PBX falls behind on every call it takes; refusing the excess early with
``503 Service Unavailable`` and ``Retry-After`` (RFC 3261 §21.5.4) lets the carrier route those
calls elsewhere and keeps the accepted ones healthy. Which INVITEs to refuse: the ones that
waited too long unread in the socket's kernel receive queue (the transport asks the kernel for
the datagram's arrival time; `SipEndpoint.queue_age`). A loop that is busy all the time runs its
timers nearly on time while datagrams age in the socket buffer, where no lag probe sees them; an
INVITE that waited longer than the limit (400 ms by default, just under T1 = 500 ms, when its
caller retransmits) would cost a whole set-up only to be late, while its retransmission waits in
the same queue. Refusing exactly those lets the queue drain until INVITEs are fresh again, so
the PBX keeps taking as many calls as it can finish in time; a burst that drains sooner costs
nothing.

What makes it work under 3x overload is that a refusal is cheap: at that load two of three
INVITEs are refused, and a refusal that costs a full parse, a transaction and a trip through
the call layer eats the CPU the accepted calls need. So the endpoint refuses a late INVITE
from its raw bytes: `scan_invite` splits the head into lines and picks out the five headers a
response copies (Via, From, To, Call-ID, CSeq) — nothing else is parsed — and `refusal` builds
the 503 as bytes. No transaction is kept (a retransmitted INVITE gets one more 503, never more
answers than requests); the branch is remembered for a few seconds so the ACK for the 503 is
dropped just as cheaply (`scan_branch`). An INVITE the scanner does not fully understand (folded
or repeated headers, no CRLF CRLF, a To tag — a re-INVITE of a call already talking — or a
retransmission of an INVITE already being served) goes the normal way, where the call layer's
own limits still apply.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pbx.errors import SipParseError
from pbx.sip.message import Via

# compact forms (RFC 3261 §7.3.3) of the headers a response copies
_NAMES = {b"via": b"via", b"v": b"via", b"from": b"from", b"f": b"from", b"to": b"to",
          b"t": b"to", b"call-id": b"call-id", b"i": b"call-id", b"cseq": b"cseq"}
_BUCKETS = (50, 100, 250, 500)  # ms: upper bounds of the queue-age histogram
_REMEMBER_S = 32.0  # how long a refused branch's ACK is absorbed (Timer J's 64*T1)
_REMEMBER_MAX = 8192


@dataclass(frozen=True, slots=True)
class InviteHead:
    """The parts of an INVITE a stateless response needs, as received (bytes)."""

    vias: tuple[bytes, ...]
    from_: bytes
    to: bytes
    call_id: bytes
    cseq: bytes
    top_via: Via


def scan_invite(data: bytes) -> InviteHead | None:
    """The head of an INVITE datagram, or None when it is not plainly well-formed (then the
    full parser decides what it is)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    found: dict[bytes, bytes] = {}
    vias: list[bytes] = []
    for line in data[:end].split(b"\r\n")[1:]:
        if not line or line[0] in b" \t":
            return None  # a folded line: leave it to the parser
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        key = _NAMES.get(name.strip().lower())
        if key is None:
            continue
        value = value.strip()
        if key == b"via":
            vias.append(value)
        elif key in found:
            return None  # a repeated single-value header is the parser's 400
        else:
            found[key] = value
    if not vias or len(found) != 4:
        return None
    try:
        top = Via.parse(vias[0].split(b",", 1)[0].decode("utf-8"))
    except (SipParseError, UnicodeDecodeError, ValueError):
        return None
    return InviteHead(tuple(vias), found[b"from"], found[b"to"], found[b"call-id"],
                      found[b"cseq"], top)


def has_to_tag(to: bytes) -> bool:
    """Whether a To header value carries a tag (outside its quoted display name)."""
    tail = to.rsplit(b">", 1)[-1] if b">" in to else to
    return b";tag=" in tail.lower().replace(b" ", b"")


def scan_branch(data: bytes) -> bytes | None:
    """The branch of a request's top Via, found in the raw bytes without parsing the rest."""
    lowered = data[: data.find(b"\r\n\r\n") if b"\r\n\r\n" in data else len(data)].lower()
    at = lowered.find(b"\r\nvia:")
    if at < 0:
        at = lowered.find(b"\r\nv:")
        if at < 0:
            return None
    line_end = lowered.find(b"\r\n", at + 2)
    line = data[at: line_end if line_end > 0 else len(data)]
    start = line.lower().find(b"branch=")
    if start < 0:
        return None
    start += 7
    stop = start
    while stop < len(line) and line[stop] not in b";, \t\r\n":
        stop += 1
    return line[start:stop] or None


def refusal(head: InviteHead, source_host: str, source_port: int, to_tag: str,
            retry_after_s: int, server: str) -> bytes:
    """A 503 for `head` as bytes: the request's Vias (the top one marked with where the
    request really came from), From, To with our tag, Call-ID and CSeq copied, Retry-After,
    no body."""
    top = head.top_via
    top.mark_received(source_host, source_port)
    lines = [b"SIP/2.0 503 Service Unavailable", b"Via: " + str(top).encode()]
    first, *vias = head.vias
    _, comma, others = first.partition(b",")
    if comma:
        lines.append(b"Via: " + others.strip())
    lines.extend(b"Via: " + via for via in vias)
    lines += [
        b"From: " + head.from_,
        b"To: " + head.to + b";tag=" + to_tag.encode(),
        b"Call-ID: " + head.call_id,
        b"CSeq: " + head.cseq,
        b"Retry-After: " + str(retry_after_s).encode(),
    ]
    if server:
        lines.append(b"Server: " + server.encode())
    lines.append(b"Content-Length: 0")
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass(slots=True)
class QueueShedding:
    """The limit, the counters and the refused branches of queue-age shedding. `limit_s` 0
    turns it off. `queued_ms` counts new INVITEs by how long they waited unread (bucket upper
    bounds in ms, "more" above the last)."""

    limit_s: float = 0.0
    retry_after_s: int = 1
    shed: int = 0
    acks_absorbed: int = 0
    queued_ms: dict[str, int] = field(
        default_factory=lambda: {**{str(b): 0 for b in _BUCKETS}, "more": 0})
    _refused: OrderedDict[bytes, float] = field(default_factory=OrderedDict)

    def measured(self, queued_s: float) -> None:
        ms = queued_s * 1000
        bucket = next((str(b) for b in _BUCKETS if ms < b), "more")
        self.queued_ms[bucket] += 1

    def remember(self, branch: str, now: float) -> None:
        refused = self._refused
        refused[branch.encode()] = now
        while refused and (len(refused) > _REMEMBER_MAX
                           or next(iter(refused.values())) < now - _REMEMBER_S):
            refused.popitem(last=False)

    def absorbs(self, branch: bytes | None) -> bool:
        """Whether `branch` is a refused INVITE's (its ACK is dropped)."""
        if branch is None or branch not in self._refused:
            return False
        self.acks_absorbed += 1
        return True

    @property
    def remembering(self) -> bool:
        return bool(self._refused)


__all__ = ["InviteHead", "QueueShedding", "has_to_tag", "refusal", "scan_branch", "scan_invite"]
