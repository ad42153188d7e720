"""What authenticating an agent's INVITE costs the PBX, in process (no network, no asyncio).

An agent's call now takes one more exchange before it becomes a call: INVITE → 407 → ACK, then
the INVITE with Proxy-Authorization. This measures, on the real sans-IO pieces (`SipEndpoint`,
`CallerCheck` with the registrar's `DigestAuthority`), the CPU of

- the challenge round: parse the INVITE, decide, build and serialise the stateless 407, parse
  the ACK that answers it;
- the check of the answered INVITE (digest verification, nonce check, nonce count), on top of
  what the endpoint does for any INVITE;
- a carrier's INVITE recognised by address (what every inbound call pays for the decision).

    python benchmarks/bench_invite_auth.py [--n 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pbx.clock import SystemIds  # noqa: E402
from pbx.registrar.callers import CallerCheck, CallerVerdict  # noqa: E402
from pbx.registrar.registrar import Registrar, RegistrarSettings  # noqa: E402
from pbx.registrar.security import AuthFailureGuard  # noqa: E402
from pbx.repositories import Binding  # noqa: E402
from pbx.sip import auth  # noqa: E402
from pbx.sip.endpoint import Address, RequestReceived, SipEndpoint  # noqa: E402
from pbx.sip.message import Response  # noqa: E402

REALM = "hotline.example"
PHONE = Address("udp", "192.0.2.10", 40000)
CARRIER = Address("udp", "198.51.100.5", 5060)
SDP = ("v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
       "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n")


def invite(n: int, user: str, extra: str = "", cseq: int = 1) -> bytes:
    return (
        f"INVITE sip:030123456@{REALM} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bK{n}x{cseq};rport\r\n"
        f"From: \"Agent\" <sip:{user}@{REALM}>;tag=t{n}\r\n"
        f"To: <sip:030123456@{REALM}>\r\n"
        f"Call-ID: bench-{n}@phone\r\nCSeq: {cseq} INVITE\r\n"
        f"Contact: <sip:{user}@192.0.2.10:40000>\r\nMax-Forwards: 70\r\n"
        f"User-Agent: bench\r\nAllow: INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY\r\n"
        f"{extra}Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}"
    ).encode()


def ack(n: int, to_tag: str) -> bytes:
    return (
        f"ACK sip:030123456@{REALM} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bK{n}x1;rport\r\n"
        f"From: \"Agent\" <sip:1001@{REALM}>;tag=t{n}\r\n"
        f"To: <sip:030123456@{REALM}>;tag={to_tag}\r\n"
        f"Call-ID: bench-{n}@phone\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def setup() -> tuple[SipEndpoint, CallerCheck]:
    def ha1(user: str, hash_name: str) -> str | None:
        return auth.ha1(hash_name, user, REALM, "pw1001x") if user == "1001" else None

    guard = AuthFailureGuard(10, 60, 600)
    nonces = auth.NonceIssuer(os.urandom(32), 300, salt=os.urandom)
    registrar = Registrar(RegistrarSettings(domain=REALM), ha1, nonces, guard)
    registrar.table.replace("1001", [Binding(
        aor="1001", contact="sip:1001@192.0.2.10:40000", expires_at=time.time() + 3600,
        call_id="r", cseq=1, source_transport="udp", source_host=PHONE.host,
        source_port=PHONE.port)])
    check = CallerCheck(registrar.digest, registrar.ha1_lookup, registrar.table,
                        lambda host: "carrier" if host == CARRIER.host else None)
    return SipEndpoint(SystemIds()), check


def feed(endpoint: SipEndpoint, check: CallerCheck, data: bytes,
         source: Address) -> Response | CallerVerdict | None:
    """One INVITE through the endpoint and the caller check, as the switchboard does it."""
    endpoint.receive_datagram(data, source, time.monotonic())
    result: Response | CallerVerdict | None = None
    while (event := endpoint.next_event()) is not None:
        if isinstance(event, RequestReceived) and event.transaction is not None:
            outcome = check.check(event.request, source, time.time())
            if outcome.response is not None:
                endpoint.refuse_stateless(event.transaction, outcome.response)
                result = outcome.response
            else:
                endpoint.drop(event.transaction)  # measured without the call itself
                result = outcome.verdict
    endpoint.datagrams_to_send()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    n = args.n
    endpoint, check = setup()
    # Answers computed beforehand: the phone's work is not the PBX's.
    challenges: list[Response] = []
    started = time.process_time()
    for i in range(n):
        response = feed(endpoint, check, invite(i, "1001"), PHONE)
        assert isinstance(response, Response) and response.status == 407
        feed(endpoint, check, ack(i, response.to_addr.tag or ""), PHONE)
        challenges.append(response)
    challenge_us = (time.process_time() - started) / n * 1e6
    answered = []
    for i, response in enumerate(challenges):
        chosen = auth.preferred_challenge(response.headers.get_all("proxy-authenticate"))
        assert chosen is not None
        value = auth.build_authorization(chosen, "1001", "pw1001x", "INVITE",
                                         f"sip:030123456@{REALM}", f"cn{i}", 1)
        answered.append(invite(i, "1001", f"Proxy-Authorization: {value}\r\n", cseq=2))
    started = time.process_time()
    for data in answered:
        assert feed(endpoint, check, data, PHONE) is CallerVerdict.AGENT
    answered_us = (time.process_time() - started) / n * 1e6
    plain = [invite(i, "+4917612345", cseq=3) for i in range(n)]
    started = time.process_time()
    for data in plain:
        assert feed(endpoint, check, data, CARRIER) is CallerVerdict.TRUNK
    trunk_us = (time.process_time() - started) / n * 1e6
    print(f"nproc={os.cpu_count()} n={n} python={sys.version.split()[0]}")
    print(f"challenge round (INVITE in, 407 out, ACK in): {challenge_us:.1f} us CPU")
    print(f"answered INVITE (endpoint + digest check):    {answered_us:.1f} us CPU")
    print(f"carrier INVITE by address (endpoint + check): {trunk_us:.1f} us CPU")
    print(f"=> an agent's call costs {challenge_us + answered_us - trunk_us:.1f} us CPU more "
          f"than an INVITE the PBX takes on address alone")
    print(f"stats: {check.stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
