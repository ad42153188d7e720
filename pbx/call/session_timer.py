"""RFC 4028 session timers: who refreshes a dialog's session, and when — L2, pure.

Theory of operation
-------------------
Either end of an INVITE dialog may ask for a session timer with `Session-Expires`. The end that
is the UAS of such a request picks the refresher and says so in its 2xx (§9, `terms_as_uas`);
the UAC of the request reads that choice from the 2xx (§7.2, `terms_as_uac`). `refresher=uac`
and `refresher=uas` name roles in *one transaction*; `SessionTerms.we_refresh` is the same
choice in dialog terms, which is what the leg keeps.

From then on every 2xx'd re-INVITE or UPDATE, from either side, is a refresh (§10) and
restarts the `SessionTimer` (`apply`). When we refresh, the timer is due for a "refresh" at half
the interval (§10): the leg sends `make_refresh` and reports the final response to `answered`,
which says what it means. Whoever refreshes, the timer is due to "expire" at the session
expiration minus min(32 s, interval/3) (§10), when the leg ends the call with a BYE. The timer
reads no clock: `now` comes in, `next_deadline()` goes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pbx.sip.dialog import Dialog
from pbx.sip.message import CSeq, Message, Request, Response

MIN_SE = 90  # RFC 4028 §4, §5: the smallest interval anyone may ask for; our Min-SE
BYE_MARGIN_S = 32.0  # §10: end the session min(32 s, interval/3) before it expires


def tokens(message: Message, header: str) -> frozenset[str]:
    """The comma-separated tokens of every `header` value, lower-cased (Supported, Require,
    Allow — one header line or many)."""
    joined = ",".join(message.headers.get_all(header))
    return frozenset(t.strip().lower() for t in joined.split(",") if t.strip())


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A `Session-Expires` value (§4): `1800;refresher=uac`."""

    interval: int
    refresher: str | None = None  # "uac", "uas" or None (the UAS chooses)

    @classmethod
    def parse(cls, value: str | None) -> SessionExpires | None:
        """None when absent or malformed (a malformed timer is no timer)."""
        if value is None:
            return None
        seconds, *params = value.split(";")
        seconds = seconds.strip()
        if not seconds.isdigit() or not 0 < int(seconds) < 2**31:
            return None
        refresher = None
        for param in params:
            name, _, val = param.partition("=")
            if name.strip().lower() == "refresher" and val.strip().lower() in ("uac", "uas"):
                refresher = val.strip().lower()
        return cls(int(seconds), refresher)


@dataclass(frozen=True, slots=True)
class SessionTerms:
    """A negotiated session timer: `interval` seconds (0: none), and whether we refresh.
    `peer_supports` says the request showed `timer` in Supported or Require (§9: only then
    may our 2xx carry `Require: timer`)."""

    interval: int = 0
    we_refresh: bool = False
    peer_supports: bool = False

    def session_expires(self, we_are_uas: bool) -> str:
        """The header value for a transaction in which we are the UAS (or the UAC)."""
        refresher = "uas" if self.we_refresh == we_are_uas else "uac"
        return f"{self.interval};refresher={refresher}"

    def response_headers(self) -> list[tuple[str, str]]:
        """What our 2xx to a request carries (§9): Session-Expires with the refresher, and
        Require: timer when the peer supports timers (a MUST for refresher=uac)."""
        if not self.interval:
            return []
        headers = [("Session-Expires", self.session_expires(we_are_uas=True))]
        if self.peer_supports:
            headers.append(("Require", "timer"))
        return headers


def terms_as_uas(request: Message, current: SessionTerms | None) -> SessionTerms | None:
    """The terms our 2xx to `request` (an INVITE, re-INVITE or UPDATE) sets (§9).

    None means refuse with 422 and `Min-SE: 90`: the peer requires timers and asked for less
    than 90 s (§9, §7.4). A request without Session-Expires keeps `current` (a refresh of the
    running timer) or runs none. The refresher is whom the peer named; unnamed, the peer
    (the caller refreshes) — and us when the peer does not support timers at all (§9 table:
    a proxy inserted the header).
    """
    supported = tokens(request, "supported") | tokens(request, "require")
    peer_supports = "timer" in supported
    asked = SessionExpires.parse(request.headers.get("session-expires"))
    if asked is None or asked.interval < MIN_SE:
        if asked is not None and "timer" in tokens(request, "require"):
            return None
        if current is None or not current.interval:
            return SessionTerms()
        return SessionTerms(current.interval, current.we_refresh, peer_supports)
    we_refresh = not peer_supports or asked.refresher == "uas"
    return SessionTerms(asked.interval, we_refresh, peer_supports)


def terms_as_uac(response: Message, current: SessionTerms | None) -> SessionTerms:
    """The terms a 2xx to our INVITE, re-INVITE or UPDATE sets (§7.2): its Session-Expires, the
    refresher as it names it (unnamed: we, the UAC). Without the header the initial INVITE runs
    no timer; a refresh keeps the running one (we refresh, so the peer needs no say)."""
    given = SessionExpires.parse(response.headers.get("session-expires"))
    if given is None:
        return current if current is not None else SessionTerms()
    return SessionTerms(given.interval, given.refresher != "uas", True)


