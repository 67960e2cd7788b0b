"""The log of series whose values rose, read by leaderboards to catch up lazily."""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


class TouchLog:
    """Series ids touched by each ingested batch, numbered by a sequence.

    Holds at most ``capacity`` ids; older batches are dropped, and a reader that fell behind
    them gets ``None`` (it must rebuild from scratch).
    """

    def __init__(self, capacity: int = 4_000_000) -> None:
        self.capacity = capacity
        self.seq = 0
        self._batches: deque[tuple[int, IntArray]] = deque()
        self._size = 0

    def append(self, series: IntArray) -> None:
        """Record one batch of touched series."""
        self.seq += 1
        self._batches.append((self.seq, series))
        self._size += len(series)
        while self._size > self.capacity and len(self._batches) > 1:
            _, dropped = self._batches.popleft()
            self._size -= len(dropped)

    def since(self, seq: int) -> IntArray | None:
        """Series touched after sequence ``seq``, or ``None`` if part of that was dropped."""
        if seq >= self.seq:
            return np.zeros(0, dtype=np.int64)
        if not self._batches or self._batches[0][0] > seq + 1:
            return None
        parts = [s for n, s in self._batches if n > seq]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
