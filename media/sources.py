"""What the engine can play: prompts from WAV files, playlists, the queue-hold program, tones.

Two halves:

* **Source descriptions** (`PromptFile`, `Playlist`, `HoldProgram`, `Tone`, `Pause`) are frozen
  dataclasses of strings and numbers. They are what callers pass to `MediaEngine.play` (or
  `MediaEngine.insert`), so the command stays message-shaped (it crosses a process boundary
  to `MediaWorkerPool`'s workers).
* **Players** turn a description into 20 ms payloads for one codec: `Player.next_frame()`
  returns the next frame's encoded octets, or None when the source has ended. Prompts are
  loaded once by `PromptLibrary` (any WAV rate and sample format, resampled to 8 kHz mono with
  numpy) and pre-encoded per codec, so a frame is a slice of a ready-made ``bytes``.
"""

from __future__ import annotations

import enum
import math
import os
import random
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from media import codecs, g711

SAMPLE_RATE: Final = 8000
FRAME_SAMPLES: Final = 160  # 20 ms at 8 kHz

# --------------------------------------------------------------------------- descriptions


@dataclass(frozen=True, slots=True)
class PromptFile:
    """One prompt; ``path`` is absolute or relative to the engine's prompt directory."""

    path: str


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence of ``milliseconds`` (rounded up to whole 20 ms frames)."""

    milliseconds: int


class PlaylistOrder(enum.Enum):
    SEQUENCE = "sequence"
    SHUFFLE = "shuffle"


PlaylistItem = str | PromptFile | Pause


@dataclass(frozen=True, slots=True)
class Playlist:
    """Items played one after another; ``repeat`` loops forever, ``SHUFFLE`` reorders each
    round with the engine's injected random generator."""

    items: tuple[PlaylistItem, ...]
    order: PlaylistOrder = PlaylistOrder.SEQUENCE
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class HoldProgram:
    """Music on hold interleaved with announcements and product ads (the queue-hold program).

    Music plays in a loop. After ``first_insert_after_s`` seconds of music (default:
    ``interval_s``) and then after every ``interval_s`` seconds of music it pauses for the next
    insert and resumes where it stopped. Only music counts towards the next insert: neither the
    inserts nor an announcement played over the program with `MediaEngine.insert`.

    Inserts alternate between the two lists, each cycling through its own items:
    announcement 1, ad 1, announcement 2, ad 2, … (one announcement: announcement, ad 1,
    announcement, ad 2, …). When one list is empty every insert comes from the other.
    ``shuffle_ads`` plays each round of ads in a new random order (every ad once per round,
    never the same ad twice in a row).
    """

    music: tuple[str, ...]
    announcements: tuple[str, ...] = ()
    ads: tuple[str, ...] = ()
    interval_s: float = 30.0
    shuffle_ads: bool = False
    first_insert_after_s: float | None = None  # default: interval_s


@dataclass(frozen=True, slots=True)
class Tone:
    """A cadenced tone, e.g. ringback: 425 Hz 1 s on 4 s off (``seconds`` None = forever)."""

    frequencies: tuple[float, ...] = (425.0,)
    on_ms: int = 1000
    off_ms: int = 4000
    level_dbfs: float = -16.0
    seconds: float | None = None


Source = PromptFile | Playlist | HoldProgram | Tone | Pause


# --------------------------------------------------------------------------- WAV loading


_WAVE_FORMAT_PCM: Final = 1
_WAVE_FORMAT_FLOAT: Final = 3
_WAVE_FORMAT_ALAW: Final = 6
_WAVE_FORMAT_MULAW: Final = 7
_WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE


