"""A check-config you can trust, and metrics by the conventions, against a real `pbx run`.

One PBX for the module. Its configuration names its prompts directory relatively
(``media.prompts_dir: sounds``, beside the file; the PBX starts in another directory), so every
prompt a caller hears proves the path was resolved against the configuration file. Two DIDs
run the same flow with schedules open around the clock whose holidays come from the
`holidays` package: one region where today is a public holiday (found at test time), one
where it is not; the first call goes to the closed branch, the second to the open one. One
call goes through a queue to an agent; then ``/metrics``, parsed by prometheus_client's own
parser, shows the per-queue counters and the wait, ring and talk histograms counting it.

Without a PBX: ``pbx check-config`` on an impossible date and a missing prompt prints
file:line errors (no traceback) and exits 1; on weak passwords and an empty queue it prints
warnings and exits 0; from any directory it reads the same files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import holidays
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pbx.starter import PROMPTS
from tests.integration.live_calls import agent_phone
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
QUEUE_DID, HOLIDAY_DID, WORKDAY_DID = "+4930300", "+4930301", "+4930302"
FEDERAL = ("DE", "AT", "CH", "ES", "IT", "US", "BR", "MX", "IN", "AU", "CA", "FR", "BE", "MY")


def midday_zone(now: datetime) -> tuple[str, date]:
    """A fixed-offset zone where it is about noon now (no midnight during the test), and
    today's date there."""
    offset = 12 - now.hour  # -11 .. +12 hours east of UTC
    name = "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return name, (now + timedelta(hours=offset)).date()


def regions_for(day: date) -> tuple[dict[str, str], dict[str, str]]:
    """(a region where `day` is a public holiday, one where it is not), as `holidays:`
    mappings; a subdivision's own holiday is preferred (it shows the subdivision counts)."""
    def has(country: str, subdivision: str | None) -> bool:
        return day in holidays.country_holidays(country, subdiv=subdivision, years=day.year)

    supported = holidays.list_supported_countries()
    for country in FEDERAL:
        if has(country, None):
            continue
        for subdivision in supported.get(country, ()):
            if has(country, subdivision):
                return ({"country": country, "subdivision": subdivision},
                        {"country": country})  # the rest of the country works that day
    holiday = [c for c in sorted(supported) if has(c, None)]
    workday = [c for c in ("DE", "US", "JP", "IL", *sorted(supported)) if c not in holiday]
    assert holiday and workday, f"{day}: a holiday everywhere or nowhere in the package"
    return {"country": holiday[0]}, {"country": workday[0]}


def schedule_flow(zone: str, region: dict[str, str]) -> dict[str, Any]:
    return {
        "start": "check",
        "schedules": {"hotline": {"timezone": zone,
                                  "hours": [{"days": "mon-sun", "start": "00:00",
                                             "end": "24:00"}],
                                  "holidays": region}},
        "nodes": {
            "check": {"type": "branch", "cases": [{"when": {"open": "hotline"},
                                                   "next": "open"}],
                      "default": "closed"},
            "open": {"type": "hangup", "prompt": "de/goodbye"},
            "closed": {"type": "hangup", "prompt": ["de/closed", "de/goodbye"]},
        },
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningPbx, dict[str, Any]]]:
    zone, today = midday_zone(datetime.now(UTC))
    closed_region, open_region = regions_for(today)
    config = base_config(agent_entries(2))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["media"] = {"prompts_dir": "sounds"}  # relative: beside pbx.yaml
    config["queues"] = [{"name": "support", "ring_timeout_s": 10, "wrap_up_s": 1,
                         "members": [{"agent": "1001"}]}]
    config["flows"] = {"on_holiday": schedule_flow(zone, closed_region),
                       "on_workday": schedule_flow(zone, open_region)}
    config["dids"] = [{"number": QUEUE_DID, "queue": "support"},
                      {"number": HOLIDAY_DID, "flow": "on_holiday"},
                      {"number": WORKDAY_DID, "flow": "on_workday"}]
    workdir = tmp_path_factory.mktemp("checkconfig") / "pbx"
    workdir.mkdir(parents=True)
    (workdir / "sounds").symlink_to(PROMPTS, target_is_directory=True)
    assert not (Path.cwd() / "sounds").exists()  # the PBX starts in the repository
    running = start_pbx(workdir, config)
    try:
        yield running, {"zone": zone, "today": today, "closed": closed_region,
                        "open": open_region}
    finally:
        running.stop()


