"""The switchboard: the asyncio side of the call layer (see `pbx.switchboard.board`)."""

from pbx.switchboard.board import Switchboard
from pbx.switchboard.context import CallContext, CallRouter

__all__ = ["CallContext", "CallRouter", "Switchboard"]
