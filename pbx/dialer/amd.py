"""Answering-machine detection from the first seconds of an answered call (L2, pure numpy).

Theory of operation. A person who picks up says a short greeting ("Hallo?", "Müller") and
then waits for the caller; an answering machine or a mailbox speaks a long greeting at once.
`AnsweringMachineDetector` takes the far end's audio in frames (any length; 20 ms RTP frames
in practice), measures each 20 ms frame's energy (RMS on the 16-bit scale) and calls it
*voiced* when it is above both an absolute floor and `SNR_FACTOR` times the tracked noise
level. Gaps shorter than `silence_after_s` belong to the greeting (pauses between words).

- the greeting (first voiced frame to the last) grows longer than `max_greeting_s`: MACHINE;
- a greeting of at most `max_greeting_s` is followed by `silence_after_s` of silence: HUMAN;
- nobody speaks within `initial_silence_s`, or `analysis_s` passes undecided: UNKNOWN (the
  pacer passes UNKNOWN to an agent: better a machine on an agent's line than a person hung
  up on).

Each decision carries the audio time it was made at. `detect(samples, rate)` runs the
detector over a whole recording. Nothing here reads a clock; time is the audio's own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_S = 0.02
# Frames quieter than this RMS (16-bit scale, about -44 dBFS) never count as speech.
MIN_SPEECH_RMS = 200.0
# A voiced frame is this many times louder than the tracked noise.
SNR_FACTOR = 4.0
NOISE_SMOOTHING = 0.05


class AmdVerdict(enum.StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """Detection thresholds (seconds); `pbx.dialer.schema.AmdConfig` carries the same
    names."""

    analysis_s: float = 4.0
    max_greeting_s: float = 1.5
    silence_after_s: float = 0.7
    initial_silence_s: float = 3.5


@dataclass(frozen=True, slots=True)
class AmdDecision:
    """The verdict, the audio time it was reached at, the greeting's length so far and why."""

    verdict: AmdVerdict
    decided_at_s: float
    greeting_s: float
    reason: str


class AnsweringMachineDetector:
    """Feed audio with `feed(samples)` (numbers on the 16-bit scale, e.g. decoded G.711);
    it returns None until it decides, then the `AmdDecision` (and the same one afterwards).
    The sample rate is fixed per detector."""

    def __init__(self, settings: AmdSettings | None = None, sample_rate: int = 8000) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample rate {sample_rate} is not positive")
        self.settings = settings or AmdSettings()
        self._frame = max(1, round(sample_rate * FRAME_S))
        self._frame_s = self._frame / sample_rate
        self._pending: npt.NDArray[np.float64] = np.zeros(0)
        self._t = 0.0  # audio time at the end of the last whole frame
        self._noise: float | None = None
        self._speech_start: float | None = None
        self._last_voice: float | None = None
        self.decision: AmdDecision | None = None

    def feed(self, samples: npt.ArrayLike) -> AmdDecision | None:
        if self.decision is not None:
            return self.decision
        data = np.concatenate((self._pending, np.asarray(samples, dtype=np.float64).ravel()))
        whole = len(data) // self._frame
        if whole:
            frames = data[: whole * self._frame].reshape(whole, self._frame)
            rms = np.sqrt(np.mean(frames * frames, axis=1))
            for level in rms:
                self._t += self._frame_s
                decision = self._frame_level(float(level))
                if decision is not None:
                    self.decision = decision
                    self._pending = np.zeros(0)
                    return decision
        self._pending = data[whole * self._frame :]
        return None

    def finish(self) -> AmdDecision:
        """The audio ended (or the caller stops listening): the decision, UNKNOWN if none."""
        if self.decision is None:
            self.decision = self._decide(AmdVerdict.UNKNOWN, "audio ended undecided")
        return self.decision

    # ------------------------------------------------------------------ per frame

    def _frame_level(self, level: float) -> AmdDecision | None:
        s = self.settings
        noise = self._noise if self._noise is not None else min(level, MIN_SPEECH_RMS / 2)
        voiced = level > max(MIN_SPEECH_RMS, SNR_FACTOR * noise)
        if voiced:
            if self._speech_start is None:
                self._speech_start = self._t - self._frame_s
            self._last_voice = self._t
            if self._greeting() > s.max_greeting_s:
                return self._decide(AmdVerdict.MACHINE, "greeting longer than max_greeting_s")
        else:
            self._noise = noise + NOISE_SMOOTHING * (level - noise) if self._noise else level
            if self._noise is not None:
                self._noise = max(self._noise, 1.0)
            if self._last_voice is not None and self._t - self._last_voice >= s.silence_after_s:
                return self._decide(AmdVerdict.HUMAN, "short greeting, then silence")
            if self._speech_start is None and self._t >= s.initial_silence_s:
                return self._decide(AmdVerdict.UNKNOWN, "nobody spoke")
        if self._t >= s.analysis_s:
            return self._decide(AmdVerdict.UNKNOWN, "analysis time over")
        return None

    def _greeting(self) -> float:
        if self._speech_start is None or self._last_voice is None:
            return 0.0
        return self._last_voice - self._speech_start

    def _decide(self, verdict: AmdVerdict, reason: str) -> AmdDecision:
        return AmdDecision(verdict, round(self._t, 3), round(self._greeting(), 3), reason)


def detect(samples: npt.ArrayLike, sample_rate: int = 8000,
           settings: AmdSettings | None = None) -> AmdDecision:
    """Run the detector over a whole recording of the answered call's first seconds."""
    detector = AnsweringMachineDetector(settings, sample_rate)
    return detector.feed(samples) or detector.finish()
