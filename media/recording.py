"""Recording a session or a bridge to a WAV file, one 20 ms frame per media-clock tick.

The session (or both sessions of a bridge) push decoded frames into the recording's two
`FrameQueue`s as packets arrive or leave; the media clock calls `tick()` once per 20 ms, which
takes one frame per channel (silence when a channel has nothing) and appends it. So the file
keeps wall-clock time even when a side is silent or loses packets. Mono files hold the mix,
stereo files hold left = caller (what the session received, or side A of a bridge) and
right = the other party. Frames are written in batches to keep the event loop's file I/O small.

A paused recording drops what arrives (nothing is written until it resumes): the agent's "stop
recording" on the desk keeps one file per call. A write that fails (disk full, the file gone)
ends the recording there — the file keeps what was written, `failed` says why — and never
disturbs the media clock that ticks it.
"""

from __future__ import annotations

import contextlib
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import structlog

from media.mixer import FrameQueue, interleave, mix

FRAME_SAMPLES: Final = 160
_SILENCE: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_BATCH_FRAMES: Final = 50  # one second per write
log = structlog.get_logger("media.recording")

Int16Array = npt.NDArray[np.int16]


@dataclass(slots=True, eq=False)
class Recording:
    """An open WAV recording. Raises OSError from the constructor if the file can't be made."""

    recording_id: str
    path: Path
    stereo: bool = False
    left: FrameQueue[Int16Array] = field(default_factory=lambda: FrameQueue(capacity=5))
    right: FrameQueue[Int16Array] = field(default_factory=lambda: FrameQueue(capacity=5))
    frames_written: int = 0
    paused: bool = False
    failed: str = ""
    _pending: list[bytes] = field(default_factory=list)
    _wav: wave.Wave_write | None = None

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wav = wave.open(str(self.path), "wb")
        wav.setnchannels(2 if self.stereo else 1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        self._wav = wav

    @property
    def closed(self) -> bool:
        return self._wav is None

    def tick(self) -> None:
        """Append one 20 ms frame (per channel) from what the queues hold."""
        if self._wav is None:
            return
        left = self.left.pop()
        right = self.right.pop()
        if self.paused:
            return
        if self.stereo:
            frame = interleave(
                _SILENCE if left is None else left, _SILENCE if right is None else right
            )
        elif left is None and right is None:
            frame = _SILENCE
        else:
            frame = mix(left, right)
        self._pending.append(frame.astype("<i2").tobytes())
        self.frames_written += 1
        if len(self._pending) >= _BATCH_FRAMES:
            self._flush()

    def _flush(self) -> None:
        if self._wav is not None and self._pending:
            try:
                self._wav.writeframes(b"".join(self._pending))
            except OSError as error:
                self._fail(error)
        self._pending.clear()

    def _fail(self, error: OSError) -> None:
        # Disk full or the file gone: stop here; what is written stays (the header may
        # understate the length, which WAV readers take as a short file).
        self.failed = error.strerror or str(error)
        wav, self._wav = self._wav, None
        if wav is not None:
            with contextlib.suppress(OSError, wave.Error):
                wav.close()
        log.error("recording_failed", recording_id=self.recording_id, path=str(self.path),
                  error=self.failed)

    def close(self) -> None:
        """Write what is pending and finalise the WAV header; idempotent."""
        if self._wav is None:
            return
        self._flush()
        if self._wav is None:
            return
        try:
            self._wav.close()
        except OSError as error:
            self._fail(error)
        self._wav = None
