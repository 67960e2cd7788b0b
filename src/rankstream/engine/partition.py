"""Partitioning by video: disjoint engines whose rankings merge exactly.

A video always lands in the same partition, so each partition's engine holds every event of
its videos and :func:`~rankstream.engine.ranking.merge_top_k` of the partitions' top-k is the
global top-k.
"""

from __future__ import annotations

import zlib

import numpy as np

from rankstream.engine.events import EventBatch


def partition_of(video_id: str, partitions: int) -> int:
    """The partition (``0..partitions-1``) of a video: CRC-32 of its UTF-8 id, stable across
    processes and versions (unlike Python's salted ``hash``)."""
    return zlib.crc32(video_id.encode("utf-8", "surrogatepass")) % partitions


def split_batch(batch: EventBatch, partitions: int) -> list[EventBatch]:
    """One batch per partition, each keeping the events' order."""
    owners = np.fromiter(
        (partition_of(v, partitions) for v in batch.video_ids), np.int64, len(batch)
    )
    return [batch.take(np.flatnonzero(owners == p)) for p in range(partitions)]
