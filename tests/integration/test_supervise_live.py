"""A supervisor listens in, whispers and barges into a live call, with the audio measured.

One PBX, three pjsua2 phones: a caller from the carrier side plays 440 Hz, the agent who takes
the call from the queue plays 1000 Hz, the supervisor's phone plays 1700 Hz. Over the CTI
API the supervisor orders listen, then whisper, then barge on the same leg; each time all
three phones record what they hear and the tones are measured: listen — the supervisor hears
caller and agent, nobody hears the supervisor; whisper — the agent hears the supervisor, the
caller does not; barge — both do. The supervisor hanging up leaves the call up; the call ending
hangs up the supervisor. Before that, the refusals: no session 401, an API token 403, an agent
403, the session cookie without the CSRF header 403, a supervisor whose phone is not
registered 409, a bad mode 422. The queue log holds the
audit (monitor_ring, monitor_start, monitor_mode, monitor_stop with who and which mode).
At the end the supervisor forces the agent into a pause and logs them out (logged with who).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.integration.live_calls import agent_phone, carrier_call
from tests.integration.pbx_harness import RunningPbx, base_config, start_pbx
from tests.support.audio import read_wav, tone_share
from tests.support.softphone import Softphone, SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DID = "+4930400"
CALLER = "+4917698765432"
CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 440.0, 1000.0, 1700.0
HEARD, UNHEARD = 0.05, 0.01  # share of the recorded power near the tone


def supervise_config() -> dict[str, Any]:
    config = base_config([
        {"extension": "1001", "name": "Agentin Meier", "password": "pw1001x"},
        {"extension": "2001", "name": "Frau Schulz", "password": "pw2001x",
         "role": "supervisor"},
        {"extension": "2002", "name": "Herr Wagner", "password": "pw2002x",
         "role": "supervisor"},
    ])
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [{"name": "support", "ring_timeout_s": 10, "wrap_up_s": 1,
                         "members": [{"agent": "1001"}]}]
    config["dids"] = [{"number": DID, "queue": "support"}]
    # media in two worker processes: the supervisor's session must join the call's worker
    # (the wallboard's browser test runs the in-process engine)
    config["media"] = {"workers": 2}
    return config


def api(pbx: RunningPbx, method: str, path: str, session: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        ) -> tuple[int, dict[str, Any]]:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if session:
        sent |= {"Authorization": f"Bearer {session['token']}",
                 session["csrf_header"]: session["csrf_token"]}
    status, _, data = pbx.request(method, path, sent,
                                  json.dumps(body).encode() if body is not None else None)
    return status, json.loads(data or b"{}")


def login(pbx: RunningPbx, extension: str) -> dict[str, Any]:
    status, session = api(pbx, "POST", "/api/cti/login",
                          body={"extension": extension, "password": f"pw{extension}x"})
    assert status == 200, session
    return session


def hears(phones: list[tuple[Softphone, int]], path: Path) -> list[dict[float, float]]:
    """Record 1.5 s at every phone at once; each one's share of the three tones."""
    for index, (phone, call) in enumerate(phones):
        phone.record(call, str(path / f"{index}.wav"))
    phones[0][0].assert_no_event("disconnected", within=1.5)
    out = []
    for index, (phone, call) in enumerate(phones):
        phone.stop_record(call)
        samples, rate = read_wav(path / f"{index}.wav")
        part = samples[int(0.3 * rate):]  # what the mixer had queued before the change
        out.append({hz: tone_share(part, rate, hz)
                    for hz in (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)})
    return out


def order(pbx: RunningPbx, session: dict[str, Any], call_id: str, mode: str) -> None:
    status, answer = api(pbx, "POST", f"/api/cti/calls/{call_id}/monitor", session,
                         {"mode": mode})
    assert status == 202, answer


def audit(pbx: RunningPbx) -> list[tuple[str, str, dict[str, Any]]]:
    with sqlite3.connect(pbx.workdir / "data" / "pbx.db") as db:
        rows = db.execute("SELECT event, agent, data FROM queue_log WHERE event LIKE "
                          "'monitor%' ORDER BY id").fetchall()
    return [(event, agent, json.loads(data)) for event, agent, data in rows]


def state_of(pbx: RunningPbx, session: dict[str, Any], extension: str) -> str:
    agents = api(pbx, "GET", "/api/cti/agents", session)[1]["agents"]
    return str(next(a["state"] for a in agents if a["extension"] == extension))


