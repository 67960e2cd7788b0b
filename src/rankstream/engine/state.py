"""The engine's captured state: what a snapshot holds, as typed, immutable structs.

:meth:`TopKEngine.capture <rankstream.engine.core.TopKEngine.capture>` returns an
:class:`EngineState`; :mod:`rankstream.engine.snapshot` encodes it to bytes (MessagePack)
and decodes it back, validating every field's type; :func:`~rankstream.engine.split.split_state`
cuts it by partition; :meth:`TopKEngine.from_state
<rankstream.engine.core.TopKEngine.from_state>` rebuilds an engine from it.

numpy arrays are held as :class:`PackedArray` (dtype, shape, raw bytes): packing is one
copy per array, the cheap part of a checkpoint, and the bytes encode as they are. The
struct is frozen and shares no memory with the engine, so a caller can encode it after
releasing the engine's lock.

Field names and array layouts match the version-1 snapshot map (which was untyped), so
:func:`from_v1` only has to name what changed: ``stats`` was a list, ``partition`` absent.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.engine.windows import WindowSpec
from rankstream.errors import SnapshotError

WindowShape = tuple[str, str, int, int, str | None]
"""A window's definition as stored: ``(name, kind, resolution, size, unit)``."""


class PackedArray(msgspec.Struct, frozen=True, gc=False):
    """A numpy array as MessagePack-friendly fields: ``dtype`` (numpy's ``dtype.str``,
    e.g. ``"<i8"``), ``shape`` and the C-ordered raw ``data``."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    @classmethod
    def of(cls, array: npt.NDArray[Any]) -> PackedArray:
        """A copy of ``array``, packed."""
        contiguous = np.ascontiguousarray(array)
        return cls(contiguous.dtype.str, tuple(contiguous.shape), contiguous.tobytes())

    def unpack(self) -> npt.NDArray[Any]:
        """The array (a writable copy). Raises :class:`SnapshotError` if the fields do not
        describe one."""
        try:
            flat = np.frombuffer(self.data, dtype=np.dtype(self.dtype))
            return flat.reshape(self.shape).copy()
        except (TypeError, ValueError) as exc:
            raise SnapshotError(f"corrupt array in snapshot: {exc}") from exc


class Counters(msgspec.Struct, frozen=True, gc=False):
    """The engine's running statistics (:class:`~rankstream.engine.core.EngineStats`).
    New counters get a default, so older snapshots without them still decode."""

    accepted: int = 0
    duplicates: int = 0
    rejected_too_new: int = 0
    late_dropped: int = 0
    rejected_over_capacity: int = 0


class WindowValues(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One window's bounds and its running value per series (stored as an array, as in
    version 1)."""

    start: int
    end: int
    values: PackedArray


class BucketTable(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """Every bucket of one resolution, one entry per (bucket, cell): bucket numbers,
    cells and summed counts, sorted by bucket (stored as an array, as in version 1)."""

    resolution: int
    buckets: PackedArray
    cells: PackedArray
    counts: PackedArray


class EngineState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an engine needs to continue exactly, and nothing it rebuilds (caches).

    ``partition``: which partition of the event log this state holds (0 for an engine
    that holds all of it). ``windows``: the definitions the state was counted for (a
    restore with other windows is refused). ``now``: the engine clock (``None`` before the
    first event). The tables, by code: ``videos`` (ids) with their ``video_keys`` (sort
    keys), ``categories`` and ``regions`` (labels; code 0, "absent", is not stored),
    ``cells``, ``cell_series``, ``scopes``, ``series`` (int64 keys; see
    :mod:`rankstream.engine.core`), ``series_video`` and ``series_scope``. Then one
    :class:`WindowValues` per window, in configuration order, one :class:`BucketTable` per
    bucket resolution, ascending, the remembered ``(event_id, arrival)`` pairs in arrival
    order and the de-dup eviction count.
    """

    partition: int = 0
    windows: tuple[WindowShape, ...]
    now: int | None
    stats: Counters
    videos: tuple[str, ...]
    video_keys: PackedArray
    categories: tuple[str, ...]
    regions: tuple[str, ...]
    cells: PackedArray
    cell_series: PackedArray
    scopes: PackedArray
    series: PackedArray
    series_video: PackedArray
    series_scope: PackedArray
    window_state: tuple[WindowValues, ...]
    buckets: tuple[BucketTable, ...]
    dedup: tuple[tuple[str, int], ...]
    dedup_evicted: int


def window_shape(spec: WindowSpec) -> WindowShape:
    """How ``spec`` is recorded in a state."""
    return (spec.name, spec.kind, spec.resolution, spec.size, spec.unit)


def from_v1(raw: object) -> EngineState:
    """The state held by a version-1 snapshot payload (an untyped map).

    Version 1 stored the same fields without ``partition`` (its engines held the whole
    log: partition 0) and ``stats`` as a positional list, shorter in older releases.
    Raises :class:`SnapshotError` if the map is not a version-1 state.
    """
    if not isinstance(raw, dict):
        raise SnapshotError("snapshot payload is not a map")
    stats = raw.get("stats")
    if not isinstance(stats, list) or len(stats) > len(Counters.__struct_fields__):
        raise SnapshotError("snapshot statistics are not a list of counters")
    fields = dict(zip(Counters.__struct_fields__, stats, strict=False))
    try:
        return msgspec.convert({**raw, "stats": fields}, EngineState)
    except msgspec.ValidationError as exc:
        raise SnapshotError(f"snapshot content is inconsistent: {exc}") from exc
