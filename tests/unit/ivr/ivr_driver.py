"""A fake call layer and media engine around one `IvrSession`, with a fake clock.

`Caller` does what the owner of a session does in production: feeds it events, plays what it
asks (a playback ends when the test says so), answers look-ups from an in-memory directory
when told to, and fires its timer when the test moves the clock. Every command is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml

from pbx.call.events import (
    DtmfReceived,
    HungUp,
    MediaTimedOut,
    Play,
    PlaybackFinished,
    StopPlayback,
)
from pbx.ivr.events import CustomerFound, IvrCommand, LookupCustomer
from pbx.ivr.hooks import Hook
from pbx.ivr.runner import IvrSession, PromptResolver
from pbx.ivr.schema import FlowConfig
from pbx.repositories import Customer

BERLIN = ZoneInfo("Europe/Berlin")
# Tuesday 2026-03-10, 10:00 in Berlin: inside business hours, not a holiday.
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=BERLIN).timestamp()


def flow(text: str) -> FlowConfig:
    """A flow from YAML text (the same shape as under ``flows.<name>`` in the config)."""
    return FlowConfig.model_validate(yaml.safe_load(text))


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> float:
    """A Berlin wall-clock time as epoch seconds."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp()


class InMemoryDirectory:
    """`CustomerDirectory` for the pure layers' tests."""

    def __init__(self, customers: list[Customer]) -> None:
        self.customers = customers

    def by_number(self, customer_no: str) -> Customer | None:
        return next((c for c in self.customers if c.customer_no == customer_no), None)

    def by_phone(self, phone: str) -> Customer | None:
        return next((c for c in self.customers if phone in c.phone_numbers), None)


class Caller:
    def __init__(
        self,
        flow_config: FlowConfig | str,
        variables: Mapping[str, str] | None = None,
        *,
        now: float = T0,
        hooks: Mapping[str, Hook] | None = None,
        directory: InMemoryDirectory | None = None,
        resolve_prompt: PromptResolver | None = None,
        call: str = "c1",
    ) -> None:
        config = flow(flow_config) if isinstance(flow_config, str) else flow_config
        self.call = call
        self.now = now
        self.directory = directory or InMemoryDirectory([])
        self.session = IvrSession(
            config,
            call,
            {"caller": "+4930999", **(variables or {})},
            hooks=hooks,
            tz=BERLIN,
            resolve_prompt=resolve_prompt,
        )
        self.commands: list[IvrCommand] = []
        self.playing: Play | None = None  # what the fake media engine plays now
        self.pending_lookup: LookupCustomer | None = None

    # ------------------------------------------------------------------ driving

    def start(self) -> list[IvrCommand]:
        return self._record(self.session.start(self.now))

    def press(
        self, keys: str, order: Literal["dtmf_first", "stop_first"] = "dtmf_first"
    ) -> list[IvrCommand]:
        """Press keys one by one. A barge-in playback is stopped by the engine, which reports
        the key and the interrupted playback (in `order`)."""
        out: list[IvrCommand] = []
        for key in keys:
            playing = self.playing
            digit = DtmfReceived(self.call, key)
            if playing is not None and playing.barge_in:
                self.playing = None
                stopped = PlaybackFinished(self.call, playing.playback, interrupted=True)
                events: list[Any] = [digit, stopped] if order == "dtmf_first" else [stopped, digit]
                for event in events:
                    out += self._feed(event)
            else:
                out += self._feed(digit)
        return out

    def play_out(self) -> list[IvrCommand]:
        """The current playback ends normally."""
        assert self.playing is not None, "nothing is playing"
        playing, self.playing = self.playing, None
        return self._feed(PlaybackFinished(self.call, playing.playback))

    def play_all(self, limit: int = 20) -> list[IvrCommand]:
        """Let every prompt play to its end until the session waits for something else."""
        out: list[IvrCommand] = []
        while self.playing is not None and limit:
            out += self.play_out()
            limit -= 1
        return out

    def wait(self, seconds: float) -> list[IvrCommand]:
        """Move the clock, firing the session's timer at each deadline on the way."""
        target = self.now + seconds
        out: list[IvrCommand] = []
        while True:
            deadline = self.session.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            out += self._record(self.session.handle_timer(self.now))
        self.now = target
        return out

    def answer_lookup(self, error: str = "") -> list[IvrCommand]:
        """The directory answers the pending look-up."""
        request = self.pending_lookup
        assert request is not None, "no look-up pending"
        self.pending_lookup = None
        if error:
            customer = None
        elif request.by == "phone":
            customer = self.directory.by_phone(request.value)
        else:
            customer = self.directory.by_number(request.value)
        return self._feed(CustomerFound(self.call, request.request, customer, error))

    def hang_up(self) -> list[IvrCommand]:
        return self._feed(HungUp(self.call, by="remote", cause="normal"))

    def media_timeout(self) -> list[IvrCommand]:
        return self._feed(MediaTimedOut(self.call))

    # ------------------------------------------------------------------ looking

    def now_playing(self) -> tuple[str, ...]:
        """What is playing now (empty when nothing is)."""
        return self.playing.prompts if self.playing else ()

    def played(self) -> list[tuple[str, ...]]:
        """Every playlist the session asked for, in order."""
        return [c.prompts for c in self.commands if isinstance(c, Play)]

    def last(self) -> IvrCommand:
        return self.commands[-1]

    # ------------------------------------------------------------------ internals

    def _feed(self, event: Any) -> list[IvrCommand]:
        return self._record(self.session.handle(event, self.now))

    def _record(self, commands: list[IvrCommand]) -> list[IvrCommand]:
        for command in commands:
            if isinstance(command, StopPlayback):
                self.playing = None
            elif isinstance(command, Play):
                self.playing = command
            elif isinstance(command, LookupCustomer):
                self.pending_lookup = command
        self.commands += commands
        return commands
