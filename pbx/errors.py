"""Errors shared across layers (L0).

A peer's bad input becomes a `SipParseError` that carries the status to answer with (400, 420,
505, 513); our own misuse of an API becomes a `LocalProtocolError`. Neither ever leaks out of the
transport pump: the pump turns the first into a stateless response (or a drop) and logs it.
"""

from __future__ import annotations


class PbxError(Exception):
    """Base of the errors this package raises on purpose."""


class SipParseError(PbxError, ValueError):
    """A received SIP message is malformed.

    `status` and `reason` are what a stateless answer should say (RFC 3261 §21.4.1: the reason
    phrase tells the peer what is wrong). `partial` holds whatever headers were read before the
    error, so a 400 can still be routed back when the Via, From, To, Call-ID and CSeq survived.
    """

    def __init__(
        self,
        reason: str,
        status: int = 400,
        partial: object | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.partial = partial


class LocalProtocolError(PbxError):
    """We tried to do something the protocol does not allow (a bug on our side)."""
