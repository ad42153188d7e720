"""WAV loading of any rate/format, resampling, pre-encoding, playlists and the hold program."""

from __future__ import annotations

import dataclasses
import random
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from media import g711
from media.mixer import FrameQueue, interleave, mix
from media.sources import (
    HoldProgram,
    Pause,
    Playlist,
    PlaylistOrder,
    PromptFile,
    PromptLibrary,
    Tone,
    create_player,
    read_wav,
    resample,
)
from tests.unit.media.hold_prompts import label_frames, runs, write_prompts


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2,
              channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        if width == 1:
            data = (np.clip(samples / 256 + 128, 0, 255)).astype(np.uint8).tobytes()
        elif width == 2:
            data = samples.astype("<i2").tobytes()
        else:
            data = (samples.astype(np.int64) << 16).astype("<i4").tobytes()
        wav.writeframes(data)
    return path


def write_float_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    data = (samples / 32768).astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def sine(frequency: float, seconds: float, rate: int, amplitude: float = 10000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def dominant(samples: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("rate", "width", "channels"),
    [(8000, 2, 1), (16000, 2, 1), (44100, 2, 2), (48000, 4, 1), (22050, 1, 1), (11025, 2, 1)],
)
def test_any_rate_and_format_is_converted_to_8khz(tmp_path: Path, rate: int, width: int,
                                                   channels: int) -> None:
    tone = sine(1000, 0.5, rate)
    if channels == 2:
        tone = np.repeat(tone, 2)
    path = write_wav(tmp_path / "t.wav", tone, rate, width, channels)
    prompt = PromptLibrary(tmp_path).load("t")
    assert abs(prompt.duration_s - 0.5) <= 0.02
    assert prompt.frames == len(prompt.samples) // 160
    assert dominant(prompt.samples.astype(float)) == pytest.approx(1000, abs=20)
    level = np.sqrt(np.mean(prompt.samples[400:-400].astype(float) ** 2))
    assert level == pytest.approx(10000 / np.sqrt(2), rel=0.1)
    assert set(prompt.encoded) == {"PCMU", "PCMA", "G722"}
    assert len(prompt.encoded["PCMA"]) == len(prompt.samples)
    assert path.exists()


def test_float_wav_is_read(tmp_path: Path) -> None:
    path = write_float_wav(tmp_path / "f.wav", sine(440, 0.2, 16000), 16000)
    samples, rate = read_wav(path)
    assert rate == 16000
    assert np.max(np.abs(samples)) == pytest.approx(10000, rel=0.01)


def test_resampling_removes_content_above_the_telephone_band() -> None:
    tone = sine(6000, 1.0, 48000)  # would alias to 2 kHz without the low-pass
    out = resample(tone, 48000)
    assert len(out) == 8000
    assert np.sqrt(np.mean(out[100:-100] ** 2)) < 50


def test_prompts_are_loaded_once(tmp_path: Path) -> None:
    write_wav(tmp_path / "hi.wav", sine(500, 0.1, 8000), 8000)
    library = PromptLibrary(tmp_path)
    assert library.load("hi") is library.load("hi.wav")


def test_missing_and_broken_prompts_have_clear_errors(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path)
    with pytest.raises(ValueError, match="prompt 'nope' not found at"):
        library.load("nope")
    (tmp_path / "bad.wav").write_bytes(b"RIFF\0\0\0\0JUNK")
    with pytest.raises(ValueError, match="unreadable"):
        library.load("bad")


def frames_of(player: object, limit: int = 100_000) -> list[bytes]:
    frames = []
    for _ in range(limit):
        frame = player.next_frame()  # type: ignore[attr-defined]
        if frame is None:
            break
        frames.append(frame)
    return frames


@pytest.fixture
def library(tmp_path: Path) -> PromptLibrary:
    # each prompt is a constant value, so frames tell which prompt they came from
    for name, value, seconds in [("a", 1000, 0.1), ("b", 2000, 0.06), ("c", 3000, 0.04),
                                 ("music", 500, 1.0), ("ad", 4000, 0.04)]:
        write_wav(tmp_path / f"{name}.wav", np.full(round(seconds * 8000), value), 8000)
    return PromptLibrary(tmp_path)


def labels(frames: list[bytes]) -> str:
    names = {1000: "a", 2000: "b", 3000: "c", 500: "m", 4000: "d", 0: "."}
    decoded = [int(g711.ulaw_decode(f)[0]) for f in frames]
    return "".join(names[min(names, key=lambda v: abs(v - value))] for value in decoded)


def test_sequence_playlist_with_pause(library: PromptLibrary) -> None:
    player = create_player(Playlist(("a", Pause(40), PromptFile("b"))), "PCMU", library,
                           random.Random(1))
    assert labels(frames_of(player)) == "aaaaa..bbb"


def test_looping_playlist_repeats(library: PromptLibrary) -> None:
    player = create_player(Playlist(("b", "c"), repeat=True), "PCMU", library, random.Random(1))
    assert labels(frames_of(player, 12)) == "bbbccbbbccbb"


def test_shuffle_uses_the_injected_generator(library: PromptLibrary) -> None:
    playlist = Playlist(("a", "b", "c"), order=PlaylistOrder.SHUFFLE, repeat=True)
    one = labels(frames_of(create_player(playlist, "PCMU", library, random.Random(3)), 60))
    two = labels(frames_of(create_player(playlist, "PCMU", library, random.Random(3)), 60))
    other = labels(frames_of(create_player(playlist, "PCMU", library, random.Random(4)), 60))
    assert one == two
    assert one != other
    assert one.count("a") == 5 * one.count("c") // 2  # every round plays each item once


def test_hold_program_interleaves_announcements_and_ads(library: PromptLibrary) -> None:
    program = HoldProgram(music=("music",), announcements=("c",), ads=("ad",), interval_s=0.2)
    sequence = labels(frames_of(create_player(program, "PCMU", library, random.Random()), 40))
    assert sequence == "mmmmmmmmmm" + "cc" + "mmmmmmmmmm" + "dd" + "mmmmmmmmmm" + "cc" + "mmmm"


def test_hold_program_music_resumes_where_it_paused(library: PromptLibrary,
                                                    tmp_path: Path) -> None:
    ramp = np.repeat(np.arange(1, 101) * 100, 160)  # frame n has value 100·n
    write_wav(tmp_path / "ramp.wav", ramp, 8000)
    program = HoldProgram(music=("ramp",), announcements=("c",), interval_s=0.1)
    frames = frames_of(create_player(program, "PCMU", library, random.Random()), 14)
    values = [int(g711.ulaw_decode(f)[0]) for f in frames]
    music = [v for v in values if v != g711.ulaw_decode(g711.ulaw_encode([3000]))[0]]
    assert all(b > a for a, b in zip(music, music[1:], strict=False))


def test_hold_program_needs_music(library: PromptLibrary) -> None:
    with pytest.raises(ValueError, match="needs at least one music"):
        create_player(HoldProgram(music=()), "PCMU", library, random.Random())


def test_missing_playlist_item_fails_before_playing(library: PromptLibrary) -> None:
    with pytest.raises(ValueError, match="prompt 'zzz' not found"):
        create_player(Playlist(("a", "zzz")), "PCMU", library, random.Random())


def test_tone_cadence(library: PromptLibrary) -> None:
    player = create_player(Tone((425.0,), on_ms=100, off_ms=100, seconds=0.4), "PCMA", library,
                           random.Random())
    frames = frames_of(player)
    assert len(frames) == 20
    loud = [np.abs(g711.alaw_decode(f).astype(int)).max() > 1000 for f in frames]
    assert loud == [True] * 5 + [False] * 5 + [True] * 5 + [False] * 5


def test_mixer_saturates_and_interleaves() -> None:
    a = np.array([30000, -30000, 5], dtype=np.int16)
    b = np.array([10000, -10000, 5], dtype=np.int16)
    assert mix(a, b, None).tolist() == [32767, -32768, 10]
    assert interleave(a, b).tolist() == [30000, 10000, -30000, -10000, 5, 5]
    queue: FrameQueue[int] = FrameQueue(capacity=2)
    for i in range(4):
        queue.push(i)
    assert (queue.pop(), queue.pop(), queue.pop()) == (2, 3, None)
    assert (queue.dropped, queue.underruns) == (2, 1)


# --------------------------------------------------------------------------- 200 s of hold

LONG_PROMPTS = {"music": 7.3, "announcement": 2.5, "ad1": 3.0, "ad2": 4.0, "ad3": 1.5}
LONG_HOLD = HoldProgram(music=("music",), announcements=("announcement",),
                        ads=("ad1", "ad2", "ad3"), interval_s=30.0)


def seconds_of(timeline: list[tuple[str, int]]) -> list[tuple[str, float]]:
    return [(label, frames / 50) for label, frames in timeline]


@pytest.mark.parametrize(
    ("first_insert_after_s", "first_music_s"), [(None, 30.0), (12.0, 12.0), (0.0, 0.0)]
)
def test_200_s_of_hold_program_measured_frame_by_frame(
        tmp_path: Path, first_insert_after_s: float | None, first_music_s: float) -> None:
    write_prompts(tmp_path, LONG_PROMPTS)
    library = PromptLibrary(tmp_path)
    program = dataclasses.replace(LONG_HOLD, first_insert_after_s=first_insert_after_s)
    frames = frames_of(create_player(program, "PCMU", library, random.Random(1)), 200 * 50)
    labels = label_frames(frames)
    timeline = seconds_of(runs(labels))
    # the first insert after first_insert_after_s of music, then one per 30 s of music; the
    # announcement alternates with the ads, which rotate 1, 2, 3
    inserts = [("announcement", 2.5), ("ad1", 3.0), ("announcement", 2.5), ("ad2", 4.0),
               ("announcement", 2.5), ("ad3", 1.5), ("announcement", 2.5)]
    expected: list[tuple[str, float]] = [("music", first_music_s)] if first_music_s else []
    for insert in inserts:
        expected += [insert, ("music", 30.0)]
    total = 0.0
    for index, (label, seconds) in enumerate(expected):  # cut at 200 s
        if total + seconds >= 200.0:
            expected[index:] = [(label, round(200.0 - total, 2))]
            break
        total += seconds
    assert timeline == expected
    # the music goes on where it paused: its frames are the music file's, looped, in order
    music = library.load("music").encoded["PCMU"]
    music_frames = [music[i : i + 160] for i in range(0, len(music), 160)]
    heard = [frame for frame, label in zip(frames, labels, strict=True) if label == "music"]
    assert heard == [music_frames[i % len(music_frames)] for i in range(len(heard))]


def test_the_default_program_plays_its_first_ad_after_a_minute(tmp_path: Path) -> None:
    write_prompts(tmp_path, LONG_PROMPTS)
    player = create_player(LONG_HOLD, "PCMU", PromptLibrary(tmp_path), random.Random(1))
    timeline = runs(label_frames(frames_of(player, 70 * 50)))
    assert [label for label, _ in timeline] == ["music", "announcement", "music", "ad1",
                                                "music"]
    assert sum(frames for _, frames in timeline[:3]) == 62.5 * 50  # 30 + 2.5 + 30 s


def test_shuffled_ads_play_each_ad_once_per_round_never_twice_in_a_row(
        tmp_path: Path) -> None:
    write_prompts(tmp_path, {"music": 0.2, "ad1": 0.04, "ad2": 0.04, "ad3": 0.04})
    program = HoldProgram(music=("music",), ads=("ad1", "ad2", "ad3"), interval_s=0.1,
                          shuffle_ads=True)
    library = PromptLibrary(tmp_path)

    def ads(seed: int) -> list[str]:
        player = create_player(program, "PCMU", library, random.Random(seed))
        return [label for label, _ in runs(label_frames(frames_of(player, 7 * 60)))
                if label != "music"]

    played = ads(3)
    assert len(played) == 60
    for start in range(0, 60, 3):
        assert sorted(played[start : start + 3]) == ["ad1", "ad2", "ad3"]
    assert all(a != b for a, b in zip(played, played[1:], strict=False))
    assert played == ads(3) and played != ads(4)


def test_hold_program_first_insert_must_not_be_negative(library: PromptLibrary) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        create_player(HoldProgram(music=("music",), first_insert_after_s=-1.0), "PCMU",
                      library, random.Random())
