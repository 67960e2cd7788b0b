"""Rankings published by the workers, read from Redis by a stateless API replica.

A query reads every partition's manifest (one ``MGET``), picks the newest window bounds all
of them hold (:func:`~rankstream.serving.layout.common_bounds`), reads every partition's
ranking (one ``MGET``: they share a hash tag), keeps each one's generation for those bounds
(so never a mix of bounds) and merges them (:func:`merge_columns`). A
partition that has published nothing yet, or bounds no partition shares, make the answer
:class:`~rankstream.errors.RankingUnavailable` (503), never a wrong number.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from rankstream.engine import RankedItem, TopKResult
from rankstream.engine.events import MAX_LABEL_CHARS
from rankstream.errors import InvalidQuery, RankingUnavailable
from rankstream.serving.layout import (
    Generation,
    Manifest,
    common_bounds,
    decode_generation,
    decode_manifest,
    manifest_key,
    ranking_key,
    scope_key,
    scope_kind,
)


class RedisRankingSource:
    """Rankings of ``board`` over ``partitions()`` partitions, from ``client`` (redis-py,
    standalone or cluster). ``windows``: the window names served; ``depth``: the depth the
    workers publish (the largest ``k`` served); ``hot_copies``: the read copies of global
    rankings the workers publish (each query of one picks a copy at random)."""

    def __init__(
        self,
        client: Any,
        board: str,
        partitions: Callable[[], int],
        windows: Sequence[str],
        depth: int,
        hot_copies: int = 0,
    ) -> None:
        self.hot_copies = hot_copies
        self.client = client
        self._decoded: dict[int, tuple[bytes, Manifest]] = {}  # partition -> its last manifest
        self.board = board
        self.partitions = partitions
        self.windows = tuple(windows)
        self.depth = depth

    def manifests(self) -> list[Manifest | None]:
        """Every partition's manifest (``None`` where none is published). A manifest
        changes once a publish round and is read by every query, so the last one decoded
        of each partition is reused while its bytes are the same."""
        keys = [manifest_key(self.board, p) for p in range(self.partitions())]
        found: list[Manifest | None] = []
        for partition, value in enumerate(self.client.mget(keys)):
            if value is None:
                found.append(None)
                continue
            known = self._decoded.get(partition)
            if known is None or known[0] != value:
                known = self._decoded[partition] = (value, decode_manifest(value))
            found.append(known[1])
        return found

    def progress(self, now: int) -> dict[str, Any]:
        """``/status`` fields of a replica: every partition's published progress."""
        partitions: list[dict[str, Any]] = []
        for partition, manifest in enumerate(self.manifests()):
            if manifest is None:
                partitions.append(
                    {
                        "partition": partition,
                        "worker": None,
                        "applied": None,
                        "checkpointed": None,
                        "end": None,
                        "lag": None,
                        "as_of": None,
                        "published_age_ms": None,
                    }
                )
                continue
            partitions.append(
                {
                    "partition": partition,
                    "worker": manifest.worker,
                    "applied": manifest.applied,
                    "checkpointed": manifest.checkpointed,
                    "end": manifest.end,
                    "lag": max(0, manifest.end - manifest.applied),
                    "as_of": manifest.as_of,
                    "published_age_ms": max(0, now - manifest.published_at),
                }
            )
        return {"mode": "scale-out", "partitions": partitions}

    def top_k(
        self, window: str, k: int, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """See :class:`~rankstream.serving.RankingSource`."""
        self._check(window, k, category, region)
        found = self.manifests()
        missing = [p for p, m in enumerate(found) if m is None]
        if missing:
            raise RankingUnavailable(
                f"partitions {missing[:10]} have not published rankings yet; retry shortly"
            )
        manifests = [m for m in found if m is not None]
        _check_published(manifests, k, category, region)
        bounds = common_bounds(manifests, window)
        if bounds is None:
            held = {p: m.bounds.get(window) for p, m in enumerate(manifests)}
            raise RankingUnavailable(
                f"the partitions hold no common bounds of window {window!r} yet (held: {held});"
                " retry shortly"
            )
        scope = scope_key(category, region)
        copy = random.randint(0, self.hot_copies) if scope == "all" and self.hot_copies else 0
        keys = [ranking_key(self.board, window, scope, p, copy) for p in range(len(manifests))]
        parts: list[Generation] = []
        clocks: list[int] = []
        for manifest, value in zip(manifests, self.client.mget(keys), strict=True):
            part = None if value is None else decode_generation(value, bounds)
            if part is not None:
                parts.append(part)
            if manifest.as_of is not None:  # an older generation is as of its end
                end = bounds[1]
                clocks.append(manifest.as_of if end is None else min(manifest.as_of, end - 1))
        as_of = min(clocks) if clocks else None
        items = merge_columns(parts, k)
        return TopKResult(window, bounds[0], bounds[1], as_of, k, category, region, items)

    def _check(self, window: str, k: int, category: str | None, region: str | None) -> None:
        if window not in self.windows:
            names = ", ".join(self.windows)
            raise InvalidQuery(f"unknown window {window!r}; expected one of {names}")
        if not 1 <= k <= self.depth:
            raise InvalidQuery(f"k must be an integer from 1 to {self.depth}")
        for name, value in (("category", category), ("region", region)):
            if value is not None and not 1 <= len(value) <= MAX_LABEL_CHARS:
                raise InvalidQuery(f"{name} must be 1 to {MAX_LABEL_CHARS} characters")


def _check_published(
    manifests: Sequence[Manifest], k: int, category: str | None, region: str | None
) -> None:
    """Refuse a query the workers do not publish for (a scope kind left out by
    ``publish_scopes``, or a ``k`` beyond ``publish_depth``) instead of answering it from
    missing rankings, which would read as empty."""
    kind = scope_kind((category, region))
    if any(kind not in m.kinds for m in manifests):
        raise InvalidQuery(
            f"{kind.replace('_', ' x ')} rankings are not published (the workers'"
            " publish_scopes leaves them out)"
        )
    depth = min(m.depth for m in manifests)
    if k > depth:
        raise InvalidQuery(f"k must be an integer from 1 to {depth} (the published depth)")


def merge_columns(parts: Sequence[Generation], k: int) -> tuple[RankedItem, ...]:
    """The first ``k`` rows of the partitions' rankings of one query, merged.

    Each part is in rank order (views descending, then id by code point) and the
    partitions hold disjoint videos, so a lazy k-way merge reads only about ``k`` rows, not
    every row of every part (what :func:`~rankstream.engine.merge_top_k` does with whole
    results). A video ranked in two parts means the producers did not partition by the
    documented rule: :class:`ValueError`, never a double-counted answer.
    """
    rows = heapq.merge(
        *(zip(p.views, p.video_ids, strict=True) for p in parts),
        key=lambda row: (-row[0], row[1]),
    )
    top = list(islice(rows, k))
    if len({video for _, video in top}) != len(top):
        raise ValueError("a video is ranked in two partitions: the partitions overlap")
    return tuple(RankedItem(rank, video, views) for rank, (views, video) in enumerate(top, 1))
