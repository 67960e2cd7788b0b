"""Every backend is built here, from the configuration, and nowhere else.

The HTTP app asks :func:`open_backends` for what it serves from and never names a concrete
class: in the embedded mode that is one :class:`~rankstream.service.pipeline.IngestPipeline`
over SQLite and a checkpoint directory; scale-out mode plugs Kafka, Redis and S3 into the
same seams (:mod:`rankstream.log`, :mod:`rankstream.idempotency`, :mod:`rankstream.checkpoint`,
:mod:`rankstream.serving`, :mod:`rankstream.store`). Optional client libraries are imported
lazily (:mod:`rankstream.optional`).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.registry import Collector

from rankstream.checkpoint import DirectoryCheckpointStore
from rankstream.config import ServiceConfig
from rankstream.errors import ConfigError
from rankstream.idempotency import SqliteIdempotencyStore
from rankstream.log import LogPosition, SqliteEventLog
from rankstream.optional import require
from rankstream.service.deadletters import DeadLetters
from rankstream.service.pipeline import IngestPipeline, PipelineSettings
from rankstream.serving import BoardSource, Ingest, RankingSource
from rankstream.store import MetadataStore, SqliteMetadataStore

if TYPE_CHECKING:
    from rankstream.analytics import Analytics, AnalyticsService
    from rankstream.analytics.kafka_loader import KafkaAnalyticsLoader, KafkaLoaderSettings
    from rankstream.api.analytics_forward import AnalyticsForwarder
    from rankstream.worker.runner import Worker


@dataclass
class Backends:
    """What the HTTP app serves from: where events go, where rankings and metadata come
    from, the metrics they export, and how to close them (in order)."""

    ingest: Ingest
    rankings: RankingSource
    metadata: MetadataStore
    collectors: list[Collector] = field(default_factory=list)
    boards: BoardSource | None = None  # the declared leaderboards, where this mode serves them
    closers: list[Callable[[], None]] = field(default_factory=list)
    analytics: AnalyticsService | None = None  # the analytics store, where this process keeps one
    analytics_forward: AnalyticsForwarder | None = None  # else where /analytics/* is forwarded

    def close(self) -> None:
        """Close every backend (drain, checkpoint, disconnect), each once."""
        while self.closers:
            self.closers.pop(0)()


def open_backends(config: ServiceConfig, clock: Callable[[], int]) -> Backends:
    """The backends of ``config``'s mode, opened and recovered (blocks while recovering)."""
    if config.scale_out:
        if not config.redis:
            raise ConfigError("scale-out needs both kafka and redis (or neither, for embedded)")
        return open_scale_out_api(config, clock)
    return open_embedded(config, clock)


def open_embedded(config: ServiceConfig, clock: Callable[[], int]) -> Backends:
    """The embedded mode: SQLite log and idempotency keys (one database, one transaction
    per group), checkpoints in ``data_dir/checkpoints``, metadata in SQLite."""
    from rankstream.api.answers import encode_ingest_answer  # the wire format of answers
    from rankstream.api.metrics import PipelineCollector

    data = config.data_dir
    log = SqliteEventLog(data / "log.sqlite3", config.sync, config.dead_letter_capacity)
    analytics = open_analytics(config, data / "log.sqlite3") if config.analytics else None
    pipeline = IngestPipeline(
        config.board_specs(),
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
        retention_floor=None if analytics is None else analytics.loader.retention_floor,
        listeners=() if analytics is None else (analytics.loader.wake,),
    )
    try:
        pipeline.start()
    except BaseException:
        if analytics is not None:
            analytics.close()
        raise
    metadata = SqliteMetadataStore(data / "metadata.sqlite3")
    backends = Backends(
        ingest=pipeline,
        rankings=pipeline,
        boards=pipeline,
        metadata=metadata,
        collectors=[PipelineCollector(pipeline)],
        closers=[pipeline.close, metadata.close],
    )
    if analytics is not None:
        from rankstream.api.metrics import AnalyticsCollector

        analytics.loader.start()
        backends.analytics = analytics
        backends.collectors.append(AnalyticsCollector(analytics.status))
        checkpoints = pipeline.checkpointer.checkpoints
        backends.closers.insert(
            1,
            lambda: analytics.close(LogPosition({0: min(checkpoints.offsets(0), default=0)})),
        )
    return backends


