"""Music on hold synthesised with numpy: royalty-free by construction.

A calm four-chord loop (I–vi–IV–V in the key given) played by a soft pad, a plucked arpeggio
with a melody picked from the chord tones by a seeded generator, and a bass line. The result is
8 kHz mono int16, ready to be written as the hold-music prompt. Same seed, same music.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 8000
_A4: Final = 440.0
# semitone offsets from the tonic of the chords I, vi, IV, V (triads, root position)
_PROGRESSION: Final = ((0, 4, 7), (9, 12, 16), (5, 9, 12), (7, 11, 14))


def _frequency(semitones_from_a4: float) -> float:
    return _A4 * 2 ** (semitones_from_a4 / 12)


def _pad(frequencies: list[float], length: int) -> npt.NDArray[np.float64]:
    t = np.arange(length) / SAMPLE_RATE
    voice = np.zeros(length)
    for frequency in frequencies:
        # a slightly detuned pair per note gives a slow chorus; two soft harmonics for warmth
        for detune in (-0.6, 0.6):
            f = frequency + detune
            voice += np.sin(2 * math.pi * f * t) + 0.25 * np.sin(4 * math.pi * f * t)
    attack = np.minimum(1.0, t / 0.4)
    release = np.minimum(1.0, (t[-1] - t) / 0.4 + 1e-9)
    result: npt.NDArray[np.float64] = voice * attack * release / (2.5 * len(frequencies))
    return result


def _pluck(frequency: float, length: int) -> npt.NDArray[np.float64]:
    t = np.arange(length) / SAMPLE_RATE
    tone = (
        np.sin(2 * math.pi * frequency * t)
        + 0.35 * np.sin(4 * math.pi * frequency * t) * np.exp(-t * 8)
        + 0.15 * np.sin(6 * math.pi * frequency * t) * np.exp(-t * 12)
    )
    envelope = np.exp(-t * 4.0) * np.minimum(1.0, t / 0.005)
    result: npt.NDArray[np.float64] = tone * envelope
    return result


def synthesize_hold_music(
    seconds: float = 48.0, *, seed: int = 7, tonic: int = -9, bpm: float = 84.0,
    peak: float = 0.45,
) -> npt.NDArray[np.int16]:
    """Synthesise ``seconds`` of hold music; ``tonic`` in semitones from A4 (-9 = C4)."""
    rng = np.random.default_rng(seed)
    total = round(seconds * SAMPLE_RATE)
    beat = round(60.0 / bpm * SAMPLE_RATE)
    bar = 4 * beat
    eighth = beat // 2
    out = np.zeros(total + bar)
    bars = math.ceil(total / bar)
    previous = 0
    for bar_index in range(bars):
        chord = _PROGRESSION[bar_index % len(_PROGRESSION)]
        start = bar_index * bar
        pad_notes = [_frequency(tonic - 12 + step) for step in chord]
        out[start : start + bar] += 0.55 * _pad(pad_notes, bar)
        bass = _pluck(_frequency(tonic - 24 + chord[0]), bar)
        out[start : start + bar] += 0.5 * bass
        # melody: eighth notes over the chord tones, moving mostly stepwise between them
        tones = [tonic + step + octave for octave in (0, 12) for step in chord]
        for note in range(8):
            if rng.random() < 0.2:
                continue  # a rest now and then keeps it from sounding mechanical
            move = int(rng.choice((-1, 0, 1, 1, 2, -2)))
            previous = min(max(previous + move, 0), len(tones) - 1)
            onset = start + note * eighth
            length = min(beat * 2, len(out) - onset)
            velocity = 0.32 if note % 2 == 0 else 0.22
            out[onset : onset + length] += velocity * _pluck(_frequency(tones[previous]), length)
    out = out[:total]
    # fade in and out so the loop point does not click
    fade = min(total // 4, SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade)
    out[:fade] *= ramp
    out[-fade:] *= ramp[::-1]
    out *= peak * 32767 / max(1e-9, float(np.max(np.abs(out))))
    return np.round(out).astype(np.int16)
