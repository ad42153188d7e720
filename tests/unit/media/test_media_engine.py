"""The asyncio engine on real UDP sockets (127.0.0.1 and ::1, kernel-chosen ports)."""

from __future__ import annotations

import asyncio
import random
import socket
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from media import g711
from media.dtmf import TelephoneEvent
from media.engine import MediaEngine, MediaEngineConfig, MediaError
from media.events import (
    DtmfDetected,
    DtmfMethod,
    MediaEvent,
    PlaybackEnd,
    PlaybackFinished,
    RtpStarted,
    RtpTimedOut,
)
from media.rtp import build_packet
from media.sdp import create_answer, parse_sdp
from media.session import SessionSettings
from media.sources import Playlist, PromptFile, Tone
from tests.unit.media.hold_prompts import (
    SHORT_PROMPTS,
    check_insert_frames,
    insert_over_hold,
    label_frames,
    runs,
    write_prompts,
)
from tests.unit.media.media_rtp_peer import RtpPeer, dominant_frequency, rms


def engine_config(tmp_path: Path, host: str = "127.0.0.1", **session: object) -> MediaEngineConfig:
    return MediaEngineConfig(
        bind_host=host, rtp_port_min=None, rtp_port_max=None, prompts_dir=str(tmp_path),
        session=SessionSettings(**session),  # type: ignore[arg-type]
    )


def write_tone(path: Path, frequency: float, seconds: float, rate: int = 8000,
               amplitude: float = 8000) -> None:
    t = np.arange(round(seconds * rate)) / rate
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((amplitude * np.sin(2 * np.pi * frequency * t)).astype("<i2").tobytes())


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


def collect(engine: MediaEngine) -> list[MediaEvent]:
    events: list[MediaEvent] = []
    engine.add_listener(events.append)
    return events


def test_play_a_prompt_to_a_peer_and_report_completion(tmp_path: Path) -> None:
    write_tone(tmp_path / "hello.wav", 700, 0.5, rate=16000)
    peer = RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path), rng=random.Random(1)) as engine:
            events = collect(engine)
            opened = await engine.open_session(peer.offer(("PCMA", "PCMU")))
            assert "RTP/AVP 8 101" in opened.local_sdp
            rtp_port, rtcp_port = engine.session_ports(opened.session_id)
            assert rtp_port % 2 == 0 and rtcp_port == rtp_port + 1
            playback = await engine.play(opened.session_id, PromptFile("hello"))
            await wait_until(lambda: any(isinstance(e, PlaybackFinished) for e in events))
            assert events == [
                PlaybackFinished(opened.session_id, playback, PlaybackEnd.COMPLETED)
            ]
            await asyncio.sleep(0.1)
            await engine.close(opened.session_id)
            assert engine.stats().sessions.packets_out >= 25

    try:
        run(scenario)
    finally:
        peer.close()
    packets = [a.packet for a in peer.audio(8)]
    heard = g711.alaw_decode(b"".join(p.payload for p in packets[:25]))
    assert dominant_frequency(heard.astype(float)) == pytest.approx(700, abs=15)
    seqs = [p.sequence_number for p in packets]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))


def test_our_offer_and_their_answer_over_ipv6(tmp_path: Path) -> None:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    peer = RtpPeer("::1")

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path, "::1")) as engine:
            opened = await engine.open_session(None)
            assert "c=IN IP6 ::1" in opened.local_sdp
            answer, _ = create_answer(parse_sdp(opened.local_sdp), "::1", peer.port,
                                      session_id=5)
            await engine.update_session(opened.session_id, answer.serialize())
            await engine.play(opened.session_id, Tone((1000.0,), 200, 0, seconds=0.3))
            await wait_until(lambda: len(peer.audio(0)) >= 10)
            port = engine.session_ports(opened.session_id)[0]
            peer.send_raw(build_packet(0, 1, 0, 77, b"\xff" * 160), ("::1", port))
            await wait_until(lambda: engine.session_stats(opened.session_id).packets_in == 1)

    try:
        run(scenario)
    finally:
        peer.close()


