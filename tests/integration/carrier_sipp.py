"""SIPp as the carrier placing calls into the PBX, scripted per test: the INVITE comes from the
trunk address with an SDP offer (PCMU + telephone-event), then SIPp plays one RTP stream (a pcap
written per test: silence, and key presses as RFC 4733 events at the scripted times) and ends by
hanging up itself or by waiting for the PBX's BYE."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.integration.rtp_pcap import write_dtmf_pcap

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier call into the IVR">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{display}" <sip:[caller]@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
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
      a=fmtp:101 0-15
      a=ptime:20

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{display}" <sip:[caller]@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""

_SEND_BYE = """
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{display}" <sip:[caller]@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""

# Either side may end the call: wait `patience_ms` for the PBX's BYE, else send ours.
_EITHER_BYE = """
  <recv request="BYE" timeout="{timeout_ms}" ontimeout="ours"/>
  <send next="done">
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
  <label id="ours"/>
""" + _SEND_BYE.replace("</scenario>", '<label id="done"/>\n</scenario>')

_EXPECT_BYE = """
  <recv request="BYE" timeout="{timeout_ms}"/>
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
</scenario>
"""


@dataclass(frozen=True)
class Press:
    keys: str
    gap_ms: int = 400  # after each key


@dataclass(frozen=True)
class Pause:
    ms: int


def carrier_scenario(path: Path, steps: list[Press | Pause], end: str = "bye",
                     bye_timeout_ms: int = 30000, tail_ms: int = 20000,
                     display: str = "Kunde") -> Path:
    """Write a carrier UAC scenario and the pcap of its RTP (silence, and the key presses at
    the times the steps give). `end` is "bye" (we hang up after the steps), "wait" (the PBX
    hangs up; RTP keeps flowing `tail_ms` past the last key) or "either" (the PBX may hang up
    within `bye_timeout_ms` after the last key; else we do)."""
    presses: list[tuple[int, str]] = []
    t = 0
    for step in steps:
        if isinstance(step, Pause):
            t += step.ms
            continue
        for key in step.keys:
            presses.append((t, key))
            t += step.gap_ms
    rtp_ms = {"wait": tail_ms, "either": bye_timeout_ms + 2000}.get(end, 500)
    pcap = write_dtmf_pcap(path.with_suffix(".pcap"), presses, t + rtp_ms)
    display = display.replace('"', "")
    body = [_HEAD,
            f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n']
    if end == "bye":
        body += [f'  <pause milliseconds="{t}"/>\n', _SEND_BYE]
    elif end == "either":
        body.append(_EITHER_BYE.replace("{timeout_ms}", str(t + bye_timeout_ms)))
    else:
        body.append(_EXPECT_BYE.format(timeout_ms=bye_timeout_ms))
    path.write_text("".join(body).replace("{display}", display))
    return path