def test_listen_whisper_barge_measured_and_refused_to_the_wrong_people(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    pbx = start_pbx(tmp_path / "pbx", supervise_config())
    try:
        agent = agent_phone(phones, pbx, "1001")
        supervisor = agent_phone(phones, pbx, "2001", name="supervisor2001")
        caller, call = carrier_call(phones, pbx, "caller", CALLER, DID)
        agent_call = agent.wait_for("incoming", timeout=20)["call"]
        agent.wait_for("media_active", call=agent_call, timeout=15)
        caller.play_tone(call, CALLER_HZ)
        agent.play_tone(agent_call, AGENT_HZ)
        boss = login(pbx, "2001")
        (talking,) = pbx.wait_until(
            lambda: [c for c in api(pbx, "GET", "/api/cti/calls", boss)[1]["calls"]
                     if c["state"] == "connected"], 15, "the connected call")
        call_id = talking["call_id"]
        path = f"/api/cti/calls/{call_id}/monitor"

        # Who may not: no session, an API token, an agent, a supervisor without a phone.
        assert api(pbx, "POST", path, body={"mode": "listen"})[0] == 401
        status, answer = api(pbx, "POST", path, body={"mode": "listen"},
                             headers=pbx.api_headers)
        assert status == 403, answer
        status, answer = api(pbx, "POST", path, login(pbx, "1001"), {"mode": "listen"})
        assert status == 403 and "supervisors" in answer["error"], answer
        status, answer = api(pbx, "POST", path, login(pbx, "2002"), {"mode": "listen"})
        assert status == 409 and "not registered" in answer["error"], answer
        status, answer = api(pbx, "POST", path, body={"mode": "listen"},
                             headers={"Cookie": f"pbx_session={boss['token']}"})
        assert status == 403 and "CSRF" in answer["error"], answer  # a cross-site request
        status, answer = api(pbx, "POST", path, boss, {"mode": "spy"})
        assert status == 422, answer
        assert api(pbx, "DELETE", path, boss)[0] == 409  # nobody listens in yet
        assert api(pbx, "POST", "/api/cti/calls/nope/monitor", boss, {"mode": "listen"}
                   )[0] == 404

        # Listen: the supervisor's phone rings; they hear both, nobody hears them.
        order(pbx, boss, call_id, "listen")
        rung = supervisor.wait_for("incoming", timeout=15)
        assert "1001" in rung["from"]  # the phone shows whose call it is
        sup_call = rung["call"]
        supervisor.wait_for("media_active", call=sup_call, timeout=15)
        supervisor.play_tone(sup_call, SUPERVISOR_HZ)
        parties = [(caller, call), (agent, agent_call), (supervisor, sup_call)]
        pbx.wait_until(lambda: [e for e in audit(pbx) if e[0] == "monitor_start"], 10,
                       "the monitor to start")
        at_caller, at_agent, at_supervisor = hears(parties, tmp_path)
        assert at_supervisor[CALLER_HZ] > HEARD and at_supervisor[AGENT_HZ] > HEARD, \
            at_supervisor
        assert at_caller[SUPERVISOR_HZ] < UNHEARD and at_agent[SUPERVISOR_HZ] < UNHEARD, \
            (at_caller, at_agent)
        assert at_caller[AGENT_HZ] > HEARD and at_agent[CALLER_HZ] > HEARD  # still talking

        # Whisper: on the same leg, only the agent hears the supervisor.
        order(pbx, boss, call_id, "whisper")
        at_caller, at_agent, at_supervisor = hears(parties, tmp_path)
        assert at_agent[SUPERVISOR_HZ] > HEARD and at_agent[CALLER_HZ] > HEARD, at_agent
        assert at_caller[SUPERVISOR_HZ] < UNHEARD, at_caller
        assert at_supervisor[CALLER_HZ] > HEARD and at_supervisor[AGENT_HZ] > HEARD

        # Barge: everybody hears everybody.
        order(pbx, boss, call_id, "barge")
        at_caller, at_agent, at_supervisor = hears(parties, tmp_path)
        assert at_caller[SUPERVISOR_HZ] > HEARD and at_caller[AGENT_HZ] > HEARD, at_caller
        assert at_agent[SUPERVISOR_HZ] > HEARD and at_agent[CALLER_HZ] > HEARD, at_agent
        assert supervisor.events("incoming") == [rung]  # never rung again

        # The supervisor hangs up: the call goes on.
        supervisor.hangup(sup_call)
        supervisor.wait_for("disconnected", call=sup_call, timeout=10)
        caller.assert_no_event("disconnected", within=1.0)
        pbx.wait_until(lambda: [e for e in audit(pbx) if e[0] == "monitor_stop"], 10,
                       "the monitor to stop")

        # Listening in again, then the caller hangs up: the supervisor's phone gets a BYE.
        order(pbx, boss, call_id, "listen")
        again = supervisor.wait_for("incoming", timeout=15)["call"]
        supervisor.wait_for("media_active", call=again, timeout=15)
        caller.hangup(call)
        agent.wait_for("disconnected", call=agent_call, timeout=10)
        supervisor.wait_for("disconnected", call=again, timeout=10)

        trail = pbx.wait_until(lambda: len(audit(pbx)) >= 8 and audit(pbx), 10, "the audit")
        assert [(event, data.get("mode")) for event, _, data in trail] == [
            ("monitor_ring", "listen"), ("monitor_start", "listen"),
            ("monitor_mode", "whisper"), ("monitor_mode", "barge"), ("monitor_stop", "barge"),
            ("monitor_ring", "listen"), ("monitor_start", "listen"), ("monitor_stop", "listen"),
        ], trail
        assert {(agent_ext, data["supervisor"]) for _, agent_ext, data in trail} == {
            ("1001", "2001")}
        assert trail[4][2]["cause"] == "supervisor hung up"
        assert trail[-1][2]["cause"] == "call ended"

        # Force a pause, then a logout, of the agent from the supervisor's session.
        agent_path = "/api/cti/agents/1001"
        assert api(pbx, "POST", f"{agent_path}/pause", boss, {})[0] == 202
        pbx.wait_until(lambda: state_of(pbx, boss, "1001") == "paused", 10, "the pause")
        assert api(pbx, "POST", f"{agent_path}/logout", boss)[0] == 202
        pbx.wait_until(lambda: state_of(pbx, boss, "1001") == "logged_out", 10, "the logout")
        assert api(pbx, "POST", "/api/cti/agents/2001/pause", login(pbx, "1001"))[0] == 403
        forced = [(e["action"], e["agent"]) for e in pbx.logs()
                  if e.get("event") == "agent_action_by_supervisor" and e["supervisor"] == "2001"]
        assert forced == [("pause", "1001"), ("logout", "1001")], forced
    finally:
        pbx.stop()
