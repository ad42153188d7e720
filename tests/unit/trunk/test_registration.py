"""TrunkRegistration: REGISTER to a carrier (RFC 3261 §10.2) with digest auth (§22, RFC 7616),
refresh at 80 % of the granted lifetime, exponential back-off after failures and timeouts,
and unregistration on stop. Driven with a fake `now`; the carrier's answers are real
`Response` objects built from the REGISTER we sent (or parsed from tests/data/sip).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx.call.leg_events import SendRequest
from pbx.clock import CountingIds
from pbx.sip import auth
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response, make_response
from pbx.sip.parser import parse_message
from pbx.trunk.registration import (
    BACKOFF_FIRST_S,
    BACKOFF_MAX_S,
    REFRESH_FRACTION,
    RegState,
    TrunkRegistration,
    TrunkStatus,
)

DATA = Path(__file__).parents[2] / "data" / "sip"
CARRIER = Address("udp", "192.0.2.10", 5060)
DOMAIN = "carrier.example"
USER = "hotline"
PASSWORD = "trunk-Geheim"
CALL_ID = "reg1@pbx"


class Net:
    """Our side of the wire, with counted tags and branches."""

    def __init__(self, via: tuple[str, int, str] = ("127.0.0.1", 5060, "UDP"),
                 contact: str = "<sip:pbx@127.0.0.1:5060>") -> None:
        self.ids = CountingIds("x")
        self.via = via
        self.contact = contact

    def new_branch(self) -> str:
        return "z9hG4bK" + self.ids.token()

    def new_tag(self) -> str:
        return "tag" + self.ids.token()

    def local_contact(self, transport: str) -> str:
        return self.contact

    def local_via(self, transport: str) -> tuple[str, int, str]:
        return self.via


def make_reg(expires: int = 3600, net: Net | None = None) -> TrunkRegistration:
    return TrunkRegistration("carrier", net or Net(), CARRIER, DOMAIN, USER, PASSWORD, expires,
                             CALL_ID)


def sent(actions: list[object]) -> Request:
    """The one REGISTER in `actions`, checked to go to the carrier under the trunk's leg."""
    (action,) = actions
    assert isinstance(action, SendRequest)
    assert action.destination == CARRIER
    assert action.leg == "trunkreg:carrier"
    return action.request


def answer(request: Request, status: int, reason: str, *headers: tuple[str, str]) -> Response:
    response = make_response(request, status, reason, to_tag="carrier1")
    for name, value in headers:
        response.headers.add(name, value)
    return response


def challenge(nonce: str, algorithm: str = "MD5") -> str:
    return f'Digest realm="{DOMAIN}", nonce="{nonce}", algorithm={algorithm}, qop="auth"'


def registered(expires: int = 3600, now: float = 0.0) -> tuple[TrunkRegistration, Request]:
    """A registration that got a 200 granting `expires` at `now`; the REGISTER it sent."""
    reg = make_reg(expires)
    request = sent(reg.start(now))
    assert reg.on_response(request, answer(request, 200, "OK", ("Expires", str(expires))),
                           now) == []
    assert reg.state is RegState.REGISTERED
    return reg, request


def failed_once(now: float = 0.0) -> TrunkRegistration:
    reg = make_reg()
    reg.start(now)
    assert reg.on_timeout(now) == []
    return reg


# --- the REGISTER -------------------------------------------------------------------------------


def test_new_registration_is_idle() -> None:
    reg = make_reg()
    assert reg.state is RegState.IDLE
    assert reg.leg == "trunkreg:carrier"
    assert reg.cseq == 0
    assert reg.next_deadline() is None
    assert reg.status() == TrunkStatus("carrier", "idle", None, 0, "", 0)


