"""Growable numpy columns, string interning and integer indexes: the engine's tables.

Strings (video ids, categories, regions) become dense integer codes once, so every later
step of the engine is vectorised numpy over integers.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from itertools import repeat
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K", bound=Hashable)


class Column:
    """An append-only numpy array with amortised O(1) growth; new rows are zero."""

    def __init__(self, dtype: npt.DTypeLike, width: int = 0, capacity: int = 1024) -> None:
        self._shape_tail: tuple[int, ...] = (width,) if width else ()
        self._data: npt.NDArray[Any] = np.zeros((capacity, *self._shape_tail), dtype=dtype)
        self.size = 0

    @property
    def view(self) -> npt.NDArray[Any]:
        """The live rows (a view, not a copy)."""
        return self._data[: self.size]

    def grow_to(self, size: int) -> None:
        """Make rows ``[0, size)`` live; rows added are zero."""
        if size > len(self._data):
            capacity = max(size, 2 * len(self._data))
            data = np.zeros((capacity, *self._shape_tail), dtype=self._data.dtype)
            data[: self.size] = self._data[: self.size]
            self._data = data
        self.size = max(self.size, size)

    def extend(self, rows: npt.ArrayLike) -> None:
        """Append rows at the end."""
        values = np.asarray(rows, dtype=self._data.dtype)
        start = self.size
        self.grow_to(start + len(values))
        self._data[start : self.size] = values

    @classmethod
    def of(cls, rows: npt.NDArray[Any]) -> Column:
        """A column holding a copy of ``rows``."""
        column = cls(rows.dtype, rows.shape[1] if rows.ndim == 2 else 0, max(len(rows), 16))
        column.extend(rows)
        return column


class Interner(Generic[K]):
    """Dense codes ``0, 1, 2...`` for hashable values (strings), in first-seen order.

    Known values cost one C-level dict lookup each (``map(dict.get, ...)``); only unseen
    ones go through Python. The dict is a plain one holding only strings and ints, so the
    garbage collector untracks it instead of walking it on every full collection.
    """

    def __init__(self, values: Iterable[K] = ()) -> None:
        self._codes: dict[K, int] = {}
        self.values: list[K] = []
        self.encode(list(values))

    def __len__(self) -> int:
        return len(self.values)

    def encode(self, items: Sequence[K]) -> npt.NDArray[np.int64]:
        """Codes of ``items``; unseen items get the next codes."""
        return self.assign(items, self.lookup(items))

    def assign(self, items: Sequence[K], codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``codes`` (from :meth:`lookup` of ``items``, nothing assigned since) completed:
        the ``-1`` of unseen items replaced, in place, by the next codes."""
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            known, values = self._codes, self.values
            for i in missing.tolist():
                item = items[i]
                code = known.get(item)
                if code is None:
                    code = known[item] = len(values)
                    values.append(item)
                codes[i] = code
        return codes

    def get(self, item: K) -> int | None:
        """The code of ``item`` or ``None``, without assigning."""
        return self._codes.get(item)

    def lookup(self, items: Sequence[K]) -> npt.NDArray[np.int64]:
        """Codes of ``items``, ``-1`` for unseen ones; assigns nothing (one C-level dict
        lookup per item)."""
        return np.fromiter(map(self._codes.get, items, repeat(-1)), np.int64, len(items))


class IntIndex:
    """Dense codes for int64 keys, in first-seen order, held in numpy arrays.

    A sorted copy of the keys and their codes answers lookups by binary search, so millions
    of keys cost 24 bytes each and no Python objects. Keys added since the last merge wait
    in a small dict, merged into the sorted arrays once it reaches an eighth of them, so a
    batch that adds a few keys does not copy millions.
    """

    def __init__(self, keys: npt.NDArray[np.int64] | None = None) -> None:
        self.keys = Column(np.int64)  # by code
        self._sorted = np.zeros(0, dtype=np.int64)
        self._sorted_codes = np.zeros(0, dtype=np.int64)
        self._recent: dict[int, int] = {}
        if keys is not None and len(keys):
            self.keys.extend(keys)
            self._sorted_codes = np.argsort(keys, kind="stable")
            self._sorted = keys[self._sorted_codes]

    def __len__(self) -> int:
        return self.keys.size

    def encode_unique(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Codes of sorted, unique ``keys``; unseen keys get the next codes, ascending."""
        pos = np.searchsorted(self._sorted, keys)
        inside = pos < len(self._sorted)
        found = np.zeros(len(keys), dtype=bool)
        found[inside] = self._sorted[pos[inside]] == keys[inside]
        codes = np.empty(len(keys), dtype=np.int64)
        codes[found] = self._sorted_codes[pos[found]]
        missing = np.flatnonzero(~found)
        if len(missing):
            recent = self._recent
            wanted = keys[missing].tolist()
            looked_up = np.fromiter(map(recent.get, wanted, repeat(-1)), np.int64, len(wanted))
            fresh = looked_up < 0
            if fresh.any():
                new_keys = keys[missing[fresh]]
                new_codes = np.arange(self.keys.size, self.keys.size + len(new_keys))
                looked_up[fresh] = new_codes
                recent.update(zip(new_keys.tolist(), new_codes.tolist(), strict=True))
                self.keys.extend(new_keys)
            codes[missing] = looked_up
            if len(recent) > max(4096, len(self._sorted) // 8):
                self._merge_recent()
        return codes

    def _merge_recent(self) -> None:
        recent_keys = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
        recent_codes = np.fromiter(self._recent.values(), np.int64, len(self._recent))
        order = np.argsort(recent_keys)
        positions = np.searchsorted(self._sorted, recent_keys[order])
        self._sorted = np.insert(self._sorted, positions, recent_keys[order])
        self._sorted_codes = np.insert(self._sorted_codes, positions, recent_codes[order])
        self._recent = {}

    def encode(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Codes of any ``keys`` (repeats allowed); unseen keys get the next codes."""
        unique, inverse = np.unique(keys, return_inverse=True)
        return self.encode_unique(unique)[inverse]

    @property
    def nbytes(self) -> int:
        """Bytes of the numpy arrays (keys by code, sorted keys, their codes)."""
        return self.keys.view.nbytes + self._sorted.nbytes + self._sorted_codes.nbytes

    def find(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Codes of any ``keys``, ``-1`` for unseen ones; assigns nothing."""
        codes = np.full(len(keys), -1, dtype=np.int64)
        if len(self._sorted):
            pos = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
            found = self._sorted[pos] == keys
            codes[found] = self._sorted_codes[pos[found]]
        if self._recent:
            missing = np.flatnonzero(codes < 0)
            if len(missing):
                wanted = keys[missing].tolist()
                codes[missing] = np.fromiter(
                    map(self._recent.get, wanted, repeat(-1)), np.int64, len(wanted)
                )
        return codes

    def get(self, key: int) -> int | None:
        """The code of ``key`` or ``None``, without assigning."""
        pos = int(np.searchsorted(self._sorted, key))
        if pos < len(self._sorted) and int(self._sorted[pos]) == key:
            return int(self._sorted_codes[pos])
        return self._recent.get(key)


def id_sort_keys(ids: Sequence[str]) -> npt.NDArray[np.uint64]:
    """Two uint64 keys per id: its first 16 UTF-8 bytes, big-endian, zero padded.

    UTF-8 byte order is code point order, and ids hold no NUL, so comparing these keys
    orders ids exactly unless two ids share their first 16 bytes (both then are longer).
    """
    raw = b"".join(s.encode("utf-8", "surrogatepass")[:16].ljust(16, b"\0") for s in ids)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)
