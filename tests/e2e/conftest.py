"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, pjsua2 softphones.

Playwright's Python package only drives the browser here; it never downloads one
(`playwright install` is not run). The browser is Debian's /usr/bin/chromium, started headless
with the flags this machine needs (no background networking: the network is closed). Playwright
gives every launch a fresh, empty profile directory of its own (it refuses --user-data-dir in
`args`) and removes it when the browser closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.softphone import SoftphonePool

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[SoftphonePool]:
    """pjsua2 softphones in subprocesses; all are shut down when the test ends."""
    with SoftphonePool(tmp_path / "phones") as pool:
        yield pool


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium under Playwright; closed (with its contexts) at the end."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make system-deps installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/<test module>/ (git-ignored), emptied of an earlier run's screenshots."""
    folder = ARTIFACTS / Path(str(request.node.path)).stem
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder
