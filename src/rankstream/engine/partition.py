"""Partitioning by video, exactly as Kafka's producers partition keyed messages.

A message keyed by ``video_id`` goes to partition ``toPositive(murmur2(key)) % partitions``
in the Java client's default partitioner (and librdkafka's ``murmur2`` / ``murmur2_random``
partitioners, confluent-kafka's ``partitioner=murmur2_random``). :func:`partition_of`
computes the same number, so a worker that runs one engine per Kafka partition holds every
event of its videos, and :func:`~rankstream.engine.ranking.merge_top_k` of the partitions'
rankings is the global ranking.

``murmur2`` is Kafka's ``Utils.murmur2``: MurmurHash2, 32-bit, seed ``0x9747b28c``, over the
UTF-8 bytes of the key, read as little-endian words, in Java's wrapping ``int`` arithmetic;
``toPositive`` clears the sign bit (``x & 0x7fffffff``), it is not ``abs``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rankstream.engine.events import EventBatch

SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_LOW32 = 0xFFFFFFFF


def murmur2(key: bytes) -> int:
    """Kafka's ``Utils.murmur2`` of ``key``, as the signed 32-bit ``int`` Java returns."""
    length = len(key)
    h = (SEED ^ length) & _LOW32
    whole = length - length % 4
    for offset in range(0, whole, 4):
        k = int.from_bytes(key[offset : offset + 4], "little")
        k = (k * _M) & _LOW32
        k ^= k >> _R
        k = (k * _M) & _LOW32
        h = ((h * _M) & _LOW32) ^ k
    rest = length - whole
    if rest:  # the last 1 to 3 bytes, as Java's fall-through switch reads them
        h ^= int.from_bytes(key[whole:], "little")
        h = (h * _M) & _LOW32
    h ^= h >> 13
    h = (h * _M) & _LOW32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def _key(video_id: str) -> bytes:
    # Validated ids hold no lone surrogates (events.py refuses them), so this is plain UTF-8,
    # the bytes Kafka's StringSerializer produces; surrogatepass only keeps the engine total.
    return video_id.encode("utf-8", "surrogatepass")


def _check(partitions: int) -> None:
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a positive integer, got {partitions!r}")


def partition_of(video_id: str, partitions: int) -> int:
    """The partition (``0..partitions-1``) Kafka's default partitioner gives a message keyed
    by ``video_id``: ``(murmur2(utf8(video_id)) & 0x7fffffff) % partitions``. Stable across
    processes, versions and client languages. Raises :class:`ValueError` unless
    ``partitions >= 1``."""
    _check(partitions)
    return (murmur2(_key(video_id)) & 0x7FFFFFFF) % partitions


def partitions_of(video_ids: Sequence[str], partitions: int) -> npt.NDArray[np.int64]:
    """:func:`partition_of` of every id, vectorised: the ids' UTF-8 bytes are padded into
    one matrix of little-endian words, hashed column by column in wrapping ``uint32``
    arithmetic. Equal to the per-id function for every id (tested)."""
    _check(partitions)
    return _positive_hashes(video_ids) % partitions


def _positive_hashes(video_ids: Sequence[str]) -> npt.NDArray[np.int64]:
    n = len(video_ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = [_key(v) for v in video_ids]
    lengths = np.fromiter(map(len, keys), np.int64, n)
    # One spare word past the longest key: the tail word of every key is then in range.
    words_per_key = int(lengths.max()) // 4 + 1
    width = 4 * words_per_key
    raw = b"".join(k.ljust(width, b"\0") for k in keys)
    words = np.frombuffer(raw, dtype="<u4").reshape(n, words_per_key).astype(np.uint32)
    m = np.uint32(_M)
    h = (np.uint32(SEED) ^ lengths.astype(np.uint32)).astype(np.uint32)
    whole = lengths // 4
    for column in range(int(whole.max())):
        k = words[:, column] * m
        k ^= k >> np.uint32(_R)
        k *= m
        h = np.where(whole > column, (h * m) ^ k, h)
    tail = words[np.arange(n), whole]  # the last 1 to 3 bytes, zero padded (0 if none)
    h = np.where(lengths % 4 > 0, (h ^ tail) * m, h)
    h ^= h >> np.uint32(13)
    h *= m
    h ^= h >> np.uint32(15)
    return (h & np.uint32(0x7FFFFFFF)).astype(np.int64)


def split_batch(batch: EventBatch, partitions: int) -> list[EventBatch]:
    """One batch per partition (:func:`partition_of` of each event's video), each keeping
    the events' order."""
    owners = partitions_of(batch.video_ids, partitions)
    return [batch.take(np.flatnonzero(owners == p)) for p in range(partitions)]
