"""Fixtures for integration tests: a real `pbx run` subprocess on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.softphone import SoftphonePool


@pytest.fixture
def pbx(tmp_path: Path) -> Iterator[RunningPbx]:
    """A PBX with agents 1001–1010 (passwords pw1001x …) listening on IPv4 and IPv6."""
    running = start_pbx(tmp_path / "pbx", base_config(agent_entries(10), ipv6=True))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[SoftphonePool]:
    """pjsua2 softphones in subprocesses; all are shut down when the test ends."""
    with SoftphonePool(tmp_path / "phones") as pool:
        yield pool
