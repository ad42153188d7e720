"""A forged INVITE from a source the PBX does not serve (not a trunk address, no registered
phone), sent as an attacker would: with a Via naming a third party's port and no rport. The
PBX answers once, statelessly, to the socket the packet came from — nothing ever reaches the
third party, and the answer is not retransmitted (no reflection, no transaction kept)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.integration.pbx_harness import agent_entries, base_config, start_pbx

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

INVITE = (
    "INVITE sip:+4930123456@127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{victim};branch=z9hG4bKforged{n}\r\n"
    "From: <sip:1001@hotline.example>;tag=f{n}\r\n"
    "To: <sip:+4930123456@hotline.example>\r\n"
    "Call-ID: forged-{n}@attacker\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:1001@127.0.0.1:{victim}>\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)


def received(sock: socket.socket, seconds: float) -> list[bytes]:
    out: list[bytes] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append(sock.recv(65535))
        except TimeoutError:
            break
    return out


def test_forged_invite_gets_one_stateless_403_at_its_real_source(tmp_path: Path) -> None:
    config = base_config(agent_entries(1))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.2", "port": 5070,
                         "inbound_addresses": ["127.0.0.2/32"]}]  # not us
    config["dids"] = [{"number": "+4930123456", "agent": "1001"}]
    pbx = start_pbx(tmp_path / "pbx", config)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        attacker.bind(("127.0.0.1", 0))
        victim.bind(("127.0.0.1", 0))
        for n in range(3):
            packet = INVITE.format(port=pbx.sip_port, victim=victim.getsockname()[1], n=n)
            attacker.sendto(packet.encode(), ("127.0.0.1", pbx.sip_port))
        # 10 s: an INVITE transaction would have resent its 403 at 0.5, 1.5, 3.5 and 7.5 s.
        answers = received(attacker, 10.0)
        assert [a.split(b"\r\n", 1)[0] for a in answers if not a.startswith(b"SIP/2.0 100")] \
            == [b"SIP/2.0 403 Forbidden"] * 3, answers
        assert received(victim, 0.5) == []
        assert pbx.stats()["calls"]["active"] == 0
    finally:
        attacker.close()
        victim.close()
        pbx.stop()


def first_lines(answers: list[bytes]) -> list[bytes]:
    return [a.split(b"\r\n", 1)[0] for a in answers if not a.startswith(b"SIP/2.0 100")]


@pytest.mark.parametrize("limit", ["pbx", "trunk"])
def test_junk_does_not_use_up_the_call_rate_and_the_excess_gets_503(
    tmp_path: Path, limit: str
) -> None:
    """The source is checked before admission: INVITEs from an address the PBX does not serve
    get 403 and leave the call rate alone, so the carrier's next call is taken; the one after
    it, over the rate (the PBX's, or the trunk's own), gets 503 with Retry-After."""
    config = base_config(agent_entries(1))
    trunk = {"name": "carrier", "host": "127.0.0.2", "port": 5070,
             "inbound_addresses": ["127.0.0.2/32"]}
    if limit == "trunk":
        trunk["max_calls_per_second"] = 0.1
    else:
        config["sip"]["max_calls_per_second"] = 0.1
    config["trunks"] = [trunk]
    config["dids"] = [{"number": "+4930123456", "agent": "1001"}]  # no phone: 480
    pbx = start_pbx(tmp_path / "pbx", config)
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    carrier = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        junk.bind(("127.0.0.1", 0))
        carrier.bind(("127.0.0.2", 0))
        for n in range(5):
            packet = INVITE.format(port=pbx.sip_port, victim=junk.getsockname()[1], n=n)
            junk.sendto(packet.encode(), ("127.0.0.1", pbx.sip_port))
        assert first_lines(received(junk, 2.0)) == [b"SIP/2.0 403 Forbidden"] * 5
        answers = []
        for n in (10, 11):
            packet = INVITE.format(port=pbx.sip_port, victim=carrier.getsockname()[1], n=n)
            carrier.sendto(packet.replace("127.0.0.1:", "127.0.0.2:", 1).encode()
                           .replace(b"Via: SIP/2.0/UDP 127.0.0.1", b"Via: SIP/2.0/UDP 127.0.0.2"),
                           ("127.0.0.1", pbx.sip_port))
            answers += received(carrier, 2.0)
        lines = first_lines(answers)
        assert lines[0].startswith(b"SIP/2.0 480"), answers  # taken, routed: no phone
        refused = [a for a in answers if a.startswith(b"SIP/2.0 503")]
        assert len(refused) == 1 and b"\r\nRetry-After: " in refused[0], answers
        refused_by_pbx = pbx.stats()["admission"].get("refused", {}).get("rate", 0)
        assert refused_by_pbx == (1 if limit == "pbx" else 0)  # the trunk's own limit else
    finally:
        junk.close()
        carrier.close()
        pbx.stop()


def test_invites_that_waited_too_long_unread_get_503_and_the_rest_is_served(
    tmp_path: Path
) -> None:
    """Queue-age shedding, live: while the PBX is stopped (SIGSTOP) for longer than
    `sip.overload_queue_ms`, the carrier's INVITEs and an agent's REGISTER wait unread in the
    socket. When it runs again, each late INVITE gets one stateless 503 with Retry-After and
    its ACK is absorbed; the REGISTER is served as usual; a fresh INVITE is taken."""
    config = base_config(agent_entries(1))
    config["sip"]["overload_queue_ms"] = 300
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.2", "port": 5070,
                         "inbound_addresses": ["127.0.0.2/32"]}]
    config["dids"] = [{"number": "+4930123456", "agent": "1001"}]  # no phone: 480
    pbx = start_pbx(tmp_path / "pbx", config)
    carrier = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def invite(n: int) -> bytes:
        packet = INVITE.format(port=pbx.sip_port, victim=carrier.getsockname()[1], n=n)
        return packet.replace("127.0.0.1:", "127.0.0.2:", 1).encode().replace(
            b"Via: SIP/2.0/UDP 127.0.0.1", b"Via: SIP/2.0/UDP 127.0.0.2")

    try:
        carrier.bind(("127.0.0.2", 0))
        phone.bind(("127.0.0.1", 0))
        pbx.proc.send_signal(signal.SIGSTOP)
        try:
            for n in range(3):
                carrier.sendto(invite(n), ("127.0.0.1", pbx.sip_port))
            phone.sendto(register(phone, pbx.sip_port), ("127.0.0.1", pbx.sip_port))
            time.sleep(0.8)
        finally:
            pbx.proc.send_signal(signal.SIGCONT)
        answers = received(carrier, 2.0)
        assert first_lines(answers) == [b"SIP/2.0 503 Service Unavailable"] * 3, answers
        assert all(b"\r\nRetry-After: 1\r\n" in a and b";received=127.0.0.2" not in a
                   and b"Call-ID: forged-" in a for a in answers)
        for answer in answers:  # the ACK for each 503 (RFC 3261 §17.1.1.3)
            to = next(line for line in answer.split(b"\r\n") if line.startswith(b"To: "))
            ack = invite(answers.index(answer)).replace(b"INVITE sip", b"ACK sip", 1)
            ack = ack.replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK").replace(
                b"To: <sip:+4930123456@hotline.example>", to)
            carrier.sendto(ack, ("127.0.0.1", pbx.sip_port))
        assert first_lines(received(phone, 2.0)) == [b"SIP/2.0 401 Unauthorized"]
        carrier.sendto(invite(9), ("127.0.0.1", pbx.sip_port))
        assert first_lines(received(carrier, 3.0))[0].startswith(b"SIP/2.0 480")
        admission = pbx.stats()["admission"]
        assert admission["refused"]["queue"] == 3
        assert admission["acks_absorbed"] == 3
        assert admission["queued_ms"]["more"] == 3  # the three late ones, waited > 500 ms
        assert pbx.stats()["calls"]["active"] == 0 and pbx.alive()
    finally:
        carrier.close()
        phone.close()
        pbx.stop()


def register(sock: socket.socket, port: int) -> bytes:
    local = sock.getsockname()
    return (
        "REGISTER sip:hotline.example SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bKlate1;rport\r\n"
        "From: <sip:1001@hotline.example>;tag=late\r\nTo: <sip:1001@hotline.example>\r\n"
        "Call-ID: late@phone\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:1001@{local[0]}:{local[1]}>\r\nExpires: 60\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
