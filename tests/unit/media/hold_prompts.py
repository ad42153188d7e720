"""Synthetic prompts for the hold-program and insert tests, and how to tell them apart.

Every prompt is a tone of its own frequency, a whole number of cycles per 20 ms frame, so each
sent frame is labelled by measuring its dominant frequency. The music tone carries seeded noise
on top, which makes every one of its frames distinct: a resumed music position can then be
checked byte for byte against a reference player.
"""

from __future__ import annotations

import asyncio
import random
import wave
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from media import g711
from media.engine import MediaEngine
from media.events import MediaEvent, PlaybackEnd, PlaybackFinished
from media.sources import HoldProgram, Playlist, PromptLibrary, create_player
from media.workers import MediaWorkerPool
from tests.unit.media.media_rtp_peer import RtpPeer

FREQUENCIES = {
    "music": 400.0, "announcement": 800.0, "ad1": 1200.0, "ad2": 1600.0, "ad3": 2000.0,
    "position": 2800.0, "long": 3200.0,
}
SILENCE = "silence"


def write_prompts(directory: Path, seconds: Mapping[str, float]) -> None:
    """Write ``name.wav`` (8 kHz, 16 bit) for each name of `FREQUENCIES` given a length."""
    noise = np.random.default_rng(5)
    for name, length in seconds.items():
        t = np.arange(round(length * 8000)) / 8000
        samples = 6000 * np.sin(2 * np.pi * FREQUENCIES[name] * t)
        if name == "music":
            samples += noise.uniform(-1500, 1500, len(t))
        with wave.open(str(directory / f"{name}.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(np.round(samples).astype("<i2").tobytes())


def label_frames(frames: Sequence[bytes], codec: str = "PCMU") -> list[str]:
    """The prompt each 20 ms frame came from, by its dominant frequency (or "silence")."""
    if not frames:
        return []
    pcm = g711.decode(codec, b"".join(frames)).astype(np.float64).reshape(-1, 160)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(160), axis=1))
    dominant = np.fft.rfftfreq(160, 1 / 8000)[np.argmax(spectrum, axis=1)]
    loud = np.sqrt(np.mean(pcm**2, axis=1)) > 500
    by_frequency = {frequency: name for name, frequency in FREQUENCIES.items()}
    return [by_frequency.get(float(f), f"?{f:.0f}Hz") if is_loud else SILENCE
            for f, is_loud in zip(dominant, loud, strict=True)]


def runs(labels: Sequence[str]) -> list[tuple[str, int]]:
    """Run-length encoding: [("music", 1500), ("announcement", 125), ...]."""
    result: list[tuple[str, int]] = []
    for label in labels:
        if result and result[-1][0] == label:
            result[-1] = (label, result[-1][1] + 1)
        else:
            result.append((label, 1))
    return result


def frames_of(player: object, limit: int) -> list[bytes]:
    """Up to ``limit`` frames pulled from a player (fewer when it ends)."""
    frames = []
    for _ in range(limit):
        frame = player.next_frame()  # type: ignore[attr-defined]
        if frame is None:
            break
        frames.append(frame)
    return frames


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- one scenario, run
# through the in-process engine and through the worker pool

SHORT_PROMPTS = {"music": 1.0, "announcement": 0.1, "ad1": 0.1, "ad2": 0.12, "position": 0.2,
                 "long": 3.0}
SHORT_HOLD = HoldProgram(music=("music",), announcements=("announcement",), ads=("ad1", "ad2"),
                         interval_s=0.3)
INSERTED = ("position", "long")


async def insert_over_hold(media: MediaEngine | MediaWorkerPool, peer: RtpPeer) -> None:
    """Hold program; two inserts (the second queued behind the first); later a third one,
    stopped halfway. Asserts the events; `check_insert_frames` then checks what was heard."""
    events: list[MediaEvent] = []
    media.add_listener(events.append)
    session_id = (await media.open_session(peer.offer())).session_id
    hold = await media.play(session_id, SHORT_HOLD)
    await asyncio.sleep(0.5)
    first = await media.insert(session_id, Playlist(("position",)))
    second = await media.insert(session_id, Playlist(("position",)))
    await wait_until(lambda: len(events) >= 2)
    assert events == [PlaybackFinished(session_id, first, PlaybackEnd.COMPLETED),
                      PlaybackFinished(session_id, second, PlaybackEnd.COMPLETED)]
    await asyncio.sleep(0.9)
    assert len(events) == 2  # the resumed hold program reports nothing
    third = await media.insert(session_id, Playlist(("long",)))
    await asyncio.sleep(0.3)
    await media.stop(session_id)
    assert events[2:] == [PlaybackFinished(session_id, third, PlaybackEnd.STOPPED),
                          PlaybackFinished(session_id, hold, PlaybackEnd.STOPPED)]
    await asyncio.sleep(0.1)
    await media.close(session_id)


def check_insert_frames(peer: RtpPeer, directory: Path) -> None:
    """What `insert_over_hold` sent: with the inserted frames cut out, the hold program's
    frames byte for byte as one uninterrupted run of the program, then silence after stop."""
    payloads = [arrival.packet.payload for arrival in peer.audio(0)]
    labels = label_frames(payloads)
    start = labels.index("music")  # silence went out until the program started
    end = labels.index(SILENCE, start)  # the stop
    sent, sent_labels = payloads[start:end], labels[start:end]
    inserted = [run for run in runs(sent_labels) if run[0] in INSERTED]
    assert inserted[0] == ("position", 20)  # both, back to back
    assert len(inserted) == 2 and inserted[1][0] == "long" and 5 < inserted[1][1] < 150
    assert sent_labels[-1] == "long"  # stopped during the insert: nothing of the program after
    program = [frame for frame, label in zip(sent, sent_labels, strict=True)
               if label not in INSERTED]
    reference = frames_of(
        create_player(SHORT_HOLD, "PCMU", PromptLibrary(directory), random.Random()),
        len(program),
    )
    assert program == reference
    heard = [label for label, _ in runs(label_frames(program))]
    assert heard[:6] == ["music", "announcement", "music", "ad1", "music", "announcement"]
    assert all(label == SILENCE for label in labels[end:])