def open_analytics(config: ServiceConfig, log_path: Path) -> Analytics:
    """The embedded analytics store (``data_dir/analytics``) and its loader, recovered
    (blocks while it finishes a batch a crash interrupted)."""
    from rankstream.analytics import open_embedded_analytics
    from rankstream.boards import BoardRouter

    return open_embedded_analytics(
        config.data_dir / "analytics",
        log_path,
        BoardRouter.of(config.board_specs()),  # every accepted event, whatever its boards
        config.analytics_ttl_days,
        config.analytics_batch_rows,
    )


def redis_client(config: ServiceConfig) -> Any:
    """A redis-py client for ``config.redis`` (a cluster client with ``redis_cluster``)."""
    redis = require("redis", "scale-out mode")
    if config.redis_cluster:
        cluster = require("redis.cluster", "scale-out mode")
        return cluster.RedisCluster.from_url(config.redis)
    return redis.Redis.from_url(config.redis)


def topic_partitions(config: ServiceConfig) -> int:
    """How many partitions the topic has (asks the broker; raises :class:`ConfigError` if
    the broker cannot be reached or the topic does not exist). Read once at start: a
    replica serves the partitions the topic had then (restart replicas after adding some)."""
    kafka = require("confluent_kafka.admin", "scale-out mode")
    admin = kafka.AdminClient({"bootstrap.servers": config.bootstrap})
    topic = config.kafka_topic
    try:
        metadata = admin.list_topics(topic, timeout=30)
    except kafka.KafkaException as exc:
        raise ConfigError(f"kafka: cannot reach {config.bootstrap}: {exc}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise ConfigError(f"kafka: topic {topic!r} not found at {config.bootstrap}; create it")
    return len(found.partitions)


def open_scale_out_api(config: ServiceConfig, clock: Callable[[], int]) -> Backends:
    """A stateless API replica: events to Kafka, rankings and metadata from Redis,
    idempotency keys in Redis."""
    from rankstream.api.answers import encode_ingest_answer
    from rankstream.api.metrics import ReplicaCollector
    from rankstream.idempotency.redis import RedisIdempotencyStore
    from rankstream.serving.kafka import KafkaIngest
    from rankstream.serving.redis import RedisRankingSource, open_board_source
    from rankstream.store.redis import RedisMetadataStore

    if config.analytics_url and not config.analytics_url.startswith(("http://", "https://")):
        raise ConfigError(f"analytics_url must be http://HOST:PORT, not {config.analytics_url}")
    client = redis_client(config)
    partitions = topic_partitions(config)
    windows = [w.name for w in config.engine_config().windows]
    rankings = RedisRankingSource(
        client, config.board, lambda: partitions, windows, config.served_k, config.hot_copies
    )
    ingest = KafkaIngest(
        config.bootstrap,
        config.kafka_topic,
        RedisIdempotencyStore(client, int(config.idempotency_ttl * 1000)),
        config.engine_config(),
        encode_ingest_answer,
        clock,
        DeadLetters(config.dead_letter_capacity),
        status=lambda: rankings.progress(clock()),
        delivery_timeout_ms=config.produce_timeout_ms,
    )
    collector = ReplicaCollector(
        lambda: ingest.events_produced,
        lambda: ingest.delivery_failures,
        lambda: rankings.progress(clock()),
    )
    backends = Backends(
        ingest=ingest,
        rankings=rankings,
        metadata=RedisMetadataStore(client),
        collectors=[collector],
        closers=[ingest.close, client.close],
        boards=open_board_source(config, client, lambda: partitions),
    )
    if config.analytics_url:
        from rankstream.api.analytics_forward import AnalyticsForwarder

        backends.analytics_forward = AnalyticsForwarder(config.analytics_url)
        backends.closers.append(backends.analytics_forward.close)
    return backends


def analytics_loader_settings(config: ServiceConfig) -> tuple[KafkaLoaderSettings, str]:
    """The analytics loader's settings and where its checkpoints go (default
    ``data_dir/analytics-checkpoints``). Raises :class:`ConfigError` if kafka is not set,
    or the group or the checkpoints are the workers'."""
    from rankstream.analytics.kafka_loader import KafkaLoaderSettings

    if not config.kafka:
        raise ConfigError("the analytics loader needs kafka (HOST:PORT[/TOPIC])")
    if config.analytics_group == config.group:
        raise ConfigError(
            f"analytics_group {config.analytics_group!r} is the workers' group: the loader"
            " needs a group of its own (it would take partitions from the workers)"
        )
    store_id = hashlib.sha256(str(config.data_dir.resolve()).encode()).hexdigest()[:12]
    where = config.analytics_checkpoints or str(config.data_dir / "analytics-checkpoints")
    if where == config.checkpoints:
        raise ConfigError("analytics_checkpoints must not be the workers' checkpoints")
    settings = KafkaLoaderSettings(
        bootstrap=config.bootstrap,
        topic=config.kafka_topic,
        group=config.analytics_group,
        batch_rows=config.analytics_batch_rows,
        checkpoint_interval=config.checkpoint_interval,
        session_timeout_ms=config.session_timeout_ms,
        instance=f"analytics-{socket.gethostname()}-{store_id}",
    )
    return settings, where


def open_analytics_loader(config: ServiceConfig) -> KafkaAnalyticsLoader:
    """The scale-out analytics loader of ``config`` (:func:`analytics_loader_settings`),
    its store in ``data_dir/analytics``."""
    from rankstream.analytics import AnalyticsStore
    from rankstream.analytics.kafka_loader import KafkaAnalyticsLoader
    from rankstream.checkpoint import open_checkpoints

    settings, where = analytics_loader_settings(config)
    checkpoints = open_checkpoints(where, config.s3_endpoint)
    store = AnalyticsStore(config.data_dir / "analytics", config.analytics_ttl_days)
    try:
        return KafkaAnalyticsLoader(
            settings, config.engine_config(), store, checkpoints, config.board_specs()
        )
    except BaseException:
        store.close()
        raise


def open_worker(config: ServiceConfig, clock: Callable[[], int], name: str) -> Worker:
    """A scale-out worker for ``config`` (needs kafka, redis and checkpoints)."""
    from rankstream.checkpoint import open_checkpoints
    from rankstream.worker.runner import Worker, WorkerSettings

    if not (config.kafka and config.redis and config.checkpoints):
        raise ConfigError("a worker needs kafka, redis and checkpoints")
    settings = WorkerSettings(
        bootstrap=config.bootstrap,
        topic=config.kafka_topic,
        group=config.group,
        board=config.board,
        publish_interval=config.publish_interval,
        checkpoint_interval=config.checkpoint_interval,
        depth=config.publish_depth,
        scope_kinds=config.scope_kinds,
        hot_copies=config.hot_copies,
        questions=config.publish_questions,
        session_timeout_ms=config.session_timeout_ms,
        name=name,
    )
    checkpoints = open_checkpoints(config.checkpoints, config.s3_endpoint)
    return Worker(
        settings,
        config.engine_config(),
        checkpoints,
        redis_client(config),
        clock,
        config.board_specs(),
        lambda board: open_checkpoints(
            f"{config.checkpoints.rstrip('/')}/repartition-{board}", config.s3_endpoint
        ),
    )