def test_start_sends_register_fields() -> None:
    reg = make_reg()
    request = sent(reg.start(5.0))
    assert reg.state is RegState.REGISTERING
    assert reg.next_deadline() is None
    assert request.method == "REGISTER"
    assert request.uri == "sip:carrier.example"
    assert request.call_id == CALL_ID
    assert (request.cseq.number, request.cseq.method) == (1, "REGISTER")
    assert str(request.from_addr.uri) == "sip:hotline@carrier.example"
    assert request.from_addr.tag == "tagx1"
    assert str(request.to_addr.uri) == "sip:hotline@carrier.example"
    assert request.to_addr.tag is None
    (contact,) = request.contacts()
    assert str(contact.uri) == "sip:hotline@127.0.0.1:5060"
    assert request.headers.get("expires") == "3600"
    assert request.headers.get("max-forwards") == "70"
    assert "authorization" not in request.headers
    assert "proxy-authorization" not in request.headers


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        (("127.0.0.1", 5060, "UDP"), ("UDP", "127.0.0.1", 5060)),
        (("10.0.0.5", 5080, "TCP"), ("TCP", "10.0.0.5", 5080)),
        (("::1", 5060, "UDP"), ("UDP", "::1", 5060)),
    ],
    ids=["udp-ipv4", "tcp-ipv4", "udp-ipv6"],
)
def test_register_via(via: tuple[str, int, str], expected: tuple[str, str, int]) -> None:
    request = sent(make_reg(net=Net(via=via)).start(0.0))
    top = request.top_via
    assert (top.transport, top.host, top.port) == expected
    assert top.branch == "z9hG4bKx2"
    assert "rport" in top.params and top.params["rport"] is None


def test_register_roundtrips_through_the_parser() -> None:
    request = sent(make_reg().start(0.0))
    again = parse_message(request.to_bytes())
    assert isinstance(again, Request)
    assert again.to_bytes() == request.to_bytes()


# --- success, granted lifetime, refresh ---------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "granted"),
    [
        ((("Contact", "<sip:hotline@127.0.0.1:5060>;expires=1800"),), 1800),
        ((("Expires", "600"),), 600),
        ((("Contact", "<sip:hotline@127.0.0.1:5060>;expires=300"), ("Expires", "900")), 300),
        ((("Contact", "<sip:hotline@127.0.0.1:5060>"), ("Expires", "900")), 900),
        ((), 3600),
        ((("Expires", "soon"),), 3600),
        ((("Expires", "0"),), 1),
    ],
    ids=["contact-expires", "expires-header", "contact-beats-header", "contact-without-param",
         "nothing-granted-asked", "garbage-header-asked", "zero-at-least-one"],
)
def test_200_grants_lifetime_and_schedules_refresh(headers: tuple[tuple[str, str], ...],
                                                  granted: int) -> None:
    reg = make_reg()
    request = sent(reg.start(100.0))
    assert reg.on_response(request, answer(request, 200, "OK", *headers), 100.0) == []
    assert reg.state is RegState.REGISTERED
    assert reg.expires_at == 100.0 + granted
    assert reg.next_deadline() == 100.0 + granted * REFRESH_FRACTION
    assert reg.last_status == 200
    assert reg.last_error == ""
    assert reg.failures == 0


@pytest.mark.parametrize("status", [100, 180, 183], ids=["trying", "ringing", "progress"])
def test_provisional_response_is_ignored(status: int) -> None:
    reg = make_reg()
    request = sent(reg.start(0.0))
    assert reg.on_response(request, answer(request, status, "Whatever"), 0.5) == []
    assert reg.state is RegState.REGISTERING
    assert reg.last_status == 0


def test_no_refresh_before_the_deadline() -> None:
    reg, _ = registered(expires=1000, now=0.0)
    assert reg.handle_timer(799.9) == []
    assert reg.state is RegState.REGISTERED
    assert reg.next_deadline() == 800.0


