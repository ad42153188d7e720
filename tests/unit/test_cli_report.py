"""`pbx report` without a PBX: what it refuses before asking (one line on stderr, exit 1), and
how it prints a report's JSON as a table. Against a running PBX:
tests/integration/test_reports_live.py."""

from __future__ import annotations

import pytest

from pbx.cli import main
from pbx.cli_report import render


@pytest.mark.parametrize(("args", "message"), [
    (["cdrs", "--interval", "day"], "--interval is for the queues and agents reports"),
    (["queues", "--limit", "5"], "--limit and --offset are for cdrs"),
    (["agents", "--queue", "support"], "the agents report filters by --agent only"),
    (["cdrs", "--agent", "1001", "--agent", "1002"], "at most one --queue and one --agent"),
    (["queues"], "needs an API token with scope 'reports'"),
    (["cdrs"], "needs an API token with scope 'cdrs'"),
])
def test_refusals_are_one_line(args: list[str], message: str,
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PBX_API_TOKEN", raising=False)
    assert main(["report", *args, "--url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pbx report {args[0]}: ") and message in err
    assert err.count("\n") == 1


def test_tables() -> None:
    queues = render("queues", {"from": "2026-12-04T00:00:00+01:00",
                               "to": "2026-12-05T00:00:00+01:00",
                               "timezone": "Europe/Berlin", "queues": [{
                                   "period_start": "2026-12-04T00:00:00+01:00",
                                   "queue": "support", "offered": 7, "answered": 5,
                                   "abandoned": 2, "service_level": 0.4286, "asa_s": 12.4,
                                   "aht_s": 181.0}]})
    title, header, _rule, row = queues.splitlines()
    assert title == "2026-12-04T00:00:00+01:00 .. 2026-12-05T00:00:00+01:00 (Europe/Berlin)"
    assert header.split() == ["PERIOD", "QUEUE", "OFFERED", "ANSWERED", "ABANDONED", "SL",
                              "ASA", "S", "AHT", "S"]
    assert row.split()[1:] == ["support", "7", "5", "2", "43%", "12", "181"]
    agents = render("agents", {"agents": [{
        "period_start": "p", "agent": "1001", "calls": 3, "talk_s": 300.0, "wrap_up_s": 30.0,
        "ready_s": 600.0, "paused_s": 90.0, "occupancy": None,
        "pause_by_reason": {"break": 30.0, "lunch": 60.0}}]})
    assert agents.splitlines()[-1].split()[-3:] == ["90", "break=30", "lunch=60"]
    cdrs = render("cdrs", {"total": 9, "offset": 0, "cdrs": [{
        "started_at": "t", "queue": "support", "agent": "1001", "disposition": "answered",
        "agent_disposition": "resolved", "agent_notes": "line one\nline two"}]})
    assert "1 of 9 from 0" in cdrs.splitlines()[0]
    assert cdrs.splitlines()[-1].split()[-5:] == ["resolved", "line", "one", "line", "two"]
