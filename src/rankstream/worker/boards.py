"""The declared boards in scale-out mode: which the topic's partitioning serves, and the
one rule by which a run of messages is decided (the workers' and the analytics loader's).

**The topic's key.** Producers key every message by the entity of the *first declared
board* (``video_id`` for the default ``videos`` board; ``rankstream generate --scenario
game`` keys by ``user_id``, so declare a ``user_id`` board first), partitioned by Kafka's
murmur2 rule. A board merges exactly across partitions only if all of an entity's events
are in one partition, i.e. if its entity is that key; any other board is counted from a
repartition topic keyed by its entity (:mod:`.repartition`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rankstream.boards import BoardSet, BoardSpec, Ingested, Routed
from rankstream.engine import ACCEPTED
from rankstream.log.messages import NO_TIMESTAMP
from rankstream.worker.publisher import Scope, scopes_of


def topic_key(boards: Sequence[BoardSpec]) -> str:
    """The event field the topic is keyed by: the first declared board's entity."""
    return boards[0].entity


@dataclass(slots=True)
class DecidedRun:
    """A run of messages (``raws``) decided by the boards: the wall time it was screened
    at, each board's fitting events (``routed``), the decision per message (``decided``)."""

    wall: int
    routed: Routed
    decided: Ingested
    raws: Sequence[bytes]

    def touched(self, board: str) -> set[Scope]:
        """The scopes of ``board`` its events (accepted or not: a superset is harmless)
        may have changed."""
        route = self.routed.routes.get(board)
        if route is None or not len(route.batch):
            return set()
        batch, size = route.batch, len(route.batch)
        return scopes_of(batch.categories or [None] * size, batch.regions or [None] * size)


def decide_run(boards: BoardSet, raws: Sequence[bytes], arrival: int) -> DecidedRun:
    """Decide and count a run of messages that arrived at ``arrival`` (a Kafka timestamp,
    or :data:`~rankstream.log.messages.NO_TIMESTAMP`: then the newest event time among the
    boards' fitting events, which is in the log too), as
    :meth:`BoardSet.ingest <rankstream.boards.BoardSet.ingest>` does. Deterministic: the
    same boards state and run give the same decisions wherever they are made."""
    routed = boards.route(raws)
    wall = arrival
    if wall == NO_TIMESTAMP:
        stamps = [int(r.batch.timestamps.max()) for r in routed.routes.values() if len(r.batch)]
        wall = max(stamps, default=0)
    screening = boards.screening(wall)
    decided = screening.screen(routed)
    decided.counted = screening.commit()
    return DecidedRun(wall, routed, decided, raws)


def accepted_rows(run: DecidedRun) -> list[int]:
    """The rows (message positions in the run) the boards accepted."""
    return np.flatnonzero(run.decided.status == ACCEPTED).tolist()
