"""A prompt name never leaves the prompts directory (names can be rendered from call data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.sources import PromptLibrary


@pytest.mark.parametrize("name", ["de/greeting", "de/greeting.wav", "de/../de/greeting",
                                  "./music/hold"])
def test_names_inside_the_directory_resolve(tmp_path: Path, name: str) -> None:
    library = PromptLibrary(tmp_path)
    resolved = library.resolve(name)
    assert resolved.is_relative_to(tmp_path) and resolved.suffix == ".wav"


def test_an_absolute_path_inside_the_directory_is_allowed(tmp_path: Path) -> None:
    assert PromptLibrary(tmp_path).resolve(str(tmp_path / "de" / "x")) == tmp_path / "de/x.wav"


@pytest.mark.parametrize("name", ["../secret", "de/../../secret.wav", "/etc/passwd",
                                  "/tmp/other/prompt.wav", "de/../../../../etc/shadow"])
def test_names_that_leave_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    library = PromptLibrary(tmp_path / "prompts")
    with pytest.raises(ValueError, match="outside the prompts directory"):
        library.resolve(name)
    with pytest.raises(ValueError, match="outside the prompts directory"):
        library.load(name)


def test_a_sibling_directory_with_the_same_prefix_is_outside(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path / "prompts")
    with pytest.raises(ValueError):
        library.resolve(str(tmp_path / "prompts-evil" / "x.wav"))
