"""One caller walking through one IVR flow, as a sans-IO state machine (L2).

Theory of operation
-------------------
An `IvrSession` is created by the call layer when a call reaches a flow, with the caller's
variables (``caller``, ``did``, ``language`` when the DID route gives one …). `start(now)`
enters the flow's start node; from then on the owner feeds it call-control events for its leg
(`DtmfReceived`, `PlaybackFinished`, `HungUp`, `MediaTimedOut`), the answers to its customer
look-ups (`CustomerFound`) and its timer (`handle_timer(now)` once `next_deadline()` has passed),
and carries out the commands each call returns: `Play`, `StopPlayback`, `Transfer`, `Hangup`,
`LookupCustomer`, `EnqueueCall`. The session never reads a clock, never does I/O and never
imports hooks itself; it is finished when it handed the call on, hung up, or the caller left,
and then `outcome`, `path` and `variables` are what the CDR records.

The session is in one of five states (`IvrState`). Legal changes are the table `TRANSITIONS`,
made only through `_set_state`; which event is legal in which state is the table `_DISPATCH`,
and an event outside it raises `LocalProtocolError`. What a node does is a small *visit* object
per node type (`pbx.ivr.visits`), which uses the session's primitives: play prompts and continue
when they end, wait for digits with a deadline, go to another node, finish.

Digits are never lost. A key pressed while a prompt plays with barge-in stops the prompt (the
session sends `StopPlayback` too, in case the key came by SIP INFO) and goes to the node reading
keys; a key pressed while a prompt plays without barge-in, or during a look-up, is kept in a
type-ahead buffer, which the next menu, collect or hook reads before it plays its own prompt
(and a barge-in `play` node is skipped while keys are waiting). Failed input clears the buffer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from pbx.call.events import (
    DtmfReceived,
    Hangup,
    HungUp,
    MediaTimedOut,
    Play,
    PlaybackFinished,
    StopPlayback,
)
from pbx.errors import LocalProtocolError
from pbx.ivr.conditions import zone
from pbx.ivr.events import CustomerFound, IvrCommand, IvrEvent, IvrOutcome, TimerFired
from pbx.ivr.hooks import Hook
from pbx.ivr.schema import FlowConfig
from pbx.ivr.templates import render
from pbx.ivr.visits import VISITS, Visit

# Instant nodes (set, branch, lookup answers, hooks) in a row before the session gives up: the
# flow is checked for loops at load, so only a misbehaving hook can get here.
MAX_INSTANT_HOPS = 100
# After max_duration_s the call goes to on_max_duration; this long after, it is hung up.
OVERTIME_GRACE_S = 60.0
VALID_DIGITS = frozenset("0123456789*#ABCD")

PromptResolver = Callable[[str, Mapping[str, str]], str]
"""(template, variables) -> the prompt name to play; "" to leave the prompt out."""


class IvrState(enum.Enum):
    READY = "ready"  # created, start() not called yet
    PROMPTING = "prompting"  # a prompt plays; its end continues the node
    AWAITING_DIGITS = "awaiting_digits"  # a node reads keys until its deadline
    LOOKING_UP = "looking_up"  # a LookupCustomer is out; CustomerFound continues the node
    FINISHED = "finished"  # the call was handed on, hung up, or left


S = IvrState
_LIVE = (S.PROMPTING, S.AWAITING_DIGITS, S.LOOKING_UP)
TRANSITIONS = frozenset(
    {(S.READY, new) for new in (*_LIVE, S.FINISHED)}
    | {(old, new) for old in _LIVE for new in (*_LIVE, S.FINISHED)}
)


@dataclass(slots=True)
class IvrStats:
    """Counters of one session (summed by the owner for metrics)."""

    digits: int = 0
    invalid_entries: int = 0
    timeouts: int = 0
    lookups: int = 0
    hook_errors: int = 0


class IvrSession:
    """Runs `flow` for the leg `call`. Driven by `start`, `handle`, `handle_timer`; each returns
    the commands to carry out, in order. Raises `LocalProtocolError` for an event of another
    call or one that is not legal in the current state (a bug in the owner).

    `variables` are the call's starting variables (``caller``, ``did``, ``language`` …);
    `resolve_prompt` turns a prompt template into the name to play (default: fill in the
    variables, ``{lang}`` from ``language`` or the flow's language); `hooks` are the flow's
    hook functions by ``module:function``; `tz` is the time zone for time conditions when the
    flow names none."""

    def __init__(
        self,
        flow: FlowConfig,
        call: str,
        variables: Mapping[str, str] | None = None,
        *,
        resolve_prompt: PromptResolver | None = None,
        hooks: Mapping[str, Hook] | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        self.flow = flow
        self.call = call
        self.tz = zone(flow.timezone) if flow.timezone else tz
        self.hooks: Mapping[str, Hook] = hooks or {}
        self.vars: dict[str, str] = dict(variables or {})
        self.buffer: list[str] = []  # type-ahead keys
        self.stats = IvrStats()
        self._resolve = resolve_prompt or self._render_prompt
        self._state = S.READY
        self._path: list[str] = []
        self._visit: Visit[Any] | None = None
        self._out: list[IvrCommand] = []
        self._seq = 0
        self._playback: str | None = None
        self._barge_in = False
        self._then: Callable[[float], None] | None = None
        self._node_deadline: float | None = None
        self._max_deadline: float | None = None
        self._overtime = False
        self._hops = 0
        self._outcome: IvrOutcome | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> IvrState:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state is S.FINISHED

    @property
    def outcome(self) -> IvrOutcome | None:
        """How the session ended; None while it runs."""
        return self._outcome

    @property
    def path(self) -> tuple[str, ...]:
        """The nodes entered, in order (a node entered twice appears twice)."""
        return tuple(self._path)

    @property
    def variables(self) -> dict[str, str]:
        """A copy of the call variables (collected digits, customer fields, choices)."""
        return dict(self.vars)

    @property
    def current_node(self) -> str | None:
        return self._path[-1] if self._path else None

    def next_deadline(self) -> float | None:
        """When `handle_timer` must be called next (None: no timer needed)."""
        deadlines = [d for d in (self._node_deadline, self._max_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    def start(self, now: float) -> list[IvrCommand]:
        """Enter the start node."""
        if self._state is not S.READY:
            raise LocalProtocolError(f"IVR session {self.call} already started")
        self.started_at = now
        self._max_deadline = now + self.flow.max_duration_s
        return self._run(lambda: self.goto(self.flow.start, now), now)

    def handle(self, event: IvrEvent, now: float) -> list[IvrCommand]:
        """Feed one event of this call."""
        if event.call != self.call:
            raise LocalProtocolError(f"IVR session {self.call} got an event of {event.call}")
        handler = _DISPATCH.get((self._state, type(event)))
        if handler is None:
            raise LocalProtocolError(
                f"IVR session {self.call}: {type(event).__name__} is illegal in {self._state.value}"
            )
        return self._run(lambda: handler(self, event, now), now)

    def handle_timer(self, now: float) -> list[IvrCommand]:
        """The timer armed from `next_deadline()` went off (early calls do nothing)."""
        return self.handle(TimerFired(self.call), now)

    # ------------------------------------------------------------------ primitives for visits

    def goto(self, name: str, now: float) -> None:
        """Enter the node `name`."""
        self._hops += 1
        if self._hops > MAX_INSTANT_HOPS:
            self.vars["ivr.error"] = f"more than {MAX_INSTANT_HOPS} nodes without a wait"
            self.fail(None, now)
            return
        self._path.append(name)
        self._node_deadline = None
        node = self.flow.nodes[name]
        self._visit = VISITS[type(node)](self, name, node)
        self._visit.enter(now)

    def play(
        self,
        prompts: tuple[str, ...],
        barge_in: bool,
        then: Callable[[float], None],
        now: float,
    ) -> None:
        """Play `prompts` (templates), then call `then(now)`; at once when none renders."""
        names = tuple(name for name in (self._resolve(p, self.vars) for p in prompts) if name)
        if not names:
            then(now)
            return
        self._seq += 1
        self._playback = f"{self.call}/{self._seq}"
        self._barge_in = barge_in
        self._then = then
        self._node_deadline = None
        self.emit(Play(self.call, names, playback=self._playback, barge_in=barge_in))
        self._set_state(S.PROMPTING)

    def await_digits(self, now: float, timeout_s: float) -> None:
        """Read keys (type-ahead first) until `timeout_s` from now."""
        self._node_deadline = now + timeout_s
        self._set_state(S.AWAITING_DIGITS)

    def await_lookup(self, now: float, timeout_s: float) -> str:
        """Wait for a CustomerFound; returns the request id to put into LookupCustomer."""
        self._seq += 1
        self._node_deadline = now + timeout_s
        self._set_state(S.LOOKING_UP)
        self.stats.lookups += 1
        return f"{self.call}/lookup/{self._seq}"

    def emit(self, command: IvrCommand) -> None:
        self._out.append(command)

    def finish(self, outcome: IvrOutcome, now: float) -> None:
        self._outcome = outcome
        self.ended_at = now
        self._playback = self._then = None
        self._node_deadline = self._max_deadline = None
        self._set_state(S.FINISHED)

    def fail(self, on_failure: str | None, now: float) -> None:
        """Go to `on_failure`, or hang up with cause ``ivr_failure``."""
        if on_failure is not None:
            self.goto(on_failure, now)
            return
        self.emit(Hangup(self.call, "ivr_failure"))
        self.finish(IvrOutcome("failed", cause="ivr_failure"), now)

    def render(self, template: str) -> str:
        return render(template, self.vars, self.flow.language)

    # ------------------------------------------------------------------ state machine

    def _set_state(self, new: IvrState) -> None:
        old = self._state
        if (old, new) not in TRANSITIONS:
            raise LocalProtocolError(f"IVR session {self.call}: illegal {old.value} -> {new.value}")
        self._state = new
        if new in (S.PROMPTING, S.AWAITING_DIGITS):
            self._hops = 0  # the caller gets a say: not a runaway chain

    def _run(self, step: Callable[[], None], now: float) -> list[IvrCommand]:
        self._out = []
        step()
        # Type-ahead: keys already typed go to the node now reading keys.
        while self._state is S.AWAITING_DIGITS and self.buffer and self._visit is not None:
            self._visit.digit(self.buffer.pop(0), now)
        out, self._out = self._out, []
        return out

    def _render_prompt(self, template: str, variables: Mapping[str, str]) -> str:
        return render(template, variables, self.flow.language)

    # ------------------------------------------------------------------ event handlers

    def _on_digit(self, event: DtmfReceived, now: float) -> None:
        if event.digit not in VALID_DIGITS:
            return  # not a key of a telephone keypad: ignored, like noise
        self.stats.digits += 1
        assert self._visit is not None
        if self._state is S.AWAITING_DIGITS:
            self._visit.digit(event.digit, now)
        elif self._state is S.PROMPTING and self._barge_in:
            self.emit(StopPlayback(self.call))
            self.buffer.append(event.digit)
            self._prompt_ended(now)
        else:
            self.buffer.append(event.digit)

    def _on_playback_finished(self, event: PlaybackFinished, now: float) -> None:
        if event.playback == self._playback:
            self._prompt_ended(now)
        # else: the end of a playback we already left (barge-in, StopPlayback): nothing to do

    def _prompt_ended(self, now: float) -> None:
        then = self._then
        self._playback = self._then = None
        assert then is not None
        then(now)

    def _on_timer(self, _event: TimerFired, now: float) -> None:
        if self._max_deadline is not None and now >= self._max_deadline:
            self._max_duration_reached(now)
        elif self._node_deadline is not None and now >= self._node_deadline:
            self._node_deadline = None
            self.stats.timeouts += 1
            assert self._visit is not None
            self._visit.timeout(now)

    def _max_duration_reached(self, now: float) -> None:
        if self._playback is not None:
            self.emit(StopPlayback(self.call))
        self._playback = self._then = None
        self.buffer.clear()
        target = self.flow.on_max_duration
        if target is not None and not self._overtime:
            self._overtime = True
            self._max_deadline = now + OVERTIME_GRACE_S
            self.goto(target, now)
            return
        self.emit(Hangup(self.call, "ivr_timeout"))
        self.finish(IvrOutcome("timed_out", cause="ivr_timeout"), now)

    def _on_customer_found(self, event: CustomerFound, now: float) -> None:
        assert self._visit is not None
        self._visit.customer_found(event, now)

    def _on_hung_up(self, event: HungUp, now: float) -> None:
        self.finish(IvrOutcome("hung_up", cause=event.cause), now)

    def _on_media_timeout(self, _event: MediaTimedOut, now: float) -> None:
        self.emit(Hangup(self.call, "rtp_timeout"))
        self.finish(IvrOutcome("hung_up", cause="rtp_timeout"), now)

    def _ignore(self, _event: IvrEvent, _now: float) -> None:
        # Late events after the session finished (the owner may have queued them already),
        # or a stale CustomerFound whose look-up timed out.
        return


_Handler = Callable[[IvrSession, IvrEvent, float], None]
_COMMON: dict[type, _Handler] = {
    DtmfReceived: IvrSession._on_digit,  # type: ignore[dict-item]
    PlaybackFinished: IvrSession._on_playback_finished,  # type: ignore[dict-item]
    TimerFired: IvrSession._on_timer,  # type: ignore[dict-item]
    HungUp: IvrSession._on_hung_up,  # type: ignore[dict-item]
    MediaTimedOut: IvrSession._on_media_timeout,  # type: ignore[dict-item]
}
# Which event is legal in which state, and who handles it.
_DISPATCH: dict[tuple[IvrState, type], _Handler] = {
    **{(S.PROMPTING, kind): handler for kind, handler in _COMMON.items()},
    (S.PROMPTING, CustomerFound): IvrSession._ignore,
    **{(S.AWAITING_DIGITS, kind): handler for kind, handler in _COMMON.items()},
    (S.AWAITING_DIGITS, CustomerFound): IvrSession._ignore,
    **{(S.LOOKING_UP, kind): handler for kind, handler in _COMMON.items()},
    (S.LOOKING_UP, CustomerFound): IvrSession._on_customer_found,  # type: ignore[dict-item]
    **{
        (S.FINISHED, kind): IvrSession._ignore
        for kind in (DtmfReceived, PlaybackFinished, TimerFired, HungUp, MediaTimedOut)
    },
    (S.FINISHED, CustomerFound): IvrSession._ignore,
}
