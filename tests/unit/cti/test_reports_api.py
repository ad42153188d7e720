"""The report endpoints through the real Starlette app on a SQLite file: who may read them,
JSON and CSV (negotiated or asked for), times in the configured zone, hidden form sources left
out of CDR exports in CSV too, spreadsheet formulas defused, and 400s that say what is wrong."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pbx.acd.intervals import AgentInterval, IntervalDeltas, QueueInterval
from pbx.config import PbxConfig, parse_config
from pbx.cti import CtiDesk, sync_credentials
from pbx.cti.http import build_http_app
from pbx.cti.reports import csv_cell
from pbx.cti.tokens import ApiToken, ApiTokens
from pbx.repositories import Binding, CallDetailRecord
from pbx.storage import Database
from tests.unit.cti.fakes import FakeAgentControl, FakeCallControl

CONFIG = """\
sip: {domain: hotline.example}
agents:
  - {extension: "1001", name: Anna, password: pw-anna-1001}
  - {extension: "1003", name: Clara, password: pw-clara-1003, role: supervisor}
cti: {password_cost: 10}
reports: {timezone: Europe/Berlin}
forms:
  default:
    fields:
      - name: caller
        source: call.caller
        permissions: {roles: {supervisor: hidden}}
      - name: secret
        source: customer.fields.secret
        permissions: {default: hidden, roles: {admin: read_only}}
