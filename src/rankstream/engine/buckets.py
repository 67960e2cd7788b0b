"""Per-bucket counts at one resolution: what a sliding window subtracts when it moves on.

A bucket holds, for one time slice ``[b * resolution, (b + 1) * resolution)``, the summed
quantity of every *cell* (a video in one category and region) seen in it. Batches append
chunks; a bucket is compacted (cells made unique) when it is read or grows many chunks.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
_MIN_COMPACT = 4096  # entries a bucket's chunks may hold before any compaction


class _Bucket:
    """A compacted part (cells unique) and the chunks added since. Compacting merges the
    chunks into it once they hold as many entries as it does (or many small chunks wait),
    so each entry is re-sorted O(log n) times over the bucket's life, not once per batch."""

    __slots__ = ("base", "chunks", "pending")

    def __init__(self) -> None:
        self.base: tuple[IntArray, IntArray] = (_EMPTY, _EMPTY)
        self.chunks: list[tuple[IntArray, IntArray]] = []
        self.pending = 0  # entries in chunks

    def append(self, cells: IntArray, counts: IntArray) -> None:
        self.chunks.append((cells, counts))
        self.pending += len(cells)
        if self.pending >= max(len(self.base[0]), _MIN_COMPACT) or len(self.chunks) > 256:
            self.compact()

    def compact(self) -> tuple[IntArray, IntArray]:
        if self.chunks:
            cells = np.concatenate([self.base[0], *(c for c, _ in self.chunks)])
            counts = np.concatenate([self.base[1], *(q for _, q in self.chunks)])
            unique, inverse = np.unique(cells, return_inverse=True)
            summed = np.zeros(len(unique), dtype=np.int64)
            np.add.at(summed, inverse, counts)
            self.base = (unique, summed)
            self.chunks = []
            self.pending = 0
        return self.base

    @property
    def entries(self) -> int:
        return len(self.base[0]) + self.pending


_EMPTY: IntArray = np.zeros(0, dtype=np.int64)


class BucketStore:
    """Buckets of one resolution, keyed by bucket number ``timestamp // resolution``."""

    def __init__(self, resolution: int) -> None:
        self.resolution = resolution
        self._buckets: dict[int, _Bucket] = {}
        self._lowest = 1 << 62  # no bucket below this number is held

    def add(self, buckets: IntArray, cells: IntArray, counts: IntArray) -> None:
        """Add ``counts`` of ``cells`` to ``buckets``; entries must be sorted by bucket."""
        if len(buckets) == 0:
            return
        self._lowest = min(self._lowest, int(buckets[0]))
        starts = np.flatnonzero(np.diff(buckets)) + 1
        bounds = [0, *starts.tolist(), len(buckets)]
        for lo, hi in itertools.pairwise(bounds):
            bucket = self._buckets.setdefault(int(buckets[lo]), _Bucket())
            bucket.append(cells[lo:hi].copy(), counts[lo:hi].copy())

    def get(self, bucket: int) -> tuple[IntArray, IntArray]:
        """``(cells, counts)`` of one bucket, cells unique; empty if nothing was counted."""
        found = self._buckets.get(bucket)
        return (_EMPTY, _EMPTY) if found is None else found.compact()

    def between(self, first: int, stop: int) -> list[tuple[IntArray, IntArray]]:
        """``(cells, counts)`` of every non-empty bucket numbered in ``[first, stop)``."""
        if stop - first > len(self._buckets):
            numbers = sorted(n for n in self._buckets if first <= n < stop)
        else:
            numbers = [n for n in range(first, stop) if n in self._buckets]
        return [self.get(n) for n in numbers]

    def drop_before(self, bucket: int) -> None:
        """Forget every bucket numbered below ``bucket`` (free when there is none)."""
        if bucket <= self._lowest:
            return
        for number in [b for b in self._buckets if b < bucket]:
            del self._buckets[number]
        self._lowest = min(self._buckets, default=1 << 62)

    def numbers(self) -> list[int]:
        """Bucket numbers held, ascending."""
        return sorted(self._buckets)

    @property
    def entries(self) -> int:
        """(cell, bucket) entries held, counting uncompacted chunks."""
        return sum(b.entries for b in self._buckets.values())

    def to_arrays(self) -> tuple[IntArray, IntArray, IntArray]:
        """``(bucket per entry, cells, counts)`` of every bucket, compacted, for snapshots."""
        numbers = self.numbers()
        parts = [self.get(n) for n in numbers]
        sizes = [len(c) for c, _ in parts]
        bucket_col = np.repeat(np.asarray(numbers, dtype=np.int64), sizes)
        cells = np.concatenate([c for c, _ in parts]) if parts else _EMPTY
        counts = np.concatenate([q for _, q in parts]) if parts else _EMPTY
        return bucket_col, cells, counts


def group_by_bucket(
    numbers: IntArray, positions: IntArray, width: int, quantities: IntArray | None
) -> tuple[IntArray, IntArray, IntArray]:
    """Sum events by (bucket number, cell position): ``(buckets, positions, sums)``.

    Sorted by bucket, then position. A live batch spans few buckets, so a dense count over
    ``buckets x width`` slots (linear time) replaces a sort whenever it is small enough.
    """
    low = int(numbers.min())
    span = int(numbers.max()) - low + 1
    keys = (numbers - low) * width + positions
    if span * width <= 4 * len(keys) + 4096:
        sums = sum_by(keys, span * width, quantities)
        slots = np.flatnonzero(sums)
        return slots // width + low, slots % width, sums[slots]
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    return (
        unique_keys // width + low,
        unique_keys % width,
        sum_by(inverse, len(unique_keys), quantities),
    )


def sum_by(inverse: IntArray, size: int, quantities: IntArray | None) -> IntArray:
    """Per-group sums: counts when every event weighs 1, else summed ``quantities``."""
    if quantities is None:
        return np.bincount(inverse, minlength=size).astype(np.int64)
    summed = np.zeros(size, dtype=np.int64)
    np.add.at(summed, inverse, quantities)
    return summed
