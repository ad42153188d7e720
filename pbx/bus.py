"""A small synchronous publish/subscribe bus for events between services — L0, pure.

The registrar publishes `RegistrationChanged`; the ACD and CTI subscribe. Subscribers are plain
callables registered per event type; a failing subscriber is reported through `on_error` and
does not stop the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Subscriber = Callable[[Any], None]


class EventBus:
    def __init__(self, on_error: Callable[[object, Exception], None] | None = None) -> None:
        self._subscribers: dict[type, list[Subscriber]] = {}
        self._on_error = on_error

    def subscribe(self, event_type: type, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(event_type, []).append(subscriber)

    def publish(self, event: object) -> None:
        for subscriber in self._subscribers.get(type(event), ()):
            try:
                subscriber(event)
            except Exception as exc:  # one broken subscriber must not starve the others
                if self._on_error is None:
                    raise
                self._on_error(event, exc)
