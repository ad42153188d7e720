"""The codecs the engine speaks, behind one interface: G.711 (PCMU, PCMA) and G.722.

Theory of operation
-------------------
The engine's own audio is 8 kHz linear PCM: prompts, tones, mixing, recording and the in-band
DTMF detector all work on it. A codec turns that PCM into one 20 ms RTP payload and back.

* **G.711** is stateless and lives in `media.g711` (lookup tables); PCMU⇄PCMA is a byte
  translation that never touches PCM.
* **G.722** (ITU-T G.722, 64 kbit/s sub-band ADPCM, 16 kHz audio) is done by the ``G722``
  library (sippy's libg722 in C). It is stateful, so every session owns a `G722State` with its
  own encoder and decoders, and a stream is coded as one continuous signal. At its edges the
  state resamples between the engine's 8 kHz and the codec's 16 kHz: up by zero-stuffing and a
  half-band low-pass FIR, down by the same low-pass and keeping every second sample; the FIRs
  carry their history from frame to frame. Two G.722 legs bridged to each other never decode:
  their payloads pass through untouched and keep the full 7 kHz band.
* RFC 3551 §4.5.2: G.722's RTP clock rate is 8000 although it samples at 16 kHz, so a 20 ms
  frame advances the timestamp by 160 and carries 160 octets, exactly like G.711. The session's
  framing therefore does not depend on the codec.

Prompts are encoded once per codec at load (`encode_prompt`, a fresh G.722 state for the whole
prompt); where such frames meet frames from a session's own encoder the far decoder's ADPCM
predictor re-converges within a few milliseconds.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from G722 import G722 as _G722Library

from media import g711
from media.g711 import PCMA, PCMU

Int16Array = npt.NDArray[np.int16]
Float64Array = npt.NDArray[np.float64]

G722: Final = "G722"
ALL_CODECS: Final = (PCMU, PCMA, G722)
PAYLOAD_TYPES: Final = {PCMU: 0, PCMA: 8, G722: 9}  # RFC 3551 static payload types
FRAME_OCTETS: Final = 160  # one 20 ms payload for every codec here (see the docstring)

_WIDE_RATE: Final = 16000
_BIT_RATE: Final = 64000
_TAPS: Final = 31


def _half_band() -> Float64Array:
    # windowed sinc, cut-off at a quarter of the 16 kHz rate (4 kHz), unity gain at DC
    n = np.arange(_TAPS) - (_TAPS - 1) / 2
    taps: Float64Array = 0.5 * np.sinc(0.5 * n) * np.blackman(_TAPS)
    result: Float64Array = taps / taps.sum()
    return result


_FILTER: Final = _half_band()


def _check(codec: str) -> None:
    if codec not in ALL_CODECS:
        raise ValueError(f"unsupported codec {codec!r}: expected one of {ALL_CODECS}")


class _Fir:
    """The half-band low-pass as a streaming filter (keeps the last taps - 1 inputs)."""

    __slots__ = ("_history",)

    def __init__(self) -> None:
        self._history = np.zeros(_TAPS - 1)

    def __call__(self, samples: Float64Array) -> Float64Array:
        joined = np.concatenate((self._history, samples))
        self._history = joined[len(joined) - (_TAPS - 1) :]
        filtered: Float64Array = np.convolve(joined, _FILTER, mode="valid")
        return filtered


def _to_int16(samples: Float64Array) -> Int16Array:
    result: Int16Array = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
    return result


class G722State:
    """One session's G.722 coding state: an encoder for what we send, a decoder for what we
    receive and one for what we send (recording the sent side), each with its resampler."""

    __slots__ = ("_encoder", "_up", "_decoder", "_down", "_sent_decoder", "_sent_down")

    def __init__(self) -> None:
        self._encoder = _G722Library(_WIDE_RATE, _BIT_RATE)
        self._up = _Fir()
        self._decoder = _G722Library(_WIDE_RATE, _BIT_RATE)
        self._down = _Fir()
        self._sent_decoder = _G722Library(_WIDE_RATE, _BIT_RATE)
        self._sent_down = _Fir()

    def encode(self, pcm: npt.ArrayLike) -> bytes:
        """8 kHz PCM (any length, whole frames for RTP) → G.722 payload."""
        samples = np.asarray(pcm, dtype=np.float64)
        stuffed = np.zeros(2 * len(samples))
        stuffed[0::2] = samples
        wide = _to_int16(2.0 * self._up(stuffed))
        return bytes(self._encoder.encode(wide))

    def decode(self, payload: bytes) -> Int16Array:
        """A received G.722 payload → 8 kHz PCM."""
        return _decode(self._decoder, self._down, payload)

    def decode_sent(self, payload: bytes) -> Int16Array:
        """A payload we sent → 8 kHz PCM (for recordings of the sent side)."""
        return _decode(self._sent_decoder, self._sent_down, payload)


def _decode(decoder: _G722Library, down: _Fir, payload: bytes) -> Int16Array:
    wide = np.frombuffer(decoder.decode(payload), dtype=np.int16).astype(np.float64)
    return _to_int16(down(wide)[0::2])


def encode_prompt(codec: str, pcm: npt.ArrayLike) -> bytes:
    """A whole prompt (8 kHz PCM, whole frames) encoded once, with a fresh state."""
    _check(codec)
    if codec == G722:
        return G722State().encode(pcm)
    return g711.encode(codec, pcm)


def _g722_silence_frame() -> bytes:
    # what a settled encoder emits for digital silence, frame after frame
    state = G722State()
    frame = b""
    for _ in range(5):
        frame = state.encode(np.zeros(160, np.int16))
    return frame


_SILENCE: Final = {
    PCMU: g711.silence(PCMU, FRAME_OCTETS),
    PCMA: g711.silence(PCMA, FRAME_OCTETS),
    G722: _g722_silence_frame(),
}


def silence(codec: str, samples: int) -> bytes:
    """An encoded silent payload for ``samples`` 8 kHz samples (a multiple of 160 for G.722)."""
    _check(codec)
    if codec != G722:
        return g711.silence(codec, samples)
    frames, rest = divmod(samples, 160)
    if rest:
        raise ValueError(f"G.722 silence needs whole 20 ms frames, not {samples} samples")
    return _SILENCE[G722] * frames


def silence_frame(codec: str) -> bytes:
    """One 20 ms silent payload."""
    _check(codec)
    return _SILENCE[codec]


__all__ = [
    "ALL_CODECS",
    "FRAME_OCTETS",
    "G722",
    "G722State",
    "PAYLOAD_TYPES",
    "encode_prompt",
    "silence",
    "silence_frame",
]
