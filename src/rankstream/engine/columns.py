"""Growable numpy columns and string interning: the engine's tables.

Strings (video ids, categories, regions) become dense integer codes once, so every later
step of the engine is vectorised numpy over integers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from itertools import islice
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
    """Dense codes ``0, 1, 2...`` for hashable values, in first-seen order.

    ``encode`` assigns codes to unseen values in C (a ``defaultdict`` whose factory is its
    own length), so interning costs one dict lookup per value.
    """

    def __init__(self, values: Iterable[K] = ()) -> None:
        self._codes: defaultdict[K, int] = defaultdict()
        self._codes.default_factory = self._codes.__len__
        self.values: list[K] = []
        self.encode(list(values))

    def __len__(self) -> int:
        return len(self.values)

    def encode(self, items: Sequence[K]) -> npt.NDArray[np.int64]:
        """Codes of ``items``; unseen items get the next codes."""
        before = len(self._codes)
        codes = np.fromiter(map(self._codes.__getitem__, items), np.int64, len(items))
        self._note_added(before)
        return codes

    def code(self, item: K) -> int:
        """The code of one item, assigning one if unseen."""
        before = len(self._codes)
        code = self._codes[item]
        self._note_added(before)
        return code

    def get(self, item: K) -> int | None:
        """The code of ``item`` or ``None``, without assigning."""
        return self._codes.get(item)

    def _note_added(self, before: int) -> None:
        added = len(self._codes) - before
        if added:
            self.values.extend(reversed(list(islice(reversed(self._codes), added))))


def id_sort_keys(ids: Sequence[str]) -> npt.NDArray[np.uint64]:
    """Two uint64 keys per id: its first 16 UTF-8 bytes, big-endian, zero padded.

    UTF-8 byte order is code point order, and ids hold no NUL, so comparing these keys
    orders ids exactly unless two ids share their first 16 bytes (both then are longer).
    """
    raw = b"".join(s.encode("utf-8", "surrogatepass")[:16].ljust(16, b"\0") for s in ids)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)
