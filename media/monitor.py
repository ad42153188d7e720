"""A supervisor joined to a bridged call: listen, whisper, barge — sans-IO wiring of sessions.

Theory of operation
-------------------
A call is two bridged `MediaSession`s, the caller's and the agent's. A supervisor's own phone
is a third session. A `Monitor` connects the three with bounded PCM frame queues
(`media.mixer.FrameQueue`), using the sessions' taps:

* always: what the caller's session receives (the caller's voice) and what the agent's session
  receives (the agent's voice) are each tapped into a queue that the supervisor's session mixes
  into what it sends (``mix_in``): the supervisor hears both parties;
* whisper: what the supervisor's session receives is also mixed into what the agent's session
  sends (the agent hears the caller and the supervisor; the caller hears only the agent);
* barge: as whisper, and mixed into what the caller's session sends as well (a three-way
  conference).

Each session pops one frame per queue on its own 20 ms tick and sums them with `mixer.mix`
(saturating), so everything stays on the engine's one media clock; a queue holds at most a few
frames and drops the oldest, so a monitor adds no latency that grows. Changing the mode
re-wires only the supervisor's outgoing queues; the bridge between caller and agent is never
touched. Nobody hears themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from media.mixer import FrameQueue
from media.session import Int16Array, MediaSession


class MonitorMode(enum.StrEnum):
    LISTEN = "listen"  # the supervisor hears both; nobody hears the supervisor
    WHISPER = "whisper"  # ... and the agent hears the supervisor
    BARGE = "barge"  # ... and the caller hears the supervisor too


@dataclass(slots=True, eq=False)
class _Link:
    source: list[FrameQueue[Int16Array]]  # a session's rx_taps
    sink: list[FrameQueue[Int16Array]]  # another session's mix_in
    queue: FrameQueue[Int16Array]


@dataclass(eq=False)
class Monitor:
    """The supervisor's session `supervisor` joined to the call `caller` ⇄ `agent` in
    `mode`. `attach` wires it, `set_mode` re-wires what the supervisor says, `detach` undoes
    everything (the sessions are left as they were before). Raises ValueError when the three
    sessions are not three distinct ones."""

    supervisor: MediaSession
    caller: MediaSession
    agent: MediaSession
    mode: MonitorMode = MonitorMode.LISTEN
    _hearing: list[_Link] = field(default_factory=list)
    _speaking: list[_Link] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = {self.supervisor.session_id, self.caller.session_id, self.agent.session_id}
        if len(ids) != 3:
            raise ValueError("a monitor needs three different sessions")

    @property
    def sessions(self) -> tuple[str, str, str]:
        return (self.supervisor.session_id, self.caller.session_id, self.agent.session_id)

    def attach(self) -> None:
        if self._hearing:
            return
        self._hearing = [self._link(self.caller, self.supervisor),
                         self._link(self.agent, self.supervisor)]
        self._wire_speaking()

    def set_mode(self, mode: MonitorMode) -> None:
        if mode is self.mode:
            return
        self.mode = mode
        if self._hearing:  # attached: only what the supervisor says goes elsewhere
            self._unlink(self._speaking)
            self._wire_speaking()

    def detach(self) -> None:
        self._unlink(self._speaking)
        self._unlink(self._hearing)

    def _wire_speaking(self) -> None:
        self._speaking = []
        if self.mode in (MonitorMode.WHISPER, MonitorMode.BARGE):
            self._speaking.append(self._link(self.supervisor, self.agent))
        if self.mode is MonitorMode.BARGE:
            self._speaking.append(self._link(self.supervisor, self.caller))

    def _link(self, source: MediaSession, sink: MediaSession) -> _Link:
        queue: FrameQueue[Int16Array] = FrameQueue(sink.settings.bridge_buffer_frames)
        source.rx_taps.append(queue)
        sink.mix_in.append(queue)
        return _Link(source.rx_taps, sink.mix_in, queue)

    @staticmethod
    def _unlink(links: list[_Link]) -> None:
        for link in links:
            if link.queue in link.source:
                link.source.remove(link.queue)
            if link.queue in link.sink:
                link.sink.remove(link.queue)
        links.clear()


__all__ = ["Monitor", "MonitorMode"]