def test_refresh_at_80_percent_keeps_call_id_and_tag_with_next_cseq() -> None:
    reg, first = registered(expires=1000, now=0.0)
    refresh = sent(reg.handle_timer(800.0))
    assert reg.state is RegState.REGISTERING
    assert reg.next_deadline() is None
    assert refresh.call_id == first.call_id
    assert refresh.from_addr.tag == first.from_addr.tag
    assert refresh.cseq.number == first.cseq.number + 1
    assert refresh.top_via.branch != first.top_via.branch
    assert refresh.headers.get("expires") == "1000"
    assert reg.expires_at == 1000.0  # the old binding is still valid until then


def test_refresh_success_moves_expiry() -> None:
    reg, _ = registered(expires=1000, now=0.0)
    refresh = sent(reg.handle_timer(800.0))
    reg.on_response(refresh, answer(refresh, 200, "OK", ("Expires", "1000")), 801.0)
    assert reg.state is RegState.REGISTERED
    assert reg.expires_at == 1801.0
    assert reg.next_deadline() == 801.0 + 800.0


# --- digest authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"], ids=["md5", "sha256"])
def test_401_is_answered_with_digest_credentials(algorithm: str) -> None:
    reg = make_reg()
    first = sent(reg.start(0.0))
    actions = reg.on_response(
        first, answer(first, 401, "Unauthorized",
                      ("WWW-Authenticate", challenge("n1", algorithm))), 0.1)
    second = sent(actions)
    assert reg.state is RegState.REGISTERING
    assert reg.last_status == 401
    assert second.cseq.number == 2
    assert second.call_id == first.call_id
    assert second.from_addr.tag == first.from_addr.tag
    assert second.headers.get("expires") == "3600"
    value = second.headers.get("authorization")
    assert value is not None
    credentials = auth.parse_credentials(value)
    assert credentials.username == USER
    assert credentials.realm == DOMAIN
    assert credentials.nonce == "n1"
    assert credentials.uri == "sip:carrier.example"
    assert credentials.algorithm == algorithm
    assert credentials.qop == "auth"
    assert credentials.nc == "00000001"
    assert credentials.response == auth.expected_response(
        algorithm, auth.ha1(algorithm, USER, DOMAIN, PASSWORD), "n1", credentials.nc,
        credentials.cnonce, "auth", "REGISTER", "sip:carrier.example")


def test_captured_401_answers_the_preferred_sha256_challenge() -> None:
    reg = make_reg()
    first = sent(reg.start(0.0))
    response = parse_message((DATA / "response_401.txt").read_bytes())
    assert isinstance(response, Response)
    second = sent(reg.on_response(first, response, 0.1))
    value = second.headers.get("authorization")
    assert value is not None
    credentials = auth.parse_credentials(value)
    assert credentials.algorithm == "SHA-256"
    assert credentials.realm == "hotline.example"
    assert credentials.nonce == "xyz"


def test_200_after_challenge_registers() -> None:
    reg = make_reg()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(
        first, answer(first, 401, "Unauthorized", ("WWW-Authenticate", challenge("n1"))), 0.1))
    assert reg.on_response(second, answer(second, 200, "OK", ("Expires", "600")), 0.2) == []
    assert reg.state is RegState.REGISTERED
    assert reg.expires_at == 600.2


def test_same_nonce_twice_means_wrong_credentials() -> None:
    reg = make_reg()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(
        first, answer(first, 401, "Unauthorized", ("WWW-Authenticate", challenge("n1"))), 0.1))
    actions = reg.on_response(
        second, answer(second, 401, "Unauthorized", ("WWW-Authenticate", challenge("n1"))), 0.2)
    assert actions == []
    assert reg.state is RegState.FAILED
    assert reg.last_error == "authentication refused"
    assert reg.last_status == 401
    assert reg.failures == 1
    assert reg.next_deadline() == 0.2 + BACKOFF_FIRST_S


def test_new_nonce_is_answered_again() -> None:
    reg = make_reg()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(
        first, answer(first, 401, "Unauthorized", ("WWW-Authenticate", challenge("n1"))), 0.1))
    stale = f'{challenge("n2")}, stale=true'
    third = sent(reg.on_response(
        second, answer(second, 401, "Unauthorized", ("WWW-Authenticate", stale)), 0.2))
    assert third.cseq.number == 3
    value = third.headers.get("authorization")
    assert value is not None
    assert auth.parse_credentials(value).nonce == "n2"


