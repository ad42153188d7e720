"""The RFC 4475/5118 torture messages against a running PBX, over UDP: each gets the final
status tests/data/torture/expected.yaml names (or silence), and after each the PBX still
answers a well-formed OPTIONS. SIP over TCP: a half-sent request is cut off after the
configured message timeout, connections beyond the per-address cap are refused while an
existing one keeps working, and a body arriving in pieces within the timeout is accepted."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbx.sip import auth
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx

pytestmark = pytest.mark.integration

TORTURE = Path(__file__).parents[1] / "data" / "torture"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((TORTURE / "expected.yaml").read_text())
MESSAGE_TIMEOUT_S = 2
IDLE_TIMEOUT_S = 5
PER_ADDRESS = 3


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPbx]:
    config = base_config(agent_entries(2))
    # The carrier sends from 127.0.0.2: its INVITEs pass the source policy and meet the
    # media-type checks (RFC 4475 §3.3.6, §3.3.15); everything else comes from 127.0.0.1.
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.2", "port": 5060,
                         "inbound_addresses": ["127.0.0.2/32"]}]
    config["sip"]["tcp"] = {
        "message_timeout_s": MESSAGE_TIMEOUT_S,
        "idle_timeout_s": IDLE_TIMEOUT_S,
        "max_connections_per_address": PER_ADDRESS,
        "max_connections": 50,
    }
    running = start_pbx(tmp_path_factory.mktemp("conformance") / "pbx", config)
    try:
        yield running
    finally:
        running.stop()


def options(tag: str, transport: str = "UDP", body: bytes = b"") -> bytes:
    content_type = "Content-Type: text/plain\r\n" if body else ""
    return (
        "OPTIONS sip:hotline.example SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK{tag};rport\r\n"
        f"From: <sip:probe@hotline.example>;tag={tag}\r\n"
        "To: <sip:hotline.example>\r\n"
        f"Call-ID: {tag}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"{content_type}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def own_transaction(data: bytes, name: str) -> bytes:
    """The message with a branch of its own: the RFC's messages reuse ids (z9hG4bKkdjuw with
    the same sent-by in several), which makes a later one a retransmission of an earlier one
    while its transaction lives (RFC 3261 §17.2.3), answered to the earlier sender. An empty
    cookie (RFC 4475 §3.2.1) stays empty."""
    suffix = re.sub(r"[^A-Za-z0-9]", "", name)[-16:].encode()
    return re.sub(rb"(branch\s*=\s*z9hG4bK[^;,\s]+)", rb"\g<1>" + suffix, data, count=1)


def final_statuses(sock: socket.socket, wait: float) -> list[int]:
    """Status codes of the final responses received within `wait` seconds of the first read
    (1xx are skipped; a retransmitted final counts once per distinct transaction)."""
    statuses: list[int] = []
    sock.settimeout(wait)
    try:
        while True:
            data = sock.recv(65535)
            sock.settimeout(0.3)
            if data.startswith(b"SIP/2.0 ") and not data.startswith(b"SIP/2.0 1"):
                statuses.append(int(data[8:11]))
    except TimeoutError:
        return statuses


def answers_options(sock: socket.socket) -> bool:
    sock.send(options(f"alive{time.monotonic_ns()}"))
    return 200 in final_statuses(sock, 5.0)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_udp_torture_message(pbx: RunningPbx, name: str) -> None:
    expected = EXPECTED[name]["live"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", pbx.sip_port))
        sock.send(own_transaction((TORTURE / name).read_bytes(), name))
        statuses = final_statuses(sock, 1.5 if expected == "none" else 5.0)
        if expected == "none":
            assert statuses == []
        else:
            assert statuses and set(statuses) == {expected}, statuses
        assert answers_options(sock)
    assert pbx.alive()


@pytest.mark.parametrize(("name", "status", "header", "value"), [
    ("rfc4475_3.3.6_invut.sip", 415, "accept", "application/sdp"),
    ("rfc4475_3.3.15_sdp01.sip", 406, "accept", "application/sdp"),
])
def test_carrier_invite_with_a_body_or_accept_we_cannot_serve(
    pbx: RunningPbx, name: str, status: int, header: str, value: str
) -> None:
    """From the trunk's address the RFC's own answers: 415 for a body type we do not know, 406
    for an Accept without SDP, each saying what we can take or give."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.1", pbx.sip_port))
        sock.send(own_transaction((TORTURE / name).read_bytes(), f"{name}trunk"))
        sock.settimeout(5)
        while (data := sock.recv(65535)).startswith(b"SIP/2.0 1"):
            pass
    head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    assert head[0].startswith(f"SIP/2.0 {status} "), head[0]
    fields = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
              for line in head[1:]}
    assert fields[header] == value
    assert pbx.stats()["calls"]["active"] == 0