def call_and_wait_for_hangup(phones: SoftphonePool, pbx: RunningPbx, name: str,
                             did: str) -> None:
    phone = phones.start(name)
    account = phone.add_account("+4917699999999", domain="127.0.0.1")
    call = phone.make_call(account, f"sip:{did}@127.0.0.1:{pbx.sip_port}")
    phone.wait_for("state", call=call, state="CONFIRMED", timeout=20)
    phone.wait_for("disconnected", call=call, timeout=30)  # the PBX hangs up after the prompt


def cdr_for(pbx: RunningPbx, did: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next((c for c in pbx.get("/api/cdrs")["cdrs"] if c.get("did") == did), None)

    found: dict[str, Any] = pbx.wait_until(find, 20, f"the CDR of {did}")
    return found


def test_a_public_holiday_from_the_package_closes_the_schedule(
        live: tuple[RunningPbx, dict[str, Any]], phones: SoftphonePool) -> None:
    pbx, facts = live
    call_and_wait_for_hangup(phones, pbx, "holiday", HOLIDAY_DID)
    call_and_wait_for_hangup(phones, pbx, "workday", WORKDAY_DID)
    closed, opened = cdr_for(pbx, HOLIDAY_DID), cdr_for(pbx, WORKDAY_DID)
    assert "closed" in closed["ivr_path"] and "open" not in closed["ivr_path"], (closed, facts)
    assert "open" in opened["ivr_path"] and "closed" not in opened["ivr_path"], (opened, facts)
    # the prompts were found in "sounds" beside the configuration, not in the PBX's cwd
    failed = [e for e in pbx.logs() if e.get("event") in ("prompt_failed", "call_failed")]
    assert not failed, failed


def metric_samples(pbx: RunningPbx) -> dict[str, list[Any]]:
    text = pbx.request("GET", "/metrics", pbx.api_headers)[2].decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}  # validates it
    return {name: family.samples for name, family in families.items()} | {
        "__types__": [(name, family.type) for name, family in families.items()]}


