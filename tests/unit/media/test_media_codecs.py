"""G.722 through `media.codecs`: real G.722 (checked with an independent decoder of the same
library at 16 kHz), resampling at the edges, silence, and the codec registry."""

from __future__ import annotations

import numpy as np
import pytest
from G722 import G722 as Reference

from media import codecs, g711
from media.codecs import G722, G722State
from tests.unit.media.media_rtp_peer import dominant_frequency, rms


def tone(frequency: float, seconds: float, rate: int = 8000, amplitude: float = 8000.0,
         ) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def frames(samples: np.ndarray, size: int = 160) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, len(samples), size)]


@pytest.mark.parametrize("frequency", [300.0, 1000.0, 3000.0])
def test_round_trip_keeps_frequency_and_level(frequency: float) -> None:
    sender, receiver = G722State(), G722State()
    payloads = [sender.encode(frame) for frame in frames(tone(frequency, 1.0))]
    assert {len(p) for p in payloads} == {160}  # 20 ms = 160 octets, like G.711
    heard = np.concatenate([receiver.decode(p) for p in payloads])[800:].astype(float)
    assert dominant_frequency(heard) == pytest.approx(frequency, abs=10)
    assert rms(heard) == pytest.approx(8000 / np.sqrt(2), rel=0.1)


def test_what_we_send_is_g722_that_an_independent_decoder_reads_at_16_khz() -> None:
    sender = G722State()
    payload = b"".join(sender.encode(frame) for frame in frames(tone(1200, 1.0)))
    wide = np.frombuffer(Reference(16000, 64000).decode(payload), np.int16).astype(float)
    assert len(wide) == 16000
    assert dominant_frequency(wide[1600:], rate=16000) == pytest.approx(1200, abs=10)


def test_a_wideband_tone_from_a_real_g722_encoder_is_heard_below_4_khz_only() -> None:
    # 16 kHz audio with 1 kHz + 6 kHz: the engine's 8 kHz side keeps 1 kHz, drops 6 kHz
    t = np.arange(16000) / 16000
    wide = (5000 * np.sin(2 * np.pi * 1000 * t) + 5000 * np.sin(2 * np.pi * 6000 * t))
    payload = Reference(16000, 64000).encode(wide.astype(np.int16))
    receiver = G722State()
    heard = np.concatenate([receiver.decode(payload[i : i + 160])
                            for i in range(0, len(payload), 160)])[800:].astype(float)
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    bins = np.fft.rfftfreq(len(heard), 1 / 8000)
    at_1k = spectrum[np.argmin(np.abs(bins - 1000))]
    at_2k = spectrum[np.argmin(np.abs(bins - 2000))]  # where 6 kHz would alias to
    assert at_1k > 30 * at_2k


def test_silence_frames_decode_to_silence() -> None:
    receiver = G722State()
    heard = np.concatenate([receiver.decode(codecs.silence_frame(G722)) for _ in range(20)])
    assert np.abs(heard[160:]).max() < 50
    assert codecs.silence(G722, 480) == codecs.silence_frame(G722) * 3
    assert codecs.silence("PCMU", 160) == g711.silence("PCMU", 160)
    with pytest.raises(ValueError, match="whole 20 ms frames"):
        codecs.silence(G722, 100)


def test_prompts_encode_per_codec_and_unknown_codecs_are_refused() -> None:
    pcm = tone(700, 0.2)
    assert codecs.encode_prompt("PCMA", pcm) == g711.encode("PCMA", pcm)
    encoded = codecs.encode_prompt(G722, pcm)
    assert len(encoded) == len(pcm)  # 8 kHz samples → octets: 64 kbit/s either way
    with pytest.raises(ValueError, match="unsupported codec 'G729'"):
        codecs.encode_prompt("G729", pcm)
