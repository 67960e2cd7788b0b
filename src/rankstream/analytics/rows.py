"""Log records -> the columns of ``views`` rows, as one Arrow IPC stream for one INSERT.

The engine's decoder has already resolved the aliases (``videoId``, ``ts``) and parsed ISO
timestamps, so the typed columns come from the decoded batch; ``event`` is each event's
JSON exactly as accepted. Rows keep the log order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from rankstream.log import LoggedBatch

COLUMNS = (
    "timestamp",
    "video_id",
    "category",
    "region",
    "event_id",
    "event",
    "log_partition",
    "log_offset",
)
"""The ``views`` columns a load writes (the others are computed by ClickHouse)."""

_SCHEMA = pa.schema(
    [
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("video_id", pa.string()),
        ("category", pa.string()),
        ("region", pa.string()),
        ("event_id", pa.string()),
        ("event", pa.binary()),
        ("log_partition", pa.uint32()),
        ("log_offset", pa.uint64()),
    ]
)


@dataclass(frozen=True, slots=True)
class LoadRows:
    """The rows of some log records: their Arrow IPC stream, how many, and the newest
    event time among them (``None`` when there are none)."""

    arrow: bytes
    count: int
    newest_event: int | None


def _labels(column: Sequence[str | None] | None, size: int) -> list[str]:
    """A label column with ``''`` for an absent value."""
    return [""] * size if column is None else [value or "" for value in column]


def load_rows(records: Sequence[LoggedBatch]) -> LoadRows:
    """The ``views`` rows of ``records``, in log order."""
    timestamps: list[int] = []
    video_ids: list[str] = []
    categories: list[str] = []
    regions: list[str] = []
    event_ids: list[str] = []
    events: list[bytes] = []
    partitions: list[int] = []
    offsets: list[int] = []
    newest: int | None = None
    for record in records:
        batch = record.batch
        size = len(batch)
        if not size:
            continue
        stamps = batch.timestamps
        timestamps.extend(stamps.tolist())
        top = int(stamps.max())
        newest = top if newest is None else max(newest, top)
        video_ids.extend(batch.video_ids)
        categories.extend(_labels(batch.categories, size))
        regions.extend(_labels(batch.regions, size))
        event_ids.extend(_labels(batch.event_ids, size))
        events.extend(record.raw)
        partitions.extend([record.partition] * size)
        offsets.extend([record.offset] * size)
    table = pa.table(
        [
            pa.array(timestamps, _SCHEMA.field("timestamp").type),
            pa.array(video_ids, pa.string()),
            pa.array(categories, pa.string()),
            pa.array(regions, pa.string()),
            pa.array(event_ids, pa.string()),
            pa.array(events, pa.binary()),
            pa.array(partitions, pa.uint32()),
            pa.array(offsets, pa.uint64()),
        ],
        schema=_SCHEMA,
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, _SCHEMA) as writer:
        writer.write_table(table)
    return LoadRows(sink.getvalue().to_pybytes(), len(timestamps), newest)
