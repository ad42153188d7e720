"""The SIP transport's pump: output handed to the endpoint outside a pump goes out on the
loop's next turn, once however often it was asked for, and a handler running inside the pump
never re-enters it."""

from __future__ import annotations

import asyncio
from typing import Any

from pbx.transport.sip import SipTransport


class CountingEndpoint:
    """Just the pulled interface of `SipEndpoint` the pump uses, counting the pulls."""

    def __init__(self, events: list[object]) -> None:
        self.events = events
        self.pulls = 0

    def next_event(self) -> object | None:
        return self.events.pop(0) if self.events else None

    def datagrams_to_send(self) -> list[tuple[bytes, Any]]:
        self.pulls += 1
        return []

    def get_timer(self) -> float | None:
        return None


def test_transmit_soon_pumps_once_on_the_next_turn() -> None:
    async def run() -> int:
        endpoint = CountingEndpoint([])
        transport = SipTransport(endpoint, lambda event: None)  # type: ignore[arg-type]
        for _ in range(5):
            transport.transmit_soon()
        assert endpoint.pulls == 0  # not now: from inside a handler this would re-enter
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return endpoint.pulls

    assert asyncio.run(run()) == 1


def test_a_handler_asking_to_transmit_does_not_re_enter_or_reschedule_the_pump() -> None:
    depth = []

    async def run() -> int:
        endpoint = CountingEndpoint(["a", "b"])
        transport: SipTransport

        def handler(event: object) -> None:
            depth.append(transport._pumping)
            transport.transmit_soon()  # the running pump sends what the handler queued

        transport = SipTransport(endpoint, handler)  # type: ignore[arg-type]
        transport.pump()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return endpoint.pulls

    assert asyncio.run(run()) == 1
    assert depth == [True, True]
