"""Records and reports against a real `pbx run`: SIPp (the carrier) calls a queue twice — a
pjsua2 agent answers the first call, the second caller hangs up while the agent is paused for
lunch; the agent sets the disposition and a note on the CTI API during wrap-up (after the call
ended), a supervisor sets one on the second call while it waits. Then the PBX
restarts on the same database, and the queue and agent reports still count both calls, the
CSV export has the right rows (without what a form hides from the reader), `pbx report`
prints them, and whoever may not read them is refused."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.carrier_sipp import Pause, carrier_scenario
from tests.integration.live_calls import agent_phone
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.integration.sipp import run_sipp
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DID = "+4930400"
CALLER = "+4917699887766"
NOTE = "Rechnung erklärt; =Rückruf"  # a formula-looking note stays text in the CSV
EXPORTER_TOKEN = "exporter-token-0123456789abcdef0123"


def reports_config(tmp_path: Path) -> dict[str, Any]:
    config = base_config(agent_entries(2))
    config["agents"][1]["role"] = "supervisor"
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [{"name": "support", "ring_timeout_s": 10, "wrap_up_s": 6,
                         "service_level_s": 20, "members": [{"agent": "1001"}]}]
    config["dids"] = [{"number": DID, "queue": "support"}]
    config["reports"] = {"timezone": "Europe/Berlin"}
    config["customers"] = [{"customer_no": "555001", "name": "Erika Mustermann",
                            "phones": [CALLER]}]
    # Supervisors (and tokens reading as one) must not see the caller's number.
    config["forms"] = {"default": {"fields": [
        {"name": "caller", "source": "call.caller",
         "permissions": {"roles": {"supervisor": "hidden"}}},
        {"name": "note", "type": "textarea"}]}}
    token_file = tmp_path / "exporter.token"
    token_file.write_text(EXPORTER_TOKEN + "\n")
    token_file.chmod(0o600)
    config["http"] = {"api_tokens": [{"name": "exporter", "token_file": str(token_file),
                                      "scopes": ["cdrs", "stats"], "role": "supervisor"}]}
    return config


def call_api(pbx: RunningPbx, method: str, path: str, session: dict[str, str] | None = None,
             body: dict[str, Any] | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if session:
        headers |= {"Authorization": f"Bearer {session['token']}",
                    session["csrf_header"]: session["csrf_token"]}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(pbx.http + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")


def agent_state(pbx: RunningPbx, session: dict[str, str]) -> str:
    agents = call_api(pbx, "GET", "/api/cti/agents", session)["agents"]
    return str(next(a["state"] for a in agents if a["extension"] == "1001"))


def carrier_calls(tmp_path: Path, pbx: RunningPbx, name: str, talk_ms: int) -> None:
    """The carrier calls the queue's number and hangs up after `talk_ms`."""
    scenario = carrier_scenario(tmp_path / f"{name}.xml", [Pause(talk_ms)], end="bye")
    result = run_sipp(tmp_path / name, str(scenario), pbx.sip_port, keys={"caller": CALLER},
                      extra=["-s", DID], timeout=40)
    assert result.successful == 1, result


def pbx_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pbx.cli", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PBX_API_TOKEN": ""},
                          check=False)


