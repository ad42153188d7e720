"""Call recording against the live PBX, one PBX for the whole story:

1. a caller playing 440 Hz reaches agent 1001 playing 1300 Hz through a queue recorded
   ``always`` (after the consent announcement); the CDR links the recording, and the WAV read
   back over HTTP has the caller's tone on the left channel and the agent's on the right;
2. ``pbx recordings`` lists it and ``pbx recording`` saves the WAV (API token of scope
   recordings); who may listen: no credentials 401, a token without the scope 403, the agent
   of the call 200 (``agents_may_listen``), another agent 404, a supervisor 200, ids that are
   not ids 404;
3. an ``on_demand`` queue: another agent cannot start the recording of 1001's call (404); 1001
   starts it from the desk, stops it, a supervisor starts it again, 1001 transfers the caller to
   1002, and the one file has the caller on the left and both agents' tones on the right;
4. the recordings directory made unwritable: the call still bridges, both sides hear each
   other (measured), the failure is logged with the call id, and the CDR has no recording;

and a recording older than ``retention_days`` is deleted when the PBX starts.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.live_calls import agent_phone, carrier_call
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.audio import AudioAnalysis, analyze_samples
from tests.support.softphone import Softphone, SoftphonePool, exchange_tones

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ALWAYS_DID = "+4930400"
ON_DEMAND_DID = "+4930401"


def recording_config(workdir: Path) -> dict[str, Any]:
    agents = agent_entries(3)
    agents[2]["role"] = "supervisor"
    config = base_config(agents)
    config["cti"] = {"password_cost": 10}
    config["recording"] = {"retention_days": 30, "agents_may_listen": True}
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [
        {"name": "support", "ring_timeout_s": 10, "wrap_up_s": 1, "members": [{"agent": "1001"}],
         "recording": "always", "recording_consent_prompt": "{lang}/please_hold"},
        {"name": "sales", "ring_timeout_s": 10, "wrap_up_s": 1, "members": [{"agent": "1001"}],
         "recording": "on_demand"},
    ]
    config["dids"] = [{"number": ALWAYS_DID, "queue": "support"},
                      {"number": ON_DEMAND_DID, "queue": "sales"}]
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cdrs-only.token").write_text("cdrs-only-token-0123456789abcdef\n")
    config["http"] = {"api_tokens": [{"name": "cdrs-only", "scopes": ["cdrs"],
                                      "token_file": str(workdir / "cdrs-only.token")}]}
    return config


def login(pbx: RunningPbx, extension: str) -> dict[str, str]:
    status, _, body = pbx.request("POST", "/api/cti/login", {"Content-Type": "application/json"},
                                  json.dumps({"extension": extension,
                                              "password": f"pw{extension}x"}).encode())
    assert status == 200, body
    session: dict[str, str] = json.loads(body)
    return session


def bearer(session: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


def desk_post(pbx: RunningPbx, session: dict[str, str], path: str) -> tuple[int, Any]:
    headers = bearer(session) | {"Content-Type": "application/json",
                                 session["csrf_header"]: session["csrf_token"]}
    status, _, body = pbx.request("POST", path, headers, b"{}")
    return status, json.loads(body or b"{}")


def channels(data: bytes) -> tuple[AudioAnalysis, AudioAnalysis]:
    """What the left and the right channel of a WAV hold (skipping its first half second)."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    left, right = samples[0::2][4000:], samples[1::2][4000:]
    assert len(left) > 8000, "the recording is shorter than 1.5 s"
    return analyze_samples(left, 8000), analyze_samples(right, 8000)


def band_level(data: bytes, channel: int, hz: float) -> float:
    """The share of a channel's spectral energy within ±30 Hz of `hz`."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)[channel::2]
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 8000)
    return float(spectrum[np.abs(freqs - hz) < 30].sum() / max(spectrum.sum(), 1e-9))


def talk(phones: SoftphonePool, pbx: RunningPbx, agent: Softphone, name: str, did: str,
         caller_hz: float, agent_hz: float, directory: Path) -> tuple[Softphone, int, int]:
    """A caller reaches `agent` through `did`; each plays its tone and hears the other's."""
    caller, call = carrier_call(phones, pbx, name, f"+49176555{len(name):04d}", did)
    caller.play_tone(call, caller_hz)
    agent_call = agent.wait_for("incoming", timeout=30)["call"]
    agent.wait_for("media_active", call=agent_call, timeout=15)
    exchange_tones(caller, call, agent, agent_call, directory, caller_hz, agent_hz, 3.0)
    return caller, call, agent_call


def hang_up(caller: Softphone, call: int, agent: Softphone, agent_call: int) -> None:
    caller.hangup(call)
    agent.wait_for("disconnected", call=agent_call, timeout=15)