# Over TCP the messages are framed by their Content-Length (RFC 3261 §18.3): the ones that
# are about framing itself behave differently and are covered by the TCP tests below
# (a Content-Length promising more waits and then times out), as are the responses.
TCP_FRAMING = {"rfc4475_3.1.2.2_clerr.sip", "rfc3261_20.14_oversized-content-length.sip"}


def test_tcp_torture_messages(pbx: RunningPbx) -> None:
    """Every request of the set over one TCP connection at a time (a new one only when the PBX
    closes it after a framing error), each answered with the status it gets over UDP (or its
    `live_tcp`), and the PBX answers OPTIONS over TCP afterwards."""
    names = sorted(n for n, e in EXPECTED.items()
                   if e["live"] != "none" and n not in TCP_FRAMING)
    wrong: dict[str, object] = {}
    conn = tcp_connect(pbx)
    try:
        for name in names:
            expected = EXPECTED[name].get("live_tcp", EXPECTED[name]["live"])
            data = own_transaction((TORTURE / name).read_bytes(), f"{name}tcp")
            conn.sendall(data)
            status, closed = tcp_final_status(conn)
            if status is None and closed:  # closed after the previous framing error, late
                conn.close()
                conn = tcp_connect(pbx)
                conn.sendall(data)
                status, closed = tcp_final_status(conn)
            if status != expected:
                wrong[name] = status
            if closed:
                conn.close()
                time.sleep(0.2)  # the PBX gives the connection's place back as it closes
                conn = tcp_connect(pbx)
        assert wrong == {}
        assert tcp_options_answered(conn)
    finally:
        conn.close()


def tcp_final_status(conn: socket.socket) -> tuple[int | None, bool]:
    """The first final status the PBX sends on `conn`, and whether it closed `conn` after."""
    conn.settimeout(5)
    received = b""
    while not (match := re.search(rb"(?:^|\r\n)SIP/2\.0 ([2-6]\d\d) ", received)):
        try:
            chunk = conn.recv(65535)
        except TimeoutError:
            return None, False  # no answer at all
        if not chunk:
            return None, True
        received += chunk
    conn.settimeout(0.05)
    try:
        while chunk := conn.recv(65535):  # the rest of this answer (and no other)
            received += chunk
        return int(match.group(1)), True
    except TimeoutError:
        return int(match.group(1)), False


def test_no_handler_failed_on_the_torture_set(pbx: RunningPbx) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", pbx.sip_port))
        for name in sorted(EXPECTED):
            sock.send((TORTURE / name).read_bytes())
        assert answers_options(sock)
    events = {e.get("event") for e in pbx.logs()}
    assert "event_handler_failed" not in events
    assert not any(e.get("level") == "error" for e in pbx.logs()), [
        e for e in pbx.logs() if e.get("level") == "error"][:3]


# ---------------------------------------------------------------------------------- TCP


def tcp_connect(pbx: RunningPbx) -> socket.socket:
    return socket.create_connection(("127.0.0.1", pbx.sip_port), timeout=5)


def tcp_options_answered(conn: socket.socket) -> bool:
    conn.sendall(options(f"tcp{time.monotonic_ns()}", "TCP"))
    conn.settimeout(5)
    return conn.recv(65535).startswith(b"SIP/2.0 200 ")


def seconds_until_closed(conn: socket.socket, limit: float) -> tuple[float, bytes]:
    """How long until the PBX closes `conn`, and what it sent before."""
    start = time.monotonic()
    received = b""
    conn.settimeout(limit)
    try:
        while chunk := conn.recv(65535):
            received += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - start, received


def cuts(pbx: RunningPbx, reason: str) -> int:
    return sum(1 for e in pbx.logs() if e.get("event") == "tcp_timeout"
               and e.get("reason") == reason)


@pytest.mark.parametrize("stall_at", ["headers", "body"])
def test_tcp_half_sent_request_is_cut_after_the_message_timeout(
    pbx: RunningPbx, stall_at: str
) -> None:
    before = cuts(pbx, "incomplete_message")
    message = options(f"slow{stall_at}", "TCP", body=b"0123456789")
    # Half the headers, or the headers and 4 of the 10 body bytes Content-Length promises.
    part = message[:60] if stall_at == "headers" else message[:-6]
    with tcp_connect(pbx) as conn:
        conn.sendall(part)
        elapsed, received = seconds_until_closed(conn, MESSAGE_TIMEOUT_S + 10)
    assert received == b""  # slow is not malformed: no 400
    assert MESSAGE_TIMEOUT_S - 0.5 <= elapsed <= MESSAGE_TIMEOUT_S + 2.0, elapsed
    pbx.wait_until(lambda: cuts(pbx, "incomplete_message") > before, 5, "tcp_timeout logged")
    with tcp_connect(pbx) as conn:
        assert tcp_options_answered(conn)


