"""Malformed SIP gets a 400 (with a reason phrase that says what is wrong) or is dropped, and
the server keeps serving: after every bad message a valid REGISTER is still answered."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx

pytestmark = pytest.mark.integration


def register(branch: str, extra: str = "", cl: str = "0") -> bytes:
    return (
        "REGISTER sip:hotline.example SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch};rport\r\n"
        "From: <sip:1001@hotline.example>;tag=abc\r\n"
        "To: <sip:1001@hotline.example>\r\n"
        f"Call-ID: {branch}@test\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:1001@127.0.0.1:5999>\r\n{extra}Content-Length: {cl}\r\n\r\n"
    ).encode()


GOOD = register("good")
MALFORMED = {
    "truncated": (GOOD[:90], None),
    "bad content-length": (register("cl", cl="400"), b"400 Content-Length 400 exceeds"),
    "non-numeric content-length": (register("cl2", cl="abc"), b"400 bad Content-Length"),
    "missing call-id": (GOOD.replace(b"Call-ID: good@test\r\n", b""), None),
    # Without CSeq no response can be built (RFC 3261 §8.2.6.2 copies it): dropped.
    "missing cseq": (register("nocseq").replace(b"CSeq: 1 REGISTER\r\n", b""), None),
    "cseq method mismatch": (register("mm").replace(b"1 REGISTER", b"1 INVITE"),
                             b"400 CSeq method INVITE does not match REGISTER"),
    "missing via": (register("novia").split(b"\r\n", 2)[0] + b"\r\n"
                    + register("novia").split(b"\r\n", 2)[2], None),
    "garbage": (bytes(range(256)) * 4, None),
    "binary in headers": (register("bin", extra="X-Bad: \xff\xfe\r\n").replace(
        "ÿþ".encode(), b"\xff\xfe"), None),
    "bad request line": (GOOD.replace(b"REGISTER sip:hotline.example SIP/2.0",
                                      b"REGISTER  SIP/2.0"), b"400 Request-URI without scheme"),
    "bad max-forwards": (register("mf").replace(b"Max-Forwards: 70", b"Max-Forwards: -1"),
                         b"400 bad Max-Forwards"),
    "oversize": (register("big", extra="X-Pad: " + "a" * 12000 + "\r\n"), None),
    "bad version": (GOOD.replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1),
                    b"505 unsupported version"),
}


@pytest.fixture(scope="module")
def small_pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPbx]:
    config = base_config(agent_entries(2))
    config["sip"]["max_message_bytes"] = 8192
    running = start_pbx(tmp_path_factory.mktemp("malformed") / "pbx", config)
    try:
        yield running
    finally:
        running.stop()


def exchange(sock: socket.socket, data: bytes, wait: float = 1.0) -> list[bytes]:
    sock.send(data)
    sock.settimeout(wait)
    out = []
    try:
        while True:
            out.append(sock.recv(65535))
            sock.settimeout(0.2)
    except TimeoutError:
        return out


def still_serving(sock: socket.socket) -> bool:
    replies = exchange(sock, register(f"ok{time.monotonic_ns()}"), wait=5.0)
    return any(r.startswith(b"SIP/2.0 401 ") for r in replies)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_udp_malformed_is_answered_or_dropped_and_server_survives(
    small_pbx: RunningPbx, name: str
) -> None:
    data, expected = MALFORMED[name]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", small_pbx.sip_port))
        replies = exchange(sock, data)
        if expected is None:
            assert all(r.startswith(b"SIP/2.0 4") or r.startswith(b"SIP/2.0 5")
                       for r in replies), replies
        else:
            assert len(replies) == 1 and replies[0].startswith(b"SIP/2.0 " + expected), replies
        assert still_serving(sock)
    assert small_pbx.alive()


def test_tcp_unframeable_stream_is_closed_and_others_are_served(small_pbx: RunningPbx) -> None:
    bad = register("tcpbad").replace(b"Content-Length: 0\r\n", b"").replace(b"UDP", b"TCP")
    with socket.create_connection(("127.0.0.1", small_pbx.sip_port), timeout=5) as conn:
        conn.sendall(bad)
        conn.settimeout(5)
        received = b""
        while True:  # the server answers what it can and then closes the stream
            chunk = conn.recv(65535)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"SIP/2.0 400 missing Content-Length on a stream transport")
    with socket.create_connection(("127.0.0.1", small_pbx.sip_port), timeout=5) as conn:
        conn.sendall(register("tcpok").replace(b"UDP", b"TCP"))
        conn.settimeout(5)
        assert conn.recv(65535).startswith(b"SIP/2.0 401 ")


def test_no_handler_crashed(small_pbx: RunningPbx, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", small_pbx.sip_port))
        for data, _ in MALFORMED.values():
            sock.send(data)
        assert still_serving(sock)
    events = {e.get("event") for e in small_pbx.logs()}
    assert "event_handler_failed" not in events
    stats = small_pbx.stats()["sip"]
    assert stats["malformed_answered"] >= 6 and stats["malformed_dropped"] >= 3


def test_options_is_answered_with_capabilities(small_pbx: RunningPbx) -> None:
    options = register("opt").replace(b"REGISTER", b"OPTIONS")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", small_pbx.sip_port))
        (reply,) = exchange(sock, options, wait=5)
    assert reply.startswith(b"SIP/2.0 200 OK")
    for header in (b"\r\nAllow: ", b"\r\nAccept: application/sdp", b"\r\nSupported: "):
        assert header in reply