def test_latching_refuses_a_foreign_source_and_counts_malformed(tmp_path: Path) -> None:
    peer, intruder = RtpPeer(), RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            events = collect(engine)
            opened = await engine.open_session(peer.offer())
            rtp, rtcp_port = engine.session_ports(opened.session_id)
            target = ("127.0.0.1", rtp)
            intruder.send_raw(b"\x00garbage", target)
            intruder.send_raw(b"", target)
            peer.send_raw(build_packet(0, 1, 0, 9, b"\xff" * 160), target)
            await wait_until(lambda: any(isinstance(e, RtpStarted) for e in events))
            intruder.send_raw(build_packet(0, 2, 160, 9, b"\xff" * 160), target)
            intruder.send_raw(b"\x81\xc9\x00\x09", ("127.0.0.1", rtcp_port))
            stats = engine.session_stats(opened.session_id)
            await wait_until(lambda: engine.session_stats(opened.session_id).foreign_source == 1)
            stats = engine.session_stats(opened.session_id)
            await wait_until(lambda: engine.session_stats(opened.session_id).rtcp_malformed == 1)
            assert stats.malformed == 2
            assert events[0] == RtpStarted(opened.session_id, "127.0.0.1", peer.port)
            # the engine keeps sending to the latched peer only
            before = len(intruder.arrivals)
            await asyncio.sleep(0.1)
            assert len(intruder.arrivals) == before == 0
            assert len(peer.audio(0)) > 3

    try:
        run(scenario)
    finally:
        peer.close()
        intruder.close()


def test_a_burst_and_10_ms_packets_are_all_read_and_relayed_in_order(tmp_path: Path) -> None:
    # RTP sockets are polled once per slot, not watched by the loop: a source that sends more
    # than one packet per 20 ms (a burst after a network stall, or ptime 10) must still be read
    # completely, relayed in order, and not pile up in the socket.
    caller, agent = RtpPeer(), RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path, bridge_buffer_frames=64)) as engine:
            a = await engine.open_session(caller.offer(("PCMU",)))
            b = await engine.open_session(agent.offer(("PCMU",)))
            await engine.bridge(a.session_id, b.session_id)
            target = ("127.0.0.1", engine.session_ports(a.session_id)[0])
            for seq in range(30):  # 30 packets at once, then 20 at 10 ms intervals
                caller.send_raw(build_packet(0, seq, 160 * seq, 7, bytes([seq]) * 160), target)
            for seq in range(30, 50):
                caller.send_raw(build_packet(0, seq, 160 * seq, 7, bytes([seq]) * 160), target)
                await asyncio.sleep(0.01)
            await wait_until(lambda: engine.session_stats(a.session_id).packets_in == 50)
            wanted = set(range(50))
            await wait_until(lambda: {p.packet.payload[0] for p in agent.audio(0)} >= wanted)

    try:
        run(scenario)
    finally:
        caller.close()
        agent.close()
    relayed = [p.packet.payload[0] for p in agent.audio(0) if p.packet.payload[0] < 50]
    assert relayed == list(range(50))


def test_rtp_inactivity_timeout_event(tmp_path: Path) -> None:
    peer = RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path, rtp_timeout_s=0.3)) as engine:
            opened = await engine.open_session(peer.offer())
            event = await asyncio.wait_for(engine.next_event(), 3)
            assert isinstance(event, RtpTimedOut)
            assert event.session_id == opened.session_id
            assert event.silent_for_s >= 0.3

    try:
        run(scenario)
    finally:
        peer.close()


def test_rfc4733_digit_event_and_barge_in(tmp_path: Path) -> None:
    write_tone(tmp_path / "menu.wav", 500, 5.0)
    peer = RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            events = collect(engine)
            opened = await engine.open_session(peer.offer())
            playback = await engine.play(opened.session_id, Playlist(("menu",)), barge_in=True)
            port = engine.session_ports(opened.session_id)[0]
            key = [TelephoneEvent(3, end, 10, 160 * (i + 1)).serialize()
                   for i, end in enumerate([False, False, True, True, True])]
            peer.stream(("127.0.0.1", port), [b"\xff" * 160] * 20, 0, events={5: key})
            await wait_until(lambda: any(isinstance(e, DtmfDetected) for e in events))
            await asyncio.to_thread(peer.wait_sent)
            await asyncio.sleep(0.1)
            digits = [e for e in events if isinstance(e, DtmfDetected)]
            assert digits == [DtmfDetected(opened.session_id, "3", DtmfMethod.RFC4733)]
            assert PlaybackFinished(opened.session_id, playback, PlaybackEnd.BARGE_IN) in events

    try:
        run(scenario)
    finally:
        peer.close()


