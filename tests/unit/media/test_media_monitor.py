"""A supervisor joined to a bridged call (`media.monitor`, sans-IO): three sessions fed tones
by hand, their outgoing audio decoded and measured. The caller says 440 Hz, the agent
1000 Hz, the supervisor 1700 Hz."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import numpy as np
import pytest

from media import g711
from media.codecs import G722State
from media.engine import MediaEngine, MediaEngineConfig, MediaError
from media.monitor import Monitor, MonitorMode
from media.rtp import RtpPacket, build_packet
from media.session import MediaSession, SessionSettings
from media.workers import MediaWorkerPool
from tests.support.audio import tone_share
from tests.unit.media.test_media_engine import engine_config, run
from tests.unit.media.test_media_session import answered, peer_offer

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 440.0, 1000.0, 1700.0
HEARD, UNHEARD = 0.1, 0.01


class Party:
    """A session with its far end: what the far end says, and what the session sends it."""

    def __init__(self, name: str, port: int, frequency: float) -> None:
        self.address = ("127.0.0.1", port)
        self.session = answered(peer_offer(("PCMU",), port=port), name, 40000 + port % 1000)
        self.frequency = frequency
        self.sent: list[bytes] = []
        self._seq = 0

    def speak(self, tick: int, now: float) -> None:
        t = (np.arange(160) + tick * 160) / 8000
        pcm = (3000 * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16)
        data = build_packet(0, self._seq, tick * 160, 0x99 + self.address[1],
                            g711.ulaw_encode(pcm))
        self._seq += 1
        self.session.receive_rtp(data, self.address, now)

    def hear(self, now: float) -> None:
        packet = self.session.tick(now)
        if packet is not None:
            self.sent.append(RtpPacket.parse(packet).payload)

    def heard(self, last_ticks: int = 50) -> np.ndarray:
        return g711.ulaw_decode(b"".join(self.sent[-last_ticks:])).astype(np.float64)


@pytest.fixture
def call() -> tuple[Party, Party, Party]:
    caller = Party("caller", 50000, CALLER_HZ)
    agent = Party("agent", 50010, AGENT_HZ)
    supervisor = Party("supervisor", 50020, SUPERVISOR_HZ)
    caller.session.peer, agent.session.peer = agent.session, caller.session
    return caller, agent, supervisor


def talk(parties: tuple[Party, ...], ticks: int, start: int = 0) -> int:
    for tick in range(start, start + ticks):
        now = tick * 0.02
        for party in parties:
            party.speak(tick, now)
        for party in parties:
            party.hear(now)
    return start + ticks


def shares(party: Party) -> dict[float, float]:
    heard = party.heard()
    return {hz: tone_share(heard, 8000, hz) for hz in (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)}


def test_listen_the_supervisor_hears_both_and_nobody_hears_the_supervisor(
    call: tuple[Party, Party, Party],
) -> None:
    caller, agent, supervisor = call
    monitor = Monitor(supervisor.session, caller.session, agent.session, MonitorMode.LISTEN)
    monitor.attach()
    talk(call, 60)
    heard = shares(supervisor)
    assert heard[CALLER_HZ] > HEARD and heard[AGENT_HZ] > HEARD
    assert heard[SUPERVISOR_HZ] < UNHEARD  # not their own voice back
    assert shares(caller)[AGENT_HZ] > 0.9 and shares(caller)[SUPERVISOR_HZ] < UNHEARD
    assert shares(agent)[CALLER_HZ] > 0.9 and shares(agent)[SUPERVISOR_HZ] < UNHEARD


def test_whisper_reaches_only_the_agent_and_barge_both_then_back_to_listen(
    call: tuple[Party, Party, Party],
) -> None:
    caller, agent, supervisor = call
    monitor = Monitor(supervisor.session, caller.session, agent.session)
    monitor.attach()
    tick = talk(call, 10)
    monitor.set_mode(MonitorMode.WHISPER)
    tick = talk(call, 60, tick)
    assert shares(agent)[SUPERVISOR_HZ] > HEARD and shares(agent)[CALLER_HZ] > HEARD
    assert shares(caller)[SUPERVISOR_HZ] < UNHEARD and shares(caller)[AGENT_HZ] > 0.9
    assert shares(supervisor)[SUPERVISOR_HZ] < UNHEARD

    monitor.set_mode(MonitorMode.BARGE)
    tick = talk(call, 60, tick)
    assert shares(agent)[SUPERVISOR_HZ] > HEARD and shares(agent)[CALLER_HZ] > HEARD
    assert shares(caller)[SUPERVISOR_HZ] > HEARD and shares(caller)[AGENT_HZ] > HEARD
    heard = shares(supervisor)
    assert heard[CALLER_HZ] > HEARD and heard[AGENT_HZ] > HEARD and heard[SUPERVISOR_HZ] < UNHEARD

    monitor.set_mode(MonitorMode.LISTEN)
    talk(call, 60, tick)
    assert shares(caller)[SUPERVISOR_HZ] < UNHEARD and shares(agent)[SUPERVISOR_HZ] < UNHEARD


def test_detach_leaves_the_sessions_as_they_were(call: tuple[Party, Party, Party]) -> None:
    caller, agent, supervisor = call
    monitor = Monitor(supervisor.session, caller.session, agent.session, MonitorMode.BARGE)
    monitor.attach()
    talk(call, 5)
    monitor.detach()
    for party in call:
        assert party.session.rx_taps == [] and party.session.mix_in == []
    talk(call, 60, 5)
    assert shares(caller)[AGENT_HZ] > 0.9 and shares(agent)[CALLER_HZ] > 0.9
    assert max(abs(supervisor.heard(40))) <= 8  # silence (µ-law's smallest steps)


def test_three_distinct_sessions_are_needed(call: tuple[Party, Party, Party]) -> None:
    caller, agent, _ = call
    with pytest.raises(ValueError):
        Monitor(agent.session, caller.session, agent.session)


def test_mixing_saturates_instead_of_wrapping() -> None:
    loud: list[MediaSession] = []
    for name, port in (("c", 50100), ("a", 50110), ("s", 50120)):
        loud.append(answered(peer_offer(("PCMU",), port=port), name, 41000 + port % 1000))
    caller, agent, supervisor = loud
    caller.peer, agent.peer = agent, caller
    Monitor(supervisor, caller, agent, MonitorMode.LISTEN).attach()
    full = g711.ulaw_encode(np.full(160, 30000, dtype=np.int16))
    for index, (session, port) in enumerate(((caller, 50100), (agent, 50110))):
        session.receive_rtp(build_packet(0, 1, 0, 7 + index, full), ("127.0.0.1", port), 0.0)
    packet = supervisor.tick(0.0)
    assert packet is not None
    decoded = g711.ulaw_decode(RtpPacket.parse(packet).payload)
    assert decoded.min() > 30000  # clipped at the top, not wrapped to negative


def test_engine_monitor_mode_changes_and_close_ends_the_monitor(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with MediaEngine(engine_config(tmp_path)) as engine:
            c, a, s = [(await engine.open_session(None)).session_id for _ in range(3)]
            await engine.bridge(c, a)
            with pytest.raises(MediaError, match="unknown monitor mode"):
                await engine.monitor(s, c, a, "spy")
            with pytest.raises(MediaError, match="three different"):
                await engine.monitor(s, c, s, "listen")
            with pytest.raises(MediaError, match="no media session"):
                await engine.monitor("nope", c, a, "listen")
            await engine.monitor(s, c, a, "listen")
            await engine.monitor(s, c, a, "barge")  # a mode change, not a second monitor
            assert engine.stats().monitors == 1
            await engine.stop_monitor(s)
            await engine.stop_monitor(s)  # nothing to stop: fine
            assert engine.stats().monitors == 0
            await engine.monitor(s, c, a, "whisper")
            await engine.close(a)  # the call's agent leaves: the monitor ends with it
            assert engine.stats().monitors == 0
            await engine.close(s)

    run(scenario)


def test_pool_keeps_a_monitor_in_one_worker(tmp_path: Path) -> None:
    config = MediaEngineConfig(rtp_port_min=None, rtp_port_max=None, prompts_dir=str(tmp_path))

    async def scenario() -> None:
        async with MediaWorkerPool(config, workers=2, seed=3) as pool:
            caller = (await pool.open_session(None)).session_id
            agent = (await pool.open_session(None, near=caller)).session_id
            elsewhere = (await pool.open_session(None)).session_id
            near = (await pool.open_session(None, near=caller)).session_id
            assert elsewhere[:2] != caller[:2]
            with pytest.raises(MediaError, match="different media workers"):
                await pool.monitor(elsewhere, caller, agent, "listen")
            await pool.monitor(near, caller, agent, "whisper")
            assert (await pool.stats()).monitors == 1
            await pool.stop_monitor(near)
            assert (await pool.stats()).monitors == 0

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_wideband_supervisor_hears_and_is_heard_through_8_khz() -> None:
    caller = Party("caller", 50200, CALLER_HZ)
    agent = Party("agent", 50210, AGENT_HZ)
    supervisor = MediaSession(
        "supervisor", "127.0.0.1", 41220, ssrc=0x77, sequence_number=1, timestamp=0, now=0.0,
        rng=random.Random(3), settings=SessionSettings(codecs=("G722", "PCMU")),
    )
    supervisor.apply_remote_description(peer_offer(("G722",), port=50220), 0.0)
    assert supervisor.codec == "G722"
    caller.session.peer, agent.session.peer = agent.session, caller.session
    Monitor(supervisor, caller.session, agent.session, MonitorMode.BARGE).attach()
    phone, heard = G722State(), []
    for tick in range(60):
        now = tick * 0.02
        caller.speak(tick, now)
        agent.speak(tick, now)
        t = (np.arange(160) + tick * 160) / 8000
        pcm = (3000 * np.sin(2 * np.pi * SUPERVISOR_HZ * t)).astype(np.int16)
        supervisor.receive_rtp(build_packet(9, tick, tick * 160, 0x55, phone.encode(pcm)),
                               ("127.0.0.1", 50220), now)
        caller.hear(now)
        agent.hear(now)
        packet = supervisor.tick(now)
        assert packet is not None
        heard.append(RtpPacket.parse(packet).payload)
    decoder = G722State()
    wide = np.concatenate([decoder.decode(p) for p in heard[-40:]]).astype(np.float64)
    assert tone_share(wide, 8000, CALLER_HZ) > HEARD and tone_share(wide, 8000, AGENT_HZ) > HEARD
    assert shares(caller)[SUPERVISOR_HZ] > HEARD and shares(agent)[SUPERVISOR_HZ] > HEARD
