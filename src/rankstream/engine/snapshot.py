"""The snapshot container: a versioned, checksummed envelope around the engine's state.

Layout: ``b"RSNAP"``, a one-byte format version, the CRC-32 of the payload (4 bytes,
big-endian), then the payload: a MessagePack map of plain values, with numpy arrays stored
as ``{"dtype", "shape", "data"}`` maps (raw bytes, native little-endian).
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.errors import SnapshotError

MAGIC = b"RSNAP"
VERSION = 1
_HEADER = len(MAGIC) + 1 + 4


def pack_array(array: npt.NDArray[Any]) -> dict[str, Any]:
    """A MessagePack-friendly form of a numpy array."""
    contiguous = np.ascontiguousarray(array)
    return {
        "dtype": contiguous.dtype.str,
        "shape": list(contiguous.shape),
        "data": contiguous.tobytes(),
    }


def unpack_array(packed: dict[str, Any]) -> npt.NDArray[Any]:
    """The array :func:`pack_array` packed (a writable copy)."""
    try:
        flat = np.frombuffer(packed["data"], dtype=np.dtype(packed["dtype"]))
        return flat.reshape(packed["shape"]).copy()
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"corrupt array in snapshot: {exc}") from exc


def encode(state: dict[str, Any]) -> bytes:
    """Wrap a state map (plain values and packed arrays) into snapshot bytes."""
    payload = msgspec.msgpack.encode(state)
    return MAGIC + bytes([VERSION]) + zlib.crc32(payload).to_bytes(4, "big") + payload


def decode(data: bytes) -> dict[str, Any]:
    """The state map inside snapshot bytes.

    Raises :class:`SnapshotError` for a foreign format, an unsupported version or a payload
    whose checksum does not match (a torn or corrupted file).
    """
    if len(data) < _HEADER or not data.startswith(MAGIC):
        raise SnapshotError("not a rankstream snapshot")
    version = data[len(MAGIC)]
    if version != VERSION:
        raise SnapshotError(f"snapshot format version {version} is not supported (expected 1)")
    checksum = int.from_bytes(data[len(MAGIC) + 1 : _HEADER], "big")
    payload = data[_HEADER:]
    if zlib.crc32(payload) != checksum:
        raise SnapshotError("snapshot checksum mismatch: the file is torn or corrupted")
    state = msgspec.msgpack.decode(payload)
    if not isinstance(state, dict):
        raise SnapshotError("snapshot payload is not a map")
    return state
