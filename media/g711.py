"""G.711 μ-law (PCMU) and A-law (PCMA) with numpy lookup tables.

Theory of operation: every possible 16-bit linear sample is encoded once, at import, into a
65,536-entry table per law; every 8-bit code is decoded once into a 256-entry table. Encoding a
frame is then one fancy-indexing operation, decoding another, and PCMU⇄PCMA transcoding is a
256-byte ``bytes.translate`` table, cheap enough for the per-packet path of a bridge.

The tables follow ITU-T G.711 as implemented by the ITU-T reference software (G.191 STL):

* μ-law works on the 14 most significant bits, A-law on the 13 most significant bits of a
  16-bit left-justified sample;
* the magnitude of a negative sample is its one's complement (``~x``), so ``x`` and ``-x - 1``
  land in the mirrored quantisation intervals; linear 0 is the positive zero code
  (0xFF for μ-law, 0xD5 for A-law);
* decoded values are the interval mid-points, scaled back to 16 bits (μ-law ±32124, A-law
  ±32256 at full scale).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
Uint8Array = npt.NDArray[np.uint8]

PCMU: Final = "PCMU"
PCMA: Final = "PCMA"
CODECS: Final = (PCMU, PCMA)

# The code a silent frame is made of (linear 0 encoded).
SILENCE_BYTE: Final = {PCMU: 0xFF, PCMA: 0xD5}

_ULAW_BIAS: Final = 33  # 0x84 >> 2: offset that makes μ-law segment ends powers of two
_ULAW_MAX_MAGNITUDE: Final = 0x1FFF


def _encode_ulaw_all() -> Uint8Array:
    linear = np.arange(-32768, 32768, dtype=np.int32)
    negative = linear < 0
    # one's complement magnitude on the 14-bit grid, biased so segment k ends at 2**(k+6) - 1
    magnitude = (np.where(negative, ~linear, linear) >> 2) + _ULAW_BIAS
    magnitude = np.minimum(magnitude, _ULAW_MAX_MAGNITUDE)
    # segment = position of the leading one above bit 5 (0..7)
    segment = np.zeros_like(magnitude)
    for k in range(1, 8):
        segment[magnitude >= (1 << (k + 5))] = k
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    # μ-law transmits the bit-inverted code; positive samples carry the sign bit 1
    code = np.where(negative, code ^ 0x7F, code ^ 0xFF)
    result: Uint8Array = code.astype(np.uint8)
    return result


def _decode_ulaw_all() -> Int16Array:
    code = (~np.arange(256, dtype=np.int32)) & 0xFF
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    # mid-point of the interval, in 16-bit units: ((2m + 33) << seg) - 33, times 4
    magnitude = (((mantissa << 1) + _ULAW_BIAS) << segment) - _ULAW_BIAS
    magnitude = magnitude << 2
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _encode_alaw_all() -> Uint8Array:
    linear = np.arange(-32768, 32768, dtype=np.int32)
    negative = linear < 0
    magnitude = np.where(negative, ~linear, linear) >> 4  # 12-bit magnitude
    segment = np.zeros_like(magnitude)
    for k in range(1, 8):
        segment[magnitude >= (16 << (k - 1))] = k
    # segment 0 and 1 share the step size; above that the mantissa is shifted down
    shift = np.maximum(segment - 1, 0)
    mantissa = (magnitude >> shift) & 0x0F
    code = (segment << 4) | mantissa
    code = np.where(negative, code, code | 0x80)
    # A-law inverts the even bits on the line (ITU-T G.711 §2)
    result: Uint8Array = (code ^ 0x55).astype(np.uint8)
    return result


def _decode_alaw_all() -> Int16Array:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(segment > 0, (mantissa | 0x10) << 4, mantissa << 4) + 8
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


# Encode tables are indexed by the sample's bit pattern viewed as uint16.
_ULAW_ENCODE: Final = np.roll(_encode_ulaw_all(), -32768)
_ALAW_ENCODE: Final = np.roll(_encode_alaw_all(), -32768)
ULAW_DECODE: Final = _decode_ulaw_all()
ALAW_DECODE: Final = _decode_alaw_all()

# 256-byte tables for bytes.translate(): transcoding without leaving C.
ULAW_TO_ALAW: Final = bytes(_ALAW_ENCODE[ULAW_DECODE.view(np.uint16)].tolist())
ALAW_TO_ULAW: Final = bytes(_ULAW_ENCODE[ALAW_DECODE.view(np.uint16)].tolist())


def _as_int16(samples: npt.ArrayLike) -> Int16Array:
    array = np.asarray(samples)
    if array.dtype != np.int16:
        array = np.clip(array, -32768, 32767).astype(np.int16)
    return array


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    """Encode 16-bit linear samples (any int array-like, clipped) to μ-law bytes."""
    return _ULAW_ENCODE[_as_int16(samples).view(np.uint16)].tobytes()


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    """Encode 16-bit linear samples (any int array-like, clipped) to A-law bytes."""
    return _ALAW_ENCODE[_as_int16(samples).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode μ-law bytes to 16-bit linear samples."""
    return ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode A-law bytes to 16-bit linear samples."""
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode(codec: str, samples: npt.ArrayLike) -> bytes:
    """Encode with the codec named by its SDP encoding name (``PCMU`` or ``PCMA``)."""
    if codec == PCMU:
        return ulaw_encode(samples)
    if codec == PCMA:
        return alaw_encode(samples)
    raise ValueError(f"unsupported codec {codec!r}: expected one of {CODECS}")


def decode(codec: str, data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode with the codec named by its SDP encoding name (``PCMU`` or ``PCMA``)."""
    if codec == PCMU:
        return ulaw_decode(data)
    if codec == PCMA:
        return alaw_decode(data)
    raise ValueError(f"unsupported codec {codec!r}: expected one of {CODECS}")


def transcode(data: bytes, source: str, target: str) -> bytes:
    """Convert a G.711 payload between the two laws; identity when they match."""
    if source == target:
        return data
    if source == PCMU and target == PCMA:
        return data.translate(ULAW_TO_ALAW)
    if source == PCMA and target == PCMU:
        return data.translate(ALAW_TO_ULAW)
    raise ValueError(f"cannot transcode {source!r} to {target!r}: expected PCMU or PCMA")


def silence(codec: str, samples: int) -> bytes:
    """An encoded silent payload of ``samples`` samples."""
    try:
        return bytes((SILENCE_BYTE[codec],)) * samples
    except KeyError:
        raise ValueError(f"unsupported codec {codec!r}: expected one of {CODECS}") from None