def test_refresh_answers_the_same_nonce_again() -> None:
    reg = make_reg(expires=1000)
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(
        first, answer(first, 401, "Unauthorized", ("WWW-Authenticate", challenge("n1"))), 0.0))
    reg.on_response(second, answer(second, 200, "OK"), 0.0)
    refresh = sent(reg.handle_timer(800.0))
    assert "authorization" not in refresh.headers
    again = sent(reg.on_response(
        refresh, answer(refresh, 401, "Unauthorized", ("WWW-Authenticate", challenge("n1"))),
        800.1))
    assert reg.state is RegState.REGISTERING
    assert again.headers.get("authorization") is not None


@pytest.mark.parametrize(
    "headers",
    [(), (("WWW-Authenticate", 'Basic realm="carrier.example"'),),
     (("WWW-Authenticate", challenge("n1", "SHA-512-256-unknown")),)],
    ids=["no-challenge", "basic-only", "unsupported-algorithm"],
)
def test_401_without_usable_challenge_fails(headers: tuple[tuple[str, str], ...]) -> None:
    reg = make_reg()
    first = sent(reg.start(0.0))
    assert reg.on_response(first, answer(first, 401, "Unauthorized", *headers), 1.0) == []
    assert reg.state is RegState.FAILED
    assert reg.last_error == "authentication refused"
    assert reg.next_deadline() == 1.0 + BACKOFF_FIRST_S


def test_407_is_answered_with_proxy_authorization() -> None:
    reg = make_reg()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(
        first, answer(first, 407, "Proxy Authentication Required",
                      ("Proxy-Authenticate", challenge("p1"))), 0.1))
    value = second.headers.get("proxy-authorization")
    assert value is not None
    assert auth.parse_credentials(value).nonce == "p1"
    assert "authorization" not in second.headers


# --- failures and back-off ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(403, "Forbidden"), (404, "Not Found"), (500, "Server Internal Error"),
     (503, "Service Unavailable"), (603, "Decline")],
    ids=["403", "404", "500", "503", "603"],
)
def test_final_error_fails_with_backoff(status: int, reason: str) -> None:
    reg = make_reg()
    request = sent(reg.start(0.0))
    assert reg.on_response(request, answer(request, status, reason), 2.0) == []
    assert reg.state is RegState.FAILED
    assert reg.last_status == status
    assert reg.last_error == f"{status} {reason}"
    assert reg.failures == 1
    assert reg.expires_at is None
    assert reg.next_deadline() == 2.0 + BACKOFF_FIRST_S


def test_timeout_fails_with_backoff() -> None:
    reg = make_reg()
    reg.start(0.0)
    assert reg.on_timeout(32.0) == []
    assert reg.state is RegState.FAILED
    assert reg.last_error == "no response (timeout)"
    assert reg.last_status == 0
    assert reg.failures == 1
    assert reg.next_deadline() == 32.0 + BACKOFF_FIRST_S


@pytest.mark.parametrize("state", ["idle", "registered"], ids=["idle", "registered"])
def test_timeout_outside_registering_is_ignored(state: str) -> None:
    reg = make_reg() if state == "idle" else registered()[0]
    before = (reg.state, reg.next_deadline(), reg.failures)
    assert reg.on_timeout(10.0) == []
    assert (reg.state, reg.next_deadline(), reg.failures) == before


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 30.0), (2, 60.0), (3, 120.0), (4, 240.0), (5, 480.0), (6, 600.0), (7, 600.0)],
    ids=[f"failure-{n}" for n in range(1, 8)],
)
def test_backoff_doubles_to_ten_minutes(failures: int, delay: float) -> None:
    reg = make_reg()
    now = 0.0
    reg.start(now)
    for _ in range(failures - 1):
        reg.on_timeout(now)
        now = reg.next_deadline() or 0.0
        sent(reg.handle_timer(now))
    reg.on_timeout(now)
    assert reg.failures == failures
    assert reg.next_deadline() == now + delay
    assert delay <= BACKOFF_MAX_S


