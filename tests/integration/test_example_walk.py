"""Every path through the shipped example's IVR flow `hotline` (config/pbx.yaml), walked live
through `pbx run` to the effect a caller or agent notices: the language from the DID or the
language menu, business hours (open, closed, holiday), callers known by their number (the
standard one straight to the queue, gold and VIP to their pinned agent first), unknown callers
through the concern menu and the customer-number collect (read-back and confirm, not found,
invalid keys and silence sending them to the operator), the operator transfer to 1009, and the
flow's skills choosing the agent (contract; English technical support).

The carrier is SIPp (keys as RFC 4733 events at scripted times) or an unregistered pjsua2 phone
(a call from 127.0.0.1 is a carrier call); agents are pjsua2 phones registered with the
passwords of config/pbx.yaml that answer automatically. One PBX serves the whole module; each
test waits until the agents it needs are free and unregistered first, so the order of the tests
does not matter.
"""

from __future__ import annotations

import copy
import time
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.integration.carrier_sipp import Pause, Press, carrier_scenario
from tests.integration.live_calls import agent_phone, carrier_call
from tests.integration.pbx_harness import RunningPbx, start_pbx
from tests.integration.sipp import SippResult, run_sipp
from tests.integration.test_cti_live import post
from tests.support.softphone import Softphone, SoftphonePool, exchange_tones

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "config" / "pbx.yaml").read_text())
DOMAIN = EXAMPLE["sip"]["domain"]
PASSWORDS = {a["extension"]: a["password"] for a in EXAMPLE["agents"]}
BERLIN = ZoneInfo("Europe/Berlin")

DID_DE, DID_EN, DID_MENU = "+4930123456", "+4930123457", "+4930123458"
STANDARD = "+4915112345678"  # customer 100001, standard
GOLD = "+493088776655"  # customer 100002, gold, pinned 1001
VIP = "+4940123987"  # customer 100004, vip, pinned 1002 then 1001
ENGLISH = "+442079460000"  # customer 100003, John Smith, standard, English


# --- configuration --------------------------------------------------------------------------
# The test cannot set the PBX's clock, and the shipped schedule (Mon-Fri 08:00-18:00 Berlin,
# holidays) is open or closed depending on when the suite runs. So each PBX gets the example
# unchanged except for the data of the schedule `hotline`: open around the clock for the shared
# PBX, hours that exclude now for the closed path, and today (Berlin) as a holiday for the
# holiday path. "24:00" (allowed by the schema) leaves no closed minute before midnight.

def example_config(hours: list[dict[str, str]], holidays: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(EXAMPLE)
    schedule = config["flows"]["hotline"]["schedules"]["hotline"]
    schedule["hours"] = hours
    schedule["holidays"] = holidays
    return config


ALWAYS = [{"days": "mon-sun", "start": "00:00", "end": "24:00"}]


def shipped_holidays_except_today() -> list[str]:
    today = datetime.now(BERLIN).date()
    days = {today, today + timedelta(days=1)}
    return [h for h in EXAMPLE["flows"]["hotline"]["schedules"]["hotline"]["holidays"]
            if str(h) not in {d.isoformat() for d in days}
            and str(h) not in {d.strftime("%m-%d") for d in days}]


@pytest.fixture(scope="module")
def hotline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPbx]:
    config = example_config(ALWAYS, shipped_holidays_except_today())
    running = start_pbx(tmp_path_factory.mktemp("hotline") / "pbx", config)
    try:
        yield running
    finally:
        running.stop()


# --- helpers --------------------------------------------------------------------------------

def cdr_ids(pbx: RunningPbx) -> set[str]:
    return {c["call_id"] for c in pbx.get("/api/cdrs?limit=1000")["cdrs"]}


def new_cdr(pbx: RunningPbx, before: set[str], caller: str, timeout: float = 30.0
            ) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for cdr in pbx.get("/api/cdrs?limit=1000")["cdrs"]:
            if cdr["call_id"] not in before and cdr["caller"] == caller:
                return dict(cdr)
        return None
    found: dict[str, Any] = pbx.wait_until(find, timeout, f"the CDR of {caller}")
    return found


def agent_state(pbx: RunningPbx, ext: str) -> str:
    (row,) = [a for a in pbx.stats()["agents"] if a["agent"] == ext]
    return str(row["state"])


