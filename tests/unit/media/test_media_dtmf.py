"""DTMF: RFC 4733 payloads, dedup and sending; in-band Goertzel detection on generated audio."""

from __future__ import annotations

import numpy as np
import pytest

from media import dtmf
from media.dtmf import (
    InBandDetector,
    TelephoneEvent,
    TelephoneEventReceiver,
    TelephoneEventSender,
    dtmf_tone,
    goertzel_power,
)

RNG_SEED = 20240611


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 8000))


def detect(signal: np.ndarray, chunk: int = 160) -> list[str]:
    detector = InBandDetector()
    digits = []
    clipped = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    for start in range(0, len(clipped), chunk):
        digits.extend(detector.feed(clipped[start : start + chunk]))
    return digits


def test_telephone_event_round_trip() -> None:
    data = bytes.fromhex("058a0320")
    event = TelephoneEvent.parse(data)
    assert (event.event, event.end, event.volume, event.duration) == (5, True, 10, 800)
    assert event.serialize() == data
    with pytest.raises(ValueError, match="too short: 2 octets"):
        TelephoneEvent.parse(b"\x05\x8a")


def test_receiver_reports_one_digit_per_key_press() -> None:
    receiver = TelephoneEventReceiver()
    packets = [
        (TelephoneEvent(1, False, 10, 160), 8000),
        (TelephoneEvent(1, False, 10, 320), 8000),
        (TelephoneEvent(1, True, 10, 800), 8000),
        (TelephoneEvent(1, True, 10, 800), 8000),
        (TelephoneEvent(1, True, 10, 800), 8000),
        (TelephoneEvent(1, False, 10, 160), 9600),  # same key pressed again
        (TelephoneEvent(1, True, 10, 480), 9600),
        (TelephoneEvent(11, True, 10, 480), 11200),  # '#', start packets lost
        (TelephoneEvent(1, True, 10, 800), 8000),  # a very late retransmission
    ]
    digits = [receiver.receive(event, ts) for event, ts in packets]
    assert [d for d in digits if d] == ["1", "1", "#"]


def test_receiver_survives_timestamp_wrap() -> None:
    receiver = TelephoneEventReceiver()
    assert receiver.receive(TelephoneEvent(2), (1 << 32) - 160) == "2"
    assert receiver.receive(TelephoneEvent(3), 800) == "3"


def test_sender_yields_start_updates_and_three_ends() -> None:
    sender = TelephoneEventSender("9", duration_ms=100)
    packets = []
    while (packet := sender.next_packet()) is not None:
        packets.append(packet)
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {9}
    with pytest.raises(ValueError, match="not a DTMF digit"):
        TelephoneEventSender("x")


def test_goertzel_recurrence_equals_the_detector_basis() -> None:
    rng = np.random.default_rng(RNG_SEED)
    frames = rng.normal(0, 1000, size=(3, dtmf.WINDOW))
    reference = goertzel_power(frames, dtmf.ROW_FREQUENCIES + dtmf.COLUMN_FREQUENCIES)
    cos, sin = dtmf._goertzel_basis(dtmf.WINDOW)
    direct = (frames @ cos) ** 2 + (frames @ sin) ** 2
    np.testing.assert_allclose(reference, direct, rtol=1e-6)


def test_all_sixteen_keys_with_short_pauses() -> None:
    parts = []
    for digit in dtmf.DIGITS:
        parts += [dtmf_tone(digit, 0.05, 4000), silence(0.04)]
    assert "".join(detect(np.concatenate(parts))) == dtmf.DIGITS


@pytest.mark.parametrize("twist_db", [-6.0, -3.0, 0.0, 4.0, 6.0])
def test_twist_within_limits_is_accepted(twist_db: float) -> None:
    signal = np.concatenate([silence(0.02), dtmf_tone("5", 0.08, 3000, twist_db), silence(0.05)])
    assert detect(signal) == ["5"]


@pytest.mark.parametrize("twist_db", [-12.0, 12.0])
def test_excessive_twist_is_rejected(twist_db: float) -> None:
    signal = np.concatenate([dtmf_tone("5", 0.1, 3000, twist_db), silence(0.05)])
    assert detect(signal) == []


@pytest.mark.parametrize("snr_db", [15.0, 20.0, 30.0])
def test_digits_are_found_in_white_noise(snr_db: float) -> None:
    rng = np.random.default_rng(RNG_SEED)
    tones = np.concatenate(
        [np.concatenate([dtmf_tone(d, 0.07, 3000), silence(0.05)]) for d in "1590#"]
    )
    signal_power = 3000**2  # two sines of amplitude A: 2 · A²/2
    noise = rng.normal(0, np.sqrt(signal_power / 10 ** (snr_db / 10)), len(tones))
    assert detect(tones + noise) == list("1590#")


def test_a_short_dropout_inside_a_key_press_is_one_digit() -> None:
    signal = np.concatenate(
        [dtmf_tone("7", 0.06, 3000), silence(0.008), dtmf_tone("7", 0.06, 3000), silence(0.05)]
    )
    assert detect(signal) == ["7"]


def test_the_same_key_twice_with_a_40ms_gap_is_two_digits() -> None:
    signal = np.concatenate(
        [dtmf_tone("7", 0.05, 3000), silence(0.04), dtmf_tone("7", 0.05, 3000), silence(0.05)]
    )
    assert detect(signal) == ["7", "7"]


def test_a_too_quiet_tone_is_ignored() -> None:
    assert detect(np.concatenate([dtmf_tone("3", 0.1, 100), silence(0.05)])) == []


def test_detection_does_not_depend_on_chunk_size() -> None:
    signal = np.concatenate([dtmf_tone("2", 0.06, 3000), silence(0.05)] * 3)
    assert detect(signal, chunk=37) == detect(signal, chunk=160) == ["2", "2", "2"]


def test_no_false_digits_on_noise_and_speech_like_sounds() -> None:
    rng = np.random.default_rng(RNG_SEED)
    seconds = 20
    white = rng.normal(0, 4000, seconds * 8000)
    # speech-like: harmonics of a wandering 90-250 Hz pitch, syllable-shaped envelope
    t = np.arange(seconds * 8000) / 8000
    pitch = 170 + 80 * np.sin(2 * np.pi * 0.7 * t) + 20 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 8000
    voice = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    speech = 6000 * voice * envelope + rng.normal(0, 300, len(t))
    assert detect(white) == []
    assert detect(speech) == []


def test_no_false_digits_on_music() -> None:
    from media.music import synthesize_hold_music

    music = synthesize_hold_music(seconds=30.0, seed=RNG_SEED).astype(np.float64)
    assert detect(music) == []


def test_no_false_digits_on_the_spoken_prompts_and_hold_music() -> None:
    from pathlib import Path

    from media.sources import PromptLibrary

    prompts = Path(__file__).resolve().parents[3] / "prompts"
    library = PromptLibrary(prompts)
    names = ["music/hold_music"] + [
        f"{language}/{name}" for language in ("de", "en")
        for name in ("main_menu", "ad_1", "ad_2", "ad_3", "closed")
    ]
    for name in names:
        assert InBandDetector().feed(library.load(name).samples) == [], name
