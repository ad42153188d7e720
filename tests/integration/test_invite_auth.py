"""Issue 12, point 1, live on `pbx run`: an INVITE from an agent's phone must answer a digest
challenge (407 Proxy-Authenticate) as the agent its From header names; the registration only
says where calls go. What used to be enough — the From user and the IP:port of a registered
phone, one forged UDP packet — now buys a 407 and no call (the carrier never sees an INVITE).
Wrong passwords are refused and ban the source like REGISTER failures; one agent's password
does not place calls as another; out-of-dialog REFER, SUBSCRIBE and MESSAGE stay 405; a trunk
with `inbound_auth` must answer the challenge with its own credentials (SIPp as the carrier).

The phone that misbehaves is a raw UDP socket (`RawPhone`): it sends what a softphone never
would. Sending from the registered phone's own socket is what a forger spoofing that address
achieves, seen from the PBX."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from pbx.sip import auth
from pbx.sip.message import Request, Response
from pbx.sip.parser import parse_message
from tests.integration.pbx_harness import REALM, RunningPbx, agent_entries, base_config, start_pbx
from tests.integration.sipp import run_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OUTSIDE = "030123456"  # a domestic number: agents may dial it through the trunk


class RawPhone:
    """A UA on a raw UDP socket at 127.0.0.1: REGISTER (answering the 401), INVITEs with or
    without credentials, out-of-dialog requests; reads the PBX's answers."""

    def __init__(self, pbx: RunningPbx, host: str = "127.0.0.1") -> None:
        self.pbx = pbx
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = int(self.sock.getsockname()[1])
        self.call_id = f"raw-{os.urandom(4).hex()}"
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, method: str, uri: str, from_user: str, extra: list[str] | None = None,
             body: str = "", to: str | None = None, to_tag: str | None = None) -> None:
        self.cseq += 1
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bK{os.urandom(5).hex()};rport",
            f"From: <sip:{from_user}@{REALM}>;tag=raw{self.port}",
            f"To: <{to or uri}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: <sip:{from_user}@{self.host}:{self.port}>",
            "Max-Forwards: 70",
            *(extra or []),
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        text = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        self.sock.sendto(text.encode(), ("127.0.0.1", self.pbx.sip_port))

    def answers(self, seconds: float, until_final: bool = True) -> list[Response]:
        """Responses received within `seconds` (stopping at a final one with `until_final`)."""
        out: list[Response] = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            message = parse_message(data)
            if isinstance(message, Response):
                out.append(message)
                if until_final and message.status >= 200:
                    break
        return out

    def register(self, user: str, password: str) -> None:
        uri = f"sip:{REALM}"
        self.send("REGISTER", uri, user, ["Expires: 300"], to=f"sip:{user}@{REALM}")
        (challenge,) = self.answers(5)
        assert challenge.status == 401, challenge
        value = auth.build_authorization(
            auth.parse_challenge(challenge.headers.get_all("www-authenticate")[0]),
            user, password, "REGISTER", uri, "c0ffee", 1)
        self.send("REGISTER", uri, user, ["Expires: 300", f"Authorization: {value}"],
                  to=f"sip:{user}@{REALM}")
        (ok,) = self.answers(5)
        assert ok.status == 200, ok

    def invite(self, from_user: str, number: str = OUTSIDE,
               proxy_authorization: str | None = None, wait_s: float = 3.0) -> list[Response]:
        """An INVITE with an SDP offer; returns what came back within `wait_s` (up to the
        final response, which is ACKed)."""
        uri = f"sip:{number}@{REALM}"
        extra = [f"Proxy-Authorization: {proxy_authorization}"] if proxy_authorization else []
        sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {self.port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        self.send("INVITE", uri, from_user, extra, body=sdp)
        cseq = self.cseq
        got = self.answers(wait_s)
        final = [r for r in got if r.status >= 300]
        if final:  # the ACK for a non-2xx final response (RFC 3261 §17.1.1.3)
            self.cseq = cseq - 1
            self.send("ACK", uri, from_user, to_tag=final[0].to_addr.tag)
            self.cseq = cseq
        return got

    def answer_challenge(self, challenge: Response, user: str, password: str,
                         number: str = OUTSIDE, nc: int = 1) -> str:
        values = challenge.headers.get_all("proxy-authenticate")
        chosen = auth.preferred_challenge(values)
        assert chosen is not None, values
        return auth.build_authorization(chosen, user, password, "INVITE",
                                        f"sip:{number}@{REALM}", os.urandom(4).hex(), nc)


class Carrier:
    """The carrier trunk as a raw UDP socket: records every INVITE the PBX sends it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])

    def invites(self, seconds: float, stop_at_first: bool = False) -> list[Request]:
        out: list[Request] = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                message = parse_message(self.sock.recv(65535))
            except TimeoutError:
                break
            if isinstance(message, Request) and message.method == "INVITE":
                out.append(message)
                if stop_at_first:
                    break
        return out

    def close(self) -> None:
        self.sock.close()


def auth_config(carrier_port: int, **security: Any) -> dict[str, Any]:
    # The carrier shares the phones' address (127.0.0.1), as on one host or a small office:
    # the harder case, where a phone's INVITE must not pass as the carrier's either.
    config = base_config(agent_entries(2))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": carrier_port,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    if security:
        config["security"] = security
    return config


def statuses(responses: list[Response]) -> list[int]:
    return [r.status for r in responses]


def test_a_forged_invite_from_a_registered_phone_gets_407_and_places_no_call(
    tmp_path: Path,
) -> None:
    carrier = Carrier()
    pbx = start_pbx(tmp_path / "pbx", auth_config(carrier.port))
    phone = RawPhone(pbx)
    try:
        phone.register("1001", "pw1001x")
        transactions = pbx.stats()["transactions_active"]  # the REGISTERs' (Timer J)
        # From 1001, from 1001's registered IP:port, no credentials: what used to place the
        # call. One datagram back (no 100 Trying), and not retransmitted.
        got = phone.invite("1001")
        assert statuses(got) == [407], got
        assert phone.answers(2.0, until_final=False) == []  # no retransmission of the 407
        challenge = got[0]
        assert "www-authenticate" not in challenge.headers
        algorithms = [auth.parse_challenge(v).algorithm
                      for v in challenge.headers.get_all("proxy-authenticate")]
        assert algorithms == ["SHA-256", "MD5"]
        assert carrier.invites(2.0) == [], "the carrier saw a call"
        stats = pbx.stats()
        assert stats["calls"]["active"] == 0 and stats["calls"]["offered"] == 0
        assert stats["callers"]["challenges"] == 1
        assert stats["transactions_active"] == transactions  # none kept for the INVITE
        assert not [e for e in pbx.logs() if e.get("event") == "call_offered"]
        # The same phone answering the challenge is the agent: the call reaches the carrier.
        value = phone.answer_challenge(challenge, "1001", "pw1001x")
        phone.invite("1001", proxy_authorization=value, wait_s=0.5)
        (placed,) = carrier.invites(15.0, stop_at_first=True)
        assert placed.parsed_uri.user == "+4930123456"
        offered = [e for e in pbx.logs() if e.get("event") == "call_offered"]
        assert [e["agent"] for e in offered] == ["1001"] and offered[0]["trunk"] is None
    finally:
        phone.close()
        pbx.stop()
        carrier.close()


def test_one_agents_password_does_not_place_calls_as_another(tmp_path: Path) -> None:
    carrier = Carrier()
    pbx = start_pbx(tmp_path / "pbx", auth_config(carrier.port))
    phone = RawPhone(pbx)
    try:
        phone.register("1001", "pw1001x")
        challenge = phone.invite("1002")  # 1001's phone, claiming to be 1002
        assert statuses(challenge) == [407], challenge
        value = phone.answer_challenge(challenge[0], "1001", "pw1001x")
        refused = phone.invite("1002", proxy_authorization=value)
        assert statuses(refused) == [403], refused
        assert carrier.invites(1.0) == []
        logged = [e for e in pbx.logs() if e.get("event") == "call_refused"]
        assert logged and "1002" in logged[-1]["reason"], logged
        assert pbx.stats()["callers"]["auth_failures"] == 1
        # Out-of-dialog requests we do not serve stay refused whoever asks (no call, no leg).
        for method in ("REFER", "SUBSCRIBE", "MESSAGE"):
            extra = ["Refer-To: <sip:+4930999@127.0.0.1>"] if method == "REFER" else []
            extra += ["Event: presence"] if method == "SUBSCRIBE" else []
            phone.send(method, f"sip:1002@{REALM}", "1001", extra)
            (answer,) = phone.answers(3)
            assert answer.status == 405, (method, answer)
            allow = {m.strip() for v in answer.headers.get_all("allow") for m in v.split(",")}
            assert "INVITE" in allow and method not in allow, allow
        assert carrier.invites(1.0) == [] and pbx.stats()["calls"]["active"] == 0
    finally:
        phone.close()
        pbx.stop()
        carrier.close()


_AGENT_INVITE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent INVITE answering the 407 with {password}">
  <send retrans="500">
    <![CDATA[

      INVITE sip:{number}@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:{user}@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[domain]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send>
    <![CDATA[

      ACK sip:{number}@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:{user}@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      INVITE sip:{number}@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:{user}@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[domain]>
      Call-ID: [call_id]
      CSeq: 2 INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      [authentication username={user} password={password}]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="403"/>
  <send>
    <![CDATA[

      ACK sip:{number}@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:{user}@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{number}@[domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def test_wrong_passwords_on_invites_are_refused_and_ban_the_source(tmp_path: Path) -> None:
    carrier = Carrier()
    # SIPp answers MD5 challenges only.
    pbx = start_pbx(tmp_path / "pbx", auth_config(carrier.port, auth_algorithms=["MD5"],
                                                  max_auth_failures=3, failure_window_s=60,
                                                  ban_s=600))
    try:
        # SIPp registers 1001 from port P, then guesses at the INVITE challenge from P.
        port = free_udp_port()
        users = tmp_path / "users.csv"
        users.write_text("SEQUENTIAL\n1001;[authentication username=1001 password=pw1001x]\n")
        registered = run_sipp(tmp_path / "reg", "register_auth.xml", pbx.sip_port, users,
                              local_port=port)
        assert registered.successful == 1, str(registered)
        scenario = tmp_path / "guess.xml"
        scenario.write_text(_AGENT_INVITE.format(user="1001", password="guess-1234",
                                                 number=OUTSIDE))
        guessed = run_sipp(tmp_path / "guess", str(scenario), pbx.sip_port, calls=3, rate=1,
                           local_port=port)
        assert guessed.successful == 3, str(guessed)  # 407, then 403, three times
        banned = [e for e in pbx.logs() if e.get("event") == "source_banned"]
        assert banned and banned[0]["host"] == "127.0.0.1", banned
        assert carrier.invites(0.5) == []
        # Banned: neither an INVITE nor the right REGISTER gets any answer now.
        phone = RawPhone(pbx)
        try:
            assert phone.invite("1001", wait_s=2.0) == []
            phone.send("REGISTER", f"sip:{REALM}", "1001", ["Expires: 300"],
                       to=f"sip:1001@{REALM}")
            assert phone.answers(2.0) == []
        finally:
            phone.close()
        stats = pbx.stats()
        assert stats["callers"]["auth_failures"] == 3
        # Dropped before any transaction (SipEndpoint.admit asks the shared ban list).
        assert stats["registrar"]["blocked"] >= 2 and stats["sip"]["refused_sources"] >= 2
        assert stats["calls"]["active"] == 0
    finally:
        pbx.stop()
        carrier.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_TRUNK_CALL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier answering the 407 as the trunk">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917612345678@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:+4917612345678@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917612345678@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917612345678@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 2 INVITE
      Contact: <sip:+4917612345678@[local_ip]:[local_port]>
      [authentication username={user} password={password}]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
{ending}
</scenario>
"""

_ANSWERED = """  <recv response="200"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917612345678@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917612345678@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
"""

_REFUSED = """  <recv response="403"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917612345678@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def test_a_trunk_with_inbound_auth_answers_the_challenge_with_its_credentials(
    tmp_path: Path,
) -> None:
    config = base_config(agent_entries(1))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5999,
                         "inbound_addresses": ["127.0.0.1/32"], "inbound_auth": True,
                         "username": "hotline", "password": "trunk-secret"}]
    config["queues"] = [{"name": "q", "members": [{"agent": "1001"}]}]  # nobody registered
    config["dids"] = [{"number": "+4930400", "queue": "q"}]
    config["security"] = {"auth_algorithms": ["MD5"]}  # SIPp answers MD5 challenges only
    pbx = start_pbx(tmp_path / "pbx", config)
    try:
        right = tmp_path / "right.xml"
        right.write_text(_TRUNK_CALL.replace("{ending}", _ANSWERED).format(
            user="hotline", password="trunk-secret"))
        answered = run_sipp(tmp_path / "right", str(right), pbx.sip_port,
                            extra=["-s", "+4930400"], timeout=30)
        assert answered.successful == 1, str(answered)
        offered = [e for e in pbx.logs() if e.get("event") == "call_offered"]
        assert [e["trunk"] for e in offered] == ["carrier"], offered
        wrong = tmp_path / "wrong.xml"
        wrong.write_text(_TRUNK_CALL.replace("{ending}", _REFUSED).format(
            user="hotline", password="not-the-secret"))
        refused = run_sipp(tmp_path / "wrong", str(wrong), pbx.sip_port,
                           extra=["-s", "+4930400"], timeout=30)
        assert refused.successful == 1, str(refused)  # 407, then 403
        stats = pbx.stats()["callers"]
        assert stats["trunk_by_digest"] == 1 and stats["trunk_by_address"] == 0
        assert stats["challenges"] == 2 and stats["auth_failures"] == 1
        assert len([e for e in pbx.logs() if e.get("event") == "call_offered"]) == 1
    finally:
        pbx.stop()


def test_a_nonce_fetched_elsewhere_cannot_get_a_phone_banned(tmp_path: Path) -> None:
    # The forger fetches a nonce at its own address (127.0.0.2: a REGISTER's 401), then sends
    # wrong answers as if from the phone's address (127.0.0.1). Nonces are bound to the address
    # they were sent to: every one is a fresh 407, none counts, the phone is not banned.
    carrier = Carrier()
    pbx = start_pbx(tmp_path / "pbx", auth_config(carrier.port, max_auth_failures=2))
    phone = RawPhone(pbx)
    forger = RawPhone(pbx, host="127.0.0.2")
    try:
        phone.register("1001", "pw1001x")
        forger.send("REGISTER", f"sip:{REALM}", "1001", ["Expires: 300"],
                    to=f"sip:1001@{REALM}")
        (own,) = forger.answers(5)
        assert own.status == 401, own
        nonce = auth.parse_challenge(own.headers.get_all("www-authenticate")[0])
        for n in range(1, 5):
            guess = auth.build_authorization(nonce, "1001", f"guess-{n}", "INVITE",
                                             f"sip:{OUTSIDE}@{REALM}", f"cn{n}", n)
            got = phone.invite("1001", proxy_authorization=guess)
            assert statuses(got) == [407], (n, got)
        stats = pbx.stats()
        assert stats["callers"]["auth_failures"] == 0 and stats["callers"]["blocked"] == 0
        assert not [e for e in pbx.logs() if e.get("event") == "source_banned"]
        phone.register("1001", "pw1001x")  # still welcome
        assert carrier.invites(0.5) == []
    finally:
        forger.close()
        phone.close()
        pbx.stop()
        carrier.close()
