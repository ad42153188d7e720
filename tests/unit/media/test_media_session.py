"""MediaSession (sans-IO): SDP, latching, malformed input, timeouts, DTMF, playback, inserts
over a playback, bridging, RTCP. A fake peer builds packets by hand; time is a plain float."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from media import g711, rtcp
from media.dtmf import TelephoneEvent, dtmf_tone
from media.events import (
    DtmfDetected,
    DtmfMethod,
    PlaybackEnd,
    PlaybackFinished,
    RtpStarted,
    RtpTimedOut,
)
from media.rtp import RtpPacket, build_packet
from media.sdp import Direction, create_offer
from media.session import MediaSession, SessionSettings
from media.sources import Pause, Player, Playlist, PromptLibrary, Source, create_player
from tests.unit.media.hold_prompts import (
    SHORT_HOLD,
    SHORT_PROMPTS,
    frames_of,
    label_frames,
    runs,
    write_prompts,
)

PEER = ("127.0.0.1", 50000)
OTHER = ("127.0.0.1", 50002)


def peer_offer(codecs: tuple[str, ...] = ("PCMU", "PCMA"), event_pt: int | None = 101,
               direction: str = "sendrecv", port: int = PEER[1]) -> str:
    return create_offer("127.0.0.1", port, session_id=1, codecs=codecs,
                        telephone_event_pt=event_pt, direction=Direction(direction)).serialize()


def new_session(session_id: str = "s1", port: int = 40000, **settings: object) -> MediaSession:
    return MediaSession(
        session_id, "127.0.0.1", port, ssrc=0x1234, sequence_number=65530,
        timestamp=(1 << 32) - 320, now=0.0, rng=random.Random(7),
        settings=SessionSettings(**settings),  # type: ignore[arg-type]
    )


def answered(offer: str | None = None, session_id: str = "s1", port: int = 40000,
             **settings: object) -> MediaSession:
    session = new_session(session_id, port, **settings)
    session.apply_remote_description(offer or peer_offer(), 0.0)
    return session


def audio(seq: int, ts: int, payload: bytes = b"\xff" * 160, pt: int = 0,
          ssrc: int = 0xAAAA) -> bytes:
    return build_packet(pt, seq % 65536, ts % (1 << 32), ssrc, payload)


def test_answer_negotiates_and_sends_to_the_sdp_address_until_latched() -> None:
    session = answered()
    assert session.codec == "PCMU"
    assert "m=audio 40000 RTP/AVP 0 101" in session.local_description
    assert session.remote_rtp == PEER
    packet = session.tick(0.02)
    assert packet is not None
    parsed = RtpPacket.parse(packet)
    assert parsed.payload == b"\xff" * 160 and parsed.marker  # silence while idle
    assert (parsed.sequence_number, parsed.timestamp) == (65530, (1 << 32) - 320)


def test_sequence_and_timestamp_wrap_on_the_wire() -> None:
    session = answered()
    packets = [RtpPacket.parse(p) for p in (session.tick(i * 0.02) for i in range(8)) if p]
    assert [p.sequence_number for p in packets] == [65530, 65531, 65532, 65533, 65534, 65535,
                                                    0, 1]
    assert [p.timestamp for p in packets][:4] == [(1 << 32) - 320, (1 << 32) - 160, 0, 160]


def test_latching_to_first_valid_source_and_refusing_others() -> None:
    session = answered()
    session.receive_rtp(audio(1, 0), ("127.0.0.9", 6000), 0.01)
    assert session.remote_rtp == ("127.0.0.9", 6000)
    assert session.take_events() == [RtpStarted("s1", "127.0.0.9", 6000)]
    session.receive_rtp(audio(2, 160), OTHER, 0.02)
    assert session.stats.foreign_source == 1
    assert session.remote_rtp == ("127.0.0.9", 6000)


def test_unknown_payload_types_do_not_latch() -> None:
    session = answered()
    session.receive_rtp(audio(1, 0, pt=18), OTHER, 0.01)
    assert session.stats.unknown_payload_type == 1
    assert session.remote_rtp == PEER


def test_a_new_remote_address_unlatches() -> None:
    session = answered()
    session.receive_rtp(audio(1, 0), PEER, 0.01)
    session.apply_remote_description(peer_offer(port=50010), 1.0)
    session.receive_rtp(audio(2, 160), ("127.0.0.1", 50010), 1.01)
    assert session.remote_rtp == ("127.0.0.1", 50010)
    assert session.stats.foreign_source == 0


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x00" * 40, b"\x80\xc8" + b"\0" * 20, bytes.fromhex("8f00000100000001")],
)
def test_malformed_packets_are_counted_and_dropped(data: bytes) -> None:
    session = answered()
    session.receive_rtp(data, PEER, 0.01)
    assert session.stats.malformed == 1
    assert session.stats.packets_in == 1
    assert session.take_events() == []
    session.receive_rtp(audio(1, 0), PEER, 0.02)  # still works afterwards
    assert session.take_events() == [RtpStarted("s1", *PEER)]


def test_malformed_rtcp_is_counted() -> None:
    session = answered()
    session.receive_rtcp(b"\x81\xc9\x00", PEER, 0.0)
    assert session.stats.rtcp_malformed == 1


def test_inactivity_timeout_fires_once_and_media_resumes() -> None:
    session = answered(rtp_timeout_s=2.0)
    session.receive_rtp(audio(1, 0), PEER, 0.5)
    session.take_events()
    for i in range(200):
        session.tick(0.5 + i * 0.02)
    events = session.take_events()
    assert events == [RtpTimedOut("s1", 2.0)]
    session.receive_rtp(audio(2, 160), PEER, 5.0)
    assert session.take_events() == [RtpStarted("s1", *PEER)]


def test_no_timeout_while_the_peer_holds_us() -> None:
    session = answered(peer_offer(direction="sendonly"), rtp_timeout_s=1.0)
    for i in range(200):
        assert session.tick(i * 0.02) is None  # we answer recvonly: nothing goes out
    session2 = answered(peer_offer(direction="recvonly"), rtp_timeout_s=1.0)
    for i in range(200):
        session2.tick(i * 0.02)
    assert session2.take_events() == []


def test_rfc4733_digits_are_reported_once_and_barge_in_stops_playback() -> None:
    session = answered()
    session.play(create_player(Pause(10_000), "PCMU", PromptLibrary(), random.Random()),
                 "p1", barge_in=True)
    for i, (end, duration) in enumerate([(False, 160), (False, 320), (True, 480), (True, 480),
                                         (True, 480)]):
        payload = TelephoneEvent(5, end, 10, duration).serialize()
        session.receive_rtp(audio(i + 1, 8000, payload, pt=101), PEER, 0.02 * i)
    events = session.take_events()
    assert [e for e in events if isinstance(e, DtmfDetected)] == [
        DtmfDetected("s1", "5", DtmfMethod.RFC4733)
    ]
    assert PlaybackFinished("s1", "p1", PlaybackEnd.BARGE_IN) in events


def test_inband_detection_when_no_telephone_event_was_negotiated() -> None:
    session = answered(peer_offer(event_pt=None))
    tone = g711.ulaw_encode(
        np.concatenate([dtmf_tone("8", 0.1, 4000), np.zeros(800)]).astype(np.int16)
    )
    for i in range(len(tone) // 160):
        session.receive_rtp(audio(i, i * 160, tone[i * 160 : (i + 1) * 160]), PEER, i * 0.02)
    digits = [e for e in session.take_events() if isinstance(e, DtmfDetected)]
    assert digits == [DtmfDetected("s1", "8", DtmfMethod.INBAND)]


def test_playback_completes_with_an_event_and_silence_follows() -> None:
    session = answered()
    session.play(create_player(Pause(60), "PCMU", PromptLibrary(), random.Random()), "p9")
    sent = [session.tick(i * 0.02) for i in range(5)]
    assert all(sent)
    assert session.take_events() == [PlaybackFinished("s1", "p9", PlaybackEnd.COMPLETED)]


def test_send_dtmf_produces_rfc4733_packets_with_one_timestamp() -> None:
    session = answered()
    session.send_dtmf("1", duration_ms=60)
    packets = [RtpPacket.parse(p) for p in (session.tick(i * 0.02) for i in range(6)) if p]
    events = [p for p in packets if p.payload_type == 101]
    assert len(events) == 5  # start, one update, then the end packet three times
    assert len({p.timestamp for p in events}) == 1
    assert events[0].marker and not any(p.marker for p in events[1:])
    assert [TelephoneEvent.parse(p.payload).end for p in events] == [False, False, True, True,
                                                                     True]


def bridged_pair(codec_a: str, codec_b: str) -> tuple[MediaSession, MediaSession]:
    a = answered(peer_offer(codecs=(codec_a,)), "a", 40000)
    b = answered(peer_offer(codecs=(codec_b,), port=50002), "b", 40002)
    a.peer, b.peer = b, a
    return a, b


@pytest.mark.parametrize(("codec_a", "codec_b"), [("PCMU", "PCMU"), ("PCMU", "PCMA"),
                                                   ("PCMA", "PCMU")])
def test_bridge_relays_audio_with_transcoding(codec_a: str, codec_b: str) -> None:
    a, b = bridged_pair(codec_a, codec_b)
    samples = (np.sin(np.arange(160) * 0.3) * 8000).astype(np.int16)
    payload = g711.encode(codec_a, samples)
    pt_a = 0 if codec_a == "PCMU" else 8
    a.receive_rtp(audio(1, 0, payload, pt=pt_a), PEER, 0.0)
    out = RtpPacket.parse(b.tick(0.01) or b"")
    assert out.payload_type == (0 if codec_b == "PCMU" else 8)
    assert out.payload == g711.transcode(payload, codec_a, codec_b)
    heard = g711.decode(codec_b, out.payload).astype(float)
    assert np.max(np.abs(heard - samples)) < 400


def test_bridge_queue_is_bounded() -> None:
    a, b = bridged_pair("PCMU", "PCMU")
    for i in range(10):
        a.receive_rtp(audio(i, i * 160), PEER, 0.0)
    assert b._bridge_in.dropped == 7


def test_bridge_relays_dtmf_as_rfc4733_on_the_other_leg() -> None:
    a, b = bridged_pair("PCMU", "PCMA")
    for i, end in enumerate([False, True, True, True]):
        payload = TelephoneEvent(11, end, 10, 160 * (i + 1)).serialize()
        a.receive_rtp(audio(i, 4000, payload, pt=101), PEER, 0.0)
    out = [RtpPacket.parse(p) for p in (b.tick(i * 0.02) for i in range(6)) if p]
    events = [p for p in out if p.payload_type == 101]
    assert len(events) == 4
    assert events[0].marker
    assert {TelephoneEvent.parse(p.payload).event for p in events} == {11}
    assert len({p.timestamp for p in events}) == 1


def test_rtcp_sender_report_round_trip_between_two_sessions() -> None:
    a, b = bridged_pair("PCMU", "PCMU")
    a.peer = b.peer = None
    for i in range(50):
        packet = a.tick(i * 0.02)
        assert packet is not None
        b.receive_rtp(packet, PEER, i * 0.02 + 0.001)
        reply = b.tick(i * 0.02)
        assert reply is not None
        a.receive_rtp(reply, OTHER, i * 0.02 + 0.001)
    report_a = a.build_rtcp(1.0, 1_700_000_000.0)
    sr = rtcp.parse_compound(report_a)[0]
    assert isinstance(sr, rtcp.SenderReport)
    assert sr.packet_count == 50
    b.receive_rtcp(report_a, PEER, 1.01)
    report_b = b.build_rtcp(1.11, 1_700_000_000.11)
    sender = rtcp.parse_compound(report_b)[0]
    assert isinstance(sender, rtcp.SenderReport)
    (block,) = sender.reports
    assert block.ssrc == a.stream.ssrc
    assert block.cumulative_lost == 0
    assert block.delay_since_last_sr == int(0.1 * 65536)
    a.receive_rtcp(report_b, OTHER, 1.13)
    assert a.stats.round_trip_ms == pytest.approx(30.0, abs=1.0)


def test_our_offer_then_their_answer() -> None:
    session = new_session()
    offer = session.create_offer()
    assert "a=sendrecv" in offer
    assert session.tick(0.0) is None  # nothing to send before the answer
    answer = (
        "v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 50000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
    )
    session.apply_remote_description(answer, 0.1)
    assert session.codec == "PCMA"
    assert session.negotiated is not None and session.negotiated.telephone_event_pt is None
    assert session.remote_rtp == PEER
    hold = session.create_offer(direction=Direction.SENDONLY)
    assert "a=sendonly" in hold


# --------------------------------------------------------------------------- insert


@pytest.fixture
def hold_library(tmp_path: Path) -> PromptLibrary:
    write_prompts(tmp_path, SHORT_PROMPTS)  # hold interval 0.3 s: 15 frames of music
    return PromptLibrary(tmp_path)


def player_of(source: Source, library: PromptLibrary) -> Player:
    return create_player(source, "PCMU", library, random.Random(1))


def sent_payloads(session: MediaSession, ticks: int) -> list[bytes]:
    packets = [session.tick(0.0) for _ in range(ticks)]
    return [RtpPacket.parse(packet).payload for packet in packets if packet is not None]


SILENT_FRAME = b"\xff" * 160
POSITION = Playlist(("position",))  # 10 frames


def test_insert_pauses_the_hold_program_and_resumes_it_at_the_same_frame(
        hold_library: PromptLibrary) -> None:
    reference = frames_of(player_of(SHORT_HOLD, hold_library), 200)
    position = frames_of(player_of(POSITION, hold_library), 200)
    session = answered()
    session.play(player_of(SHORT_HOLD, hold_library), "hold")
    sent = sent_payloads(session, 18)  # 15 frames of music, 3 of the program's announcement
    session.insert(player_of(POSITION, hold_library), "pos")
    assert (session.playing, session.paused) == ("pos", "hold")
    sent += sent_payloads(session, 10 + 100)
    assert sent == reference[:18] + position + reference[18:118]
    assert session.take_events() == [PlaybackFinished("s1", "pos", PlaybackEnd.COMPLETED)]
    assert (session.playing, session.paused) == ("hold", None)


def test_inserts_queue_and_the_ad_rotation_goes_on_across_them(
        hold_library: PromptLibrary) -> None:
    reference = frames_of(player_of(SHORT_HOLD, hold_library), 200)
    position = frames_of(player_of(POSITION, hold_library), 200)
    session = answered()
    session.play(player_of(SHORT_HOLD, hold_library), "hold")
    sent = sent_payloads(session, 7)
    session.insert(player_of(POSITION, hold_library), "pos1")
    session.insert(player_of(POSITION, hold_library), "pos2")  # queues behind pos1
    assert (session.playing, session.paused) == ("pos1", "hold")
    sent += sent_payloads(session, 40)
    session.insert(player_of(POSITION, hold_library), "pos3")
    sent += sent_payloads(session, 60)
    assert sent == (reference[:7] + position + position + reference[7:27] + position
                    + reference[27:77])
    assert session.take_events() == [
        PlaybackFinished("s1", playback, PlaybackEnd.COMPLETED)
        for playback in ("pos1", "pos2", "pos3")
    ]
    program = [frame for frame, label in zip(sent, label_frames(sent), strict=True)
               if label != "position"]
    assert runs(label_frames(program)) == [
        ("music", 15), ("announcement", 5), ("music", 15), ("ad1", 5), ("music", 15),
        ("announcement", 5), ("music", 15), ("ad2", 2),
    ]


def test_stop_during_an_insert_ends_the_queued_inserts_and_the_paused_program(
        hold_library: PromptLibrary) -> None:
    session = answered()
    session.play(player_of(SHORT_HOLD, hold_library), "hold")
    sent_payloads(session, 5)
    session.insert(player_of(POSITION, hold_library), "pos1")
    session.insert(player_of(POSITION, hold_library), "pos2")
    sent_payloads(session, 3)
    assert session.stop_playback() is True
    assert session.take_events() == [
        PlaybackFinished("s1", playback, PlaybackEnd.STOPPED)
        for playback in ("pos1", "pos2", "hold")
    ]
    assert (session.playing, session.paused) == (None, None)
    assert sent_payloads(session, 3) == [SILENT_FRAME] * 3
    assert session.stop_playback() is False


def test_play_during_an_insert_replaces_everything(hold_library: PromptLibrary) -> None:
    session = answered()
    session.play(player_of(SHORT_HOLD, hold_library), "hold")
    session.insert(player_of(POSITION, hold_library), "pos1")
    session.insert(player_of(POSITION, hold_library), "pos2")
    session.play(player_of(Playlist(("announcement",)), hold_library), "menu")
    assert session.take_events() == [
        PlaybackFinished("s1", playback, PlaybackEnd.REPLACED)
        for playback in ("pos1", "pos2", "hold")
    ]
    assert runs(label_frames(sent_payloads(session, 8))) == [("announcement", 5),
                                                            ("silence", 3)]
    assert session.take_events() == [PlaybackFinished("s1", "menu", PlaybackEnd.COMPLETED)]


def test_closing_during_an_insert_reports_both(hold_library: PromptLibrary) -> None:
    session = answered()
    session.play(player_of(SHORT_HOLD, hold_library), "hold")
    session.insert(player_of(POSITION, hold_library), "pos")
    session.close()
    assert session.take_events() == [PlaybackFinished("s1", "pos", PlaybackEnd.CLOSED),
                                     PlaybackFinished("s1", "hold", PlaybackEnd.CLOSED)]


def test_insert_with_nothing_playing_plays_and_a_second_one_queues(
        hold_library: PromptLibrary) -> None:
    session = answered()
    session.insert(player_of(POSITION, hold_library), "pos1")
    session.insert(player_of(Playlist(("announcement",)), hold_library), "pos2")
    assert (session.playing, session.paused) == ("pos1", None)
    assert runs(label_frames(sent_payloads(session, 20))) == [
        ("position", 10), ("announcement", 5), ("silence", 5)
    ]
    assert session.take_events() == [PlaybackFinished("s1", "pos1", PlaybackEnd.COMPLETED),
                                     PlaybackFinished("s1", "pos2", PlaybackEnd.COMPLETED)]


def test_a_digit_barges_into_an_insert_and_the_program_resumes(
        hold_library: PromptLibrary) -> None:
    reference = frames_of(player_of(SHORT_HOLD, hold_library), 200)
    position = frames_of(player_of(POSITION, hold_library), 200)
    session = answered()
    session.play(player_of(SHORT_HOLD, hold_library), "hold")
    sent = sent_payloads(session, 4)
    session.insert(player_of(POSITION, hold_library), "pos", barge_in=True)
    sent += sent_payloads(session, 3)
    payload = TelephoneEvent(5, False, 10, 160).serialize()
    session.receive_rtp(audio(1, 8000, payload, pt=101), PEER, 0.0)
    sent += sent_payloads(session, 20)
    assert sent == reference[:4] + position[:3] + reference[4:24]
    assert session.take_events() == [RtpStarted("s1", *PEER),
                                     DtmfDetected("s1", "5", DtmfMethod.RFC4733),
                                     PlaybackFinished("s1", "pos", PlaybackEnd.BARGE_IN)]


def test_skipped_ticks_run_out_an_insert_and_the_program_goes_on(
        hold_library: PromptLibrary) -> None:
    reference = frames_of(player_of(SHORT_HOLD, hold_library), 200)
    session = answered()
    session.play(player_of(SHORT_HOLD, hold_library), "hold")
    sent_payloads(session, 5)
    session.insert(player_of(POSITION, hold_library), "pos")
    sent_payloads(session, 3)
    session.skip_ticks(20)  # the insert's last 7 frames, then 13 of the program
    assert session.take_events() == [PlaybackFinished("s1", "pos", PlaybackEnd.COMPLETED)]
    assert sent_payloads(session, 10) == reference[18:28]
