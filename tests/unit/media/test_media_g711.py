"""G.711 tables against an independent per-sample implementation of ITU-T G.711 (G.191 STL).

The reference below walks the segment end points one sample at a time, the way the ITU-T
reference software does; the module under test builds its tables with vectorised numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

from media import g711

# segment end points of the biased 14-bit μ-law magnitude and of the 12-bit A-law magnitude
_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEGMENT_ENDS = (0xF, 0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF)


def reference_ulaw(sample: int) -> int:
    magnitude = ((~sample) if sample < 0 else sample) >> 2
    magnitude = min(magnitude + 33, 0x1FFF)
    segment = next(i for i, end in enumerate(_ULAW_SEGMENT_ENDS) if magnitude <= end)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = 0x7F - ((segment << 4) | mantissa)
    return code if sample < 0 else code | 0x80


def reference_ulaw_expand(code: int) -> int:
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x07
    step = 4 << (exponent + 1)
    value = (0x80 << exponent) + step * (inverted & 0x0F) + step // 2 - 4 * 33
    return -value if code < 0x80 else value


def reference_alaw(sample: int) -> int:
    magnitude = ((~sample) if sample < 0 else sample) >> 4
    segment = next(i for i, end in enumerate(_ALAW_SEGMENT_ENDS) if magnitude <= end)
    if segment < 2:
        mantissa = magnitude & 0x0F
    else:
        mantissa = (magnitude >> (segment - 1)) & 0x0F
    code = (segment << 4) | mantissa
    if sample >= 0:
        code |= 0x80
    return code ^ 0x55


def reference_alaw_expand(code: int) -> int:
    value = (code ^ 0x55) & 0x7F
    exponent = value >> 4
    mantissa = value & 0x0F
    if exponent > 0:
        mantissa += 16
    mantissa = (mantissa << 4) + 8
    if exponent > 1:
        mantissa <<= exponent - 1
    return mantissa if code > 127 else -mantissa


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def test_ulaw_encode_is_bit_exact_for_every_16_bit_sample() -> None:
    expected = bytes(reference_ulaw(int(s)) for s in ALL_SAMPLES)
    assert g711.ulaw_encode(ALL_SAMPLES) == expected


def test_alaw_encode_is_bit_exact_for_every_16_bit_sample() -> None:
    expected = bytes(reference_alaw(int(s)) for s in ALL_SAMPLES)
    assert g711.alaw_encode(ALL_SAMPLES) == expected


def test_decode_tables_match_the_reference_for_all_codes() -> None:
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).tolist() == [reference_ulaw_expand(c) for c in codes]
    assert g711.alaw_decode(codes).tolist() == [reference_alaw_expand(c) for c in codes]


@pytest.mark.parametrize(
    ("linear", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
        (8, 0xFE, 0xD5),
    ],
)
def test_known_code_points(linear: int, ulaw: int, alaw: int) -> None:
    assert g711.ulaw_encode([linear]) == bytes((ulaw,))
    assert g711.alaw_encode([linear]) == bytes((alaw,))


def test_known_decoded_values() -> None:
    # the G.711 tables' full-scale and zero reconstruction levels, in 16-bit units
    assert g711.ulaw_decode(b"\x80\x00\xff\x7f").tolist() == [32124, -32124, 0, 0]
    assert g711.alaw_decode(b"\xaa\x2a\xd5\x55").tolist() == [32256, -32256, 8, -8]


@pytest.mark.parametrize("codec", g711.CODECS)
def test_reconstruction_levels_are_fixed_points(codec: str) -> None:
    # decoding, encoding and decoding again gives the same level: the tables agree
    levels = g711.decode(codec, bytes(range(256)))
    assert g711.decode(codec, g711.encode(codec, levels)).tolist() == levels.tolist()


def test_encoding_is_monotonic() -> None:
    ulaw = g711.ulaw_decode(g711.ulaw_encode(ALL_SAMPLES)).astype(int)
    alaw = g711.alaw_decode(g711.alaw_encode(ALL_SAMPLES)).astype(int)
    assert np.all(np.diff(ulaw) >= 0)
    assert np.all(np.diff(alaw) >= 0)


def test_quantisation_error_is_within_half_a_step() -> None:
    samples = np.arange(-30000, 30000, 7, dtype=np.int16)
    for codec, bound in ((g711.PCMU, 0.04), (g711.PCMA, 0.04)):
        decoded = g711.decode(codec, g711.encode(codec, samples)).astype(float)
        big = np.abs(samples) > 1000
        relative = np.abs(decoded[big] - samples[big]) / np.abs(samples[big])
        assert relative.max() < bound


def test_transcoding_tables_go_through_linear() -> None:
    codes = bytes(range(256))
    to_alaw = g711.transcode(codes, g711.PCMU, g711.PCMA)
    assert to_alaw == g711.alaw_encode(g711.ulaw_decode(codes))
    assert g711.transcode(codes, g711.PCMA, g711.PCMU) == g711.ulaw_encode(g711.alaw_decode(codes))
    assert g711.transcode(codes, g711.PCMU, g711.PCMU) is codes


def test_encode_clips_wide_input_and_rejects_unknown_codecs() -> None:
    assert g711.ulaw_encode(np.array([100000, -100000])) == b"\x80\x00"
    assert g711.silence(g711.PCMA, 3) == b"\xd5\xd5\xd5"
    with pytest.raises(ValueError, match="unsupported codec 'G729'"):
        g711.encode("G729", [0])
    with pytest.raises(ValueError, match="cannot transcode"):
        g711.transcode(b"", "PCMU", "G722")
