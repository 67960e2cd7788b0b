"""Every backend is built here, from the configuration, and nowhere else.

The HTTP app asks :func:`open_backends` for what it serves from and never names a concrete
class: in the embedded mode that is one :class:`~rankstream.service.pipeline.IngestPipeline`
over SQLite and a checkpoint directory; scale-out mode plugs Kafka, Redis and S3 into the
same seams (:mod:`rankstream.log`, :mod:`rankstream.idempotency`, :mod:`rankstream.checkpoint`,
:mod:`rankstream.serving`, :mod:`rankstream.store`). Optional client libraries are imported
lazily (:mod:`rankstream.optional`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.registry import Collector

from rankstream.checkpoint import DirectoryCheckpointStore
from rankstream.config import ServiceConfig
from rankstream.idempotency import SqliteIdempotencyStore
from rankstream.log import SqliteEventLog
from rankstream.service.deadletters import DeadLetters
from rankstream.service.pipeline import IngestPipeline, PipelineSettings
from rankstream.serving import Ingest, RankingSource
from rankstream.store import MetadataStore, SqliteMetadataStore


@dataclass
class Backends:
    """What the HTTP app serves from: where events go, where rankings and metadata come
    from, the metrics they export, and how to close them (in order)."""

    ingest: Ingest
    rankings: RankingSource
    metadata: MetadataStore
    collectors: list[Collector] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close every backend (drain, checkpoint, disconnect), each once."""
        while self.closers:
            self.closers.pop(0)()


def open_backends(config: ServiceConfig, clock: Callable[[], int]) -> Backends:
    """The backends of ``config``'s mode, opened and recovered (blocks while recovering)."""
    return open_embedded(config, clock)


def open_embedded(config: ServiceConfig, clock: Callable[[], int]) -> Backends:
    """The embedded mode: SQLite log and idempotency keys (one database, one transaction
    per group), checkpoints in ``data_dir/checkpoints``, metadata in SQLite."""
    from rankstream.api.answers import encode_ingest_answer  # the wire format of answers
    from rankstream.api.metrics import PipelineCollector

    data = config.data_dir
    log = SqliteEventLog(data / "log.sqlite3", config.sync, config.dead_letter_capacity)
    pipeline = IngestPipeline(
        config.engine_config(),
        log,
        SqliteIdempotencyStore(log.database),
        DirectoryCheckpointStore(data / "checkpoints"),
        encode_ingest_answer,
        PipelineSettings(
            tick_interval=config.tick_interval,
            checkpoint_interval=config.checkpoint_interval,
            checkpoint_every_events=config.checkpoint_every_events,
            idempotency_ttl=config.idempotency_ttl,
            max_queued_requests=config.max_queued_requests,
            max_queued_bytes=config.max_queued_bytes,
        ),
        clock=clock,
        dead_letters=DeadLetters(config.dead_letter_capacity),
    )
    pipeline.start()
    metadata = SqliteMetadataStore(data / "metadata.sqlite3")
    return Backends(
        ingest=pipeline,
        rankings=pipeline,
        metadata=metadata,
        collectors=[PipelineCollector(pipeline)],
        closers=[pipeline.close, metadata.close],
    )
