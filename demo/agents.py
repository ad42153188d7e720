"""The demo's agents: one pjsua2 softphone process per agent (`tests.support.softphone`), each
registered with the example config's credentials and answering automatically after a few
rings. While a call is up the agent "talks" (a prompt WAV, looped, or a tone) and hangs up
after a talk time drawn from a range, unless the caller hangs up first.

A thread per agent watches its phone's events; `stop()` ends the threads and shuts the
phones down (pjsua unregisters them).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.softphone import Softphone, SoftphoneError, SoftphoneTimeout

TONE_HZ = 440.0


@dataclass
class SimulatedAgent:
    extension: str
    name: str
    password: str
    phone: Softphone
    talk_s: tuple[float, float]
    voice: Path | None
    rng: random.Random
    answered: int = 0
    hangups: dict[int, float] = field(default_factory=dict)  # call -> when the agent hangs up
    thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._hang_up_due()
            try:
                event = self.phone.wait_for("media_active", timeout=0.5)
            except SoftphoneTimeout:
                continue
            except SoftphoneError:  # the phone process is gone (shutdown)
                return
            call = int(event["call"])
            if call not in self.hangups:
                self.answered += 1
                self.hangups[call] = time.monotonic() + self.rng.uniform(*self.talk_s)
            self._speak(call)  # again after a hold: media restarted

    def _speak(self, call: int) -> None:
        with contextlib.suppress(SoftphoneError):  # the call may already be gone
            if self.voice is not None:
                self.phone.play_wav(call, self.voice, loop=True)
            else:
                self.phone.play_tone(call, TONE_HZ)

    def _hang_up_due(self) -> None:
        ended = {int(e["call"]) for e in self.phone.events("disconnected")}
        now = time.monotonic()
        for call, due in list(self.hangups.items()):
            if call in ended:
                del self.hangups[call]
            elif now >= due:
                del self.hangups[call]
                with contextlib.suppress(SoftphoneError):
                    self.phone.hangup(call)


class AgentFloor:
    """Starts, watches and stops the simulated agents."""

    def __init__(self, log_dir: Path, realm: str, sip_port: int, talk_s: tuple[float, float],
                 voice: Path | None, rng: random.Random) -> None:
        self.log_dir = log_dir
        self.realm = realm
        self.sip_port = sip_port
        self.talk_s = talk_s
        self.voice = voice
        self.rng = rng
        self.agents: list[SimulatedAgent] = []
        self._stop = threading.Event()

    def start(self, entries: list[dict[str, Any]]) -> None:
        """Start and register a phone for each agent entry (extension, name, password)."""
        for entry in entries:
            phone = Softphone(f"agent{entry['extension']}", log_dir=self.log_dir, log_level=3,
                              timeout=20.0)
            phone.start()
            agent = SimulatedAgent(entry["extension"], entry["name"], entry["password"], phone,
                                   self.talk_s, self.voice, self.rng)
            self.agents.append(agent)
            account = phone.add_account(
                agent.extension, agent.password, domain=self.realm,
                registrar=f"127.0.0.1:{self.sip_port}", expires=300, register=True,
                auto_answer=200, auto_answer_delay=round(self.rng.uniform(1.5, 4.0), 1))
            state = phone.wait_for("reg_state", account=account, timeout=30)
            if state["code"] != 200:
                raise RuntimeError(f"agent {agent.extension} could not register: {state}")
        for agent in self.agents:
            agent.thread = threading.Thread(target=agent.run, args=(self._stop,),
                                            name=f"agent-{agent.extension}", daemon=True)
            agent.thread.start()

    @property
    def answered(self) -> int:
        return sum(agent.answered for agent in self.agents)

    def stop(self) -> None:
        self._stop.set()
        for agent in self.agents:
            if agent.thread is not None:
                agent.thread.join(timeout=5)
        for agent in self.agents:
            agent.phone.request_shutdown()
        for agent in self.agents:
            with contextlib.suppress(Exception):  # keep closing the others
                agent.phone.close(grace=3.0)
        self.agents.clear()