def test_retry_after_backoff_sends_register_without_credentials() -> None:
    reg = failed_once(now=0.0)
    assert reg.handle_timer(29.9) == []
    retry = sent(reg.handle_timer(30.0))
    assert reg.state is RegState.REGISTERING
    assert retry.cseq.number == 2
    assert "authorization" not in retry.headers
    assert reg.failures == 1


def test_success_after_failures_resets_them() -> None:
    reg = failed_once(now=0.0)
    retry = sent(reg.handle_timer(30.0))
    reg.on_response(retry, answer(retry, 200, "OK"), 30.5)
    assert reg.state is RegState.REGISTERED
    assert reg.failures == 0
    assert reg.last_error == ""
    assert reg.status() == TrunkStatus("carrier", "registered", 3630.5, 200, "", 0)


def test_status_reports_failure() -> None:
    reg = make_reg()
    request = sent(reg.start(0.0))
    reg.on_response(request, answer(request, 403, "Forbidden"), 1.0)
    assert reg.status() == TrunkStatus("carrier", "failed", None, 403, "403 Forbidden", 1)


# --- 423 Interval Too Brief (RFC 3261 §10.2.8) --------------------------------------------------


def test_423_retries_with_min_expires() -> None:
    reg = make_reg(expires=60)
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(
        first, answer(first, 423, "Interval Too Brief", ("Min-Expires", "600")), 0.1))
    assert reg.state is RegState.REGISTERING
    assert reg.expires == 600
    assert second.headers.get("expires") == "600"
    assert second.cseq.number == 2


@pytest.mark.parametrize(
    "headers", [(), (("Min-Expires", "later"),)], ids=["no-min-expires", "garbage"],
)
def test_423_without_usable_min_expires_fails(headers: tuple[tuple[str, str], ...]) -> None:
    reg = make_reg(expires=60)
    first = sent(reg.start(0.0))
    assert reg.on_response(first, answer(first, 423, "Interval Too Brief", *headers), 0.1) == []
    assert reg.state is RegState.FAILED
    assert reg.last_error == "423 Interval Too Brief"
    assert reg.expires == 60


# --- stop = unregister --------------------------------------------------------------------------


def test_stop_when_registered_sends_expires_zero() -> None:
    reg, first = registered(expires=1000)
    unregister = sent(reg.stop(50.0))
    assert reg.state is RegState.REGISTERING
    assert reg.next_deadline() is None
    assert unregister.headers.get("expires") == "0"
    assert unregister.call_id == first.call_id
    assert unregister.cseq.number == first.cseq.number + 1
    (contact,) = unregister.contacts()
    assert str(contact.uri) == "sip:hotline@127.0.0.1:5060"


def test_unregister_200_goes_idle_without_refresh() -> None:
    reg, _ = registered(expires=1000)
    unregister = sent(reg.stop(50.0))
    assert reg.on_response(unregister, answer(unregister, 200, "OK"), 50.1) == []
    assert reg.state is RegState.IDLE
    assert reg.expires_at is None
    assert reg.next_deadline() is None
    assert reg.handle_timer(800.0) == []


def test_unregister_challenge_is_answered_with_expires_zero() -> None:
    reg, _ = registered(expires=1000)
    unregister = sent(reg.stop(50.0))
    answered = sent(reg.on_response(
        unregister, answer(unregister, 401, "Unauthorized", ("WWW-Authenticate", challenge("u1"))),
        50.1))
    assert answered.headers.get("expires") == "0"
    assert answered.headers.get("authorization") is not None


