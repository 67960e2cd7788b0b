"""Publishing one partition's rankings to Redis: only what changed, never half-written.

Each round the worker hands over the scopes its applied events touched. For every window,
the rankings of those scopes are recomputed to the published depth; when a window's bounds
moved, every scope of it is. A ranking whose items and bounds are what was last written is
skipped, so a quiet partition costs one manifest write per round, not a write per view.
Each changed ranking's whole value is written by ``MSET`` (atomic per key: a reader sees
the old or the new value), a few hundred keys per command, all in one pipelined round
trip; the manifest follows in a second one, so a manifest never names bounds whose
rankings are not yet written.
(Key layout and values: :mod:`rankstream.serving.layout`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rankstream.engine import RankedColumns, TopKEngine
from rankstream.serving.layout import (
    Bounds,
    Generation,
    Manifest,
    encode_generations,
    encode_manifest,
    manifest_key,
    ranking_key,
    scope_key,
    scope_kind,
)

Scope = tuple[str | None, str | None]  # (category, region); (None, None) is "all"


def scopes_of(categories: Iterable[str | None], regions: Iterable[str | None]) -> set[Scope]:
    """Every scope an event with these (category, region) pairs counts in."""
    scopes: set[Scope] = {(None, None)}
    for category, region in set(zip(categories, regions, strict=True)):
        scopes.add((category, None))
        scopes.add((None, region))
        scopes.add((category, region))
    return scopes


@dataclass(slots=True)
class PublishStats:
    """Redis commands sent and value bytes written, since the worker started."""

    commands: int = 0
    bytes: int = 0
    rankings: int = 0
    rounds: int = 0


@dataclass(slots=True)
class PartitionPublisher:
    """What one partition last published, to write only changes (see the module docstring).

    ``windows``: the window names to publish; ``depth``: items per ranking; ``kinds``: the
    scope kinds to publish (the costly dimension at scale: a category x region pair per
    published ranking); ``hot_copies``: extra read copies of each global ranking.
    """

    board: str
    partition: int
    windows: tuple[str, ...]
    depth: int
    kinds: frozenset[str]
    hot_copies: int = 0
    published: dict[tuple[str, str], list[Generation]] = field(default_factory=dict)
    bounds: dict[str, list[Bounds]] = field(default_factory=dict)
    _keys: dict[Scope, str] = field(default_factory=dict)  # scope -> its part of a key

    def forget(self) -> None:
        """Forget what was published (Redis lost it): the next round writes everything."""
        self.published.clear()
        self.bounds.clear()

    def writes(self, engine: TopKEngine, touched: set[Scope] | None) -> dict[str, bytes]:
        """The ranking keys to write and their values, for the scopes in ``touched`` (all
        the engine holds if ``None``, or when a window's bounds moved)."""
        changes: dict[str, bytes] = {}
        every = [s for s in engine.scopes() if scope_kind(s) in self.kinds]
        for window in self.windows:
            probe = engine.top_k(window, 1)
            bounds: Bounds = (probe.start, probe.end)
            held = self.bounds.get(window, [])
            moved = not held or held[0] != bounds
            if moved:
                self.bounds[window] = [bounds, *held[:1]]
            scopes = every if moved or touched is None else self._kept(touched)
            rankings = engine.top_k_columns(window, self.depth, scopes)
            for scope, ranking in zip(scopes, rankings, strict=True):
                value = self._ranking(window, scope, bounds, ranking)
                if value is None:
                    continue
                copies = self.hot_copies if scope == (None, None) else 0
                for copy in range(copies + 1):
                    key = ranking_key(self.board, window, self._key_of(scope), self.partition, copy)
                    changes[key] = value
        return changes

    def _key_of(self, scope: Scope) -> str:
        key = self._keys.get(scope)
        if key is None:
            key = self._keys[scope] = scope_key(*scope)
        return key

    def _kept(self, touched: set[Scope]) -> list[Scope]:
        return [s for s in touched if scope_kind(s) in self.kinds]

    def _ranking(
        self, window: str, scope: Scope, bounds: Bounds, ranking: RankedColumns
    ) -> bytes | None:
        generation = Generation(bounds[0], bounds[1], ranking.video_ids, ranking.views)
        slot = (window, self._key_of(scope))
        before = self.published.get(slot)
        if before is None and not generation.video_ids:
            return None  # never published and empty: a missing ranking reads as empty
        if before and before[0] == generation:
            return None  # unchanged
        if before is None:
            older: list[Generation] = []
        elif before[0].bounds == bounds:
            older = before[1:]  # same bounds, new items: keep the generation before
        else:
            older = before[:1]  # the bounds moved: the last of the old bounds stays readable
        generations = [generation, *older]
        self.published[slot] = generations
        return encode_generations(generations)

    def manifest(
        self,
        engine: TopKEngine,
        offsets: dict[str, int],
        at: int,
        worker: str,
        questions: bool = False,
    ) -> bytes:
        """The manifest value after this round's rankings (and, with ``questions``, rising
        lists and leaders) are written."""
        return encode_manifest(
            Manifest(
                bounds={w: list(b) for w, b in self.bounds.items()},
                as_of=engine.now,
                applied=offsets["applied"],
                checkpointed=offsets["checkpointed"],
                end=offsets["end"],
                published_at=at,
                worker=worker,
                kinds=sorted(self.kinds),
                depth=self.depth,
                questions=questions,
            )
        )

    @property
    def manifest_key(self) -> str:
        return manifest_key(self.board, self.partition)


_MSET_KEYS = 500  # keys per MSET: bounded, so one command never holds Redis up for long


def send(client: Any, writes: dict[str, bytes], stats: PublishStats) -> None:
    """Write every key, in one pipelined round trip of ``MSET`` commands (non-transactional:
    each value is whole on its own). On a Redis Cluster, ``mset_nonatomic`` groups the keys
    by slot. ``MSET`` rather than a ``SET`` per key: one command per few hundred rankings
    costs the client a fraction of the packing and reply parsing."""
    if not writes:
        return
    if hasattr(client, "mset_nonatomic"):  # redis-py's cluster client
        client.mset_nonatomic(writes)
        commands = len(writes)  # one MSET per slot, and rankings spread over slots
    else:
        pipe = client.pipeline(transaction=False)
        items = list(writes.items())
        for start in range(0, len(items), _MSET_KEYS):
            pipe.mset(dict(items[start : start + _MSET_KEYS]))
        pipe.execute()
        commands = -(-len(items) // _MSET_KEYS)
    stats.commands += commands
    stats.bytes += sum(len(value) for value in writes.values())
