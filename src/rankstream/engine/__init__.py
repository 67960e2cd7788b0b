"""The pure engine: windowed, scoped, exact top-k over view events.

No I/O, no threads, no system clock: batches and the current time are passed in, and the
whole state round-trips through :meth:`TopKEngine.snapshot` / :meth:`TopKEngine.restore`.
"""

from rankstream.engine.config import EngineConfig
from rankstream.engine.core import (
    ACCEPTED,
    DUPLICATE,
    OVER_CAPACITY,
    TOO_NEW,
    CapacityRefusal,
    EngineStats,
    IngestResult,
    Screening,
    TopKEngine,
)
from rankstream.engine.events import EventBatch, ViewEvent, parse_event
from rankstream.engine.measure import VIEWS, Measure
from rankstream.engine.partition import partition_of, split_batch
from rankstream.engine.ranking import RankedColumns, RankedItem, TopKResult, merge_top_k
from rankstream.engine.state import EngineState
from rankstream.engine.windows import DEFAULT_WINDOWS, WindowSpec

__all__ = [
    "ACCEPTED",
    "DEFAULT_WINDOWS",
    "DUPLICATE",
    "OVER_CAPACITY",
    "TOO_NEW",
    "VIEWS",
    "CapacityRefusal",
    "EngineConfig",
    "EngineState",
    "EngineStats",
    "EventBatch",
    "IngestResult",
    "Measure",
    "RankedColumns",
    "RankedItem",
    "Screening",
    "TopKEngine",
    "TopKResult",
    "ViewEvent",
    "WindowSpec",
    "merge_top_k",
    "parse_event",
    "partition_of",
    "split_batch",
]
