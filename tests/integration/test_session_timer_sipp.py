"""RFC 4028 session timers and RFC 3311 UPDATE on a live `pbx run`, with SIPp as the carrier:
a caller waiting in the queue asks the PBX to refresh (refresher=uas) and gets an UPDATE
before half the interval is over; it puts the PBX on hold with an UPDATE carrying SDP and gets
an SDP answer, and an in-dialog OPTIONS is answered with the methods and extensions we take; a
carrier that promised to refresh and never does is hung up by the PBX (BYE) before the session
expires."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.pbx_harness import base_config, start_pbx
from tests.integration.rtp_pcap import write_dtmf_pcap
from tests.integration.sipp import run_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DID = "+4930400"

_INVITE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier with a session timer">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917699@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:+4917699@[local_ip]:[local_port]>
      Max-Forwards: 70
      Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE
      Supported: timer
      Session-Expires: 90;refresher={refresher}
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="90;refresher={refresher}" search_in="hdr" header="Session-Expires:"
            check_it="true" assign_to="se"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917699@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
"""

# The caller puts the PBX on hold with an UPDATE offer; the PBX answers it (recvonly).
_HOLD_UPDATE = """
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[

      UPDATE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917699@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 UPDATE
      Contact: <sip:+4917699@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 2 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=sendonly

    ]]>
  </send>
  <recv response="200">
    <action>
      <ereg regexp="a=recvonly" search_in="body" check_it="true" assign_to="held"/>
    </action>
  </recv>
  <send retrans="500">
    <![CDATA[

      OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917699@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 OPTIONS
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200">
    <action>
      <ereg regexp="REFER" search_in="hdr" header="Allow:" check_it="true" assign_to="allow"/>
      <ereg regexp="replaces" search_in="hdr" header="Supported:" check_it="true"
            assign_to="supported"/>
    </action>
  </recv>
"""

# We asked the PBX to refresh: its UPDATE (or re-INVITE) must come before 45 s.
_EXPECT_REFRESH = """
  <recv request="UPDATE" timeout="60000"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:+4917699@[local_ip]:[local_port]>
      Session-Expires: 90;refresher=uac
      Require: timer
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4917699@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 4 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <Reference variables="se,held,allow,supported"/>
</scenario>
"""

# We promised to refresh and never do: the PBX must hang up before the 90 s are over.
_EXPECT_BYE = """
  <recv request="BYE" timeout="88000"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="se"/>
</scenario>
"""


def scenario(path: Path, refresher: str, tail: str, hold: bool) -> Path:
    pcap = write_dtmf_pcap(path.with_suffix(".pcap"), [], 95_000)
    text = _INVITE.replace("{refresher}", refresher).replace("{pcap}", str(pcap))
    path.write_text(text + (_HOLD_UPDATE if hold else "") + tail)
    return path


def test_session_timers_and_update_with_the_carrier(tmp_path: Path) -> None:
    config = base_config([{"extension": "1001", "name": "A", "password": "pw1001x"}])
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [{"name": "q", "members": [{"agent": "1001"}]}]  # nobody registered
    config["dids"] = [{"number": DID, "queue": "q"}]
    pbx = start_pbx(tmp_path / "pbx", config)
    try:
        refresh = scenario(tmp_path / "refresh.xml", "uas", _EXPECT_REFRESH, hold=True)
        silent = scenario(tmp_path / "silent.xml", "uac", _EXPECT_BYE, hold=False)
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(run_sipp, tmp_path / name, str(path), pbx.sip_port,
                                timeout=110, extra=["-s", DID, "-mi", "127.0.0.1"])
                    for name, path in (("refresh", refresh), ("silent", silent))]
            refreshed, hung_up = (run.result() for run in runs)
        assert refreshed.successful == 1, str(refreshed)  # UPDATE answered, refresh came
        assert hung_up.successful == 1, str(hung_up)  # the PBX's BYE came in time
        ended = [e for e in pbx.logs() if e.get("event") == "call_ended"]
        causes = sorted(e["hangup"] for e in ended)
        assert any("session" in cause for cause in causes), causes
    finally:
        pbx.stop()
