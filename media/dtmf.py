"""DTMF: RFC 4733 telephone-events (receive, send) and an in-band Goertzel detector.

* `TelephoneEvent` is the 4-octet RFC 4733 §2.3 payload, parsed and serialized symmetrically.
* `TelephoneEventReceiver` turns the stream of event packets of a key press (start, updates,
  three redundant end packets, possibly reordered or lost) into exactly one digit.
* `TelephoneEventSender` yields the packets for one digit, one per 20 ms tick: a start packet
  with the marker bit, updates with a growing duration, then the end packet three times
  (RFC 4733 §2.5.1.4), all carrying the timestamp of the event start.
* `InBandDetector` finds the dual tones in decoded audio with the Goertzel algorithm over
  205-sample windows hopped every 80 samples, with level, twist and purity checks, and reports
  each digit once when it has lasted two windows.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from media.rtp import timestamp_distance

DIGITS: Final = "0123456789*#ABCD"
ROW_FREQUENCIES: Final = (697.0, 770.0, 852.0, 941.0)
COLUMN_FREQUENCIES: Final = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")
SAMPLE_RATE: Final = 8000
_EVENT: Final = struct.Struct("!BBH")


def event_code(digit: str) -> int:
    """RFC 4733 §3.2 event code of a DTMF digit."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}, expected one of {DIGITS}")
    return index


def digit_of(code: int) -> str:
    if not 0 <= code < len(DIGITS):
        raise ValueError(f"telephone-event {code} is not a DTMF digit (0..15)")
    return DIGITS[code]


def tone_frequencies(digit: str) -> tuple[float, float]:
    """The (row, column) frequencies of a key."""
    for row, keys in enumerate(KEYPAD):
        column = keys.find(digit.upper())
        if column >= 0 and len(digit) == 1:
            return ROW_FREQUENCIES[row], COLUMN_FREQUENCIES[column]
    raise ValueError(f"not a DTMF digit: {digit!r}")


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """RFC 4733 §2.3 named-event payload. ``volume`` is in -dBm0 (0..63)."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"telephone-event code {self.event} out of range 0..255")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"telephone-event volume {self.volume} out of range 0..63")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"telephone-event duration {self.duration} out of range 0..65535")

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) < 4:
            raise ValueError(f"telephone-event payload too short: {len(data)} octets, need 4")
        event, flags, duration = _EVENT.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


@dataclass(slots=True)
class TelephoneEventReceiver:
    """Deduplicates RFC 4733 packets into key presses.

    `receive(event, timestamp)` returns the digit when a packet is the first seen of a new
    event, else None. An event is identified by its RTP timestamp (RFC 4733 §2.5.2.1); the
    end bit and the redundant end packets of the same event are therefore absorbed. A few
    recent timestamps are remembered, so a late retransmission of an older event is absorbed
    as well.
    """

    history: int = 8
    _recent: list[int] = field(default_factory=list)

    def receive(self, event: TelephoneEvent, timestamp: int) -> str | None:
        if event.event >= len(DIGITS):
            return None  # flash and other named events are not digits
        if timestamp in self._recent:
            return None
        # an event older than the newest one we know is a stale retransmission
        if self._recent and timestamp_distance(timestamp, self._recent[-1]) < 0:
            return None
        self._recent.append(timestamp)
        del self._recent[: -self.history]
        return DIGITS[event.event]


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet of an outgoing event: payload, marker bit, timestamp offset is implicit."""

    payload: bytes
    marker: bool


@dataclass(slots=True)
class TelephoneEventSender:
    """Packets for one digit, `next_packet()` once per 20 ms tick until it returns None."""

    digit: str
    duration_ms: int = 100
    volume: int = 10
    frame_samples: int = 160
    _elapsed: int = 0
    _ends_sent: int = 0
    _code: int = -1

    def __post_init__(self) -> None:
        self._code = event_code(self.digit)
        if self.duration_ms < 20:
            raise ValueError(f"DTMF duration {self.duration_ms} ms is shorter than one frame")

    def next_packet(self) -> EventPacket | None:
        total = self.duration_ms * SAMPLE_RATE // 1000
        if self._ends_sent >= 3:
            return None
        first = self._elapsed == 0
        self._elapsed = min(self._elapsed + self.frame_samples, total)
        end = self._elapsed >= total
        if end:
            self._ends_sent += 1
        event = TelephoneEvent(self._code, end, self.volume, self._elapsed)
        return EventPacket(event.serialize(), marker=first)


def tone(
    frequencies: tuple[float, ...], duration_s: float, amplitudes: tuple[float, ...],
    sample_rate: int = SAMPLE_RATE, phase: float = 0.0,
) -> npt.NDArray[np.float64]:
    """A sum of sines (amplitudes in linear 16-bit units), as float samples."""
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    signal = np.zeros_like(t)
    for frequency, amplitude in zip(frequencies, amplitudes, strict=True):
        signal += amplitude * np.sin(2 * math.pi * frequency * t + phase)
    return signal


def dtmf_tone(digit: str, duration_s: float, amplitude: float = 6000.0,
              twist_db: float = 0.0) -> npt.NDArray[np.float64]:
    """The dual tone of a key; ``twist_db`` > 0 makes the column tone louder than the row tone."""
    low, high = tone_frequencies(digit)
    high_amplitude = amplitude * 10 ** (twist_db / 20)
    return tone((low, high), duration_s, (amplitude, high_amplitude))