"""
TOKENS = {name: f"{name}-token-0123456789abcdef0123456789" for name in
          ("reports", "cdrs", "admin", "metrics")}
API_TOKENS = ApiTokens([
    ApiToken("reports", hashlib.sha256(TOKENS["reports"].encode()).digest(),
             frozenset({"reports"}), "supervisor"),
    ApiToken("cdrs", hashlib.sha256(TOKENS["cdrs"].encode()).digest(),
             frozenset({"cdrs"}), "supervisor"),
    ApiToken("admin", hashlib.sha256(TOKENS["admin"].encode()).digest(),
             frozenset({"cdrs", "reports"}), "admin"),
    ApiToken("metrics", hashlib.sha256(TOKENS["metrics"].encode()).digest(),
             frozenset({"metrics"}), "supervisor"),
])
# 2026-12-04 09:00 and 09:15 in Berlin (08:00Z, 08:15Z), and 10:00.
Q1, Q2, Q3 = 1_796_371_200, 1_796_371_200 + 900, 1_796_371_200 + 3600
WINDOW = "from=2026-12-04T00:00&to=2026-12-05T00:00"


class View:
    def __init__(self, cfg: PbxConfig) -> None:
        self.config = cfg

    def registrations(self) -> list[Binding]:
        return []

    def stats(self) -> dict[str, object]:
        return {}

    def recent_cdrs(self, limit: int) -> list[CallDetailRecord]:
        return []

    def campaign_status(self) -> list[dict[str, object]]:
        return []


@dataclass
class Flushes:
    count: int = 0

    async def flush(self) -> None:
        self.count += 1


@dataclass
class Reports:
    client: TestClient
    db: Database
    flushes: Flushes

    def get(self, path: str, who: str | None = "admin", **headers: str) -> Any:
        if who is not None:
            headers["Authorization"] = f"Bearer {TOKENS.get(who, who)}"
        return self.client.get(path, headers=headers)

    def session(self, extension: str, password: str) -> str:
        response = self.client.post("/api/cti/login",
                                    json={"extension": extension, "password": password})
        assert response.status_code == 200, response.text
        self.client.cookies.clear()
        return str(response.json()["token"])


@pytest.fixture
def reports(tmp_path: Path) -> Iterator[Reports]:
    cfg = parse_config(CONFIG, "reports.yaml")
    db = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    sync_credentials(cfg, db.cti_store())
    db.interval_store().add_intervals(IntervalDeltas(
        {(Q1, "support"): QueueInterval(offered=3, answered=2, abandoned=1, answered_in_sl=1,
                                        wait_answered_s=40.0, handled=2, handle_s=300.0),
         (Q2, "support"): QueueInterval(offered=1, answered=1, answered_in_sl=1,
                                        wait_answered_s=2.0),
         (Q3, "sales"): QueueInterval(offered=1, abandoned=1, wait_abandoned_s=9.0)},
        {(Q1, "1001"): AgentInterval(calls=2, talk_s=240.0, wrap_up_s=60.0, ready_s=300.0,
                                     paused_s=200.0, pauses={"lunch": 150.0, "break": 50.0})},
    ))
    db.cdr_sink().write_cdrs([
        CallDetailRecord("sip-1", "inbound", "+4930111222", "1001", Q1 + 10.0, Q1 + 30.0,
                         Q1 + 200.0, "answered", agent="1001", queue="support",
                         variables={"concern": "invoice", "customer.fields.secret": "s3"},
                         agent_disposition="resolved", agent_notes="=HYPERLINK(\"x\")"),
        CallDetailRecord("sip-2", "inbound", "+4930999000", "", Q3 + 5.0, None, Q3 + 25.0,
                         "abandoned", queue="sales", ivr_path=("menu", "queue:sales")),
    ])
    flushes = Flushes()
    desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
    app = build_http_app(View(cfg), desk, db, tokens=API_TOKENS, intervals=flushes)
    with TestClient(app) as client:
        yield Reports(client, db, flushes)
    db.close()


PATHS = ("/api/reports/queues", "/api/reports/agents", "/api/reports/cdrs")


@pytest.mark.parametrize("path", PATHS)
def test_who_may_read(reports: Reports, path: str) -> None:
    assert reports.get(path, None).status_code == 401
    assert reports.get(path, "metrics").status_code == 403
    other = "reports" if path.endswith("cdrs") else "cdrs"
    refused = reports.get(path, other)
    assert refused.status_code == 403 and "may not read" in refused.json()["error"]
    agent = reports.session("1001", "pw-anna-1001")
    assert reports.get(path, agent).status_code == 403
    supervisor = reports.session("1003", "pw-clara-1003")
    assert reports.get(f"{path}?{WINDOW}", supervisor).status_code == 200
    assert reports.get(f"{path}?{WINDOW}", "admin").status_code == 200


def test_queue_report_per_hour_in_the_configured_zone(reports: Reports) -> None:
    body = reports.get(f"/api/reports/queues?{WINDOW}&interval=hour").json()
    assert (body["from"], body["to"], body["interval"], body["timezone"]) == (
        "2026-12-04T00:00:00+01:00", "2026-12-05T00:00:00+01:00", "hour", "Europe/Berlin")
    assert [(q["period_start"], q["queue"], q["offered"]) for q in body["queues"]] == [
        ("2026-12-04T09:00:00+01:00", "support", 4), ("2026-12-04T10:00:00+01:00", "sales", 1)]
    support = body["queues"][0]
    assert support["period_end"] == "2026-12-04T10:00:00+01:00"
    assert (support["service_level"], support["asa_s"], support["aht_s"]) == (0.5, 14.0, 150.0)
    assert reports.flushes.count == 1  # what the PBX gathered was written first
    only = reports.get(f"/api/reports/queues?{WINDOW}&queue=sales").json()["queues"]
    assert [q["queue"] for q in only] == ["sales"] and only[0]["avg_abandon_wait_s"] == 9.0


def test_agent_report_as_csv_has_a_column_per_pause_reason(reports: Reports) -> None:
    response = reports.get(f"/api/reports/agents?{WINDOW}", Accept="text/csv")
    assert response.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["agent"] == "1001" and row["calls"] == "2"
    assert (row["paused_break_s"], row["paused_lunch_s"]) == ("50.0", "150.0")
    assert row["occupancy"] == "0.5" and row["period_start"] == "2026-12-04T00:00:00+01:00"
    assert "pause_by_reason" not in row


def test_cdr_export_leaves_out_what_forms_hide_in_json_and_csv(reports: Reports) -> None:
    as_admin = reports.get(f"/api/reports/cdrs?{WINDOW}").json()
    assert as_admin["total"] == 2 and as_admin["cdrs"][0]["caller"] == "+4930111222"
    assert as_admin["cdrs"][0]["variables"]["customer.fields.secret"] == "s3"
    assert as_admin["cdrs"][0]["started_at"] == "2026-12-04T09:00:10+01:00"
    assert as_admin["cdrs"][1]["answered_at"] is None
    as_supervisor = reports.get(f"/api/reports/cdrs?{WINDOW}", "cdrs").json()["cdrs"]
    assert "caller" not in as_supervisor[0]
    assert as_supervisor[0]["variables"] == {"concern": "invoice"}
    response = reports.get(f"/api/reports/cdrs?{WINDOW}&format=csv", "cdrs")
    assert response.headers["x-total-count"] == "2"
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert "caller" not in rows[0] and "+4930111222" not in response.text
    assert "s3" not in response.text and rows[0]["variables"] == '{"concern": "invoice"}'
    assert rows[0]["agent_notes"] == "'=HYPERLINK(\"x\")"  # not a formula in a spreadsheet
    assert rows[1]["ivr_path"] == "menu > queue:sales" and rows[1]["answered_at"] == ""
    admin_csv = reports.get(f"/api/reports/cdrs?{WINDOW}&format=csv").text
    assert "+4930111222" in admin_csv  # a phone number is not mangled


def test_cdr_filters_and_paging(reports: Reports) -> None:
    def ids(query: str) -> list[str]:
        body = reports.get(f"/api/reports/cdrs?{WINDOW}&{query}").json()
        return [c["call_id"] for c in body["cdrs"]]

    assert ids("queue=sales") == ["sip-2"]
    assert ids("agent=1001&disposition=answered") == ["sip-1"]
    assert ids("agent_disposition=resolved") == ["sip-1"]
    assert ids("limit=1&offset=1") == ["sip-2"]
    assert ids("from=2026-12-04T09:30") == ["sip-2"]  # call records use the exact time
    assert reports.flushes.count == 0  # call records do not need the statistics


@pytest.mark.parametrize(("query", "message"), [
    ("interval=week", "'interval' must be one of 15m, hour, day, total"),
    ("from=04.12.2026", "'from' is not an ISO 8601"),
    ("from=2026-12-05&to=2026-12-04", "must be before 'to'"),
    ("form=csv", "unknown parameter 'form'"),
    ("format=xml", "'format' must be csv or json"),
    ("queue=%00", "'queue' must be 1..64 printable characters"),
])
def test_bad_report_parameters(reports: Reports, query: str, message: str) -> None:
    response = reports.get(f"/api/reports/queues?{query}")
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize(("query", "message"), [
    ("limit=0", "'limit' must be an integer 1..10000"),
    ("limit=20000", "'limit' must be an integer 1..10000"),
    ("offset=-1", "'offset' must be an integer"),
    ("interval=hour", "unknown parameter 'interval'"),
    ("to=never", "'to' is not an ISO 8601"),
    ("queue=a&queue=b", "give 'queue' once"),
])
def test_bad_cdr_parameters(reports: Reports, query: str, message: str) -> None:
    response = reports.get(f"/api/reports/cdrs?{query}")
    assert response.status_code == 400 and message in response.json()["error"]


def test_empty_reports_still_have_their_columns(reports: Reports) -> None:
    empty = "from=2026-11-01&to=2026-11-02&format=csv"
    queues = reports.get(f"/api/reports/queues?{empty}").text.splitlines()
    assert queues[0].split(",")[:5] == ["period_start", "period_end", "queue", "offered",
                                        "answered"] and len(queues) == 1
    agents = reports.get(f"/api/reports/agents?{empty}").text.splitlines()
    assert "occupancy" in agents[0] and len(agents) == 1
    assert reports.get(f"/api/reports/agents?{empty[:-11]}").json()["agents"] == []


@pytest.mark.parametrize(("value", "cell"), [
    ("+4930123456", "+4930123456"), ("-5", "-5"), ("=1+2", "'=1+2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"), ("\tx", "'\tx"),
    ("plain", "plain"), (None, ""), (12.5, "12.5"),
])
def test_csv_cells_never_run_as_formulas(value: object, cell: str) -> None:
    assert csv_cell(value) == cell
