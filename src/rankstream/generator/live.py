"""What a live traffic model is to the sender and the Kafka producer, whatever its scenario.

A scenario (:mod:`rankstream.generator.scenarios`) is a model of one kind of traffic: video
views (:class:`~rankstream.generator.traffic.TrafficModel`), game scores
(:class:`~rankstream.generator.game.GameModel`), shop sessions
(:class:`~rankstream.generator.shop.ShopModel`). The sender and the producer only need what
:class:`LiveModel` and :class:`LiveBatch` describe: a batch of events made to order at a
wall time, its JSON bodies, and a Kafka key per event.

Every model is pure: it never reads the clock (the caller passes ``now_ms``) and does no
I/O; ``model.batch(index, size, now_ms)`` returns the same events and bytes for the same
arguments, in any order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self

import msgspec


class LiveBatch(Protocol):
    """One batch of a live model: its events, one Kafka key per event, and which rows are
    malformed on purpose (row -> how)."""

    @property
    def events(self) -> Sequence[object]: ...

    @property
    def keys(self) -> Sequence[str]: ...

    @property
    def malformed(self) -> Mapping[int, str]: ...

    def __len__(self) -> int: ...

    def encode(self) -> bytes:
        """The batch as a JSON array, the body of one ``POST /views``."""
        ...

    def encode_ndjson(self) -> bytes:
        """The batch as NDJSON, one event a line."""
        ...


class LiveModel(Protocol):
    """A pure model of live traffic (see the module docstring)."""

    def batch(self, index: int, size: int, now_ms: int) -> LiveBatch:
        """Batch ``index`` (``>= 0``) of ``size`` events made at wall time ``now_ms``."""
        ...

    def starting_at(self, start_ms: int) -> Self:
        """The same model for a run that starts at ``start_ms`` (no rebuild)."""
        ...

    def rate_multiplier(self, now_ms: int) -> float:
        """The diurnal rate factor at ``now_ms`` (mean 1 over a day)."""
        ...


@dataclass(frozen=True, slots=True)
class ScenarioBatch:
    """A batch of well-formed scenario events (msgspec structs), each with its Kafka key.

    Scenarios other than ``views`` make no malformed rows, so ``malformed`` is empty.
    """

    index: int
    now_ms: int
    events: list[msgspec.Struct]
    keys: list[str]
    malformed: Mapping[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events)

    def encode(self) -> bytes:
        """The batch as a JSON array, the body of one ``POST /views``."""
        return msgspec.json.encode(self.events)

    def encode_ndjson(self) -> bytes:
        """The batch as NDJSON (one event per line, ``application/x-ndjson``)."""
        encode = msgspec.json.encode
        return b"".join([encode(e) + b"\n" for e in self.events])
