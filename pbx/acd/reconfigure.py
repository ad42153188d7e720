"""A new configuration for a running ACD, without dropping a waiting caller (L2, pure).

`Reconfiguring` is the part of `pbx.acd.engine.AcdEngine` that handles `ConfigChanged` (a
config reload). The rules:

- Queues: a changed queue's settings (members, strategy, timers, announcements, hold program)
  apply to its waiting callers from now on; they keep their place in line, and an offer that is
  ringing runs its course. Timers already set for a caller (max wait, the next announcement) keep
  their times; new ones follow the new settings. A new queue starts empty.
- A removed queue: its callers leave it for `removed_queue_targets[name]` (``queue_removed``,
  then an `Overflow` to that target) when there is one; without one the queue is *retired*: its
  callers keep waiting and are offered to its members as before, no new caller joins it, and it
  is dropped once the last one has left.
- Agents: a new agent starts logged out (the switchboard logs it in as it does at start); new
  skills apply at the next hunt; a removed agent leaves every queue and the hunt at once — logged
  out, its ringing offer withdrawn — or, on a call, logs out when the call and its wrap-up are
  done (the call goes on). It is forgotten once logged out.
- Customer statuses apply to callers who join from now on.

Each step emits what any other event would (`AgentStateChanged`, `CancelOffer`,
`CallLeftQueue`, `Overflow`, and the offers the dispatch pass makes to new members).
"""

from __future__ import annotations

from pbx.acd.events import ConfigChanged
from pbx.acd.hunt import Entry, HuntingCore
from pbx.acd.model import Agent, AgentState, Membership
from pbx.acd.schema import QueueConfig
from pbx.acd.strategies import ring_mode

S = AgentState


class Reconfiguring(HuntingCore):
    """Part of `AcdEngine`: the `ConfigChanged` handler (see the module docstring)."""

    # queues that were removed from the configuration while callers still waited in them
    _retired_queues: set[str]
    # agents removed from the configuration who were still on a call
    _retired_agents: set[str]

    def _on_config_changed(self, event: ConfigChanged, now: float) -> None:
        profiles = {profile.extension: profile for profile in event.agents}
        for extension in [e for e in self.agents if e not in profiles]:
            self._retire_agent(self.agents[extension], now)
        for extension, profile in profiles.items():
            agent = self.agents.get(extension)
            if agent is None:
                self.agents[extension] = Agent(extension, dict(profile.skills),
                                               state_since=now, idle_since=now)
            else:
                agent.skills = dict(profile.skills)
                if extension in self._retired_agents:  # removed, and back before it left
                    self._retired_agents.discard(extension)
                    if agent.pending_reason == "agent_removed":
                        self._set_pending(agent, None, "")
        self.statuses = dict(event.customer_statuses)
        wanted = {queue.name: queue for queue in event.queues}
        for name in [n for n in self.queues if n not in wanted]:
            target = event.removed_queue_targets.get(name)
            if target is not None and name not in self._retired_queues:
                for entry in [e for e in self._order if e.queue.name == name]:
                    self._leave(entry, "queue_removed", now, target)
            self._retired_queues.add(name)
        for name, queue in wanted.items():
            self.queues[name] = queue
            self._retired_queues.discard(name)
        self._rebuild_memberships()
        for entry in self._order:
            self._refile(entry)

    def _retire_agent(self, agent: Agent, now: float) -> None:
        # Out of every queue now; out of the hunt now, or when its call is done.
        extension = agent.extension
        if agent.state in (S.ON_CALL, S.BUSY_DIRECT):
            if agent.pending is not S.LOGGED_OUT:
                self._set_pending(agent, S.LOGGED_OUT, "agent_removed")
        elif agent.state is not S.LOGGED_OUT:
            if agent.state is S.RINGING and agent.offered_call is not None:
                entry = self._entries[agent.offered_call]
                self._cancel_offer(entry, extension, "agent_logged_out", now)
            elif agent.state is S.RESERVED and agent.reserved_for is not None:
                self._entries[agent.reserved_for].reserved_by = None
            self._set_state(agent, S.LOGGED_OUT, now, "agent_removed")
        agent.memberships.clear()  # the counts per queue are made again from the members
        self._retired_agents.add(extension)

    def _rebuild_memberships(self) -> None:
        # Seats and tiers of every queue (a retired one keeps its old members), as at start.
        for agent in self.agents.values():
            agent.memberships.clear()
        self._members.clear()
        self._tier_seat_order.clear()
        self._seats.clear()
        self._penalties.clear()
        for queue in self.queues.values():
            rows: list[tuple[Agent, Membership]] = []
            for seat, member in enumerate(queue.members):
                seated = self.agents.get(member.agent)
                if seated is None or member.agent in self._retired_agents:
                    continue
                membership = Membership(queue.name, seat, member.penalty)
                seated.memberships[queue.name] = membership
                rows.append((seated, membership))
            self._members[queue.name] = rows
            self._tier_seat_order[queue.name] = sorted(
                rows, key=lambda row: (row[1].penalty, row[1].seat)
            )
            self._seats[queue.name] = {a.extension: m.seat for a, m in rows}
            self._penalties[queue.name] = {a.extension: m.penalty for a, m in rows}
            self._waiting.setdefault(queue.name, 0)
        self._staffed_members = {
            name: sum(1 for agent, _ in rows if agent.staffed)
            for name, rows in self._members.items()
        }
        self._leave_queues = [q for q in self.queues.values() if q.leave_when == "unstaffed"]
        self._free = {a.extension for a in self.agents.values() if a.huntable}
        self.stats.add_queues(self.queues.values())

    def _refile(self, entry: Entry) -> None:
        # The waiting caller follows its queue's new settings; several agents ringing under
        # ring_all or ring_progressively keep that mode until this offer is over (a caller
        # ringing one agent at a time never rings several).
        queue: QueueConfig = self.queues[entry.queue.name]
        entry.queue = queue
        entry.required_skills = {**queue.skills, **entry.call.skills}
        if len(entry.ringing) <= 1:
            entry.mode = ring_mode(queue.strategy)

    def drop_retired(self) -> None:
        """Forget retired queues nobody waits in any more, and removed agents now logged
        out. Cheap when there are none; `AcdEngine.handle` calls it after each step."""
        for name in [n for n in self._retired_queues if not self._waiting.get(n)]:
            self._retired_queues.discard(name)
            del self.queues[name]
            for agent, _ in self._members.pop(name, []):
                agent.memberships.pop(name, None)
            self._tier_seat_order.pop(name, None)
            self._seats.pop(name, None)
            self._penalties.pop(name, None)
            self._waiting.pop(name, None)
            self._staffed_members.pop(name, None)
            self._last_offered.pop(name, None)
            self._leave_queues = [q for q in self._leave_queues if q.name != name]
            self.stats.drop_queue(name)
        for extension in [e for e in self._retired_agents
                          if self.agents[e].state is S.LOGGED_OUT
                          and not self.agents[e].direct_calls]:
            self._retired_agents.discard(extension)
            del self.agents[extension]
            self._free.discard(extension)
            self.stats.drop_agent(extension)
