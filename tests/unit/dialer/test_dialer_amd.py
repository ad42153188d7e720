"""Answering-machine detection on synthetic signals and on the prompts as machine greetings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from media.sources import read_wav
from pbx.dialer.amd import AmdSettings, AmdVerdict, AnsweringMachineDetector, detect

RATE = 8000
ROOT = Path(__file__).resolve().parents[3]


def speech_like(seconds: float, rng: np.random.Generator, level: float = 6000.0
                ) -> npt.NDArray[np.float64]:
    """Noise shaped like syllables: ~4 per second, with short dips between them."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.35 + 0.65 * np.abs(np.sin(2 * np.pi * 2.0 * t))
    return level * envelope * rng.standard_normal(len(t))


def silence(seconds: float, rng: np.random.Generator, level: float = 30.0
            ) -> npt.NDArray[np.float64]:
    return level * rng.standard_normal(int(seconds * RATE))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_short_hello_then_silence_is_a_human(rng: np.random.Generator) -> None:
    audio = np.concatenate((silence(0.4, rng), speech_like(0.6, rng), silence(3.0, rng)))
    decision = detect(audio, RATE)
    assert decision.verdict is AmdVerdict.HUMAN
    assert decision.decided_at_s == pytest.approx(0.4 + 0.6 + 0.7, abs=0.06)
    assert decision.greeting_s == pytest.approx(0.6, abs=0.06)


def test_long_greeting_is_a_machine(rng: np.random.Generator) -> None:
    audio = np.concatenate((silence(0.3, rng), speech_like(5.0, rng)))
    decision = detect(audio, RATE)
    assert decision.verdict is AmdVerdict.MACHINE
    assert decision.decided_at_s == pytest.approx(0.3 + 1.5, abs=0.06)


def test_words_with_short_pauses_are_one_greeting(rng: np.random.Generator) -> None:
    # "Hello, this is ... please leave a message": pauses of 0.3 s do not end the greeting.
    parts = []
    for _ in range(5):
        parts += [speech_like(0.5, rng), silence(0.3, rng)]
    decision = detect(np.concatenate(parts), RATE)
    assert decision.verdict is AmdVerdict.MACHINE


def test_nobody_speaks_is_unknown(rng: np.random.Generator) -> None:
    decision = detect(silence(5.0, rng), RATE)
    assert decision.verdict is AmdVerdict.UNKNOWN
    assert decision.decided_at_s == pytest.approx(3.5, abs=0.03)


def test_loud_background_noise_is_not_speech(rng: np.random.Generator) -> None:
    # A steady noise floor well above MIN_SPEECH_RMS; a greeting above it is still heard.
    noise = silence(5.0, rng, level=400.0)
    audio = noise.copy()
    audio[int(0.5 * RATE):int(1.1 * RATE)] += speech_like(0.6, rng, level=9000.0)
    decision = detect(audio, RATE)
    assert decision.verdict is AmdVerdict.HUMAN


def test_streaming_in_rtp_frames_equals_batch(rng: np.random.Generator) -> None:
    audio = np.concatenate((silence(0.2, rng), speech_like(0.8, rng), silence(2.0, rng)))
    detector = AnsweringMachineDetector(sample_rate=RATE)
    decisions = [detector.feed(audio[i:i + 160]) for i in range(0, len(audio), 160)]
    first = next(d for d in decisions if d is not None)
    assert first == detect(audio, RATE)
    assert detector.feed(audio[:160]) is first  # decided once, for good


def test_odd_chunk_sizes(rng: np.random.Generator) -> None:
    audio = np.concatenate((silence(0.2, rng), speech_like(4.0, rng)))
    detector = AnsweringMachineDetector(sample_rate=RATE)
    decision = None
    for start in range(0, len(audio), 97):
        decision = detector.feed(audio[start:start + 97]) or decision
    assert decision is not None and decision.verdict is AmdVerdict.MACHINE


def test_settings_change_the_limits(rng: np.random.Generator) -> None:
    audio = np.concatenate((speech_like(1.8, rng), silence(2.0, rng)))
    assert detect(audio, RATE).verdict is AmdVerdict.MACHINE
    patient = AmdSettings(max_greeting_s=2.5, analysis_s=4.0)
    assert detect(audio, RATE, patient).verdict is AmdVerdict.HUMAN


def test_audio_ending_undecided(rng: np.random.Generator) -> None:
    detector = AnsweringMachineDetector(sample_rate=RATE)
    assert detector.feed(speech_like(0.5, rng)) is None
    assert detector.finish().verdict is AmdVerdict.UNKNOWN


@pytest.mark.parametrize(
    "prompt",
    ["de/greeting", "en/greeting", "de/please_hold", "en/please_hold", "de/closed",
     "en/main_menu", "de/ad_1", "en/transferring"],
)
def test_recorded_announcements_are_machines(prompt: str) -> None:
    samples, rate = read_wav(ROOT / "prompts" / f"{prompt}.wav")
    decision = detect(samples, rate)
    assert decision.verdict is AmdVerdict.MACHINE, decision
    assert decision.decided_at_s < 2.5


@pytest.mark.parametrize("prompt", ["de/minute", "en/minute", "en/in_the_queue"])
def test_a_single_short_word_then_silence_is_human(prompt: str) -> None:
    samples, rate = read_wav(ROOT / "prompts" / f"{prompt}.wav")
    audio = np.concatenate((samples, np.zeros(2 * rate)))
    assert detect(audio, rate).verdict is AmdVerdict.HUMAN
