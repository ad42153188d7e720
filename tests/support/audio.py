"""Measure what a softphone heard: dominant frequency and level of a recorded WAV file.

pjsua's recorder writes 16-bit PCM WAV at the conference bridge's rate (16 kHz here). The
functions below read any 8/16/32-bit PCM WAV with the standard :mod:`wave` module and analyse
it with numpy, so tests can say "B heard a 1000 Hz tone at a reasonable level".
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

_SAMPLE_TYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


@dataclass(frozen=True, slots=True)
class AudioAnalysis:
    """The result of :func:`analyze_wav`.

    ``dominant_hz`` is the strongest frequency above ``min_hz`` (0.0 when the signal is
    silent); ``rms`` is the root mean square of the samples scaled to [-1, 1], ``rms_dbfs``
    the same in dB relative to full scale (-inf for digital silence).
    """

    sample_rate: int
    duration_s: float
    dominant_hz: float
    rms: float
    rms_dbfs: float


def read_wav(path: str | Path) -> tuple[npt.NDArray[np.float64], int]:
    """Return the first channel of a PCM WAV file as floats in [-1, 1], and its sample rate.

    Raises ``ValueError`` for a compressed or truncated file (a pjsua recorder that was never
    destroyed leaves a header with zero data length, which reads as zero frames).
    """
    with wave.open(str(path), "rb") as wav:
        width = wav.getsampwidth()
        if width not in _SAMPLE_TYPES:
            raise ValueError(f"{path}: unsupported sample width {width} bytes")
        rate = wav.getframerate()
        channels = wav.getnchannels()
        raw = wav.readframes(wav.getnframes())
    samples = np.frombuffer(raw, dtype=_SAMPLE_TYPES[width]).astype(np.float64)
    if width == 1:
        samples = (samples - 128.0) / 128.0
    else:
        samples /= float(2 ** (8 * width - 1))
    return samples[::channels], rate


def analyze_samples(samples: npt.NDArray[np.float64], sample_rate: int,
                    min_hz: float = 50.0) -> AudioAnalysis:
    """Analyse mono float samples; see :func:`analyze_wav`."""
    duration = len(samples) / sample_rate if sample_rate else 0.0
    if len(samples) == 0:
        return AudioAnalysis(sample_rate, 0.0, 0.0, 0.0, -math.inf)
    rms = float(np.sqrt(np.mean(samples**2)))
    dbfs = 20.0 * math.log10(rms) if rms > 0 else -math.inf
    dominant = 0.0
    if rms > 0 and len(samples) >= 16:
        window = np.hanning(len(samples))
        spectrum = np.abs(np.fft.rfft((samples - samples.mean()) * window))
        freqs = np.fft.rfftfreq(len(samples), d=1.0 / sample_rate)
        spectrum[freqs < min_hz] = 0.0
        peak = int(np.argmax(spectrum))
        dominant = float(freqs[peak])
        if 0 < peak < len(spectrum) - 1:
            # Parabolic interpolation between the neighbouring bins refines the estimate.
            left, centre, right = spectrum[peak - 1], spectrum[peak], spectrum[peak + 1]
            denominator = left - 2.0 * centre + right
            if denominator != 0:
                offset = 0.5 * (left - right) / denominator
                dominant += float(offset) * (freqs[1] - freqs[0])
    return AudioAnalysis(sample_rate, duration, dominant, rms, dbfs)


def analyze_wav(path: str | Path, start_s: float = 0.0, end_s: float | None = None,
                min_hz: float = 50.0) -> AudioAnalysis:
    """Dominant frequency and RMS level of ``path`` between ``start_s`` and ``end_s``.

    Skip the first few hundred milliseconds when the call's media may not have started yet.
    Frequencies below ``min_hz`` (DC, hum) are ignored when looking for the peak.
    """
    samples, rate = read_wav(path)
    first = int(start_s * rate)
    last = len(samples) if end_s is None else int(end_s * rate)
    return analyze_samples(samples[first:last], rate, min_hz)


def tone_share(samples: npt.NDArray[np.floating] | npt.NDArray[np.integer], sample_rate: int,
               frequency: float, width_hz: float = 25.0) -> float:
    """The share (0..1) of the signal's power within ``width_hz`` of ``frequency``.

    Several tones mixed at similar levels each get a clear share (two equal tones: about 0.5
    each); a tone that is absent gets next to nothing. Silence gives 0.0.
    """
    data = np.asarray(samples, dtype=np.float64)
    if len(data) < 16:
        return 0.0
    spectrum = np.abs(np.fft.rfft((data - data.mean()) * np.hanning(len(data)))) ** 2
    total = float(spectrum.sum())
    if total <= 0:
        return 0.0
    freqs = np.fft.rfftfreq(len(data), d=1.0 / sample_rate)
    band = np.abs(freqs - frequency) <= width_hz
    return float(spectrum[band].sum()) / total
