"""Mixing and frame queues for bridges and recordings (pure numpy, no I/O).

A `FrameQueue` is the small buffer between a packet arriving (on the network's schedule) and
the 20 ms tick that consumes it (on the media clock). It holds at most ``capacity`` frames and
drops the oldest beyond that, so a burst cannot build up latency; the drops are counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
T = TypeVar("T")


def mix(*frames: Int16Array | None) -> Int16Array:
    """Sum frames of equal length with saturation at the 16-bit limits; None is silence."""
    present = [frame for frame in frames if frame is not None]
    if not present:
        raise ValueError("mix() needs at least one frame")
    total = np.zeros(len(present[0]), dtype=np.int32)
    for frame in present:
        if len(frame) != len(total):
            raise ValueError(f"cannot mix frames of {len(frame)} and {len(total)} samples")
        total += frame
    return np.clip(total, -32768, 32767).astype(np.int16)


def interleave(left: Int16Array, right: Int16Array) -> Int16Array:
    """Two mono frames as one stereo frame (L, R, L, R, ...)."""
    if len(left) != len(right):
        raise ValueError(f"cannot interleave {len(left)} and {len(right)} samples")
    stereo = np.empty(2 * len(left), dtype=np.int16)
    stereo[0::2] = left
    stereo[1::2] = right
    return stereo


def scale(frame: Int16Array, gain_db: float) -> Int16Array:
    """Apply a gain with saturation."""
    factor = 10 ** (gain_db / 20)
    return np.clip(np.round(frame.astype(np.float64) * factor), -32768, 32767).astype(np.int16)


@dataclass(slots=True, eq=False)
class FrameQueue(Generic[T]):
    """Bounded FIFO of frames; `push` drops the oldest when full, `pop` returns None when empty."""

    capacity: int = 3
    dropped: int = 0
    underruns: int = 0
    _frames: deque[T] = field(default_factory=deque)

    def push(self, frame: T) -> None:
        if len(self._frames) >= self.capacity:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)

    def pop(self) -> T | None:
        if self._frames:
            return self._frames.popleft()
        self.underruns += 1
        return None

    def clear(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)