def _pcm_to_float(raw: bytes, width: int) -> npt.NDArray[np.float64]:
    if width == 1:
        return (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.float64)
    if width == 3:
        octets = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = octets[:, 0] | (octets[:, 1] << 8) | (octets[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        return value.astype(np.float64) / 256.0
    if width == 4:
        return np.frombuffer(raw, "<i4").astype(np.float64) / 65536.0
    raise ValueError(f"unsupported PCM sample width {width} octets")


def _read_riff(path: Path) -> tuple[npt.NDArray[np.float64], int, int]:
    # the wave module of Python 3.11 reads integer PCM only; this covers float, G.711 and
    # WAVE_FORMAT_EXTENSIBLE files by walking the RIFF chunks directly
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    payload: bytes | None = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise ValueError(f"{path}: fmt chunk too short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                (tag,) = struct.unpack_from("<H", body, 24)  # first two octets of the GUID
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            payload = body
        offset += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise ValueError(f"{path}: WAV file lacks a fmt or data chunk")
    tag, channels, rate, bits = fmt
    if tag == _WAVE_FORMAT_PCM:
        samples = _pcm_to_float(payload, bits // 8)
    elif tag == _WAVE_FORMAT_FLOAT and bits in (32, 64):
        samples = np.frombuffer(payload, "<f4" if bits == 32 else "<f8").astype(np.float64)
        samples = samples * 32767.0
    elif tag == _WAVE_FORMAT_MULAW and bits == 8:
        samples = g711.ulaw_decode(payload).astype(np.float64)
    elif tag == _WAVE_FORMAT_ALAW and bits == 8:
        samples = g711.alaw_decode(payload).astype(np.float64)
    else:
        raise ValueError(f"{path}: unsupported WAV format tag {tag} with {bits} bits")
    return samples, channels, rate


def read_wav(path: str | Path) -> tuple[npt.NDArray[np.float64], int]:
    """Mono float samples on the 16-bit scale and the sample rate of any common WAV file."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            channels, rate = wav.getnchannels(), wav.getframerate()
            samples = _pcm_to_float(wav.readframes(wav.getnframes()), wav.getsampwidth())
    except wave.Error:
        samples, channels, rate = _read_riff(path)
    if channels > 1:
        usable = len(samples) - len(samples) % channels
        samples = samples[:usable].reshape(-1, channels).mean(axis=1)
    if rate <= 0:
        raise ValueError(f"{path}: sample rate {rate} is not positive")
    return samples, rate


def resample(samples: npt.NDArray[np.float64], source_rate: int,
             target_rate: int = SAMPLE_RATE, taps: int = 32) -> npt.NDArray[np.float64]:
    """Band-limited resampling with a Blackman-windowed sinc, evaluated in numpy chunks.

    The low-pass cut-off sits at 90 % of the lower Nyquist frequency, so down-sampling a
    48 kHz file to 8 kHz does not fold anything above 4 kHz back into the telephone band.
    """
    if source_rate == target_rate or len(samples) == 0:
        return samples.astype(np.float64)
    ratio = source_rate / target_rate
    cutoff = 0.9 * min(1.0, target_rate / source_rate)  # in units of the source Nyquist
    count = math.floor(len(samples) / ratio)
    half = math.ceil(taps / 2 * max(1.0, ratio))
    padded = np.concatenate((np.zeros(half), samples, np.zeros(half + 1)))
    offsets = np.arange(-half + 1, half + 1)
    out = np.empty(count)
    chunk = 4096
    for start in range(0, count, chunk):
        positions = np.arange(start, min(start + chunk, count)) * ratio
        base = np.floor(positions).astype(np.int64)
        indices = base[:, None] + offsets[None, :]
        distance = positions[:, None] - indices
        window = 0.42 + 0.5 * np.cos(np.pi * distance / half) + 0.08 * np.cos(
            2 * np.pi * distance / half
        )
        window[np.abs(distance) >= half] = 0.0
        kernel = cutoff * np.sinc(cutoff * distance) * window
        out[start : start + len(positions)] = np.einsum(
            "ij,ij->i", padded[indices + half], kernel
        )
    return out


def to_int16(samples: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True, slots=True)
class Prompt:
    """Audio at 8 kHz, padded to whole frames and encoded once per codec."""

    name: str
    samples: npt.NDArray[np.int16]
    encoded: dict[str, bytes]

    @classmethod
    def from_samples(cls, name: str, samples: npt.NDArray[np.int16]) -> Prompt:
        padding = -len(samples) % FRAME_SAMPLES
        padded = np.concatenate((samples, np.zeros(padding, np.int16)))
        encoded = {codec: codecs.encode_prompt(codec, padded) for codec in codecs.ALL_CODECS}
        return cls(name, padded, encoded)

    @property
    def frames(self) -> int:
        return len(self.samples) // FRAME_SAMPLES

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


@dataclass(slots=True)
class PromptLibrary:
    """Loads each WAV once (resampled to 8 kHz, pre-encoded) and keeps it; not thread-safe.

    Relative paths resolve against ``directory``; a name without a suffix gets ``.wav``.
    Raises ValueError naming the file when it is missing or unreadable.
    """

    directory: Path = field(default_factory=lambda: Path("prompts"))
    _cache: dict[Path, Prompt] = field(default_factory=dict)
    _generated: dict[object, Prompt] = field(default_factory=dict)

    def resolve(self, name: str) -> Path:
        """The file of prompt `name`. A name never leaves the prompts directory (it may be
        rendered from call data: ``../`` and absolute paths outside it are refused with
        ValueError); symbolic links inside it are the admin's choice and are followed."""
        path = Path(name)
        if not path.suffix:
            path = path.with_suffix(".wav")
        root = os.path.abspath(self.directory)
        full = os.path.normpath(os.path.join(root, path))
        if os.path.commonpath((root, full)) != root:
            raise ValueError(f"prompt {name!r} is outside the prompts directory {root}")
        return Path(full)

    def load(self, name: str) -> Prompt:
        path = self.resolve(name)
        prompt = self._cache.get(path)
        if prompt is None:
            if not path.is_file():
                raise ValueError(f"prompt {name!r} not found at {path}")
            try:
                samples, rate = read_wav(path)
            except (OSError, EOFError, ValueError, struct.error) as error:
                raise ValueError(f"prompt {name!r} at {path} is unreadable: {error}") from error
            prompt = Prompt.from_samples(name, to_int16(resample(samples, rate)))
            self._cache[path] = prompt
        return prompt

    def tone(self, tone: Tone) -> Prompt:
        """One cadence period of a tone, synthesised once per description."""
        prompt = self._generated.get(tone)
        if prompt is None:
            on = round(tone.on_ms * SAMPLE_RATE / 1000)
            off = round(tone.off_ms * SAMPLE_RATE / 1000)
            t = np.arange(on) / SAMPLE_RATE
            amplitude = 32767 * 10 ** (tone.level_dbfs / 20) / max(1, len(tone.frequencies))
            signal = sum(
                (np.sin(2 * math.pi * f * t) for f in tone.frequencies), np.zeros(on)
            ) * amplitude
            samples = np.concatenate((to_int16(signal), np.zeros(off, np.int16)))
            prompt = Prompt.from_samples("tone", samples)
            self._generated[tone] = prompt
        return prompt


# --------------------------------------------------------------------------- players


class Player(Protocol):
    def next_frame(self) -> bytes | None:
        """The next 20 ms payload, or None when the source has ended."""


@dataclass(slots=True)
class _SegmentPlayer:
    # plays a sequence of encoded segments, each a whole number of frames
    segments: Iterator[bytes]
    _current: bytes = b""
    _offset: int = 0

    def next_frame(self) -> bytes | None:
        while self._offset >= len(self._current):
            segment = next(self.segments, None)
            if segment is None:
                return None
            self._current, self._offset = segment, 0
        frame = self._current[self._offset : self._offset + FRAME_SAMPLES]
        self._offset += FRAME_SAMPLES
        return frame


def _item_segment(item: PlaylistItem, library: PromptLibrary, codec: str) -> bytes:
    if isinstance(item, Pause):
        frames = max(1, math.ceil(item.milliseconds / 20))
        return codecs.silence(codec, frames * FRAME_SAMPLES)
    name = item.path if isinstance(item, PromptFile) else item
    return library.load(name).encoded[codec]


def _playlist_segments(playlist: Playlist, library: PromptLibrary, codec: str,
                       rng: random.Random) -> Iterator[bytes]:
    # load everything now, so a missing file fails the play command, not a later tick
    segments = [_item_segment(item, library, codec) for item in playlist.items]
    return _playlist_rounds(segments, playlist, rng)


def _playlist_rounds(segments: list[bytes], playlist: Playlist,
                     rng: random.Random) -> Iterator[bytes]:
    if not segments:
        return
    while True:
        order = list(range(len(segments)))
        if playlist.order is PlaylistOrder.SHUFFLE:
            rng.shuffle(order)
        for index in order:
            yield segments[index]
        if not playlist.repeat:
            return


@dataclass(slots=True)
class HoldProgramPlayer:
    """Runs a `HoldProgram`: music, the first insert after ``first_insert_frames`` frames of
    music, then one after every ``interval_frames`` frames of music. Pausing it (not pulling
    frames) keeps its whole state: music position, next insert, music left until it."""

    music: _SegmentPlayer
    inserts: Iterator[bytes] | None
    interval_frames: int
    first_insert_frames: int
    _until_insert: int = field(init=False)
    _insert: _SegmentPlayer | None = None

    def __post_init__(self) -> None:
        self._until_insert = self.first_insert_frames

    def next_frame(self) -> bytes | None:
        if self._insert is not None:
            frame = self._insert.next_frame()
            if frame is not None:
                return frame
            self._insert = None
            self._until_insert = self.interval_frames
        if self.inserts is not None and self._until_insert <= 0:
            segment = next(self.inserts, None)
            if segment is not None:
                self._insert = _SegmentPlayer(iter((segment,)))
                return self.next_frame()
        self._until_insert -= 1
        return self.music.next_frame()


def _hold_inserts(program: HoldProgram, library: PromptLibrary, codec: str,
                  rng: random.Random) -> Iterator[bytes] | None:
    announcements = [library.load(name).encoded[codec] for name in program.announcements]
    ads = [library.load(name).encoded[codec] for name in program.ads]
    if not announcements and not ads:
        return None
    return _rotation(announcements, ads, program.shuffle_ads, rng)


def _rotation(announcements: list[bytes], ads: list[bytes], shuffle_ads: bool,
              rng: random.Random) -> Iterator[bytes]:
    # announcement, ad, announcement, ad, ... each list cycling through its own items
    ad_order = list(range(len(ads)))
    announcement = ad = 0
    shuffled = False
    while True:
        if announcements:
            yield announcements[announcement]
            announcement = (announcement + 1) % len(announcements)
        if ads:
            if shuffle_ads and ad == 0:
                last = ad_order[-1]
                rng.shuffle(ad_order)
                if shuffled and len(ad_order) > 1 and ad_order[0] == last:
                    # a new round must not repeat the ad that ended the last one
                    ad_order[0], ad_order[-1] = ad_order[-1], ad_order[0]
                shuffled = True
            yield ads[ad_order[ad]]
            ad = (ad + 1) % len(ads)


def create_player(source: Source, codec: str, library: PromptLibrary,
                  rng: random.Random) -> Player:
    """A player for ``source`` in ``codec``; raises ValueError for a missing prompt or an
    unusable description, before anything is played."""
    if codec not in codecs.ALL_CODECS:
        raise ValueError(f"unsupported codec {codec!r}: expected one of {codecs.ALL_CODECS}")
    if isinstance(source, PromptFile | Pause):
        return _SegmentPlayer(iter((_item_segment(source, library, codec),)))
    if isinstance(source, Playlist):
        return _SegmentPlayer(_playlist_segments(source, library, codec, rng))
    if isinstance(source, HoldProgram):
        if not source.music:
            raise ValueError("a hold program needs at least one music file")
        if source.interval_s <= 0:
            raise ValueError(f"hold program interval {source.interval_s} s must be positive")
        music = Playlist(tuple(source.music), repeat=True)
        first = source.interval_s if source.first_insert_after_s is None else (
            source.first_insert_after_s
        )
        if first < 0:
            raise ValueError(f"hold program first insert after {first} s must not be negative")
        return HoldProgramPlayer(
            music=_SegmentPlayer(_playlist_segments(music, library, codec, rng)),
            inserts=_hold_inserts(source, library, codec, rng),
            interval_frames=max(1, round(source.interval_s * 50)),
            first_insert_frames=round(first * 50),
        )
    if isinstance(source, Tone):
        period = library.tone(source).encoded[codec]
        if source.seconds is None:
            return _SegmentPlayer(_forever(period))
        frames = max(1, round(source.seconds * 50))
        repeated = period * math.ceil(frames * FRAME_SAMPLES / len(period))
        return _SegmentPlayer(iter((repeated[: frames * FRAME_SAMPLES],)))
    raise ValueError(f"cannot play {type(source).__name__}: not a media source")


def _forever(segment: bytes) -> Iterator[bytes]:
    while True:
        yield segment
