"""Call recordings in the media layer: a paused recording writes nothing until resumed; a
disk that fills up ends the recording without disturbing the clock that ticks it; the engine
pauses and resumes a session's recording by id."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from media.engine import MediaEngine, MediaError
from media.events import RecordingFailed
from media.recording import Recording
from media.sources import PromptFile
from tests.unit.media.media_rtp_peer import RtpPeer
from tests.unit.media.test_media_engine import engine_config, run, write_tone


def frame(value: int) -> np.ndarray:  # type: ignore[type-arg]
    return np.full(160, value, dtype=np.int16)


def test_a_paused_recording_writes_nothing_until_resumed(tmp_path: Path) -> None:
    recording = Recording("r1", tmp_path / "r.wav", stereo=True)
    for value, paused in ((100, False), (200, True), (300, False)):
        recording.paused = paused
        for _ in range(10):
            recording.left.push(frame(value))
            recording.right.push(frame(-value))
            recording.tick()
    recording.close()
    with wave.open(str(tmp_path / "r.wav")) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert len(samples) == 20 * 160
    assert set(samples[:, 0]) == {100, 300} and set(samples[:, 1]) == {-100, -300}


def test_a_full_disk_ends_the_recording_quietly() -> None:
    recording = Recording("r1", Path("/dev/full"), stereo=True)
    for _ in range(120):  # more than one batch: the write fails, nothing is raised
        recording.left.push(frame(1))
        recording.tick()
    assert recording.closed and "space" in recording.failed
    recording.close()  # idempotent


def test_the_engine_pauses_and_resumes_a_recording_by_id(tmp_path: Path) -> None:
    write_tone(tmp_path / "beep.wav", 800, 2.0)
    peer = RtpPeer()

    spans: list[float] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with MediaEngine(engine_config(tmp_path)) as engine:
            opened = await engine.open_session(peer.offer())
            recording = await engine.record(opened.session_id, str(tmp_path / "s.wav"),
                                            stereo=True)
            await engine.play(opened.session_id, PromptFile("beep"))
            spans.append(loop.time())
            await asyncio.sleep(0.5)
            await engine.pause_recording(recording, True)
            spans.append(loop.time())
            await asyncio.sleep(0.8)
            await engine.pause_recording(recording, False)
            spans.append(loop.time())
            await asyncio.sleep(0.5)
            await engine.stop_recording(recording)
            spans.append(loop.time())
            with pytest.raises(MediaError):
                await engine.pause_recording(recording, True)
            await engine.close(opened.session_id)

    try:
        run(scenario)
    finally:
        peer.close()
    with wave.open(str(tmp_path / "s.wav")) as wav:
        seconds = wav.getnframes() / 8000
    started, paused, resumed, stopped = spans
    written = (paused - started) + (stopped - resumed)  # a busy machine stretches the sleeps
    assert seconds <= written + 0.15, (seconds, spans)  # nothing of the pause was written
    assert seconds >= 0.5, (seconds, spans)


def test_the_engine_reports_a_recording_that_failed_once(tmp_path: Path) -> None:
    peer = RtpPeer()
    failures: list[RecordingFailed] = []

    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            engine.add_listener(lambda e: failures.append(e)
                                if isinstance(e, RecordingFailed) else None)
            opened = await engine.open_session(peer.offer())
            recording = await engine.record(opened.session_id, "/dev/full", stereo=True)
            for _ in range(100):  # one batch of frames (1 s) is written, and fails
                if failures:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.2)  # the clock goes on ticking: no second report
            assert engine.stats().recordings == 0
            with pytest.raises(MediaError):
                await engine.stop_recording(recording)
            await engine.close(opened.session_id)  # the session itself is unharmed

    try:
        run(scenario)
    finally:
        peer.close()
    assert len(failures) == 1, failures
    assert failures[0].path == "/dev/full" and "space" in failures[0].error
