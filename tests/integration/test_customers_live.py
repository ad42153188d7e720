"""Customers and lists on a running PBX (issue 13, points 2, 3 and 8), one PBX started twice:

- `pbx customers import` of a CSV file with good and bad rows: every bad row reported as
  FILE:LINE with the reason, the good ones stored (phones as E.164), a dry run stores nothing,
  a re-import changes nothing and duplicates nothing, a file larger than a request body goes
  in batches; `pbx customers export` reads back unchanged (CSV), and as JSON per group;
- the admin REST API (create/read/replace/patch/delete) for an admin's session or a token of
  scope ``customers``; no token 401, other scopes, agents and supervisors 403, a cookie without
  the CSRF header 403, bad values 422;
- `pbx dnc import|list|remove`, and a running preview campaign skips the number put on the
  list after it started;
- a campaign that targets nobody: a warning at load and in `pbx check-config` (which reads the
  database: a campaign of imported customers is no warning);
- `pbx agent pause|ready` seen in `pbx agents` and on the desk's API; `pbx call hangup` ends a
  live call: the caller (SIPp) gets the BYE;
- after a restart, the YAML seed has not overwritten the customers edited over the API and on
  an agent's desk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pbx_harness import REALM, RunningPbx, agent_entries, base_config, start_pbx
from tests.integration.sipp import SippResult, run_sipp, users_csv

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DID = "+4930123456"
CALLER = "+4917612345678"
CUSTOMERS_CSV = (
    "KdNr;Name;Telefon;Status;Gruppen;Betreuer;Vertrag;Notiz\n"
    "200001;Anna Alt;030 1234567;vip;stamm|herbst;1001;V-1;x\n"
    "200002;Bernd Bau;0170 7654321;;;;;\n"
    "200003;Carla Chaos;12ab;;;;;\n"  # line 4: not a phone number
    "200004;Dora Doppel;+4940111222;gold;;;;\n"  # line 5: no such status
    "200002;Bernd Again;;;;;;\n"  # line 6: customer number already on line 3
    ";Ohne Nummer;;;;;;\n"  # line 7: no customer number
    "200005;Emil Ende;+4989333444;;;1099;;\n"  # line 8: no agent 1099
    '200006;"Fritz\nZweizeilig";+49 (0)30 555666;;;;;\n'  # lines 9-10: good
)
MAPPING = ("customer_no=KdNr,name=Name,phones=Telefon,status=Status,groups=Gruppen,"
           "pinned_agents=Betreuer,fields.contract=Vertrag")


def pbx_cli(*args: str, token: Path | None = None, url: str = ""
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PBX_API_TOKEN": ""}
    extra = (["--url", url] if url else []) + (["--token-file", str(token)] if token else [])
    return subprocess.run([sys.executable, "-m", "pbx.cli", *args, *extra], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


def config(tokens_dir: Path) -> dict[str, Any]:
    agents = agent_entries(4)  # 1001 agent, 1002 supervisor, 1003 admin, 1004 agent
    agents[1]["role"] = "supervisor"
    agents[2]["role"] = "admin"
    cfg = base_config(agents)
    cfg["security"] = {"auth_algorithms": ["MD5"]}  # SIPp answers MD5 only
    cfg["customer_statuses"] = {"vip": {"priority": 10}}
    cfg["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 9,
                      "inbound_addresses": ["127.0.0.1/32"]}]
    cfg["dids"] = [{"number": DID, "flow": "wait", "language": "de"}]
    cfg["flows"] = {"wait": {"language": "de", "start": "menu", "nodes": {
        "menu": {"type": "menu", "prompt": "de/greeting", "options": {"1": "bye"},
                 "timeout_s": 30, "max_retries": 0, "on_failure": "bye"},
        "bye": {"type": "hangup"}}}}
    cfg["queues"] = [{"name": "outbound", "members": [{"agent": "1001"}]}]
    cfg["customers"] = [
        {"customer_no": "100001", "name": "Seed Name", "phones": ["+4930100001"]},
        {"customer_no": "700001", "name": "Kunde Eins", "phones": ["+4930700001"],
         "groups": ["kampagne"]},
        {"customer_no": "700002", "name": "Kunde Zwei", "phones": ["+4930700002"],
         "groups": ["kampagne"]},
    ]
    always = {"windows": [{"days": "mon-sun", "start": "00:00", "end": "23:59"}]}
    cfg["campaigns"] = [
        {"name": "herbst", "enabled": True, "mode": "preview", "caller_id": DID,
         "queue": "outbound", "target": {"groups": ["kampagne"]}, "calling_hours": always,
         "preview": {"timeout_s": 120}},
        {"name": "leer", "queue": "outbound", "caller_id": DID,
         "target": {"groups": ["niemand"]}, "calling_hours": always},
        {"name": "importiert", "queue": "outbound", "caller_id": DID,
         "target": {"groups": ["import2026"]}, "calling_hours": always},
    ]
    cfg["forms"] = {"default": {"fields": [
        {"name": "customer_no", "source": "customer.customer_no"},
        {"name": "notes", "source": "customer.fields.notes",
         "permissions": {"default": "read_write"}}]}}
    tokens = []
    for name, scopes in (("monitor", ["stats"]), ("lists", ["customers"]),
                         ("operator", ["control", "stats", "calls"])):
        path = tokens_dir / f"{name}.token"
        path.write_text(f"{name}-" + "t" * 30 + "\n")
        tokens.append({"name": name, "token_file": str(path), "scopes": scopes})
    cfg["http"] = {"api_tokens": tokens}
    return cfg


class Http:
    """JSON requests to the running PBX with given headers."""

    def __init__(self, pbx: RunningPbx) -> None:
        self.pbx = pbx

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/json"
        status, _, raw = self.pbx.request(method, path, sent, data)
        return status, (json.loads(raw) if raw else None)

    def login(self, extension: str) -> dict[str, str]:
        status, session = self.call("POST", "/api/cti/login",
                                    {"extension": extension, "password": f"pw{extension}x"})
        assert status == 200, session
        return {"Authorization": f"Bearer {session['token']}"} | {"_cookie": session["token"]}


def bearer(session: dict[str, str]) -> dict[str, str]:
    return {"Authorization": session["Authorization"]}


def test_customers_lists_and_control_on_a_running_pbx(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    cfg = config(tokens)
    pbx = start_pbx(tmp_path / "pbx", cfg)
    lists, monitor, operator = (tokens / f"{n}.token" for n in ("lists", "monitor", "operator"))
    http = Http(pbx)
    try:
        # --- a campaign that targets nobody is a warning at load (the others are not)
        nobody = pbx.wait_until(lambda: [e["campaign"] for e in pbx.logs()
                                         if e.get("event") == "campaign_targets_nobody"],
                                20, "the load warnings")
        assert sorted(nobody) == ["importiert", "leer"]

        # --- import with good and bad rows: dry run first, then for real, then again
        csv_file = tmp_path / "kunden.csv"
        csv_file.write_text(CUSTOMERS_CSV, encoding="utf-8")
        dry = pbx_cli("customers", "import", str(csv_file), "--map", MAPPING, "--group",
                      "import2026", "--dry-run", url=pbx.http, token=lists)
        assert dry.returncode == 2, dry.stderr
        assert "3 would be created, 0 would be updated" in dry.stdout
        assert "(dry run: nothing stored)" in dry.stdout and "ignored columns: Notiz" in dry.stdout
        bad = [line.split(":")[1] for line in dry.stderr.splitlines()]
        assert bad == ["4", "5", "6", "7", "8"], dry.stderr
        assert f"{csv_file}:4: 200003: '12ab' is not a phone number" in dry.stderr
        assert f"{csv_file}:5: 200004: status 'gold' is not configured" in dry.stderr
        assert f"{csv_file}:6: 200002: customer number already on line 3" in dry.stderr
        assert f"{csv_file}:7: no customer number" in dry.stderr
        assert f"{csv_file}:8: 200005: pinned agent '1099' is not a configured agent" \
            in dry.stderr
        assert [c["customer_no"] for c in pbx.get("/api/admin/customers")["customers"]] == [
            "100001", "700001", "700002"]  # the dry run stored nothing

        done = pbx_cli("customers", "import", str(csv_file), "--map", MAPPING, "--group",
                       "import2026", url=pbx.http, token=lists)
        assert done.returncode == 2 and "3 created, 0 updated, 0 unchanged, 5 rejected" \
            in done.stdout, done.stdout + done.stderr
        anna = pbx.get("/api/admin/customers/200001")
        assert anna == {"customer_no": "200001", "name": "Anna Alt", "phones": ["+49301234567"],
                        "status": "vip", "language": "", "groups": ["stamm", "herbst",
                                                                    "import2026"],
                        "pinned_agents": ["1001"], "fields": {"contract": "V-1"}}
        fritz = pbx.get("/api/admin/customers/200006")
        assert fritz["name"] == "Fritz Zweizeilig" and fritz["phones"] == ["+4930555666"]
        assert pbx.get("/api/admin/customers/200002")["phones"] == ["+491707654321"]

        # The campaign that targeted nobody at load takes the imported customers of its group.
        def contacts(name: str) -> int:
            return int(next(c for c in pbx.get("/api/campaigns")["campaigns"]
                            if c["campaign"] == name)["contacts"])
        assert pbx.wait_until(lambda: contacts("importiert") == 3, 15, "the new contacts")
        assert contacts("leer") == 0

        again = pbx_cli("customers", "import", str(csv_file), "--map", MAPPING, "--group",
                        "import2026", url=pbx.http, token=lists)
        assert "0 created, 0 updated, 3 unchanged, 5 rejected" in again.stdout, again.stdout
        assert len(pbx.get("/api/admin/customers")["customers"]) == 6  # no duplicates

        # --- export round trip (CSV), and JSON of one group
        exported = tmp_path / "export.csv"
        out = pbx_cli("customers", "export", "--output", str(exported), url=pbx.http,
                      token=lists)
        assert out.returncode == 0, out.stderr
        assert exported.read_text().splitlines()[0].startswith(
            "customer_no,name,phones,status,language,groups,pinned_agents,fields.contract")
        back = pbx_cli("customers", "import", str(exported), url=pbx.http, token=lists)
        assert back.returncode == 0, back.stderr
        assert "0 created, 0 updated, 6 unchanged, 0 rejected" in back.stdout
        group = pbx_cli("customers", "export", "--group", "herbst", "--format", "json",
                        url=pbx.http, token=lists)
        assert [c["customer_no"] for c in json.loads(group.stdout)["customers"]] == ["200001"]

        # --- a file larger than one request body goes in batches
        bulk = tmp_path / "bulk.csv"
        bulk.write_text("customer_no,name,phone,fields.notes\n" + "".join(
            f"B{n:05d},Kunde {n},030 7{n:06d},{'x' * 40}\n" for n in range(3000)))
        assert bulk.stat().st_size > 65536
        big = pbx_cli("customers", "import", str(bulk), "--group", "bulk", url=pbx.http,
                      token=lists)
        assert big.returncode == 0 and "3000 created" in big.stdout, big.stdout + big.stderr
        in_bulk = json.loads(pbx_cli("customers", "export", "--group", "bulk", "--format",
                                     "json", url=pbx.http, token=lists).stdout)["customers"]
        assert len(in_bulk) == 3000 and in_bulk[7]["phones"] == ["+49307000007"]

        # --- check-config reads the database: imported customers count, 'leer' still warns
        checked = tmp_path / "check.yaml"
        check_cfg = json.loads(json.dumps(cfg))
        check_cfg["pbx"]["data_dir"] = str(tmp_path / "pbx" / "data")
        checked.write_text(json.dumps(check_cfg))
        check = pbx_cli("check-config", str(checked))
        assert check.returncode == 0, check.stderr
        warnings = [line for line in check.stderr.splitlines() if "warning: campaign" in line]
        assert warnings == [f"{checked}: campaigns[1].target: warning: campaign 'leer' targets "
                            "nobody: no customer of the seed or the database matches it"]

        # --- REST: who may not
        record = {"customer_no": "300001", "name": "Rest Kunde", "phones": ["089 1234567"]}
        assert http.call("GET", "/api/admin/customers")[0] == 401
        assert http.call("POST", "/api/admin/customers", record)[0] == 401
        monitor_auth = {"Authorization": f"Bearer {monitor.read_text().strip()}"}
        status, answer = http.call("GET", "/api/admin/customers", headers=monitor_auth)
        assert status == 403 and "may not use 'customers'" in answer["error"]
        operator_auth = {"Authorization": f"Bearer {operator.read_text().strip()}"}
        assert http.call("DELETE", "/api/admin/customers/200001", headers=operator_auth)[0] \
            == 403
        agent, supervisor, admin = (http.login(ext) for ext in ("1001", "1002", "1003"))
        for session in (agent, supervisor):
            status, answer = http.call("POST", "/api/admin/customers", record, bearer(session))
            assert status == 403 and "admin's sessions" in answer["error"], answer
        cookie_only = {"Cookie": f"pbx_session={admin['_cookie']}"}
        status, answer = http.call("POST", "/api/admin/customers", record, cookie_only)
        assert status == 403 and "CSRF" in answer["error"], answer

        # --- REST: an admin's session creates, reads, replaces, patches, deletes
        status, created = http.call("POST", "/api/admin/customers", record, bearer(admin))
        assert status == 201 and created["phones"] == ["+49891234567"], created
        assert http.call("POST", "/api/admin/customers", record, bearer(admin))[0] == 409
        status, answer = http.call("POST", "/api/admin/customers",
                                   {"customer_no": "300002", "name": "X", "status": "platin"},
                                   bearer(admin))
        assert status == 422 and "status 'platin' is not configured" in answer["error"]
        status, replaced = http.call("PUT", "/api/admin/customers/300001",
                                     {"name": "Rest Kunde", "groups": ["rest"]}, bearer(admin))
        assert status == 200 and replaced["phones"] == [] and replaced["groups"] == ["rest"]
        status, patched = http.call("PATCH", "/api/admin/customers/300001",
                                    {"fields": {"note": "ruft an"}}, bearer(admin))
        assert status == 200 and patched["groups"] == ["rest"] \
            and patched["fields"] == {"note": "ruft an"}
        assert http.call("DELETE", "/api/admin/customers/300001", headers=bearer(admin))[0] \
            == 200
        assert http.call("GET", "/api/admin/customers/300001", headers=bearer(admin))[0] == 404
        # ... and two seeded customers are edited, over the API and on an agent's desk
        # (checked after the restart)
        status, _ = http.call("PATCH", "/api/admin/customers/100001", {"name": "Edited Name"},
                              pbx.api_headers)
        assert status == 200
        status, answer = http.call("PATCH", "/api/cti/customers/700002",
                                   {"values": {"notes": "bitte nicht vor 10 Uhr"}},
                                   bearer(agent))
        assert status == 200, answer

        # --- do-not-call list: import while the preview campaign waits for an agent
        dnc_file = tmp_path / "sperrliste.csv"
        dnc_file.write_text("Nummer;Grund\n030 700001;asked on the phone\n110;x\n"
                            "+49 40 999 888;\n")
        imported = pbx_cli("dnc", "import", str(dnc_file), url=pbx.http, token=lists)
        assert imported.returncode == 2, imported.stderr
        assert "2 added, 0 already listed, 1 rejected" in imported.stdout
        assert imported.stderr.startswith(f"{dnc_file}:3: 110: ")
        listed = json.loads(pbx_cli("dnc", "list", "--json", url=pbx.http, token=lists).stdout)
        assert {(e["number"], e["reason"]) for e in listed["dnc"]} == {
            ("+4930700001", "asked on the phone"), ("+4940999888", "import")}
        added = pbx_cli("dnc", "add", "110", "030 700099", "--reason", "Beschwerde",
                        url=pbx.http, token=lists)
        assert added.returncode == 2 and "1 added, 0 already listed, 1 rejected" in added.stdout
        assert added.stderr.startswith("argument 1: 110: "), added.stderr
        removed = pbx_cli("dnc", "remove", "040 999888", url=pbx.http, token=lists)
        assert removed.returncode == 0 and "+4940999888 removed" in removed.stdout
        gone = pbx_cli("dnc", "remove", "040 999888", url=pbx.http, token=lists)
        assert gone.returncode == 1 and "404" in gone.stderr
        # Agent 1001's phone registers: the campaign offers its customers; 700001's only
        # number went on the list after the campaign had loaded it.
        users = users_csv(tmp_path / "users.csv", [("1001", "pw1001x")])
        assert run_sipp(tmp_path / "reg", "register_auth.xml", pbx.sip_port, users,
                        keys={"domain": REALM, "expires": "300"}).successful == 1

        def herbst() -> dict[str, Any]:
            return next(c for c in pbx.get("/api/campaigns")["campaigns"]
                        if c["campaign"] == "herbst")
        states = pbx.wait_until(lambda: (s := herbst()["by_state"]).get("preview") and s,
                                20, "the preview")
        assert states == {"dnc": 1, "preview": 1}, states

        # --- agent control from the CLI, seen in `pbx agents` and on the desk's API
        paused = pbx_cli("agent", "pause", "1004", "--reason", "lunch", url=pbx.http,
                         token=operator)
        assert paused.returncode == 0 and paused.stdout.strip() == "agent 1004: paused (lunch)"
        agents = json.loads(pbx_cli("agents", "--json", url=pbx.http, token=operator).stdout)
        assert next(a for a in agents["agents"] if a["agent"] == "1004")["state"] == "paused"
        table = pbx_cli("agents", url=pbx.http, token=operator).stdout.splitlines()
        assert "paused (lunch)" in next(row for row in table if row.split()[:1] == ["1004"])
        _, desk = http.call("GET", "/api/cti/agents", headers=bearer(supervisor))
        seat = next(a for a in desk["agents"] if a["extension"] == "1004")
        assert (seat["state"], seat["reason"]) == ("paused", "lunch")
        ready = pbx_cli("agent", "ready", "1004", url=pbx.http, token=operator)
        assert ready.stdout.strip() == "agent 1004: available", ready.stderr
        twice = pbx_cli("agent", "ready", "1004", url=pbx.http, token=operator)
        assert twice.returncode == 1 and "409" in twice.stderr and "not paused" in twice.stderr
        assert pbx_cli("agent", "pause", "1004", url=pbx.http, token=lists).returncode == 1
        status, _ = http.call("POST", "/api/admin/agents/1004/pause", {}, bearer(agent))
        assert status == 403  # an agent's session may not
        status, answer = http.call("POST", "/api/admin/agents/1004/pause", {"reason": "training"},
                                   bearer(supervisor))
        assert status == 200 and answer["agent"]["state"] == "paused", answer

        # --- hang up a live call from the CLI: the caller gets the BYE
        assert pbx_cli("call", "hangup", "nope", url=pbx.http, token=operator).returncode == 1
        outcome: list[SippResult] = []
        caller = threading.Thread(target=lambda: outcome.append(run_sipp(
            tmp_path / "caller", "calls_carrier_wait_bye.xml", pbx.sip_port, calls=1, rate=1,
            keys={"caller": CALLER}, timeout=40, extra=["-s", DID])))
        caller.start()
        call_id = pbx.wait_until(lambda: [c["id"] for c in pbx.get("/api/calls")["calls"]],
                                 20, "the call")[0]
        started = time.monotonic()
        hung = pbx_cli("call", "hangup", call_id, url=pbx.http, token=operator)
        assert hung.returncode == 0, hung.stderr
        caller.join(40)
        assert outcome and outcome[0].successful == 1, outcome and str(outcome[0])
        assert time.monotonic() - started < 15  # not the menu's 30 s timeout
        cdr = pbx.wait_until(lambda: [c for c in pbx.get("/api/cdrs")["cdrs"]
                                      if c["call_id"] and c["caller"] == CALLER], 15, "CDR")[0]
        assert cdr["hangup_cause"].endswith("hung up by an administrator"), cdr
    finally:
        assert pbx.stop() == 0

    # --- restart: the seed inserts only what is missing and keeps the edit
    pbx = start_pbx(tmp_path / "pbx", cfg)
    try:
        assert pbx.get("/api/admin/customers/100001")["name"] == "Edited Name"
        assert pbx.get("/api/admin/customers/700001")["name"] == "Kunde Eins"
        assert pbx.get("/api/admin/customers/700002")["fields"] == {
            "notes": "bitte nicht vor 10 Uhr"}
        seeded = [e for e in pbx.logs() if e.get("event") == "customers_seeded"]
        assert (seeded[-1]["inserted"], seeded[-1]["kept_edited"]) == (0, 2), seeded
        numbers = {e["number"] for e in pbx.get("/api/admin/dnc")["dnc"]}
        assert numbers == {"+4930700001", "+4930700099"}
        quoted = urllib.parse.quote("+4930700001", safe="")
        assert pbx.request("DELETE", f"/api/admin/dnc/{quoted}")[0] == 401
    finally:
        pbx.stop()