def test_reports_after_a_restart_count_the_calls_before_it(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    config = reports_config(tmp_path)
    workdir = tmp_path / "pbx"
    pbx = start_pbx(workdir, config)
    began = time.time()
    try:
        agent_phone(phones, pbx, "1001")
        session = call_api(pbx, "POST", "/api/cti/login",
                           body={"extension": "1001", "password": "pw1001x"})
        # 1: answered by the agent (auto-answer after 0.3 s), the carrier hangs up after ~3 s.
        carrier_calls(tmp_path, pbx, "answered", 3000)
        ended = pbx.wait_until(
            lambda: [c for c in call_api(pbx, "GET", "/api/cti/calls", session)["calls"]
                     if c["state"] == "ended"], 10, "the ended call on the desk")[0]
        assert agent_state(pbx, session) == "wrap_up"
        call_api(pbx, "POST", f"/api/cti/calls/{ended['call_id']}/disposition", session,
                 {"disposition": "resolved", "note": NOTE})
        # 2: the agent goes to lunch (after the wrap-up); the next caller gives up after ~3 s,
        # and a supervisor gives the call a disposition while it waits.
        call_api(pbx, "POST", "/api/cti/agents/1001/pause", session, {"reason": "lunch"})
        pbx.wait_until(lambda: agent_state(pbx, session) == "paused", 15, "the agent paused")
        supervisor = call_api(pbx, "POST", "/api/cti/login",
                              body={"extension": "1002", "password": "pw1002x"})
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(carrier_calls, tmp_path, pbx, "abandoned", 3000)
            waiting = pbx.wait_until(
                lambda: [c for c in call_api(pbx, "GET", "/api/cti/calls", supervisor)["calls"]
                         if c["state"] == "queued"], 10, "the caller waiting")[0]
            call_api(pbx, "POST", f"/api/cti/calls/{waiting['call_id']}/disposition",
                     supervisor, {"disposition": "wrong_number", "note": "hung up waiting"})
            caller.result(timeout=60)
        call_api(pbx, "POST", "/api/cti/agents/1001/ready", session)
        pbx.wait_until(lambda: len(pbx.get("/api/cdrs")["cdrs"]) == 2, 15, "two CDRs")
        # A report asked for now counts what the PBX has not yet written on its own.
        since = urllib.parse.quote(datetime.fromtimestamp(began - 60).astimezone().isoformat())
        [live] = pbx.get(f"/api/reports/queues?from={since}")["queues"]
        assert (live["offered"], live["answered"], live["abandoned"]) == (2, 1, 1)
    finally:
        assert pbx.stop() == 0

    pbx = start_pbx(workdir, config)  # same data directory: same database
    try:
        window = urllib.parse.urlencode({
            "from": datetime.fromtimestamp(began - 60).astimezone().isoformat(),
            "to": datetime.fromtimestamp(time.time() + 60).astimezone().isoformat()})
        queues = pbx.get(f"/api/reports/queues?{window}")
        assert queues["timezone"] == "Europe/Berlin" and queues["interval"] == "total"
        assert queues["from"].endswith(("+01:00", "+02:00"))
        [support] = queues["queues"]
        assert support | {"queue": "support", "offered": 2, "answered": 1, "abandoned": 1,
                          "service_level": 0.5, "handled": 1} == support
        assert 0 < support["asa_s"] < 10 and support["aht_s"] >= 6  # talk + 6 s wrap-up
        assert 2.5 <= support["avg_abandon_wait_s"] < 10

        agents = pbx.get(f"/api/reports/agents?{window}")["agents"]
        [agent] = [a for a in agents if a["agent"] == "1001"]
        assert agent["calls"] == 1 and agent["offers"] == 1
        assert 1.5 <= agent["talk_s"] < 10 and 5.5 <= agent["wrap_up_s"] < 10
        assert agent["pause_by_reason"]["lunch"] >= 2.5 and agent["ready_s"] > 0
        assert 0 < agent["occupancy"] < 1

        by_hour = pbx.get(f"/api/reports/queues?{window}&interval=15m")["queues"]
        assert sum(q["offered"] for q in by_hour) == 2

        # The CSV export as a token with the supervisor's view: no caller column.
        status, headers, body = pbx.request(
            "GET", f"/api/reports/cdrs?{window}&queue=support&format=csv",
            {"Authorization": f"Bearer {EXPORTER_TOKEN}"})
        assert status == 200 and headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert [r["disposition"] for r in rows] == ["answered", "abandoned"]
        assert "caller" not in rows[0] and CALLER not in body.decode()
        assert rows[0]["agent"] == "1001" and rows[0]["agent_disposition"] == "resolved"
        assert rows[0]["agent_notes"] == NOTE and rows[1]["agent_notes"] == "hung up waiting"
        assert rows[1]["agent_disposition"] == "wrong_number"  # set while the call went on
        assert rows[0]["started_at"].endswith(("+01:00", "+02:00"))
        # The admin's JSON, one page of one, with the caller.
        page = pbx.get(f"/api/reports/cdrs?{window}&agent_disposition=resolved&limit=1")
        assert page["total"] == 1 and page["cdrs"][0]["caller"] == CALLER

        # pbx report, through the API with a token.
        token = ["--url", pbx.http, "--token-file", str(workdir / "harness-api.token")]
        since = ["--from", datetime.fromtimestamp(began - 60).astimezone().isoformat()]
        table = pbx_cli("report", "queues", *since, *token)
        assert table.returncode == 0, table.stderr
        line = next(row for row in table.stdout.splitlines() if " support " in row)
        assert line.split()[2:6] == ["2", "1", "1", "50%"]
        agents_table = pbx_cli("report", "agents", *since, *token)
        assert agents_table.returncode == 0 and "lunch=" in agents_table.stdout
        exported = pbx_cli("report", "cdrs", *since, "--csv", *token)
        assert exported.returncode == 0, exported.stderr
        assert [r["agent_disposition"] for r in csv.DictReader(io.StringIO(exported.stdout))
                ] == ["resolved", "wrong_number"]
        bad = pbx_cli("report", "queues", "--from", "yesterday", *token)
        assert bad.returncode == 1 and "400" in bad.stderr and "'from'" in bad.stderr

        # The agent's desk shows the dispositions in the customer's call history.
        history = call_api(pbx, "GET", "/api/cti/customers/555001/calls", session)["calls"]
        assert [(c["agent_disposition"], c["agent_notes"]) for c in history] == [
            ("wrong_number", "hung up waiting"), ("resolved", NOTE)]

        # Who may not: nobody, a token without the scope, an agent's session.
        assert pbx.request("GET", "/api/reports/queues")[0] == 401
        assert pbx.request("GET", "/api/reports/cdrs")[0] == 401
        status, _, body = pbx.request("GET", "/api/reports/agents",
                                      {"Authorization": f"Bearer {EXPORTER_TOKEN}"})
        assert status == 403 and b"may not read 'reports'" in body
        agent_session = {"Authorization": f"Bearer {session['token']}"}  # survives the restart
        assert pbx.request("GET", "/api/reports/queues", agent_session)[0] == 403
        assert pbx.request("GET", "/api/reports/cdrs", agent_session)[0] == 403
        # Bad parameters: a 400 that says what is wrong.
        for query, text in (("interval=week", b"'interval' must be one of"),
                            ("from=2026-13-01", b"'from' is not an ISO 8601"),
                            ("from=2026-12-05&to=2026-12-04", b"must be before 'to'"),
                            ("limit=0", b"'limit' must be an integer"),
                            ("colour=red", b"unknown parameter 'colour'")):
            path = "/api/reports/cdrs" if query.startswith("limit") else "/api/reports/queues"
            status, _, body = pbx.request("GET", f"{path}?{query}", pbx.api_headers)
            assert status == 400 and text in body, (query, body)
    finally:
        assert pbx.stop() == 0