def goertzel_power(frames: npt.NDArray[np.float64], frequencies: tuple[float, ...],
                   sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float64]:
    """Goertzel recurrence: power of each frame (rows) at each frequency (columns).

    s[n] = x[n] + 2cos(w) s[n-1] - s[n-2];  power = s1² + s2² - 2cos(w) s1 s2.
    Vectorised over frames and frequencies; the loop runs over the samples of a frame.
    """
    coefficients = 2.0 * np.cos(2.0 * math.pi * np.asarray(frequencies) / sample_rate)
    s1 = np.zeros((frames.shape[0], len(frequencies)))
    s2 = np.zeros_like(s1)
    for n in range(frames.shape[1]):
        s0 = frames[:, n, None] + coefficients * s1 - s2
        s2 = s1
        s1 = s0
    result: npt.NDArray[np.float64] = s1 * s1 + s2 * s2 - coefficients * s1 * s2
    return result


WINDOW: Final = 205  # the classic Goertzel DTMF block: bins fall close to the 8 tones
HOP: Final = 80  # 10 ms: a 40 ms pause always contains one window of silence
_FREQUENCIES: Final = ROW_FREQUENCIES + COLUMN_FREQUENCIES


def _goertzel_basis(length: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    # Goertzel's final state equals one DFT term at the tone frequency: |sum x[n] e^-jwn|².
    # Precomputing that term's cos/sin rows makes a window cost two small matrix products.
    n = np.arange(length)[:, None]
    w = 2.0 * math.pi * np.asarray(_FREQUENCIES)[None, :] / SAMPLE_RATE
    return np.cos(w * n), np.sin(w * n)


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Thresholds of the in-band detector. Amplitudes are per tone, in 16-bit units."""

    min_amplitude: float = 300.0  # about -40 dBFS, well below ITU-T Q.24's -25 dBm0
    max_twist_db: float = 8.0  # either way (normal and reverse twist)
    min_purity: float = 0.70  # share of the window's energy in the two tones
    min_neighbour_ratio_db: float = 8.0  # the other tones of a group must be this far below
    windows_to_confirm: int = 2
    windows_to_release: int = 2


@dataclass(slots=True)
class InBandDetector:
    """Goertzel DTMF detector for 8 kHz 16-bit audio; `feed(samples)` returns new digits."""

    settings: DetectorSettings = field(default_factory=DetectorSettings)
    _buffer: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    _candidate: str | None = None
    _candidate_windows: int = 0
    _active: str | None = None
    _quiet_windows: int = 0
    _cos: npt.NDArray[np.float64] = field(default_factory=lambda: _goertzel_basis(WINDOW)[0])
    _sin: npt.NDArray[np.float64] = field(default_factory=lambda: _goertzel_basis(WINDOW)[1])

    def feed(self, samples: npt.ArrayLike) -> list[str]:
        self._buffer = np.concatenate((self._buffer, np.asarray(samples, dtype=np.float64)))
        count = (len(self._buffer) - WINDOW) // HOP + 1
        if count <= 0:
            return []
        starts = np.arange(count) * HOP
        frames = self._buffer[starts[:, None] + np.arange(WINDOW)[None, :]]
        self._buffer = self._buffer[count * HOP :]
        real = frames @ self._cos
        imaginary = frames @ self._sin
        power = real * real + imaginary * imaginary
        energy = np.einsum("ij,ij->i", frames, frames)
        digits = []
        for index in range(count):
            digit = self._classify(power[index], float(energy[index]))
            reported = self._track(digit)
            if reported is not None:
                digits.append(reported)
        return digits

    def _classify(self, power: npt.NDArray[np.float64], energy: float) -> str | None:
        settings = self.settings
        rows, columns = power[:4], power[4:]
        row = int(np.argmax(rows))
        column = int(np.argmax(columns))
        row_power, column_power = float(rows[row]), float(columns[column])
        # a sine of amplitude A gives power (A·N/2)² over N samples
        threshold = (settings.min_amplitude * WINDOW / 2) ** 2
        if row_power < threshold or column_power < threshold:
            return None
        twist = 10 * math.log10(column_power / row_power)
        if abs(twist) > settings.max_twist_db:
            return None
        neighbour = 10 ** (settings.min_neighbour_ratio_db / 10)
        if np.sort(rows)[-2] * neighbour > row_power:
            return None
        if np.sort(columns)[-2] * neighbour > column_power:
            return None
        # energy of the two sines estimated from their powers: 2·P/N each
        tone_energy = 2.0 * (row_power + column_power) / WINDOW
        if tone_energy < settings.min_purity * energy:
            return None
        return KEYPAD[row][column]

    def _track(self, digit: str | None) -> str | None:
        settings = self.settings
        if digit is not None and digit == self._active:
            self._quiet_windows = 0
            return None
        if self._active is not None:
            # a short dropout or a different reading inside a key press does not end it
            self._quiet_windows += 1
            if self._quiet_windows < settings.windows_to_release:
                return None
            self._active = None
            self._candidate = None
        if digit is None:
            self._candidate = None
            return None
        if digit == self._candidate:
            self._candidate_windows += 1
        else:
            self._candidate = digit
            self._candidate_windows = 1
        if self._candidate_windows >= settings.windows_to_confirm:
            self._active = digit
            self._quiet_windows = 0
            self._candidate = None
            return digit
        return None
