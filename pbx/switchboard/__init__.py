"""The switchboard: the asyncio side of the call layer (see `pbx.switchboard.board`)."""

from pbx.call.machine import Call, CallRouter
from pbx.switchboard.board import Switchboard

__all__ = ["Call", "CallRouter", "Switchboard"]