def test_bridge_relays_tones_both_ways_with_transcoding_and_dtmf(tmp_path: Path) -> None:
    caller, agent = RtpPeer(), RtpPeer()
    seconds = 2.0
    t = np.arange(round(seconds * 8000)) / 8000
    caller_tone = g711.ulaw_encode((6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16))
    agent_tone = g711.alaw_encode((3000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16))

    def frames(data: bytes) -> list[bytes]:
        return [data[i : i + 160] for i in range(0, len(data), 160)]

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            events = collect(engine)
            a = await engine.open_session(caller.offer(("PCMU",)))
            b = await engine.open_session(agent.offer(("PCMA",), event_pt=96))
            bridge_id = await engine.bridge(a.session_id, b.session_id)
            recording = await engine.record(bridge_id, str(tmp_path / "call.wav"), stereo=True)
            key = [TelephoneEvent(9, end, 10, 160 * (i + 1)).serialize()
                   for i, end in enumerate([False, False, False, True, True, True])]
            caller.stream(("127.0.0.1", engine.session_ports(a.session_id)[0]),
                          frames(caller_tone), 0, events={60: key})
            agent.stream(("127.0.0.1", engine.session_ports(b.session_id)[0]),
                         frames(agent_tone), 8)
            await asyncio.to_thread(caller.wait_sent)
            await asyncio.to_thread(agent.wait_sent)
            await asyncio.sleep(0.2)
            await engine.stop_recording(recording)
            await engine.unbridge(a.session_id, b.session_id)
            stats = engine.stats()
            assert stats.sessions.foreign_source == 0
            assert DtmfDetected(a.session_id, "9", DtmfMethod.RFC4733) in events

    try:
        run(scenario)
    finally:
        caller.close()
        agent.close()
    heard_by_agent = g711.alaw_decode(b"".join(p.packet.payload for p in agent.audio(8)))
    heard_by_caller = g711.ulaw_decode(b"".join(p.packet.payload for p in caller.audio(0)))
    # skip the silence before the far side started; measure frequency and level
    agent_part = heard_by_agent[np.abs(heard_by_agent) > 0][2000:10000].astype(float)
    caller_part = heard_by_caller[np.abs(heard_by_caller) > 0][2000:10000].astype(float)
    assert dominant_frequency(agent_part) == pytest.approx(440, abs=10)
    assert dominant_frequency(caller_part) == pytest.approx(1000, abs=10)
    assert rms(agent_part) == pytest.approx(6000 / np.sqrt(2), rel=0.1)
    assert rms(caller_part) == pytest.approx(3000 / np.sqrt(2), rel=0.1)
    relayed = agent.audio(96)
    assert relayed and {TelephoneEvent.parse(p.packet.payload).event for p in relayed} == {9}
    with wave.open(str(tmp_path / "call.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert len(stereo) >= 1.5 * 8000
    left = stereo[:, 0][np.abs(stereo[:, 0]) > 0][2000:10000].astype(float)
    right = stereo[:, 1][np.abs(stereo[:, 1]) > 0][2000:10000].astype(float)
    assert dominant_frequency(left) == pytest.approx(440, abs=10)
    assert dominant_frequency(right) == pytest.approx(1000, abs=10)


def test_session_recording_mixed(tmp_path: Path) -> None:
    write_tone(tmp_path / "beep.wav", 800, 1.0)
    peer = RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            opened = await engine.open_session(peer.offer())
            await engine.record(opened.session_id, str(tmp_path / "rec" / "s.wav"))
            await engine.play(opened.session_id, PromptFile("beep"))
            await asyncio.sleep(1.2)
            await engine.close(opened.session_id)

    try:
        run(scenario)
    finally:
        peer.close()
    with wave.open(str(tmp_path / "rec" / "s.wav")) as wav:
        assert wav.getnchannels() == 1
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(float)
    assert 0.9 * 8000 <= len(samples) <= 1.5 * 8000
    assert dominant_frequency(samples) == pytest.approx(800, abs=10)


def test_commands_about_unknown_things_raise_media_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            with pytest.raises(MediaError, match="no media session 'nope'"):
                await engine.play("nope", PromptFile("x"))
            opened = await engine.open_session(None)
            with pytest.raises(MediaError, match="prompt 'missing' not found"):
                await engine.play(opened.session_id, PromptFile("missing"))
            with pytest.raises(MediaError, match="itself"):
                await engine.bridge(opened.session_id, opened.session_id)
            with pytest.raises(ValueError, match="no common audio codec"):
                await engine.open_session(
                    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    "m=audio 5000 RTP/AVP 18\r\n"
                )
            assert engine.stats().sessions_open == 1

    run(scenario)


def test_configured_port_range_gives_even_rtp_and_odd_rtcp(tmp_path: Path) -> None:
    # find a free block of ports at run time, then hand the engine exactly that range
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1] // 2 * 2
    probe.close()
    low, high = (base, base + 9) if base + 9 <= 65535 else (base - 10, base - 1)

    async def scenario() -> None:
        config = MediaEngineConfig(rtp_port_min=low, rtp_port_max=high,
                                   prompts_dir=str(tmp_path))
        async with MediaEngine(config) as engine:
            ports = []
            for _ in range(3):
                try:
                    opened = await engine.open_session(None)
                except MediaError:
                    pytest.skip("port block taken by another process meanwhile")
                ports.append(engine.session_ports(opened.session_id))
            for rtp_port, rtcp_port in ports:
                assert low <= rtp_port < rtcp_port <= high
                assert rtp_port % 2 == 0 and rtcp_port == rtp_port + 1

    run(scenario)


@pytest.mark.slow
def test_pacing_of_a_10_second_playback(tmp_path: Path) -> None:
    write_tone(tmp_path / "long.wav", 440, 10.0)
    peer = RtpPeer()
    skipped = 0

    async def scenario() -> None:
        nonlocal skipped
        async with MediaEngine(engine_config(tmp_path)) as engine:
            events = collect(engine)
            opened = await engine.open_session(peer.offer())
            await engine.play(opened.session_id, PromptFile("long"))
            await wait_until(lambda: bool(events), timeout=15)
            skipped = engine.stats().ticks_skipped
            await engine.close(opened.session_id)

    try:
        run(scenario)
    finally:
        peer.close()
    arrivals = peer.audio(0)
    loud = [a for a in arrivals if np.abs(g711.ulaw_decode(a.packet.payload)).max() > 100]
    # Nothing lost: every slot was sent, or skipped because this process was starved for
    # longer than max_late_ticks (counted and logged by design; a few on a busy machine).
    assert len(loud) + skipped == 500 and skipped <= 25, (len(loud), skipped)
    seqs = [a.packet.sequence_number for a in loud]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    times = np.array([a.at for a in loud])
    # where each packet belongs on the 20 ms grid: its RTP timestamp (skipped slots advance it)
    slots = np.array([(a.packet.timestamp - loud[0].packet.timestamp) % 2**32
                      for a in loud]) / 8000
    deviation_ms = np.abs(np.diff(times) - np.diff(slots)) * 1000
    grid = times - slots
    grid_error_ms = np.abs(grid - np.median(grid)) * 1000
    # Bounds for a busy 2-core machine (the benchmark holds the tight targets): most packets
    # on time; none later than the engine lets itself fall behind before it skips ticks
    # (max_late_ticks = 5: 100 ms), however long this test process was starved.
    assert np.percentile(deviation_ms, 50) < 2.0
    assert np.percentile(grid_error_ms, 50) < 5.0
    assert np.percentile(grid_error_ms, 99) < 100.0
    assert (times[-1] - times[0]) == pytest.approx(slots[-1], abs=0.1)  # no drift


def test_g722_leg_bridged_to_pcmu_and_to_g722_with_tones_measured(tmp_path: Path) -> None:
    # The G.722 side is coded by the G722 library itself at 16 kHz (an independent encoder and
    # decoder), the PCMU side with G.711: each far side measures what the other one sent.
    from G722 import G722 as Reference

    wide_caller, narrow_agent, wide_agent = RtpPeer(), RtpPeer(), RtpPeer()
    t16 = np.arange(32000) / 16000
    caller_wide = Reference(16000, 64000).encode(
        (6000 * np.sin(2 * np.pi * 1000 * t16)).astype(np.int16))
    wideband_only = Reference(16000, 64000).encode(
        (6000 * np.sin(2 * np.pi * 6000 * t16)).astype(np.int16))
    t8 = np.arange(16000) / 8000
    agent_narrow = g711.ulaw_encode((4000 * np.sin(2 * np.pi * 1500 * t8)).astype(np.int16))

    def split(data: bytes) -> list[bytes]:
        return [data[i : i + 160] for i in range(0, len(data), 160)]

    async def scenario() -> None:
        config = engine_config(tmp_path, codecs=("PCMU", "PCMA", "G722"))
        async with MediaEngine(config) as engine:
            # G.722 caller ⇄ PCMU agent: transcoded through 8 kHz PCM
            a = await engine.open_session(wide_caller.offer(("G722",)))
            assert "RTP/AVP 9 101" in a.local_sdp and "G722/8000" in a.local_sdp
            b = await engine.open_session(narrow_agent.offer(("PCMU",)))
            await engine.bridge(a.session_id, b.session_id)
            wide_caller.stream(("127.0.0.1", engine.session_ports(a.session_id)[0]),
                               split(caller_wide), 9)
            narrow_agent.stream(("127.0.0.1", engine.session_ports(b.session_id)[0]),
                                split(agent_narrow), 0)
            await asyncio.to_thread(wide_caller.wait_sent)
            await asyncio.to_thread(narrow_agent.wait_sent)
            await asyncio.sleep(0.2)
            await engine.close(b.session_id)
            # the same G.722 caller ⇄ a G.722 agent: passed through, wideband intact
            c = await engine.open_session(wide_agent.offer(("G722",)))
            await engine.bridge(a.session_id, c.session_id)
            wide_caller.stream(("127.0.0.1", engine.session_ports(a.session_id)[0]),
                               split(wideband_only), 9, ssrc=0x6262)
            await asyncio.to_thread(wide_caller.wait_sent)
            await asyncio.sleep(0.2)

    try:
        run(scenario)
    finally:
        for peer in (wide_caller, narrow_agent, wide_agent):
            peer.close()
    heard_by_agent = g711.ulaw_decode(b"".join(p.packet.payload for p in narrow_agent.audio(0)))
    agent_part = after_onset(heard_by_agent, 2000, 8000)
    assert dominant_frequency(agent_part) == pytest.approx(1000, abs=10)
    assert rms(agent_part) == pytest.approx(6000 / np.sqrt(2), rel=0.15)
    caller_payload = b"".join(p.packet.payload for p in wide_caller.audio(9))
    heard_by_caller = np.frombuffer(Reference(16000, 64000).decode(caller_payload), np.int16)
    caller_part = after_onset(heard_by_caller, 4000, 16000)
    assert dominant_frequency(caller_part, rate=16000) == pytest.approx(1500, abs=10)
    wide_payload = b"".join(p.packet.payload for p in wide_agent.audio(9))
    heard_wide = np.frombuffer(Reference(16000, 64000).decode(wide_payload), np.int16)
    wide_part = after_onset(heard_wide, 4000, 16000)
    assert dominant_frequency(wide_part, rate=16000) == pytest.approx(6000, abs=10)


def after_onset(samples: np.ndarray, skip: int, length: int) -> np.ndarray:
    """``length`` samples starting ``skip`` after the first one louder than silence."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 1000)
    assert len(loud), "nothing but silence arrived"
    start = int(loud[0]) + skip
    part = samples[start : start + length].astype(float)
    assert len(part) == length, f"only {len(part)} samples after the onset"
    return part


def test_insert_plays_over_the_hold_program_which_resumes_where_it_paused(
        tmp_path: Path) -> None:
    write_prompts(tmp_path, SHORT_PROMPTS)
    peer = RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path), rng=random.Random(2)) as engine:
            await insert_over_hold(engine, peer)

    try:
        run(scenario)
    finally:
        peer.close()
    check_insert_frames(peer, tmp_path)


def test_insert_with_nothing_playing_is_a_play(tmp_path: Path) -> None:
    write_prompts(tmp_path, {"position": 0.2})
    peer = RtpPeer()

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            events = collect(engine)
            opened = await engine.open_session(peer.offer())
            playback = await engine.insert(opened.session_id, Playlist(("position",)))
            await wait_until(lambda: bool(events))
            assert events == [
                PlaybackFinished(opened.session_id, playback, PlaybackEnd.COMPLETED)
            ]
            with pytest.raises(MediaError, match="prompt 'nope' not found"):
                await engine.insert(opened.session_id, PromptFile("nope"))
            with pytest.raises(MediaError, match="no media session"):
                await engine.insert("m999", Playlist(("position",)))

    try:
        run(scenario)
    finally:
        peer.close()
    heard = runs(label_frames([a.packet.payload for a in peer.audio(0)]))
    assert ("position", 10) in heard
