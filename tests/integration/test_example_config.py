"""The shipped example call center (config/pbx.yaml) answers a carrier call on its English DID
and walks the caller into its IVR: language, greeting, business hours."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.integration.carrier_sipp import Pause, carrier_scenario
from tests.integration.pbx_harness import start_pbx
from tests.integration.sipp import run_sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def test_example_hotline_answers_and_runs_its_flow(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "pbx.yaml").read_text())
    pbx = start_pbx(tmp_path / "pbx", config)
    try:
        scenario = carrier_scenario(tmp_path / "call.xml", [Pause(3000)], end="bye")
        result = run_sipp(tmp_path, str(scenario), pbx.sip_port, keys={"caller": "+4917699"},
                          extra=["-s", "+4930123457", "-mi", "127.0.0.1"])
        assert result.successful == 1, str(result)
        cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 20, "a CDR")[0]
        assert cdr["did"] == "+4930123457"
        path = cdr["ivr_path"]
        assert path[:4] == ["flow:hotline", "language_check", "english", "greeting"], path
        assert cdr["variables"]["language"] == "en"
    finally:
        pbx.stop()
        shutil.rmtree(tmp_path / "pbx" / "data", ignore_errors=True)
