"""The worker pool serves the engine's commands (every one, same signature) from worker
processes; events come back."""

from __future__ import annotations

import asyncio
import inspect
import wave
from pathlib import Path

import numpy as np
import pytest

from media.engine import MediaEngine, MediaEngineConfig, MediaError
from media.events import PlaybackEnd, PlaybackFinished, RecordingFailed
from media.sources import PromptFile
from media.workers import MediaWorkerPool
from tests.unit.media.hold_prompts import (
    SHORT_PROMPTS,
    check_insert_frames,
    insert_over_hold,
    write_prompts,
)
from tests.unit.media.media_rtp_peer import RtpPeer


def test_pool_routes_commands_and_events(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "beep.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes((np.sin(np.arange(1600) * 0.5) * 5000).astype("<i2").tobytes())
    peer = RtpPeer()
    config = MediaEngineConfig(rtp_port_min=None, rtp_port_max=None, prompts_dir=str(tmp_path))

    async def scenario() -> None:
        async with MediaWorkerPool(config, workers=2, seed=3) as pool:
            first = await pool.open_session(peer.offer())
            second = await pool.open_session(peer.offer())
            near = await pool.open_session(None, near=first.session_id)
            assert first.session_id.startswith("w0") and second.session_id.startswith("w1")
            assert near.session_id.startswith("w0")
            with pytest.raises(MediaError, match="different media workers"):
                await pool.bridge(first.session_id, second.session_id)
            bridge_id = await pool.bridge(first.session_id, near.session_id)
            assert bridge_id.startswith("w0")
            await pool.unbridge(first.session_id, near.session_id)
            playback = await pool.play(second.session_id, PromptFile("beep"))
            event = await asyncio.wait_for(pool.next_event(), 5)
            assert event == PlaybackFinished(second.session_id, playback, PlaybackEnd.COMPLETED)
            with pytest.raises(MediaError, match="prompt 'nope' not found"):
                await pool.play(first.session_id, PromptFile("nope"))
            info = await pool.session_info(second.session_id)
            assert info.rtp_port % 2 == 0
            stats = await pool.stats()
            assert stats.sessions_open == 3
            assert stats.sessions.packets_out > 10
            await pool.close(first.session_id)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        peer.close()
    assert len(peer.audio(0)) > 10


def test_a_flood_of_commands_does_not_deadlock_the_pipes(tmp_path: Path) -> None:
    # 20,000 commands written in one go (one loop iteration, before any result is read):
    # about 3 MB each way, far beyond a pipe's 64 KiB. With blocking writes the worker filled
    # the result pipe, stopped reading commands, and the caller blocked on the command pipe.
    config = MediaEngineConfig(rtp_port_min=None, rtp_port_max=None, prompts_dir=str(tmp_path))

    async def scenario() -> None:
        async with MediaWorkerPool(config, workers=1, seed=5) as pool:
            opened = await pool.open_session(None)
            infos = await asyncio.wait_for(
                asyncio.gather(*(pool.session_info(opened.session_id) for _ in range(20000))),
                60,
            )
            assert len(infos) == 20000 and {info.session_id for info in infos} == {
                opened.session_id
            }
            assert (await pool.stats()).sessions_open == 1

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_insert_through_the_pool_resumes_the_hold_program(tmp_path: Path) -> None:
    write_prompts(tmp_path, SHORT_PROMPTS)
    peer = RtpPeer()
    config = MediaEngineConfig(rtp_port_min=None, rtp_port_max=None, prompts_dir=str(tmp_path))

    async def scenario() -> None:
        async with MediaWorkerPool(config, workers=1, seed=4) as pool:
            await insert_over_hold(pool, peer)
            opened = await pool.open_session(None)
            with pytest.raises(MediaError, match="prompt 'nope' not found"):
                await pool.insert(opened.session_id, PromptFile("nope"))

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        peer.close()
    check_insert_frames(peer, tmp_path)


def engine_commands() -> list[str]:
    return [name for name, member in inspect.getmembers(MediaEngine)
            if inspect.iscoroutinefunction(member) and not name.startswith("_")]


@pytest.mark.parametrize("name", engine_commands())
def test_the_pool_serves_each_engine_command_with_the_same_signature(name: str) -> None:
    ours, theirs = getattr(MediaEngine, name), getattr(MediaWorkerPool, name, None)
    assert theirs is not None and inspect.iscoroutinefunction(theirs)
    assert list(inspect.signature(theirs).parameters.values()) == list(
        inspect.signature(ours).parameters.values()
    )


def test_insert_is_among_the_commands() -> None:
    assert {"play", "insert", "stop"} <= set(engine_commands())


def test_a_call_recording_through_the_pool(tmp_path: Path) -> None:
    peer = RtpPeer()
    config = MediaEngineConfig(rtp_port_min=None, rtp_port_max=None, prompts_dir=str(tmp_path))

    async def scenario() -> None:
        async with MediaWorkerPool(config, workers=1, seed=3) as pool:
            opened = await pool.open_session(peer.offer())
            kept = await pool.record(opened.session_id, str(tmp_path / "r" / "call.wav"),
                                     stereo=True)
            failing = await pool.record(opened.session_id, "/dev/full", stereo=True)
            await pool.pause_recording(kept, True)
            await pool.pause_recording(kept, False)
            event = await asyncio.wait_for(pool.next_event(), 15)  # the full disk, reported
            while not isinstance(event, RecordingFailed):
                event = await asyncio.wait_for(pool.next_event(), 15)
            assert event.recording_id == failing and event.path == "/dev/full"
            await pool.stop_recording(kept)
            with pytest.raises(MediaError, match="no recording"):
                await pool.pause_recording(kept, True)
            await pool.close(opened.session_id)

    try:
        asyncio.run(scenario())
    finally:
        peer.close()
    with wave.open(str(tmp_path / "r" / "call.wav")) as wav:
        assert wav.getnchannels() == 2 and wav.getnframes() > 4000
