"""A desk for driving the ACD engine in tests: a fake clock, every command kept, the engine's
invariants checked after every step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, TypeVar

from pbx.acd.engine import AcdEngine
from pbx.acd.events import (
    AcdCommand,
    AcdEvent,
    AgentLoggedIn,
    CallEnded,
    CallEnqueued,
    OfferAnswered,
    OfferCall,
    TimerFired,
)
from pbx.acd.model import AgentProfile, AgentState, QueuedCall
from pbx.acd.schema import CustomerStatusConfig, QueueConfig

C = TypeVar("C")
AGENTS = ("1001", "1002", "1003")


def queue(name: str = "support", members: Sequence[Any] = AGENTS, **settings: Any) -> QueueConfig:
    """A queue whose members are extensions or (extension, penalty) pairs."""
    rows = [
        {"agent": m} if isinstance(m, str) else {"agent": m[0], "penalty": m[1]} for m in members
    ]
    settings.setdefault("wrap_up_s", 0)
    return QueueConfig.model_validate({"name": name, "members": rows, **settings})


def statuses(**rules: dict[str, Any]) -> dict[str, CustomerStatusConfig]:
    return {name: CustomerStatusConfig.model_validate(rule) for name, rule in rules.items()}


@dataclass
class Desk:
    engine: AcdEngine
    now: float = 0.0
    log: list[AcdCommand] = field(default_factory=list)

    def send(self, event: AcdEvent, at: float | None = None) -> list[AcdCommand]:
        if at is not None:
            self.advance_to(at)
        out = self.engine.handle(event, self.now)
        self.engine.check_invariants()
        self.log += out
        return out

    def advance_to(self, at: float) -> list[AcdCommand]:
        """Fire every timer up to `at`, each at its own deadline, then stop the clock at `at`."""
        out: list[AcdCommand] = []
        while (deadline := self.engine.next_deadline()) is not None and deadline <= at:
            self.now = max(self.now, deadline)
            out += self.send(TimerFired())
        self.now = max(self.now, at)
        return out

    def advance(self, seconds: float) -> list[AcdCommand]:
        return self.advance_to(self.now + seconds)

    def enqueue(
        self, call: str, queue: str = "support", at: float | None = None, **fields: Any
    ) -> list[AcdCommand]:
        return self.send(CallEnqueued(QueuedCall(call=call, queue=queue, **fields)), at=at)

    def answer(self, call: str, agent: str) -> list[AcdCommand]:
        return self.send(OfferAnswered(call, agent))

    def end(self, call: str, agent: str) -> list[AcdCommand]:
        return self.send(CallEnded(call, agent))

    def state(self, agent: str) -> AgentState:
        return self.engine.agents[agent].state


def desk(
    queues: QueueConfig | Sequence[QueueConfig] | None = None,
    agents: Iterable[str | AgentProfile] = AGENTS,
    customer_statuses: Mapping[str, CustomerStatusConfig] | None = None,
    login: bool = True,
    seed: int = 0,
) -> Desk:
    if queues is None:
        queues = queue()
    if isinstance(queues, QueueConfig):
        queues = [queues]
    profiles = [a if isinstance(a, AgentProfile) else AgentProfile(a) for a in agents]
    engine = AcdEngine(
        queues, profiles, customer_statuses, rng=Random(seed), devices_available=True
    )
    d = Desk(engine)
    if login:
        for profile in profiles:
            d.send(AgentLoggedIn(profile.extension))
    return d


def only(commands: Iterable[AcdCommand], kind: type[C]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]


def offered(commands: Iterable[AcdCommand]) -> list[tuple[str, tuple[str, ...]]]:
    """(call, agents) of every OfferCall, in order."""
    return [(c.call, c.agents) for c in only(commands, OfferCall)]