@pytest.mark.parametrize(
    "state", ["idle", "registering", "failed"], ids=["idle", "registering", "failed"],
)
def test_stop_when_not_registered_sends_nothing(state: str) -> None:
    reg = make_reg()
    if state == "registering":
        reg.start(0.0)
    elif state == "failed":
        reg = failed_once()
    assert reg.stop(1.0) == []
    assert reg.state is RegState.IDLE
    assert reg.next_deadline() is None
    assert reg.handle_timer(1000.0) == []


def test_late_response_after_stop_is_ignored() -> None:
    reg = make_reg()
    request = sent(reg.start(0.0))
    reg.stop(0.5)
    assert reg.on_response(request, answer(request, 200, "OK"), 1.0) == []
    assert reg.state is RegState.IDLE
    assert reg.expires_at is None


def test_failed_unregister_does_not_register_again() -> None:
    reg, _ = registered(expires=3600)
    sent(reg.stop(50.0))
    reg.on_timeout(82.0)
    assert reg.next_deadline() is None
    assert reg.handle_timer(82.0 + BACKOFF_FIRST_S) == []


def test_start_after_stop_registers_again() -> None:
    reg, _ = registered(expires=1000)
    unregister = sent(reg.stop(50.0))
    reg.on_response(unregister, answer(unregister, 200, "OK"), 50.1)
    request = sent(reg.start(60.0))
    assert request.headers.get("expires") == "1000"
    reg.on_response(request, answer(request, 200, "OK", ("Expires", "1000")), 60.1)
    assert reg.state is RegState.REGISTERED
    assert reg.next_deadline() == 60.1 + 800.0


def test_granted_lifetime_is_our_contacts_not_the_first_listed() -> None:
    reg = make_reg()
    request = sent(reg.start(0.0))
    response = answer(request, 200, "OK",
                      ("Contact", "<sip:hotline@198.51.100.7:5060>;expires=3500"),
                      ("Contact", "<sip:hotline@127.0.0.1:5060>;expires=120"))
    reg.on_response(request, response, 0.0)
    assert reg.expires_at == 120.0
    assert reg.next_deadline() == 120.0 * REFRESH_FRACTION


def test_refused_unregister_goes_idle_without_retry() -> None:
    reg, _ = registered(expires=3600)
    unregister = sent(reg.stop(50.0))
    assert reg.on_response(unregister, answer(unregister, 403, "Forbidden"), 50.1) == []
    assert reg.state is RegState.IDLE
    assert reg.last_error == "unregistration failed: 403 Forbidden"
    assert reg.failures == 0
    assert reg.next_deadline() is None


def test_423_to_unregister_does_not_register_again() -> None:
    reg, _ = registered(expires=3600)
    unregister = sent(reg.stop(50.0))
    assert reg.on_response(unregister, answer(unregister, 423, "Interval Too Brief",
                                              ("Min-Expires", "7200")), 50.1) == []
    assert reg.state is RegState.IDLE
    assert reg.expires == 3600


def test_answer_to_a_replaced_register_is_ignored() -> None:
    reg, _ = registered(expires=1000)
    unregister = sent(reg.stop(50.0))
    request = sent(reg.start(50.5))  # started again before the unREGISTER was answered
    assert reg.on_response(unregister, answer(unregister, 200, "OK"), 50.6) == []
    assert reg.state is RegState.REGISTERING
    reg.on_response(request, answer(request, 200, "OK", ("Expires", "1000")), 50.7)
    assert reg.status().state == "registered"


@pytest.mark.parametrize(
    ("contacts", "granted"),
    [((("Contact", "<sip:hotline@198.51.100.7:5060>;expires=3500"),), 900),
     ((), 900),
     ((("Contact", "<sip:hotline@127.0.0.1:5060>;expires=120"),), 120)],
    ids=["only-others", "no-contact", "ours"],
)
def test_granted_lifetime_falls_back_to_expires_header(
        contacts: tuple[tuple[str, str], ...], granted: int) -> None:
    reg = make_reg()
    request = sent(reg.start(0.0))
    reg.on_response(request, answer(request, 200, "OK", *contacts, ("Expires", "900")), 0.0)
    assert reg.expires_at == float(granted)
