"""SIP over TCP, sans-IO: a message in progress is timed from its first byte, idle connections
expire unless they carry a registration, and connections are capped per host and in total —
all driven with a fake clock."""

from __future__ import annotations

import pytest

from pbx.errors import SipParseError
from pbx.transport.sip import ConnectionCaps, TcpLimits, TcpStream

LIMITS = TcpLimits(message_timeout_s=30, idle_timeout_s=120, registered_idle_timeout_s=3900,
                   max_connections_per_address=2, max_connections=3, refused_log_interval_s=60)
OPTIONS = (
    b"OPTIONS sip:hotline.example SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKtcp1\r\n"
    b"From: <sip:probe@hotline.example>;tag=1\r\nTo: <sip:hotline.example>\r\n"
    b"Call-ID: tcp1@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 10\r\n\r\n0123456789"
)


def test_a_half_sent_request_is_cut_message_timeout_after_its_first_byte() -> None:
    stream = TcpStream(LIMITS, 65535, now=0.0)
    assert stream.receive(OPTIONS[:40], now=5.0) == []
    assert stream.deadline() == 35.0
    for t in (10.0, 20.0, 30.0):  # trickling more in does not move the deadline
        assert stream.receive(OPTIONS[int(t) : int(t) + 1], now=t) == []
        assert stream.expired(t, registered=False) is None
    assert stream.deadline() == 35.0
    assert stream.expired(35.0, registered=False) == "incomplete_message"
    assert stream.expired(35.0, registered=True) == "incomplete_message"


def test_a_body_shorter_than_content_length_waits_then_times_out_without_error() -> None:
    stream = TcpStream(LIMITS, 65535, now=0.0)
    assert stream.receive(OPTIONS[:-4], now=1.0) == []  # headers done, body 6 of 10
    assert stream.expired(30.9, registered=False) is None
    assert stream.expired(31.0, registered=False) == "incomplete_message"


def test_a_body_in_pieces_within_the_timeout_is_one_message() -> None:
    stream = TcpStream(LIMITS, 65535, now=0.0)
    pieces = [OPTIONS[:100], OPTIONS[100:-7], OPTIONS[-7:-3], OPTIONS[-3:]]
    out: list[bytes] = []
    for i, piece in enumerate(pieces):
        out += stream.receive(piece, now=1.0 + 9 * i)
    assert out == [OPTIONS]
    assert stream.incomplete_since is None and stream.last_activity == 28.0
    assert stream.deadline() == 148.0  # idle from the message's completion


def test_the_next_message_in_progress_is_timed_from_its_own_first_byte() -> None:
    stream = TcpStream(LIMITS, 65535, now=0.0)
    assert stream.receive(OPTIONS + OPTIONS[:50], now=10.0) == [OPTIONS]
    assert stream.incomplete_since == 10.0
    assert stream.receive(OPTIONS[50:], now=20.0) == [OPTIONS]
    assert stream.incomplete_since is None


def test_idle_connections_expire_unless_registered() -> None:
    stream = TcpStream(LIMITS, 65535, now=0.0)
    stream.receive(OPTIONS, now=0.0)
    assert not stream.idle_due(119.0)
    assert stream.idle_due(120.0)
    assert stream.expired(120.0, registered=False) == "idle"
    assert stream.expired(120.0, registered=True) is None
    assert stream.deadline(registered=True) == 3900.0
    assert stream.expired(3900.0, registered=True) == "idle_registered"


def test_keepalives_and_our_sending_are_activity() -> None:
    stream = TcpStream(LIMITS, 65535, now=0.0)
    assert stream.receive(b"\r\n\r\n", now=100.0) == []  # RFC 5626 §3.5.1 double CRLF
    assert stream.incomplete_since is None
    assert stream.deadline() == 220.0
    stream.sent(200.0)
    assert stream.deadline() == 320.0


def test_an_unframeable_stream_raises() -> None:
    stream = TcpStream(LIMITS, 65535, now=0.0)
    with pytest.raises(SipParseError, match="missing Content-Length"):
        stream.receive(OPTIONS.replace(b"Content-Length: 10\r\n", b""), now=1.0)


def test_caps_per_host_and_in_total() -> None:
    caps = ConnectionCaps(LIMITS)
    assert caps.admit("192.0.2.1") and caps.admit("192.0.2.1")
    assert not caps.admit("192.0.2.1")  # third from one host
    assert caps.admit("192.0.2.2")
    assert not caps.admit("192.0.2.3")  # three in all
    assert caps.refused == 2
    caps.release("192.0.2.1")
    assert caps.admit("192.0.2.3")
    for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        caps.release(host)
    assert caps.total == 0 and caps.by_host == {}


def test_refusals_are_logged_once_per_host_per_interval() -> None:
    caps = ConnectionCaps(LIMITS)
    assert caps.log_refusal("192.0.2.1", 0.0)
    assert not caps.log_refusal("192.0.2.1", 59.0)
    assert caps.log_refusal("192.0.2.2", 59.0)
    assert caps.log_refusal("192.0.2.1", 60.0)