def test_tcp_body_in_pieces_within_the_timeout_is_answered(pbx: RunningPbx) -> None:
    message = options("pieces", "TCP", body=b"0123456789" * 3)
    head_end = message.index(b"\r\n\r\n") + 4
    with tcp_connect(pbx) as conn:
        for piece in (message[:40], message[40:head_end], message[head_end:-20],
                      message[-20:-5], message[-5:]):
            conn.sendall(piece)
            time.sleep(MESSAGE_TIMEOUT_S / 6)  # 5 pieces over 1.7 s of a 2 s timeout
        conn.settimeout(5)
        assert conn.recv(65535).startswith(b"SIP/2.0 200 ")
        assert tcp_options_answered(conn)  # and the connection stays usable


def test_tcp_connections_beyond_the_per_address_cap_are_refused(pbx: RunningPbx) -> None:
    time.sleep(0.5)  # connections of earlier tests are gone on the PBX's side too
    refused_before = sum(1 for e in pbx.logs() if e.get("event") == "tcp_refused")
    held = [tcp_connect(pbx) for _ in range(PER_ADDRESS)]
    try:
        for conn in held:
            assert tcp_options_answered(conn)
        for _ in range(2):  # beyond the cap: closed at once, before any answer
            with tcp_connect(pbx) as extra:
                try:
                    extra.sendall(options("over", "TCP"))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                elapsed, received = seconds_until_closed(extra, 5)
            assert received == b"" and elapsed < 1.0, (elapsed, received)
        assert tcp_options_answered(held[0])  # the existing ones still work
    finally:
        for conn in held:
            conn.close()
    refused = [e for e in pbx.logs() if e.get("event") == "tcp_refused"]
    assert len(refused) - refused_before == 1  # logged once per address per interval
    time.sleep(0.5)
    with tcp_connect(pbx) as conn:  # places are given back when connections close
        assert tcp_options_answered(conn)


def test_tcp_idle_connection_is_closed_after_the_idle_timeout(pbx: RunningPbx) -> None:
    with tcp_connect(pbx) as conn:
        assert tcp_options_answered(conn)
        elapsed, received = seconds_until_closed(conn, IDLE_TIMEOUT_S + 10)
    assert received == b""
    assert IDLE_TIMEOUT_S - 0.5 <= elapsed <= IDLE_TIMEOUT_S + 2.0, elapsed


def tcp_register(conn: socket.socket, port: int, authorization: str = "") -> bytes:
    local = conn.getsockname()
    auth_line = f"Authorization: {authorization}\r\n" if authorization else ""
    cseq = 2 if authorization else 1
    conn.sendall((
        "REGISTER sip:hotline.example SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {local[0]}:{local[1]};branch=z9hG4bKtcpreg{cseq};rport\r\n"
        "From: <sip:1001@hotline.example>;tag=tcpreg\r\nTo: <sip:1001@hotline.example>\r\n"
        f"Call-ID: tcpreg@probe\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:1001@{local[0]}:{local[1]};transport=tcp>\r\nExpires: 60\r\n"
        f"{auth_line}Content-Length: 0\r\n\r\n"
    ).encode())
    conn.settimeout(5)
    return conn.recv(65535)


def test_tcp_connection_with_a_registration_outlives_the_idle_timeout(pbx: RunningPbx) -> None:
    with tcp_connect(pbx) as conn:
        challenge = tcp_register(conn, pbx.sip_port)
        assert challenge.startswith(b"SIP/2.0 401 "), challenge[:40]
        www = [line.split(b":", 1)[1].strip().decode() for line in challenge.split(b"\r\n")
               if line.lower().startswith(b"www-authenticate:")]
        chosen = auth.preferred_challenge(www)
        assert chosen is not None
        value = auth.build_authorization(chosen, "1001", "pw1001x", "REGISTER",
                                         "sip:hotline.example", "cn0nce", 1)
        assert tcp_register(conn, pbx.sip_port, value).startswith(b"SIP/2.0 200 ")
        # An unregistered connection is closed after IDLE_TIMEOUT_S; this one is kept.
        conn.settimeout(IDLE_TIMEOUT_S + 2.5)
        with pytest.raises(TimeoutError):
            conn.recv(65535)
        assert tcp_options_answered(conn)