def newest_cdr(pbx: RunningPbx, count: int) -> dict[str, Any]:
    cdrs = pbx.wait_until(lambda: len(pbx.get("/api/cdrs")["cdrs"]) >= count and
                          pbx.get("/api/cdrs")["cdrs"], 20, f"{count} CDRs")
    row: dict[str, Any] = cdrs[0]
    return row


def pbx_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pbx.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def fetch(pbx: RunningPbx, path: str, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bytes]:
    return pbx.request("GET", path, headers)


def test_recorded_calls_who_may_listen_on_demand_and_an_unwritable_directory(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    workdir = tmp_path / "pbx"
    recordings = workdir / "data" / "recordings"
    # A recording from long ago: the retention (30 days) deletes it when the PBX starts.
    old = recordings / "2020" / "01" / "01" / "000000-old-00000000.wav"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"RIFF")
    os.utime(old, (1_577_836_800, 1_577_836_800))
    pbx = start_pbx(workdir, recording_config(workdir))
    try:
        pbx.wait_until(lambda: not old.exists() and not (recordings / "2020").exists(), 15,
                       "the retention to delete the old recording")
        agent = agent_phone(phones, pbx, "1001")
        colleague = agent_phone(phones, pbx, "1002")
        own, other, supervisor = login(pbx, "1001"), login(pbx, "1002"), login(pbx, "1003")

        # 1. Recorded always: caller left, agent right.
        caller, call, agent_call = talk(phones, pbx, agent, "first", ALWAYS_DID, 440.0, 1300.0,
                                        tmp_path)
        hang_up(caller, call, agent, agent_call)
        cdr = newest_cdr(pbx, 1)
        assert cdr["queue"] == "support" and cdr["disposition"] == "answered"
        story = [e["event"] for e in pbx.logs()
                 if e.get("event") in ("recording_consent_played", "recording_started",
                                       "agent_offered")]
        assert story.index("recording_consent_played") < story.index("agent_offered") \
            < story.index("recording_started"), story
        assert cdr["recording"].endswith(".wav") and not cdr["recording"].startswith("/")
        assert (recordings / cdr["recording"]).is_file()
        listed = pbx.get("/api/recordings")["recordings"]
        assert [r["agent"] for r in listed] == ["1001"]
        url = listed[0]["url"]
        status, headers, wav_bytes = fetch(pbx, url, pbx.api_headers)
        assert status == 200 and headers["content-type"] == "audio/wav"
        assert wav_bytes == (recordings / cdr["recording"]).read_bytes()
        left, right = channels(wav_bytes)
        assert abs(left.dominant_hz - 440.0) < 20, left
        assert abs(right.dominant_hz - 1300.0) < 20, right
        assert left.rms_dbfs > -35 and right.rms_dbfs > -35
        # Each channel holds one party: the other's tone is (almost) absent from it.
        assert band_level(wav_bytes, 0, 1300.0) < 0.05
        assert band_level(wav_bytes, 1, 440.0) < 0.05

        # ... and from the shell, with an API token of scope recordings (and not without).
        token = ["--url", pbx.http, "--token-file", str(workdir / "harness-api.token")]
        listing = pbx_cli("recordings", *token)
        assert listing.returncode == 0 and "1001" in listing.stdout, listing
        assert "support" in listing.stdout.splitlines()[1], listing.stdout
        saved = tmp_path / "saved.wav"
        got = pbx_cli("recording", str(listed[0]["id"]), "-o", str(saved), *token)
        assert got.returncode == 0 and saved.read_bytes() == wav_bytes, got
        refused = pbx_cli("recordings", "--url", pbx.http, "--token-file",
                          str(workdir / "cdrs-only.token"))
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused
        assert "403" in refused.stderr and "recordings" in refused.stderr, refused.stderr

        # 2. Who may listen.
        assert fetch(pbx, url)[0] == 401
        assert fetch(pbx, url, {"Authorization": "Bearer cdrs-only-token-0123456789abcdef"}
                     )[0] == 403
        assert fetch(pbx, "/api/recordings", {"Authorization": "Bearer nonsense"})[0] == 401
        assert fetch(pbx, url, bearer(own))[0] == 200  # agent 1001's own call
        assert fetch(pbx, url, bearer(other))[0] == 404  # not 1002's
        status, _, body = fetch(pbx, "/api/recordings", bearer(other))
        assert status == 200 and json.loads(body)["recordings"] == []
        assert fetch(pbx, url, bearer(supervisor))[0] == 200
        for bad in ("/api/recordings/abc", "/api/recordings/..%2F..%2Fpbx.yaml",
                    "/api/recordings/999999"):
            assert fetch(pbx, bad, pbx.api_headers)[0] == 404, bad

        # 3. On demand, from the desk.
        caller, call = carrier_call(phones, pbx, "second", "+4917655500002", ON_DEMAND_DID)
        agent_call = agent.wait_for("incoming", timeout=30)["call"]
        agent.wait_for("media_active", call=agent_call, timeout=15)

        def connected_calls() -> list[dict[str, Any]]:
            _, _, body = fetch(pbx, "/api/cti/calls", bearer(own))
            return [c for c in json.loads(body)["calls"] if c["state"] == "connected"]

        (desk_call,) = pbx.wait_until(connected_calls, 15, "the call connected on the desk")
        call_id = desk_call["call_id"]
        status, answer = desk_post(pbx, other, f"/api/cti/calls/{call_id}/record")
        assert status == 404, answer  # another agent's call does not exist for 1002
        assert desk_post(pbx, own, f"/api/cti/calls/{call_id}/record")[0] == 202

        def recording_state(session: dict[str, str]) -> bool:
            _, _, pop = fetch(pbx, f"/api/cti/calls/{call_id}", bearer(session))
            return bool(json.loads(pop)["call"]["recording"])

        pbx.wait_until(lambda: recording_state(own), 10, "the desk to show the recording")
        assert desk_post(pbx, own, f"/api/cti/calls/{call_id}/record")[0] == 409  # already
        exchange_tones(caller, call, agent, agent_call, tmp_path, 500.0, 1100.0, 2.5)
        assert desk_post(pbx, own, f"/api/cti/calls/{call_id}/stop-record")[0] == 202
        pbx.wait_until(lambda: not recording_state(own), 10, "the recording to stop")
        assert desk_post(pbx, supervisor, f"/api/cti/calls/{call_id}/record")[0] == 202
        pbx.wait_until(lambda: recording_state(supervisor), 10, "the recording to go on")
        agent.assert_no_event("disconnected", within=2.0, call=agent_call)
        # A blind transfer to 1002: the recording goes on in the same file with the new agent.
        status, answer = desk_post(pbx, own, f"/api/cti/calls/{call_id}/transfer")
        assert status == 400, answer  # no target: refused, nothing changes
        headers = bearer(own) | {"Content-Type": "application/json",
                                 own["csrf_header"]: own["csrf_token"]}
        status, _, body = pbx.request("POST", f"/api/cti/calls/{call_id}/transfer", headers,
                                      json.dumps({"target": "agent:1002"}).encode())
        assert status == 202, body
        agent.wait_for("disconnected", call=agent_call, timeout=15)
        second_call = colleague.wait_for("incoming", timeout=30)["call"]
        colleague.wait_for("media_active", call=second_call, timeout=15)
        exchange_tones(caller, call, colleague, second_call, tmp_path, 500.0, 1700.0, 2.5)
        hang_up(caller, call, colleague, second_call)
        cdr = newest_cdr(pbx, 2)
        assert cdr["queue"] == "sales" and cdr["agent"] == "1002" and cdr["recording"]
        wav_bytes = (recordings / cdr["recording"]).read_bytes()
        left, right = channels(wav_bytes)
        assert abs(left.dominant_hz - 500.0) < 20, left
        # The right channel holds both agents, one after the other.
        assert band_level(wav_bytes, 1, 1100.0) > 0.1 and band_level(wav_bytes, 1, 1700.0) > 0.1
        assert band_level(wav_bytes, 0, 1100.0) < 0.05 and band_level(wav_bytes, 0, 1700.0) < 0.05
        assert len(list(recordings.rglob("*.wav"))) == 2  # one file per recorded call

        # 4. The recordings directory cannot be written: the call goes on unrecorded.
        recordings.rename(recordings.with_name("recordings.saved"))
        recordings.mkdir(mode=0o500)
        if os.geteuid() == 0:  # root writes through modes: make it a file instead
            recordings.rmdir()
            recordings.write_text("not a directory\n")
        caller, call, agent_call = talk(phones, pbx, agent, "third", ALWAYS_DID, 600.0, 1200.0,
                                        tmp_path)
        hang_up(caller, call, agent, agent_call)
        cdr = newest_cdr(pbx, 3)
        assert cdr["disposition"] == "answered" and cdr["recording"] == ""
        failures = [e for e in pbx.logs() if e.get("event") == "recording_failed"]
        assert failures and failures[-1].get("call"), failures
        assert pbx.alive()
    finally:
        pbx.stop()
        if recordings.is_file():
            recordings.unlink()
        elif recordings.is_dir():
            recordings.chmod(0o700)
        saved = recordings.with_name("recordings.saved")
        if saved.exists() and not recordings.exists():
            shutil.move(str(saved), str(recordings))
