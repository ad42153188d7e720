"""REFER (RFC 3515) and Replaces (RFC 3891): the transfer target, the dialog it replaces, and
the NOTIFYs of the implicit subscription a REFER creates — L2, pure.

A phone transfers a call by sending a REFER inside the call's dialog. `Refer-To` names the
transfer target; for an attended transfer its URI embeds a `Replaces` header
(`<sip:bob@pbx?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>`) naming the consultation dialog
that the target should replace. `parse_refer_to` splits the two; `parse_replaces` reads a
Replaces value from there or from an INVITE's own `Replaces:` header. The agent that accepts a
REFER reports the transfer's progress in NOTIFYs with `message/sipfrag` bodies
(`ReferSubscription.notify`, RFC 3515 §2.4.4–§2.4.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from pbx.errors import SipParseError
from pbx.sip.dialog import Dialog
from pbx.sip.message import REASON_PHRASES, Request
from pbx.sip.transaction import ServerTransaction
from pbx.sip.uri import NameAddr

SIPFRAG = "message/sipfrag;version=2.0"  # RFC 3420; RFC 3515 §2.4.5
REFER_EXPIRES_S = 60  # how long we claim the implicit subscription lasts (RFC 3515 §2.4.4)
TRANSFER_PENDING = 500  # the status refusing a REFER while another one is under way


@dataclass(frozen=True, slots=True)
class Replaces:
    """A Replaces value (RFC 3891 §6.1). At the UA that receives it, `to_tag` is the *local* tag
    of the dialog to replace and `from_tag` its remote tag (§3)."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"


def parse_replaces(value: str) -> Replaces | None:
    """`callid;to-tag=a;from-tag=b[;early-only]` (RFC 3891 §6.1), already URL-decoded. None when
    the Call-ID, the to-tag or the from-tag is missing (all three are mandatory)."""
    call_id, *params = value.split(";")
    call_id = call_id.strip()
    tags: dict[str, str] = {}
    early_only = False
    for param in params:
        name, eq, val = param.partition("=")
        name = name.strip().lower()
        if name == "early-only" and not eq:
            early_only = True
        elif name in ("to-tag", "from-tag") and val.strip():
            tags[name] = val.strip().strip('"')
    if not call_id or " " in call_id or len(tags) != 2:
        return None
    return Replaces(call_id, tags["to-tag"], tags["from-tag"], early_only)


@dataclass(frozen=True, slots=True)
class ReferTarget:
    """What a Refer-To names: the URI (as text, without an embedded Replaces header) and the
    dialog to replace, if any."""

    uri: str
    replaces: Replaces | None = None


def parse_refer_to(value: str) -> ReferTarget:
    """Split a Refer-To value (RFC 3515 §2.1) into the target URI and its embedded Replaces
    (RFC 3891 §6.1, URL-encoded in the URI's headers). Raises `SipParseError` (400) when the
    value or the embedded Replaces is malformed."""
    try:
        addr = NameAddr.parse(value)
    except SipParseError:
        raise SipParseError("Bad Refer-To") from None
    if addr.uri is None:
        return ReferTarget(addr.raw_uri)  # tel: or another scheme: no URI headers to read
    uri = addr.uri.copy()
    kept: list[str] = []
    replaces: Replaces | None = None
    for item in uri.headers.split("&") if uri.headers else []:
        name, _, val = item.partition("=")
        if unquote(name).strip().lower() != "replaces":
            kept.append(item)
            continue
        replaces = parse_replaces(unquote(val))
        if replaces is None:
            raise SipParseError("Bad Replaces in Refer-To")
    uri.headers = "&".join(kept)
    return ReferTarget(str(uri), replaces)


def sipfrag(status: int, reason: str = "") -> bytes:
    """A message/sipfrag body holding only a status line (RFC 3420 §2; RFC 3515 §2.4.5)."""
    return f"SIP/2.0 {status} {reason or REASON_PHRASES.get(status, '')}\r\n".encode()