def sample(samples: dict[str, list[Any]], family: str, name: str, **labels: str) -> float:
    values = [s.value for s in samples[family]
              if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(values) == 1, (family, name, labels, samples.get(family))
    return float(values[0])


def test_metrics_count_a_queued_call_in_counters_and_histograms(
        live: tuple[RunningPbx, dict[str, Any]], phones: SoftphonePool) -> None:
    pbx, _ = live
    agent = agent_phone(phones, pbx, "1001")
    caller = phones.start("queued")
    account = caller.add_account("+4917688888888", domain="127.0.0.1")
    call = caller.make_call(account, f"sip:{QUEUE_DID}@127.0.0.1:{pbx.sip_port}")
    rung = agent.wait_for("incoming", timeout=20)
    agent.wait_for("state", call=rung["call"], state="CONFIRMED", timeout=15)
    caller.wait_for("state", call=call, state="CONFIRMED", timeout=15)
    time.sleep(1.0)  # talk
    caller.hangup(call)
    agent.wait_for("disconnected", call=rung["call"], timeout=15)

    def talked() -> dict[str, list[Any]] | None:
        samples = metric_samples(pbx)
        counts = [s for s in samples.get("pbx_queue_talk_seconds", [])
                  if s.name == "pbx_queue_talk_seconds_count"]
        return samples if counts else None

    samples = pbx.wait_until(talked, 15, "the talk time in /metrics")
    types = dict(samples["__types__"])
    assert types["pbx_queue_wait_seconds"] == types["pbx_queue_ring_seconds"] == "histogram"
    assert types["pbx_queue_calls_answered"] == "counter"
    assert sample(samples, "pbx_queue_calls_offered", "pbx_queue_calls_offered_total",
                  queue="support") == 1
    assert sample(samples, "pbx_queue_calls_answered", "pbx_queue_calls_answered_total",
                  queue="support") == 1
    assert sample(samples, "pbx_queue_calls_abandoned", "pbx_queue_calls_abandoned_total",
                  queue="support") == 0
    assert sample(samples, "pbx_queue_service_level_ratio", "pbx_queue_service_level_ratio",
                  queue="support") == 1.0
    for family, outcome in (("pbx_queue_wait_seconds", "answered"),
                            ("pbx_queue_ring_seconds", "answered")):
        assert sample(samples, family, f"{family}_count", queue="support",
                      outcome=outcome) == 1
        assert sample(samples, family, f"{family}_bucket", queue="support", outcome=outcome,
                      le="+Inf") == 1
    ring = sample(samples, "pbx_queue_ring_seconds", "pbx_queue_ring_seconds_sum",
                  queue="support", outcome="answered")
    assert 0.2 < ring < 10  # the phone auto-answers after 0.3 s
    talk = sample(samples, "pbx_queue_talk_seconds", "pbx_queue_talk_seconds_sum",
                  queue="support")
    assert 0.8 < talk < 15
    # the switchboard's counters: one name each, so no sum over labels double-counts
    offered = sample(samples, "pbx_calls_offered", "pbx_calls_offered_total")
    answered = sample(samples, "pbx_calls_answered", "pbx_calls_answered_total")
    assert offered >= answered >= 1
    assert sample(samples, "pbx_rtp_received_bytes", "pbx_rtp_received_bytes_total") > 1000
    assert sample(samples, "process_resident_memory_bytes", "process_resident_memory_bytes") > 0
    assert [s.labels["version"] for s in samples["pbx_build_info"]] == ["0.1.0"]
    assert all(not name.endswith("_total") or kind == "counter"
               for name, kind in samples["__types__"])


# --- pbx check-config without a PBX --------------------------------------------------------


def check_config(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this worktree's pbx, from any directory
    return subprocess.run([sys.executable, "-m", "pbx.cli", "check-config", str(path)],
                          cwd=cwd, capture_output=True, text=True, timeout=60, env=env,
                          check=False)


def test_check_config_errors_warnings_and_paths(tmp_path: Path) -> None:
    site = tmp_path / "etc"
    site.mkdir()
    (site / "sounds").symlink_to(PROMPTS, target_is_directory=True)
    head = ('sip: {domain: hotline.example}\n'
            'media: {prompts_dir: sounds}\n'
            'agents:\n'
            '  - {extension: "1001", name: Anna, password: "1001"}\n')
    bad = site / "bad.yaml"
    bad.write_text(head + "flows:\n  main:\n    start: x\n    schedules:\n"
                   "      s:\n        hours: [{start: '08:00', end: '18:00'}]\n"
                   "        holidays: [2026-02-30]\n"
                   "    nodes:\n      x: {type: hangup, prompt: de/closd}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = check_config(bad, elsewhere)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{bad}:11: flows.main.schedules.s.holidays[0]: '2026-02-30' is not a date" \
        in done.stderr
    # the file's structure is checked first; with it fixed, the prompt is checked
    typo = site / "typo.yaml"
    typo.write_text(bad.read_text().replace("2026-02-30", "2026-02-28"))
    done = check_config(typo, elsewhere)
    assert done.returncode == 1
    assert done.stderr == (f"{typo}:13: flows.main.nodes.x.prompt[0]: missing prompt de/closd; "
                           "did you mean 'de/closed'?\n")

    warned = site / "warned.yaml"
    warned.write_text(head + "queues: [{name: nobody}]\n")
    done = check_config(warned, elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"{warned}:4: agents[0].password: warning: weak SIP password: it is the extension "
        "itself; scanners guess such passwords and place calls on your trunk",
        f"{warned}:5: queues[0].members: warning: queue 'nobody' has no members: its "
        "callers wait for nobody",
    ]
    assert f"prompts: {site / 'sounds'}" in done.stdout
    assert f"database: sqlite:///{site / 'var' / 'pbx.db'}" in done.stdout
    assert check_config(Path("etc") / "warned.yaml", tmp_path).stdout == done.stdout

    missing = site / "missing.yaml"
    missing.write_text(head.replace("sounds", "no-such-dir"))
    done = check_config(missing, elsewhere)
    assert done.returncode == 1
    assert done.stderr == (f"{missing}:2: media.prompts_dir: the prompts directory "
                           f"{site / 'no-such-dir'} does not exist\n")
