"""SIP dialogs (RFC 3261 §12): the state two user agents share, and requests within it — L1.

A `Dialog` is created on the UAS side from an INVITE and the tag we answer with
(`Dialog.for_uas`), and on the UAC side from the INVITE we sent and a response that carries the
far end's tag (`Dialog.for_uac`). It knows the route set, the remote target (the peer's
Contact), both tags and both CSeq counters, and builds in-dialog requests (`make_request`) and
the ACK for a 2xx (`make_ack`, §13.2.2.4). With a loose first route (`;lr`) the Request-URI is
the remote target and the route set becomes the Route headers; with a strict one the Request-URI
is that route's URI and the remote target goes last in the Route headers (§12.2.1.1).

Where the request is sent is the caller's decision, not the dialog's (§8.1.2 says: the first
route set entry if there is one, else the remote target); the call legs send to the remote
target (`SipLeg._route`).

Pure: no I/O; branches come from the caller's `new_branch()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pbx.errors import SipParseError
from pbx.sip.message import Request, Response
from pbx.sip.uri import NameAddr, SipUri


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int = 0
    via_host: str = "127.0.0.1"
    via_port: int = 5060
    via_transport: str = "UDP"
    contact: str = ""

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def for_uas(cls, invite: Request, local_tag: str, contact: str, via: tuple[str, int, str]
                ) -> Dialog:
        """The dialog an INVITE creates when we answer it with `local_tag` (§12.1.1)."""
        remote_contacts = invite.contacts()
        if not remote_contacts or remote_contacts[0].uri is None:
            raise SipParseError("INVITE without a sip: Contact")
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_addr.tag or "",
            local_uri=invite.to_addr,
            remote_uri=invite.from_addr,
            remote_target=remote_contacts[0].uri,
            route_set=list(invite.headers.get_all("record-route")),
            local_cseq=0,
            remote_cseq=invite.cseq.number,
            via_host=via[0],
            via_port=via[1],
            via_transport=via[2],
            contact=contact,
        )

    @classmethod
    def for_uac(cls, invite: Request, response: Response, contact: str,
                via: tuple[str, int, str]) -> Dialog:
        """The dialog a response with a To tag creates for the INVITE we sent (§12.1.2)."""
        contacts = response.contacts()
        target = contacts[0].uri if contacts and contacts[0].uri is not None else None
        if target is None:
            target = invite.parsed_uri
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_addr.tag or "",
            remote_tag=response.to_addr.tag or "",
            local_uri=invite.from_addr,
            remote_uri=response.to_addr,
            remote_target=target,
            route_set=list(reversed(response.headers.get_all("record-route"))),
            local_cseq=invite.cseq.number,
            remote_cseq=0,
            via_host=via[0],
            via_port=via[1],
            via_transport=via[2],
            contact=contact,
        )

    def update_target(self, message: Request | Response) -> None:
        """A target refresh (re-INVITE, UPDATE or their 2xx) may change the remote Contact."""
        contacts = message.contacts()
        if contacts and contacts[0].uri is not None:
            self.remote_target = contacts[0].uri

    def make_request(self, method: str, branch: str, body: bytes = b"",
                     content_type: str | None = None, cseq: int | None = None) -> Request:
        """An in-dialog request (§12.2.1.1). CANCEL and ACK reuse a CSeq; others take the next."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri, routes = self._request_uri_and_routes()
        request = Request(method, uri, body=body)
        h = request.headers
        h.add("Via", f"SIP/2.0/{self.via_transport} {_host(self.via_host)}:{self.via_port}"
                     f";branch={branch};rport")
        h.add("Max-Forwards", "70")
        h.add("From", str(self.local_uri.with_tag(self.local_tag)))
        h.add("To", str(self.remote_uri.with_tag(self.remote_tag)))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        for route in routes:
            h.add("Route", route)
        if self.contact and method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
            h.add("Contact", self.contact)
        if content_type and body:
            h.add("Content-Type", content_type)
        return request

    def _request_uri_and_routes(self) -> tuple[str, list[str]]:
        # RFC 3261 §12.2.1.1: a strict router (first route without lr) expects its own URI as the
        # Request-URI and the remote target as the last Route.
        strict = _strict_uri(self.route_set[0]) if self.route_set else None
        if strict is None:
            return str(self.remote_target), list(self.route_set)
        return strict, [*self.route_set[1:], f"<{self.remote_target}>"]

    def make_ack(self, invite_cseq: int, branch: str) -> Request:
        """The ACK for a 2xx to the INVITE with `invite_cseq` (§13.2.2.4): a new transaction-
        less request with the INVITE's CSeq number."""
        return self.make_request("ACK", branch, cseq=invite_cseq)

    def accepts(self, request: Request) -> bool:
        """Whether an in-dialog request's CSeq is in order (§12.2.2); updates the counter."""
        number = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq and number <= self.remote_cseq:
            return False
        self.remote_cseq = number
        return True


def _strict_uri(route: str) -> str | None:
    """The Request-URI for a strict-routing `route`, or None when it routes loosely (has lr).

    Parameters a Request-URI may not carry (`method`, §19.1.1) and URI headers are stripped.
    A route that is not a sip(s) name-addr is kept as a loose Route rather than raising: it came
    from the peer's Record-Route.
    """
    try:
        uri = NameAddr.parse(route).uri
    except SipParseError:
        return None
    if uri is None or "lr" in uri.params:
        return None
    uri = uri.copy()
    uri.params.pop("method", None)
    uri.headers = ""
    return str(uri)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