def agents_ready(pbx: RunningPbx, *exts: str) -> None:
    """No phone registered (a previous test's phones are gone) and `exts` out of wrap-up."""
    pbx.wait_until(lambda: pbx.stats()["bindings"] == 0, 30, "no registered phones")
    for ext in exts:
        pbx.wait_until(lambda e=ext: agent_state(pbx, e) == "available", 40,
                       f"agent {ext} available")


def register_agent(phones: SoftphonePool, pbx: RunningPbx, ext: str) -> Softphone:
    return agent_phone(phones, pbx, ext, PASSWORDS[ext])


def phone_caller(phones: SoftphonePool, pbx: RunningPbx, number: str, did: str
                 ) -> tuple[Softphone, int]:
    """An unregistered pjsua2 phone on 127.0.0.1: the PBX takes it for the carrier."""
    return carrier_call(phones, pbx, "caller", number, did)


def sipp_call(pbx: RunningPbx, workdir: Path, caller: str, did: str,
              steps: list[Press | Pause], end: str = "bye", timeout: int = 90,
              bye_timeout_ms: int = 30000) -> Future[SippResult]:
    """SIPp as the carrier, in the background: the test watches the agents meanwhile."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = carrier_scenario(workdir / "carrier.xml", steps, end=end,
                                bye_timeout_ms=bye_timeout_ms)
    executor = ThreadPoolExecutor(max_workers=1)
    future = executor.submit(run_sipp, workdir, str(scenario), pbx.sip_port, calls=1, rate=1,
                             keys={"caller": caller}, timeout=timeout,
                             extra=["-s", did, "-mi", "127.0.0.1"])
    executor.shutdown(wait=False)
    return future


def walked(pbx: RunningPbx, workdir: Path, caller: str, did: str,
           steps: list[Press | Pause], end: str = "bye", timeout: int = 90
           ) -> dict[str, Any]:
    """Place one SIPp carrier call to the end and return its CDR."""
    before = cdr_ids(pbx)
    result = sipp_call(pbx, workdir, caller, did, steps, end, timeout).result(timeout + 60)
    assert result.successful == 1, str(result)
    return new_cdr(pbx, before, caller)


def follows(path: list[str], *nodes: str) -> bool:
    """`nodes` appear in `path` one right after the other."""
    n = len(nodes)
    return any(tuple(path[i:i + n]) == nodes for i in range(len(path) - n + 1))


def prompt_seconds(*names: str) -> float:
    total = 0.0
    for name in names:
        with wave.open(str(ROOT / "prompts" / f"{name}.wav")) as w:
            total += w.getnframes() / w.getframerate()
    return total


def freshen(pbx: RunningPbx, ext: str) -> None:
    """Pause and resume `ext` (as the agent would at the desk): the seat is now the one idle
    the shortest, so `longest_idle` alone would offer a call to everyone else first."""
    session = post(pbx, "/api/cti/login", {"extension": ext, "password": PASSWORDS[ext]})
    post(pbx, f"/api/cti/agents/{ext}/pause", {"reason": "break"}, session)
    pbx.wait_until(lambda: agent_state(pbx, ext) == "paused", 10, f"{ext} paused")
    time.sleep(0.2)  # idle_since strictly after the others'
    post(pbx, f"/api/cti/agents/{ext}/ready", {}, session)
    pbx.wait_until(lambda: agent_state(pbx, ext) == "available", 10, f"{ext} available")


def answered_by(agent: Softphone, others: list[Softphone], timeout: float = 45.0) -> int:
    """`agent` rings (and answers); none of `others` rang meanwhile."""
    call = int(agent.wait_for("incoming", timeout=timeout)["call"])
    agent.wait_for("state", call=call, state="CONFIRMED", timeout=15)
    for other in others:
        other.assert_no_event("incoming", within=0.5)
    return call


# --- language: from the DID or the language menu --------------------------------------------

@pytest.mark.parametrize(
    ("did", "steps", "language", "head"),
    [
        pytest.param(DID_DE, [Pause(4000)], "de",
                     ["language_check", "german", "greeting"], id="did-de"),
        pytest.param(DID_EN, [Pause(4000)], "en",
                     ["language_check", "english", "greeting"], id="did-en"),
        pytest.param(DID_MENU, [Pause(1500), Press("1"), Pause(4000)], "de",
                     ["language_check", "language_menu", "german", "greeting"],
                     id="menu-key1-german"),
        pytest.param(DID_MENU, [Pause(1500), Press("2"), Pause(4000)], "en",
                     ["language_check", "language_menu", "english", "greeting"],
                     id="menu-key2-english"),
        # No key: the menu (4.4 s) and its 4 s timeout, once more (max_retries 1), then German.
        pytest.param(DID_MENU, [Pause(22000)], "de",
                     ["language_check", "language_menu", "german", "greeting"],
                     id="menu-timeout-german"),
    ],
)
def test_language_comes_from_the_did_or_the_language_menu(
    hotline: RunningPbx, tmp_path: Path, did: str, steps: list[Press | Pause], language: str,
    head: list[str],
) -> None:
    cdr = walked(hotline, tmp_path, "+4917600000101", did, steps)
    path = cdr["ivr_path"]
    assert cdr["did"] == did
    assert path[:1 + len(head)] == ["flow:hotline", *head], path
    assert cdr["variables"]["language"] == language
    assert cdr["variables"]["language_skill"] == {"de": "german", "en": "english"}[language]
    # Open (the shared PBX's schedule is open around the clock): on to the caller lookup.
    assert follows(path, "greeting", "opening_hours", "identify", "concern"), path
    assert "closed" not in path


# --- business hours: closed and holiday -----------------------------------------------------

def closed_hours() -> list[dict[str, str]]:
    # Open only on the weekday three days from now: never today, never tomorrow (midnight).
    day = (datetime.now(BERLIN) + timedelta(days=3)).strftime("%a").lower()
    return [{"days": day, "start": "08:00", "end": "18:00"}]


def holiday_today() -> list[str]:
    today = datetime.now(BERLIN).date()
    return [*EXAMPLE["flows"]["hotline"]["schedules"]["hotline"]["holidays"],
            today.isoformat(), (today + timedelta(days=1)).isoformat()]


@pytest.mark.parametrize(
    ("did", "language", "config"),
    [
        pytest.param(DID_DE, "de", lambda: example_config(closed_hours(), []), id="closed-de"),
        pytest.param(DID_EN, "en", lambda: example_config(ALWAYS, holiday_today()),
                     id="holiday-en"),
    ],
)
def test_outside_business_hours_the_caller_hears_closed_and_goodbye_then_bye(
    tmp_path: Path, did: str, language: str, config: Callable[[], dict[str, Any]]
) -> None:
    pbx = start_pbx(tmp_path / "pbx", config())
    try:
        # The PBX must hang up: SIPp waits for its BYE (and answers it).
        cdr = walked(pbx, tmp_path, "+4917600000201", did, [], end="wait")
        path = cdr["ivr_path"]
        assert path == ["flow:hotline", "language_check",
                        {"de": "german", "en": "english"}[language], "greeting",
                        "opening_hours", "closed"], path
        assert cdr["hangup_cause"].startswith("pbx:"), cdr
        assert cdr["disposition"] == "completed", cdr
        # The BYE came after greeting, closed and goodbye had played to their end.
        spoken = prompt_seconds(f"{language}/greeting", f"{language}/closed",
                                f"{language}/goodbye")
        assert cdr["ended_at"] - cdr["answered_at"] >= spoken - 0.5, (spoken, cdr)
        assert not [e for e in pbx.logs() if e.get("event") == "prompt_failed"]
    finally:
        pbx.stop()


# --- callers known by their number ----------------------------------------------------------

def test_known_standard_caller_goes_to_the_queue_without_the_customer_number(
    hotline: RunningPbx, tmp_path: Path
) -> None:
    # Key 1 (billing) during the greeting; then nothing more is asked: the caller waits in
    # the billing queue (nobody registered) until they hang up.
    cdr = walked(hotline, tmp_path, STANDARD, DID_DE, [Pause(1500), Press("1"), Pause(6000)])
    path = cdr["ivr_path"]
    assert follows(path, "identify", "concern", "billing", "known_customer", "route",
                   "standard_queue", "queue:billing"), path
    assert "customer_number" not in path
    assert cdr["queue"] == "billing"
    assert cdr["variables"]["customer.customer_no"] == "100001"
    assert cdr["variables"]["customer.status"] == "standard"
    assert "customer_no" not in cdr["variables"]


@pytest.mark.parametrize(
    ("caller", "key", "queue", "expected", "other", "status", "node", "audio"),
    [
        # Gold, billing (longest_idle): 1001 is freshened so that the strategy alone would
        # offer 1003 first; the pin must ring 1001.
        pytest.param(GOLD, "1", "billing", "1001", "1003", "gold", "priority_queue", True,
                     id="gold-pinned-1001"),
        # The control: the same set-up for a standard caller rings 1003, so the gold case
        # above is decided by the pin, not by the strategy.
        pytest.param(STANDARD, "1", "billing", "1003", "1001", "standard", "standard_queue",
                     False, id="standard-control-1003"),
        # VIP, technical support: the first pinned agent 1002 (1004 also serves technik).
        pytest.param(VIP, "2", "technik", "1002", "1004", "vip", "priority_queue", False,
                     id="vip-pinned-1002"),
    ],
)
def test_priority_caller_rings_the_pinned_agent_first(
    hotline: RunningPbx, phones: SoftphonePool, tmp_path: Path, caller: str, key: str,
    queue: str, expected: str, other: str, status: str, node: str, audio: bool,
) -> None:
    pinned = {GOLD: "1001", VIP: "1002", STANDARD: "1001"}[caller]
    agents_ready(hotline, expected, other)
    freshen(hotline, pinned)
    expected_phone = register_agent(phones, hotline, expected)
    other_phone = register_agent(phones, hotline, other)
    before = cdr_ids(hotline)
    customer, call = phone_caller(phones, hotline, caller, DID_DE)
    customer.send_dtmf(call, key)
    ringing = answered_by(expected_phone, [other_phone])
    assert caller in expected_phone.events("incoming", call=ringing)[0]["from"]
    if audio:
        exchange_tones(customer, call, expected_phone, ringing, tmp_path, 700, 1300)
    customer.hangup(call)
    expected_phone.wait_for("disconnected", call=ringing, timeout=15)
    cdr = new_cdr(hotline, before, caller)
    path = cdr["ivr_path"]
    assert follows(path, "known_customer", "route", node, f"queue:{queue}"), path
    assert "customer_number" not in path
    assert cdr["agent"] == expected and cdr["queue"] == queue
    assert cdr["disposition"] == "answered"
    assert cdr["variables"]["customer.status"] == status


# --- unknown callers: the customer number ---------------------------------------------------

UNKNOWN = "+4917600000301"


@pytest.mark.parametrize(
    ("number", "at_read_back", "found"),
    [
        pytest.param("100001", "", True, id="digits-hash-confirm"),
        # Two wrong keys at the read-back, then 1: within max_retries (2) only if the "#"
        # after the six digits was not counted as an invalid entry as well.
        pytest.param("100001", "99", True, id="hash-costs-no-retry"),
        pytest.param("999999", "", False, id="not-found-still-routed"),
    ],
)
def test_unknown_caller_enters_the_customer_number(
    hotline: RunningPbx, tmp_path: Path, number: str, at_read_back: str, found: bool
) -> None:
    steps: list[Press | Pause] = [Pause(1500), Press("1"),  # billing, during the greeting
                                  Pause(2000), Press(number + "#"),  # during the prompt
                                  Pause(2000)]
    for key in at_read_back:
        steps += [Press(key), Pause(2000)]
    steps += [Press("1"), Pause(10000)]  # confirm; (not found: a prompt;) then the queue
    cdr = walked(hotline, tmp_path, UNKNOWN, DID_DE, steps)
    path = cdr["ivr_path"]
    variables = cdr["variables"]
    assert path.count("customer_number") == 1, path
    assert follows(path, "concern", "billing", "known_customer", "customer_number",
                   "lookup_number"), path
    assert variables["customer_no"] == number
    if found:
        assert follows(path, "lookup_number", "route", "standard_queue", "queue:billing"), path
        assert variables["customer.customer_no"] == number
    else:
        assert follows(path, "lookup_number", "not_found", "route", "standard_queue",
                       "queue:billing"), path
        assert "customer.customer_no" not in variables
    assert cdr["queue"] == "billing"


# --- unknown callers: the concern menu to the operator --------------------------------------

@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("keys", "audio"),
    [
        pytest.param("0", True, id="key0"),
        pytest.param("999", False, id="three-invalid-keys"),
        # Silence: the menu (13 s) and 6 s, three times (max_retries 2), ~70 s in all.
        pytest.param("", False, id="three-timeouts"),
    ],
)
def test_concern_menu_operator_rings_1009(
    hotline: RunningPbx, phones: SoftphonePool, tmp_path: Path, keys: str, audio: bool
) -> None:
    agents_ready(hotline, "1009")
    operator = register_agent(phones, hotline, "1009")
    before = cdr_ids(hotline)
    caller_number = "+4917600000401"
    customer, call = phone_caller(phones, hotline, caller_number, DID_DE)
    for index, key in enumerate(keys):
        if index:
            time.sleep(2.0)  # the next key barges into "invalid entry" + the menu
        customer.send_dtmf(call, key)
    ringing = answered_by(operator, [], timeout=120)
    if audio:
        exchange_tones(customer, call, operator, ringing, tmp_path, 900, 1500)
    customer.hangup(call)
    operator.wait_for("disconnected", call=ringing, timeout=15)
    cdr = new_cdr(hotline, before, caller_number)
    path = cdr["ivr_path"]
    assert follows(path, "identify", "concern", "operator", "agent:1009"), path
    assert not {"billing", "technik", "contract"} & set(path), path
    assert cdr["agent"] == "1009" and cdr["disposition"] == "answered"


# --- skills from the flow choose the agent --------------------------------------------------

def test_contract_reaches_an_agent_with_the_contract_skill(
    hotline: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    # first-level hunts linearly from 1001, who lacks `contract`; 1003 has it.
    agents_ready(hotline, "1001", "1003")
    without = register_agent(phones, hotline, "1001")
    with_skill = register_agent(phones, hotline, "1003")
    caller = "+4917600000501"
    before = cdr_ids(hotline)
    done = sipp_call(hotline, tmp_path, caller, DID_DE,
                     [Pause(1500), Press("3"), Pause(2000), Press("100005#"), Pause(2000),
                      Press("1"), Pause(15000)])
    answered_by(with_skill, [without])
    without.assert_no_event("incoming", within=3.0)
    result = done.result(120)
    assert result.successful == 1, str(result)
    cdr = new_cdr(hotline, before, caller)
    assert follows(cdr["ivr_path"], "concern", "contract", "known_customer", "customer_number",
                   "lookup_number", "route", "standard_queue", "queue:first-level"), cdr
    assert cdr["agent"] == "1003" and cdr["queue"] == "first-level"
    assert cdr["variables"]["concern"] == "contract"


def test_english_caller_on_technik_gets_an_english_speaking_technician(
    hotline: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    # technik rings progressively from 1002; 1002 and 1004 lack `english`, 1006 has both.
    agents_ready(hotline, "1002", "1004", "1006")
    german_only = [register_agent(phones, hotline, ext) for ext in ("1002", "1004")]
    english = register_agent(phones, hotline, "1006")
    before = cdr_ids(hotline)
    done = sipp_call(hotline, tmp_path, ENGLISH, DID_EN, [Pause(1500), Press("2"), Pause(15000)])
    answered_by(english, german_only)
    for phone in german_only:
        phone.assert_no_event("incoming", within=1.5)
    result = done.result(120)
    assert result.successful == 1, str(result)
    cdr = new_cdr(hotline, before, ENGLISH)
    assert follows(cdr["ivr_path"], "english", "greeting", "opening_hours", "identify",
                   "concern", "technik", "known_customer", "route", "standard_queue",
                   "queue:technik"), cdr
    assert cdr["agent"] == "1006" and cdr["queue"] == "technik"
    assert cdr["variables"]["language_skill"] == "english"


# --- agent statistics seen on the way -------------------------------------------------------

def test_agent_time_by_state_is_bounded_by_the_uptime(hotline: RunningPbx) -> None:
    # Seen while walking the flow: /api/stats reported every agent ~1.8e9 s "logged_out" (the
    # time since 1970): the first state change added `now - since` with `since` = 0.
    stats = hotline.stats()
    for row in stats["agents"]:
        total = sum(row["time_by_state"].values())
        assert total <= stats["uptime_s"] + 5, (row["agent"], row["time_by_state"])
