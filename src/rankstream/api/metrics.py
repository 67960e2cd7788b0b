"""Prometheus metrics: counters read from the pipeline at scrape time, plus the HTTP layer's
own (query latency, answers by status, server errors) observed per request."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from rankstream.service.pipeline import IngestPipeline

QUERY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class PipelineCollector(Collector):
    """Ingest, rejection, apply-lag and checkpoint figures of one pipeline."""

    def __init__(self, pipeline: IngestPipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        p = self.pipeline
        engine = p.boards.stats
        yield CounterMetricFamily(
            "rankstream_events_accepted", "Events durably accepted.", value=p.stats.events_logged
        )
        yield CounterMetricFamily(
            "rankstream_events_applied", "Events applied to the rankings.", value=engine.accepted
        )
        rejected = CounterMetricFamily(
            "rankstream_events_rejected",
            "Events rejected, by field at fault (kept across restarts).",
            labels=["field"],
        )
        for field, count in sorted(p.dead_letters.totals.items()):
            rejected.add_metric([field], count)
        yield rejected
        yield CounterMetricFamily(
            "rankstream_events_duplicate", "Events dropped as duplicates.", value=engine.duplicates
        )
        yield CounterMetricFamily(
            "rankstream_events_late_dropped",
            "Events older than the horizon (counted in all only; once per board).",
            value=p.boards.late_dropped,
        )
        yield CounterMetricFamily(
            "rankstream_ingest_requests", "Ingest requests answered.", value=p.stats.requests
        )
        yield CounterMetricFamily(
            "rankstream_ingest_storage_errors",
            "Groups of ingest requests answered 503 because the log could not be written.",
            value=p.stats.storage_errors,
        )
        yield GaugeMetricFamily(
            "rankstream_apply_lag_events",
            "Accepted events not yet visible in rankings.",
            value=p.stats.events_logged - engine.accepted,
        )
        yield GaugeMetricFamily(
            "rankstream_ingest_queue_depth", "Requests waiting for the writer.", p.queue_depth()
        )
        yield GaugeMetricFamily(
            "rankstream_ingest_queue_bytes", "Body bytes waiting for the writer.", p.queued_bytes()
        )
        at = p.checkpointer.stats.at
        age = 0.0 if at is None else max(0.0, time.time() - at / 1000)
        yield GaugeMetricFamily(
            "rankstream_checkpoint_age_seconds", "Seconds since the last checkpoint.", age
        )
        yield GaugeMetricFamily(
            "rankstream_checkpoint_duration_seconds",
            "Duration of the last checkpoint.",
            p.checkpointer.stats.seconds,
        )
        yield GaugeMetricFamily(
            "rankstream_watermark_ms", "The engine clock (epoch ms).", p.boards.now or 0
        )


class AnalyticsCollector(Collector):
    """The analytics loader's lag and progress and the store's size, read at scrape time
    from ``status`` (:meth:`rankstream.analytics.Analytics.status`)."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.status = status

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        status = self.status()
        yield GaugeMetricFamily(
            "rankstream_analytics_lag_records",
            "Log records not yet loaded into the analytics store.",
            value=status["lag_records"],
        )
        yield from store_metrics(status)


def store_metrics(status: dict[str, Any]) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """What every analytics loader reports, embedded or scale-out: events loaded, failed
    loads, the newest event time loaded, and the store's rows and bytes."""
    yield CounterMetricFamily(
        "rankstream_analytics_events_loaded",
        "Events loaded into the analytics store since start.",
        value=status["events_loaded"],
    )
    yield CounterMetricFamily(
        "rankstream_analytics_load_failures",
        "Failed loads (and, scale-out, failed checkpoints); each is retried.",
        value=status["failures"],
    )
    yield GaugeMetricFamily(
        "rankstream_analytics_loaded_through_ms",
        "Newest event time loaded into the analytics store (epoch ms).",
        value=status["loaded_through"] or 0,
    )
    yield GaugeMetricFamily(
        "rankstream_analytics_rows", "Raw views held by the analytics store.", status["rows"]
    )
    yield GaugeMetricFamily(
        "rankstream_analytics_store_bytes",
        "Bytes on disk of the analytics store's tables.",
        status["bytes"],
    )


class ReplicaCollector(Collector):
    """A scale-out API replica's figures: events produced, failed deliveries, and every
    partition's lag and ranking age from what its worker last published."""

    def __init__(
        self,
        produced: Callable[[], int],
        failures: Callable[[], int],
        progress: Callable[[], dict[str, Any]],
    ) -> None:
        self.produced = produced
        self.failures = failures
        self.progress = progress

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield CounterMetricFamily(
            "rankstream_events_produced",
            "Events this replica produced to Kafka (acknowledged).",
            value=self.produced(),
        )
        yield CounterMetricFamily(
            "rankstream_produce_failures",
            "Requests answered 503 because the broker did not acknowledge their events.",
            value=self.failures(),
        )
        lag = GaugeMetricFamily(
            "rankstream_partition_lag_events",
            "Events in a partition not yet applied by its worker.",
            labels=["partition"],
        )
        age = GaugeMetricFamily(
            "rankstream_partition_published_age_seconds",
            "Age of a partition's newest published rankings.",
            labels=["partition"],
        )
        for partition in self.progress().get("partitions", []):
            if partition["lag"] is not None:
                lag.add_metric([str(partition["partition"])], partition["lag"])
                age.add_metric([str(partition["partition"])], partition["published_age_ms"] / 1000)
        yield lag
        yield age


@dataclass(frozen=True, slots=True)
class HttpMetrics:
    """What the HTTP layer observes itself."""

    query_seconds: Histogram
    answers: Counter
    server_errors: Counter


def build_registry(collectors: Sequence[Collector]) -> tuple[CollectorRegistry, HttpMetrics]:
    """A registry of the backends' ``collectors`` and the HTTP layer's own metrics (returned
    to be observed)."""
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    metrics = HttpMetrics(
        query_seconds=Histogram(
            "rankstream_query_seconds",
            "Latency of GET /views/top-k, seconds.",
            labelnames=["window"],
            buckets=QUERY_BUCKETS,
            registry=registry,
        ),
        answers=Counter(
            "rankstream_http_errors",
            "Error answers (4xx and 5xx) by status and error code.",
            labelnames=["status", "code"],
            registry=registry,
        ),
        server_errors=Counter(
            "rankstream_http_server_errors",
            "Unexpected exceptions answered as 500 (each logged with its request id).",
            registry=registry,
        ),
    )
    return registry, metrics
