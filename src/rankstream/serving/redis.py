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
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from itertools import islice
from typing import Any

from rankstream.boards import BoardSpec, Leaders, Rising
from rankstream.boards.questions import LeaderItem, RisingItem, Span
from rankstream.engine import RankedItem, TopKResult
from rankstream.engine.events import MAX_LABEL_CHARS
from rankstream.engine.windows import MINUTE, WindowSpec
from rankstream.errors import InvalidQuery, RankingUnavailable
from rankstream.serving.layout import (
    Bounds,
    Generation,
    Manifest,
    board_tag,
    common_bounds,
    decode_generation,
    decode_leaders,
    decode_manifest,
    decode_rising,
    leaders_key,
    manifest_key,
    ranking_key,
    rising_key,
    rising_order,
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


class RedisBoardSource:
    """The declared boards' answers (:class:`~rankstream.serving.BoardSource`), read from
    what the workers published under ``namespace`` (the ``board`` setting) for
    ``partitions()`` partitions; ``depth``: the published depth; ``max_k``: the most groups
    a leaders answer lists.

    Exactness, given that every board is counted from a topic keyed by its entity (the
    source topic, or the board's repartition topic, which has the source topic's partition
    count), so partitions hold disjoint entities and each holds all of its own:

    - **top-k**: each board's rankings merged as :class:`RedisRankingSource` merges them:
      exact for any ``k`` up to the published depth.
    - **leaders**: every partition publishes every group it holds (leader, leader's
      value, group total); a group's leader is the best of the partitions' leaders and its
      total their sum: always exact.
    - **rising**: every partition publishes its first ``depth`` entities of the rising
      order among those with a short value of at least 1 (and whether that is all of
      them). The merged order is the partitions' merged. With ``min`` = 1 an answer is
      exact for any ``k`` up to the depth. With a larger ``min``, a partition's entities
      below its published cut are unknown; the answer is exact (and given) when its
      ``k``-th item ranks above every incomplete partition's cut (always, when each such
      partition still has ``k`` published items with a short value of at least ``min``),
      and refused with :class:`~rankstream.errors.InvalidQuery` (400) otherwise, never
      answered inexactly. Pairs of scope fields are not published for rising (400).

    Each answer uses one bounds per window that every partition holds, as top-k does; a
    partition that has not published, or bounds not shared yet, are
    :class:`~rankstream.errors.RankingUnavailable` (503).
    """

    def __init__(
        self,
        client: Any,
        namespace: str,
        partitions: Callable[[], int],
        boards: Sequence[BoardSpec],
        depth: int,
        max_k: int = 1000,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.partitions = partitions
        self.depth = depth
        self.max_k = max_k
        self._specs = {b.name: b for b in boards}
        self._sources = {
            b.name: RedisRankingSource(
                client,
                board_tag(namespace, b.name),
                partitions,
                [w.name for w in b.windows],
                depth,
            )
            for b in boards
        }

    def board_specs(self) -> tuple[BoardSpec, ...]:
        """See :class:`~rankstream.serving.BoardSource`."""
        return tuple(self._specs.values())

    def board_top_k(self, board: str, window: str, k: int, scopes: Mapping[str, str]) -> TopKResult:
        """See :class:`~rankstream.serving.BoardSource`."""
        spec = self._spec(board)
        category, region = _slots(spec, scopes)
        return self._sources[board].top_k(window, k, category, region)

    def rising(
        self,
        board: str,
        short: str,
        long: str,
        k: int,
        minimum: int,
        scopes: Mapping[str, str],
    ) -> Rising:
        """See :class:`~rankstream.serving.BoardSource` and the class docstring."""
        spec = self._spec(board)
        short_spec = _sliding(spec, short, "short")
        long_spec = _sliding(spec, long, "long")
        if short_spec.size >= long_spec.size:
            raise InvalidQuery(f"short ({short}) must be a shorter window than long ({long})")
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
            raise InvalidQuery("min must be a positive integer")
        scope = _slots(spec, scopes)
        if None not in scope:
            raise InvalidQuery(
                "rising lists are published per scope field, not per pair of them: give at"
                " most one scope"
            )
        manifests = self._manifests(board, scope_kind(scope), k)
        short_bounds = _bounds(manifests, short)
        long_bounds = _bounds(manifests, long)
        source = self._sources[board]
        keys = [
            rising_key(source.board, short, long, scope_key(*scope), p)
            for p in range(len(manifests))
        ]
        candidates: list[tuple[tuple[Fraction, int, str], int, int]] = []
        cuts: list[tuple[Fraction, int, str]] = []
        for partition, value in enumerate(self.client.mget(keys)):
            if value is None:
                continue  # never published: no entity of this partition in the scope
            part = next(
                (g for g in decode_rising(value) if g.bounds == (short_bounds, long_bounds)),
                None,
            )
            if part is None:
                raise RankingUnavailable(
                    f"partition {partition} holds no rising list of {short}/{long} for the"
                    " bounds the partitions share yet; retry shortly"
                )
            for entity, sv, lv in zip(part.ids, part.short, part.long, strict=True):
                if sv >= minimum:
                    candidates.append((rising_order(sv, lv, entity), sv, lv))
            if not part.complete and part.ids:
                cuts.append(rising_order(part.short[-1], part.long[-1], part.ids[-1]))
        candidates.sort()
        top = candidates[:k]
        if cuts and (len(top) < k or top[-1][0] > min(cuts)):
            raise InvalidQuery(
                f"rising with min={minimum} and k={k} cannot be answered exactly from the"
                f" published lists ({self.depth} entities per partition, ranked with min=1):"
                " ask a smaller k or min"
            )
        if len({row[0][2] for row in top}) != len(top):
            raise ValueError("an entity is listed by two partitions: the partitions overlap")
        minutes_short, minutes_long = short_spec.size // MINUTE, long_spec.size // MINUTE
        items = tuple(
            RisingItem(
                rank,
                order[2],
                sv,
                lv,
                sv / minutes_short,
                lv / minutes_long,
                float(Fraction(sv * minutes_long, lv * minutes_short)),
            )
            for rank, (order, sv, lv) in enumerate(top, 1)
        )
        return Rising(
            board=board,
            short=Span(short, *short_bounds),
            long=Span(long, *long_bounds),
            as_of=_as_of(manifests, short_bounds),
            k=k,
            minimum=minimum,
            items=items,
        )

    def leaders(self, board: str, by: str, window: str, k: int) -> Leaders:
        """See :class:`~rankstream.serving.BoardSource` and the class docstring."""
        spec = self._spec(board)
        if by not in spec.scopes:
            allowed = ", ".join(spec.scopes) or "none"
            raise InvalidQuery(
                f"board {board} has no scope {by!r} to group by (its scopes: {allowed})"
            )
        if spec.window(window) is None:
            names = ", ".join(w.name for w in spec.windows)
            raise InvalidQuery(f"unknown window {window!r}; expected one of {names}")
        if not 1 <= k <= self.max_k:
            raise InvalidQuery(f"k must be an integer from 1 to {self.max_k}")
        manifests = self._manifests(board, None, 1)
        bounds = _bounds(manifests, window)
        tag = self._sources[board].board
        keys = [leaders_key(tag, window, by, p) for p in range(len(manifests))]
        groups: dict[str, tuple[int, str, int]] = {}  # group -> (value, leader, total)
        for partition, value in enumerate(self.client.mget(keys)):
            if value is None:
                continue
            part = next((g for g in decode_leaders(value) if g.bounds == bounds), None)
            if part is None:
                raise RankingUnavailable(
                    f"partition {partition} holds no leaders of {by} in {window} for the"
                    " bounds the partitions share yet; retry shortly"
                )
            rows = zip(part.groups, part.leaders, part.values, part.totals, strict=True)
            for group, leader, leader_value, total in rows:
                known = groups.get(group)
                if known is None:
                    groups[group] = (leader_value, leader, total)
                    continue
                if leader == known[1]:
                    raise ValueError("an entity leads a group in two partitions: they overlap")
                best = min((known[0], known[1]), (leader_value, leader), key=_leader_order)
                groups[group] = (best[0], best[1], known[2] + total)
        ranked = sorted(groups.items(), key=lambda row: (-row[1][0], row[0]))[:k]
        items = tuple(
            LeaderItem(rank, group, leader, value, total, value / total)
            for rank, (group, (value, leader, total)) in enumerate(ranked, 1)
        )
        return Leaders(
            board=board,
            by=by,
            span=Span(window, *bounds),
            as_of=_as_of(manifests, bounds),
            k=k,
            items=items,
        )

    def _spec(self, board: str) -> BoardSpec:
        spec = self._specs.get(board)
        if spec is None:
            raise InvalidQuery(f"unknown board {board!r}; expected one of {', '.join(self._specs)}")
        return spec

    def _manifests(self, board: str, kind: str | None, k: int) -> list[Manifest]:
        """Every partition's manifest of ``board``, which must all publish rising lists and
        leaders (and ``kind``'s scopes, and ``k`` items); 503 while one is missing."""
        found = self._sources[board].manifests()
        missing = [p for p, m in enumerate(found) if m is None]
        if missing:
            raise RankingUnavailable(
                f"partitions {missing[:10]} have not published board {board} yet; retry shortly"
            )
        manifests = [m for m in found if m is not None]
        if not all(m.questions for m in manifests):
            raise RankingUnavailable(
                f"the workers do not publish rising lists and leaders of board {board}"
                " (their publish_questions setting is off)"
            )
        if kind is not None:
            _check_published(manifests, k, *_example_scope(kind))
        return manifests


def open_board_source(config: Any, client: Any, partitions: Callable[[], int]) -> RedisBoardSource:
    """The :class:`RedisBoardSource` of a replica configured by ``config`` (a
    :class:`~rankstream.config.ServiceConfig`): its declared boards under its ``board``
    namespace, at the published depth."""
    return RedisBoardSource(
        client,
        config.board,
        partitions,
        config.board_specs(),
        config.served_k,
        config.max_k,
    )


def _slots(spec: BoardSpec, scopes: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The (slot 0, slot 1) labels of a board's ``{scope field: value}`` (as
    :meth:`BoardSet.slots <rankstream.boards.BoardSet.slots>`)."""
    unknown = set(scopes) - set(spec.scopes)
    if unknown:
        allowed = ", ".join(spec.scopes) or "none"
        raise InvalidQuery(
            f"board {spec.name} has no scope {sorted(unknown)[0]!r} (its scopes: {allowed})"
        )
    labels = [scopes.get(s) for s in spec.scopes] + [None, None]
    for label in labels[:2]:
        if label is not None and not 1 <= len(label) <= MAX_LABEL_CHARS:
            raise InvalidQuery(f"a scope value must be 1 to {MAX_LABEL_CHARS} characters")
    return labels[0], labels[1]


def _sliding(spec: BoardSpec, window: str, role: str) -> WindowSpec:
    found = spec.window(window)
    if found is None or found.kind != "sliding":
        sliding = ", ".join(w.name for w in spec.windows if w.kind == "sliding")
        raise InvalidQuery(
            f"{role} must be a sliding window of board {spec.name}: one of {sliding}"
        )
    return found


def _bounds(manifests: Sequence[Manifest], window: str) -> Bounds:
    bounds = common_bounds(manifests, window)
    if bounds is None:
        raise RankingUnavailable(
            f"the partitions hold no common bounds of window {window!r} yet; retry shortly"
        )
    return bounds


def _as_of(manifests: Sequence[Manifest], bounds: Bounds) -> int | None:
    """The least advanced partition's clock, clipped to ``bounds`` (as top-k states it)."""
    end = bounds[1]
    clocks = [
        m.as_of if end is None else min(m.as_of, end - 1) for m in manifests if m.as_of is not None
    ]
    return min(clocks) if clocks else None


def _leader_order(row: tuple[int, str]) -> tuple[int, str]:
    return (-row[0], row[1])


def _example_scope(kind: str) -> tuple[str | None, str | None]:
    """A scope of ``kind`` (for checking what is published)."""
    return {"all": (None, None), "category": ("c", None), "region": (None, "r")}.get(
        kind, ("c", "r")
    )
