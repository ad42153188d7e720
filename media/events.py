"""Events the media engine reports upwards. Past tense, frozen, with slots; no positional tuples.

Callers (the call layer) pull them with `MediaEngine.next_event()` or register a listener.
Every event names the session it concerns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DtmfMethod(enum.Enum):
    RFC4733 = "rfc4733"
    INBAND = "inband"


class PlaybackEnd(enum.Enum):
    COMPLETED = "completed"  # the source ran out
    STOPPED = "stopped"  # stop() was called
    BARGE_IN = "barge_in"  # a digit interrupted a barge-in playback
    REPLACED = "replaced"  # another play() took over the session
    CLOSED = "closed"  # the session was closed while playing


@dataclass(frozen=True, slots=True)
class RtpStarted:
    """The first valid RTP packet arrived (or media resumed after a timeout); the session
    latched onto its source address."""

    session_id: str
    remote_address: str
    remote_port: int


@dataclass(frozen=True, slots=True)
class RtpTimedOut:
    """No RTP for the configured timeout while the peer was expected to send."""

    session_id: str
    silent_for_s: float


@dataclass(frozen=True, slots=True)
class DtmfDetected:
    """One key press, reported once (RFC 4733 packets deduplicated, tones debounced)."""

    session_id: str
    digit: str
    method: DtmfMethod


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    session_id: str
    playback_id: str
    reason: PlaybackEnd


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    """A recording of the session could not be written on (disk full, file gone); what was
    written stays, the session goes on unrecorded."""

    session_id: str
    recording_id: str
    path: str
    error: str


MediaEvent = RtpStarted | RtpTimedOut | DtmfDetected | PlaybackFinished | RecordingFailed
