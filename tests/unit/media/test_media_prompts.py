"""The committed prompts: complete, 8 kHz mono 16-bit, loadable; the builder works."""

from __future__ import annotations

import random
import shutil
import wave
from pathlib import Path

import pytest

from media import build_prompts
from media.sources import HoldProgram, PromptLibrary, create_player

PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


def committed_files() -> list[Path]:
    files = [PROMPTS / "music" / "hold_music.wav"]
    for language in ("de", "en"):
        files += [PROMPTS / language / f"{name}.wav" for name in build_prompts.PROMPTS]
        files += [PROMPTS / language / "numbers" / f"{n}.wav" for n in build_prompts.NUMBERS]
    return files


def test_every_prompt_is_there_as_8khz_mono_16bit() -> None:
    total = 0
    for path in committed_files():
        assert path.is_file(), path
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() > 0.2 * 8000, path
        total += path.stat().st_size
    assert total < 6_000_000


def test_the_hold_program_runs_on_the_committed_prompts() -> None:
    program = HoldProgram(
        music=("music/hold_music",), announcements=("de/thank_you_for_waiting",),
        ads=("de/ad_1", "de/ad_2", "de/ad_3"), interval_s=5.0,
    )
    player = create_player(program, "PCMA", PromptLibrary(PROMPTS), random.Random(1))
    frames = [player.next_frame() for _ in range(50 * 60)]
    assert all(frame is not None and len(frame) == 160 for frame in frames)


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="espeak-ng and sox are needed to build prompts")
def test_builder_speaks_one_prompt(tmp_path: Path) -> None:
    files = build_prompts.build(tmp_path, ("en",), only=("goodbye",))
    assert files == [tmp_path / "en" / "goodbye.wav"]
    with wave.open(str(files[0])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert 0.8 < wav.getnframes() / 8000 < 4
    assert "goodbye" in (tmp_path / "README.md").read_text().lower()
