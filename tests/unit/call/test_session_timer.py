"""RFC 4028 session timers on their own: parsing, who refreshes, when the timer is due."""

from __future__ import annotations

import pytest

from pbx.call.session_timer import (
    SessionExpires,
    SessionTerms,
    SessionTimer,
    terms_as_uac,
    terms_as_uas,
)
from pbx.sip.message import Request, Response


def message(*headers: tuple[str, str]) -> Request:
    request = Request("INVITE", "sip:pbx@127.0.0.1")
    for name, value in headers:
        request.headers.add(name, value)
    return request


@pytest.mark.parametrize(("value", "expected"), [
    ("1800", SessionExpires(1800)),
    ("1800;refresher=uac", SessionExpires(1800, "uac")),
    (" 90 ; Refresher=UAS", SessionExpires(90, "uas")),
    ("1800;refresher=proxy", SessionExpires(1800)),
    ("1800;foo;refresher=uac", SessionExpires(1800, "uac")),
    ("0", None),
    ("soon", None),
    ("", None),
    (None, None),
])
def test_session_expires_parse(value: str | None, expected: SessionExpires | None) -> None:
    assert SessionExpires.parse(value) == expected


SUPPORTS = ("Supported", "timer")
REQUIRES = ("Require", "timer")


@pytest.mark.parametrize(("headers", "current", "expected"), [
    # §9 table: the refresher the UAC names; unnamed, the caller refreshes.
    ((SUPPORTS, ("Session-Expires", "1800")), None, SessionTerms(1800, False, True)),
    ((SUPPORTS, ("Session-Expires", "1800;refresher=uac")), None, SessionTerms(1800, False, True)),
    ((SUPPORTS, ("Session-Expires", "1800;refresher=uas")), None, SessionTerms(1800, True, True)),
    # The UAC does not support timers (a proxy inserted the header): we refresh.
    ((("Session-Expires", "1800"),), None, SessionTerms(1800, True, False)),
    ((("Supported", "100rel, timer"), ("Session-Expires", "600")), None,
     SessionTerms(600, False, True)),
    ((REQUIRES, ("Session-Expires", "600;refresher=uac")), None, SessionTerms(600, False, True)),
    # No Session-Expires: no timer, or the running one continues (a refresh).
    ((SUPPORTS,), None, SessionTerms()),
    ((), None, SessionTerms()),
    ((), SessionTerms(120, False, True), SessionTerms(120, False, False)),
    ((SUPPORTS,), SessionTerms(120, True, True), SessionTerms(120, True, True)),
    # Below 90 s: 422 when timers are required, else ignored.
    ((REQUIRES, ("Session-Expires", "60")), None, None),
    ((SUPPORTS, ("Session-Expires", "60")), None, SessionTerms()),
    ((SUPPORTS, ("Session-Expires", "60")), SessionTerms(120), SessionTerms(120, False, True)),
])
def test_terms_as_uas(headers: tuple[tuple[str, str], ...], current: SessionTerms | None,
                      expected: SessionTerms | None) -> None:
    assert terms_as_uas(message(*headers), current) == expected


@pytest.mark.parametrize(("header", "current", "expected"), [
    ("1800;refresher=uac", None, SessionTerms(1800, True, True)),
    ("1800;refresher=uas", None, SessionTerms(1800, False, True)),
    ("1800", None, SessionTerms(1800, True, True)),
    (None, None, SessionTerms()),
    (None, SessionTerms(300, True, False), SessionTerms(300, True, False)),
])
def test_terms_as_uac(header: str | None, current: SessionTerms | None,
                      expected: SessionTerms) -> None:
    response = Response(200)
    if header is not None:
        response.headers.add("Session-Expires", header)
    assert terms_as_uac(response, current) == expected


@pytest.mark.parametrize(("terms", "as_uas", "value", "headers"), [
    (SessionTerms(1800, False, True), True, "1800;refresher=uac",
     [("Session-Expires", "1800;refresher=uac"), ("Require", "timer")]),
    (SessionTerms(1800, True, True), True, "1800;refresher=uas",
     [("Session-Expires", "1800;refresher=uas"), ("Require", "timer")]),
    (SessionTerms(1800, True, False), True, "1800;refresher=uas",
     [("Session-Expires", "1800;refresher=uas")]),
    (SessionTerms(900, True, True), False, "900;refresher=uac",
     [("Session-Expires", "900;refresher=uas"), ("Require", "timer")]),
    (SessionTerms(), True, "0;refresher=uac", []),
])
def test_header_values(terms: SessionTerms, as_uas: bool, value: str,
                       headers: list[tuple[str, str]]) -> None:
    assert terms.session_expires(we_are_uas=as_uas) == value
    assert terms.response_headers() == headers


@pytest.mark.parametrize(("interval", "we_refresh", "refresh_at", "bye_at"), [
    # §10: refresh at half the interval; BYE min(32 s, interval/3) before the expiry.
    (90, False, None, 60.0),
    (90, True, 45.0, 60.0),
    (120, False, None, 88.0),
    (1800, False, None, 1768.0),
    (1800, True, 900.0, 1768.0),
])
def test_timer_deadlines(interval: int, we_refresh: bool, refresh_at: float | None,
                         bye_at: float) -> None:
    timer = SessionTimer()
    timer.apply(SessionTerms(interval, we_refresh), now=0.0)
    assert (timer.refresh_at, timer.bye_at) == (refresh_at, bye_at)
    assert timer.next_deadline() == (refresh_at if refresh_at is not None else bye_at)
    assert timer.due(bye_at - 0.1) == ("refresh" if we_refresh else None)
    assert timer.due(bye_at) == "expire"
    timer.apply(SessionTerms(interval, we_refresh), now=100.0)  # a refresh
    assert timer.bye_at == bye_at + 100.0 and timer.due(bye_at) != "expire"
    timer.stop()
    assert timer.next_deadline() is None and not timer.running


def refresh_answer(status: int, *headers: tuple[str, str],
                   method: str = "UPDATE") -> Response:
    response = Response(status)
    response.headers.add("CSeq", f"2 {method}")
    for name, value in headers:
        response.headers.add(name, value)
    return response


@pytest.mark.parametrize(("response", "outcome", "interval", "refresh_at"), [
    (refresh_answer(200), "done", 1800, 1000.0 + 900),
    (refresh_answer(200, ("Session-Expires", "600;refresher=uas")), "done", 600, None),
    (refresh_answer(481), "lost", 1800, None),
    (refresh_answer(408), "lost", 1800, None),
    (refresh_answer(491), "wait", 1800, 1000.0 + 3.0),  # the glare wait passed in
    (refresh_answer(422, ("Min-SE", "3600")), "wait", 3600, 1000.0),
    (refresh_answer(405), "no-update", 1800, 1000.0),
    (refresh_answer(501), "no-update", 1800, 1000.0),
    (refresh_answer(405, method="INVITE"), "wait", 1800, 1000.0 + 384.0),
    (refresh_answer(500), "wait", 1800, 1000.0 + 384.0),  # halfway to the BYE at 1768
])
def test_answered(response: Response, outcome: str, interval: int,
                  refresh_at: float | None) -> None:
    timer = SessionTimer()
    timer.apply(SessionTerms(1800, True), now=0.0)
    timer.refresh_at = None  # the refresh went out at 900
    assert timer.answered(response, 1000.0, glare_wait=3.0) == outcome
    assert timer.interval == interval and timer.refresh_at == refresh_at
    assert timer.outstanding is None