def min_se(message: Message) -> int:
    """The `Min-SE` value of a request or a 422 (§5), 0 when absent or malformed."""
    value = (message.headers.get("min-se") or "").split(";", 1)[0].strip()
    return int(value) if value.isdigit() and len(value) < 10 else 0


class SessionTimer:
    """The running session timer of one dialog. Driven by `apply` (a 2xx that set or refreshed
    the session), `refresh_sent`, `retry`, `refresh_failed` and `stop`; `due(now)` says what the
    leg must do, `next_deadline()` when to ask again."""

    def __init__(self) -> None:
        self.terms = SessionTerms()
        self.expires_at: float | None = None
        self.refresh_at: float | None = None
        self.outstanding: CSeq | None = None  # our refresh waiting for its final response

    @property
    def interval(self) -> int:
        return self.terms.interval

    @property
    def running(self) -> bool:
        return self.expires_at is not None

    def apply(self, terms: SessionTerms, now: float) -> None:
        """Start, or restart, the session under `terms` from a 2xx at `now` (§10)."""
        if not terms.interval:
            self.stop()
            return
        self.terms = terms
        self.expires_at = now + terms.interval
        # §10: "It is RECOMMENDED that this refresh be sent once half the session interval
        # has elapsed."
        self.refresh_at = now + terms.interval / 2 if terms.we_refresh else None

    def stop(self) -> None:
        """No session timer any more (an `outstanding` refresh still gets its answer)."""
        self.terms = SessionTerms()
        self.expires_at = self.refresh_at = None

    @property
    def bye_at(self) -> float | None:
        """§10: the BYE goes "slightly before the session expiration. The minimum of 32
        seconds and one third of the session interval is RECOMMENDED"."""
        if self.expires_at is None:
            return None
        return self.expires_at - min(BYE_MARGIN_S, self.interval / 3)

    def make_refresh(self, dialog: Dialog, branch: str, sdp: bytes,
                     headers: list[tuple[str, str]]) -> Request:
        """Our refresh (§7.4, §10): a body-less UPDATE when `sdp` is empty, else a re-INVITE
        carrying it, in the dialog's next CSeq. Its Session-Expires names us, the UAC of this
        request, as refresher. Nothing more is due until it is answered (`answered`)."""
        method = "INVITE" if sdp else "UPDATE"
        request = dialog.make_request(method, branch, sdp, "application/sdp" if sdp else None)
        request.headers.add("Session-Expires", self.terms.session_expires(we_are_uas=False))
        for name, value in headers:
            request.headers.add(name, value)
        self.outstanding = request.cseq
        self.refresh_at = None
        return request

    def answered(self, response: Response, now: float,
                 glare_wait: float) -> Literal["done", "lost", "no-update", "wait"]:
        """What the final response to our refresh means: "done" (a 2xx: the session restarts
        under the terms it sets, §7.2), "lost" (408 or 481: end the call with a BYE, §10),
        "no-update" (405/501 to an UPDATE: the peer cannot, a re-INVITE follows at once) or
        "wait" (the session stays as it was, RFC 3261 §14.1; a 491 retries after
        `glare_wait`, a 422 at once with the Min-SE it names, §7.4, others halfway)."""
        self.outstanding = None
        status = response.status
        if status < 300:
            self.apply(terms_as_uac(response, self.terms), now)
            return "done"
        if status in (408, 481):
            return "lost"
        if status == 491:
            self.retry(now + glare_wait)
        elif status == 422 and min_se(response) > self.interval:
            self.apply(SessionTerms(min_se(response), True, self.terms.peer_supports), now)
            self.retry(now)
        elif response.cseq.method == "UPDATE" and status in (405, 501):
            self.retry(now)
            return "no-update"
        else:
            self.refresh_failed(now)
        return "wait"

    def retry(self, at: float) -> None:
        """Send the refresh (again) at `at` (glare §14.1, 422 §7.4, a busy dialog)."""
        if self.running and self.terms.we_refresh:
            self.refresh_at = at

    def refresh_failed(self, now: float) -> None:
        """Our refresh got a final error that leaves the session as it was (RFC 3261 §14.1):
        try once more halfway to the expiry, if there is time left."""
        bye_at = self.bye_at
        if bye_at is not None and bye_at - now > 2.0:
            self.retry(now + (bye_at - now) / 2)

    def next_deadline(self) -> float | None:
        times = [t for t in (self.refresh_at, self.bye_at) if t is not None]
        return min(times) if times else None

    def due(self, now: float) -> Literal["refresh", "expire"] | None:
        bye_at = self.bye_at
        if bye_at is not None and now >= bye_at:
            return "expire"
        if self.refresh_at is not None and now >= self.refresh_at:
            return "refresh"
        return None