@dataclass(slots=True)
class ReferSubscription:
    """The implicit subscription one REFER creates (RFC 3515 §2.4.4), from the REFER until our
    final NOTIFY. `event` is `refer`, or `refer;id=<REFER CSeq>` for the second and later
    REFERs of a dialog (§2.4.6). `first_notify` is the CSeq of its first NOTIFY: a failure
    response to an older NOTIFY is not about this subscription."""

    transaction: ServerTransaction
    request: Request
    event: str = "refer"
    accepted: bool = False
    first_notify: int = 0

    def notify(self, dialog: Dialog, branch: str, status: int, reason: str,
               final: bool) -> Request:
        """The NOTIFY reporting `status` of the referred request (§2.4.5)."""
        request = dialog.make_request("NOTIFY", branch, sipfrag(status, reason), SIPFRAG)
        request.headers.add("Event", self.event)
        state = ("terminated;reason=noresource" if final
                 else f"active;expires={REFER_EXPIRES_S}")
        request.headers.add("Subscription-State", state)
        if not self.first_notify:
            self.first_notify = request.cseq.number
        return request


class ReferUsage:
    """The REFER usage of one dialog (RFC 3515; "usage" as in RFC 5057): at most one implicit
    subscription at a time. `receive` checks a REFER and opens the subscription; `accept`,
    `notify`, `reject` and `notify_failed` follow it. The leg builds the responses."""

    def __init__(self) -> None:
        self.current: ReferSubscription | None = None
        self.count = 0  # REFERs taken in this dialog: the second and later need an id (§2.4.6)

    def receive(self, request: Request, tx: ServerTransaction) -> ReferTarget:
        """The target of a REFER. Raises `SipParseError` with the status to refuse with: 400
        without exactly one Refer-To (RFC 3515 §2.4.1) or with a malformed one, or
        `TRANSFER_PENDING` (500, to be sent with Retry-After) while another REFER is under way.
        """
        values = request.headers.get_all("refer-to")
        if len(values) != 1:
            raise SipParseError("Missing Refer-To" if not values else "More than one Refer-To")
        target = parse_refer_to(values[0])
        if self.current is not None:
            # RFC 3515 §2.4.6 lets a dialog carry several REFERs (their NOTIFYs told apart by
            # id=CSeq), but we carry out one transfer at a time. 491 answers glare with a
            # request of *ours* (RFC 3261 §14.2, §21.4.27); for a second request from the same
            # side while its first is unfinished, §14.2 prescribes 500 with Retry-After.
            raise SipParseError("Transfer in progress", TRANSFER_PENDING)
        self.count += 1
        event = "refer" if self.count == 1 else f"refer;id={request.cseq.number}"
        self.current = ReferSubscription(tx, request, event)
        return target

    def unanswered(self) -> ReferSubscription | None:
        """The REFER still waiting for `accept` or `reject`, if any."""
        return self.current if self.current is not None and not self.current.accepted else None

    def accept(self, tx: ServerTransaction) -> ReferSubscription | None:
        """The subscription `tx` opened, now accepted; None if `tx` is not the open REFER."""
        refer = self.current
        if refer is None or refer.transaction is not tx or refer.accepted:
            return None
        refer.accepted = True
        return refer

    def notify(self, dialog: Dialog, branch: str, status: int, reason: str,
               final: bool) -> Request | None:
        """The next NOTIFY of the accepted subscription (None without one); `final` ends it."""
        refer = self.current
        if refer is None or not refer.accepted:
            return None
        if final:
            self.current = None
        return refer.notify(dialog, branch, status, reason, final)

    def reject(self, tx: ServerTransaction) -> bool:
        """Forget the REFER of `tx`; False when it was already accepted (then it cannot be
        refused any more)."""
        refer = self.current
        if refer is not None and refer.transaction is tx:
            if refer.accepted:
                return False
            self.current = None
        return True

    def notify_failed(self, cseq: int) -> None:
        """A NOTIFY got an error response (481 …) or timed out: the subscription is over,
        quietly (RFC 6665 §4.2.2)."""
        current = self.current
        if current is not None and current.first_notify and cseq >= current.first_notify:
            self.current = None
