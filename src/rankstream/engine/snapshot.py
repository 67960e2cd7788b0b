"""The snapshot container: a versioned, checksummed envelope around the engine's state.

Layout: ``b"RSNAP"``, a one-byte format version, the CRC-32 of the payload (4 bytes,
big-endian), then the payload: the MessagePack encoding of an
:class:`~rankstream.engine.state.EngineState` (a map of its fields; numpy arrays as
``{"dtype", "shape", "data"}`` maps of raw bytes, native little-endian).

Versions read: 2 (the typed state, with its ``partition``) and 1 (the same fields as an
untyped map, without ``partition``; written by releases before scale-out mode), so a data
directory of the previous release restores. Version 2 is always written.
"""

from __future__ import annotations

import zlib

import msgspec

from rankstream.engine.state import EngineState, from_v1
from rankstream.errors import SnapshotError

MAGIC = b"RSNAP"
VERSION = 2
READABLE_VERSIONS = (1, 2)
_HEADER = len(MAGIC) + 1 + 4
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(EngineState)


def encode(state: EngineState) -> bytes:
    """Snapshot bytes (format :data:`VERSION`) holding ``state``."""
    payload = _ENCODER.encode(state)
    return MAGIC + bytes([VERSION]) + zlib.crc32(payload).to_bytes(4, "big") + payload


def decode(data: bytes) -> EngineState:
    """The state inside snapshot bytes of any version in :data:`READABLE_VERSIONS`.

    Raises :class:`SnapshotError` for a foreign format, an unsupported version, a payload
    whose checksum does not match (a torn or corrupted file) or one that is not a state
    (a field missing or of the wrong type).
    """
    if len(data) < _HEADER or not data.startswith(MAGIC):
        raise SnapshotError("not a rankstream snapshot")
    version = data[len(MAGIC)]
    if version not in READABLE_VERSIONS:
        raise SnapshotError(
            f"snapshot format version {version} is not supported (this release reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}); restore with a newer release"
        )
    checksum = int.from_bytes(data[len(MAGIC) + 1 : _HEADER], "big")
    payload = data[_HEADER:]
    if zlib.crc32(payload) != checksum:
        raise SnapshotError("snapshot checksum mismatch: the file is torn or corrupted")
    try:
        if version == 1:
            return from_v1(msgspec.msgpack.decode(payload))
        return _DECODER.decode(payload)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"snapshot payload is not an engine state: {exc}") from exc
