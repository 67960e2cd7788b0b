"""How published rankings sit in Redis: key names and values, declared once for the workers
that write them and the API replicas that read them.

Keys (``{...}`` is a Redis Cluster hash tag: keys with the same tag live in one slot):

- ``rs:{<board>:<window>:<scope>}:p<partition>``: one partition's ranking of one window
  and scope. Every partition of a ranking shares the tag, so one ``MGET`` reads them all.
- ``rs:{<board>:<window>:all#<n>}:p<partition>``: the ``n``-th read copy of a global
  ranking (``hot_copies`` of them; readers pick one at random), written with the original.
- ``rs:{<board>}:manifest:p<partition>``: what a partition has published: the window bounds
  its rankings are held for, its log offsets and when it published. All manifests of a
  board share a tag, so one ``MGET`` reads them all.
- ``rs:{<board>:rising:<short>:<long>:<scope>}:p<partition>``: one partition's *rising*
  list of a (short, long) pair of sliding windows in one scope (:class:`RisingGeneration`).
- ``rs:{<board>:leaders:<window>:<field>}:p<partition>``: one partition's leader, leader's
  value and total of every group of scope field ``<field>`` (:class:`LeadersGeneration`).

``<board>`` is the *board tag* (:func:`board_tag`): the ``board`` setting (the key
namespace, ``views`` by default) for the default ``videos`` board, so its keys are the
ones replicas read before boards existed; ``<namespace>.<name>`` for any other board
(``views.players``). A scope field's values sit in the scope part of a key as the engine's
slots: ``c=`` the board's first scope field, ``r=`` its second.

A ranking's value holds up to two *generations*: its newest ranking and, when the window's
bounds moved since, the newest ranking of the bounds before. A reader merges, for every
partition, the generation of the newest bounds ALL partitions hold (see
:func:`common_bounds`), so a merged answer never mixes counts of different bounds, even
while workers cross a minute boundary at slightly different moments.

Values are MessagePack (msgspec): compact, and decoded without a schema layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from urllib.parse import quote

import msgspec

PREFIX = "rs"
DEFAULT_BOARD = "videos"
"""The board whose keys are the namespace's own (today's ``/views/top-k`` rankings)."""

Bounds = tuple[int | None, int | None]  # (start, end) of a window; (None, None) for "all"


class Generation(msgspec.Struct, array_like=True, frozen=True):
    """One partition's ranking for one window's bounds ``[start, end)``: video ids and
    their views, in rank order, as two columns (no object per row to make, compare or
    encode). (How fresh it is: the partition's manifest says.)"""

    start: int | None
    end: int | None
    video_ids: list[str]
    views: list[int]

    @property
    def bounds(self) -> Bounds:
        return (self.start, self.end)


class RisingGeneration(msgspec.Struct, array_like=True, frozen=True):
    """One partition's rising list for the bounds of a (short, long) window pair: its
    entities with a short value of at least 1, in rising order (ratio, then short value,
    descending; then id), at most the published depth of them. ``complete``: the list holds
    every such entity of the partition (none was cut by the depth)."""

    short_start: int | None
    short_end: int | None
    long_start: int | None
    long_end: int | None
    complete: bool
    ids: list[str]
    short: list[int]
    long: list[int]

    @property
    def bounds(self) -> tuple[Bounds, Bounds]:
        return ((self.short_start, self.short_end), (self.long_start, self.long_end))


class LeadersGeneration(msgspec.Struct, array_like=True, frozen=True):
    """One partition's groups of one scope field in one window's bounds: for every group
    (label) with a non-zero total, its leading entity, that entity's value and the group's
    total, all of the partition's entities (entities are the topic key, so a partition holds
    all of an entity's events)."""

    start: int | None
    end: int | None
    groups: list[str]
    leaders: list[str]
    values: list[int]
    totals: list[int]

    @property
    def bounds(self) -> Bounds:
        return (self.start, self.end)


class Manifest(msgspec.Struct, frozen=True):
    """What one partition has published. ``bounds``: for each window, the bounds its
    rankings are held for, newest first. ``applied`` / ``checkpointed``: the next log
    offsets not yet applied / not covered by a checkpoint; ``end``: the partition's end
    offset as last seen (``end - applied`` is the consumer lag); ``published_at``: epoch ms
    of this publish; ``worker``: who published it; ``kinds`` and ``depth``: which scope
    kinds it publishes, how many items per ranking (a reader refuses what is not
    published instead of answering an empty ranking)."""

    bounds: dict[str, list[tuple[int | None, int | None]]]
    as_of: int | None
    applied: int
    checkpointed: int
    end: int
    published_at: int
    worker: str
    kinds: list[str]
    depth: int
    questions: bool = False  # rising lists and group leaders are published too


_generation_heads = msgspec.msgpack.Decoder(
    list[tuple[int | None, int | None, msgspec.Raw, msgspec.Raw]]
)
_ids = msgspec.msgpack.Decoder(list[str])
_views = msgspec.msgpack.Decoder(list[int])
_manifest = msgspec.msgpack.Decoder(Manifest)
_rising = msgspec.msgpack.Decoder(list[RisingGeneration])
_leaders = msgspec.msgpack.Decoder(list[LeadersGeneration])
_encoder = msgspec.msgpack.Encoder()


def rising_order(short: int, long: int, entity: str) -> tuple[Fraction, int, str]:
    """The sort key of the rising order (ascending sorts best first): the ratio of the
    per-minute rates is ``short / long`` times a constant of the window pair, so comparing
    ``short / long`` exactly compares the ratios."""
    return (-Fraction(short, long), -short, entity)


def board_tag(namespace: str, board: str) -> str:
    """The name a board's keys carry: ``namespace`` itself for the :data:`DEFAULT_BOARD`
    (the keys of before boards), ``<namespace>.<board>`` otherwise. Neither a namespace nor
    a board name holds a ``.``, so two boards never share a tag."""
    return namespace if board == DEFAULT_BOARD else f"{namespace}.{board}"


def scope_kind(scope: tuple[str | None, str | None]) -> str:
    """Which kind of scope ``(category, region)`` is: ``all``, ``category``, ``region`` or
    ``category_region`` (the names ``publish_scopes`` takes)."""
    category, region = scope
    if category is None:
        return "all" if region is None else "region"
    return "category" if region is None else "category_region"


def scope_key(category: str | None, region: str | None) -> str:
    """The scope part of a ranking key: ``all``, ``c=<category>``, ``r=<region>`` or
    ``cr=<category>,<region>``, labels percent-encoded (so no ``{}``, ``:`` or ``,``)."""
    if category is None and region is None:
        return "all"
    if region is None:
        return f"c={quote(category or '', safe='')}"
    if category is None:
        return f"r={quote(region, safe='')}"
    return f"cr={quote(category, safe='')},{quote(region, safe='')}"


def ranking_key(board: str, window: str, scope: str, partition: int, copy: int = 0) -> str:
    """The key of one partition's ranking (see the module docstring); ``copy`` ``n > 0``
    names its ``n``-th read copy (hot rankings: each copy has its own hash tag, so on a
    Redis Cluster the copies of a ranking live on different nodes)."""
    tag = f"{board}:{window}:{scope}" if copy == 0 else f"{board}:{window}:{scope}#{copy}"
    return f"{PREFIX}:{{{tag}}}:p{partition}"


def manifest_key(board: str, partition: int) -> str:
    """The key of one partition's manifest."""
    return f"{PREFIX}:{{{board}}}:manifest:p{partition}"


def rising_key(board: str, short: str, long: str, scope: str, partition: int) -> str:
    """The key of one partition's rising list (see the module docstring)."""
    return f"{PREFIX}:{{{board}:rising:{short}:{long}:{scope}}}:p{partition}"


def leaders_key(board: str, window: str, field: str, partition: int) -> str:
    """The key of one partition's group leaders (see the module docstring)."""
    return f"{PREFIX}:{{{board}:leaders:{window}:{field}}}:p{partition}"


def decode_rising(data: bytes) -> list[RisingGeneration]:
    """The generations of a rising key's value, newest first."""
    return _rising.decode(data)


def decode_leaders(data: bytes) -> list[LeadersGeneration]:
    """The generations of a leaders key's value, newest first."""
    return _leaders.decode(data)


def encode_generations(
    generations: Sequence[Generation] | Sequence[RisingGeneration] | Sequence[LeadersGeneration],
) -> bytes:
    """The value of a ranking, rising or leaders key."""
    return _encoder.encode(list(generations))


def decode_generation(data: bytes, bounds: Bounds) -> Generation | None:
    """The generation of ``bounds`` in a ranking key's value (``None`` if it holds none),
    decoding the rows of that generation only: a reader needs one of the two."""
    for start, end, ids, views in _generation_heads.decode(data):
        if (start, end) == bounds:
            return Generation(start, end, _ids.decode(ids), _views.decode(views))
    return None


def encode_manifest(manifest: Manifest) -> bytes:
    """The value of a manifest key."""
    return _encoder.encode(manifest)


def decode_manifest(data: bytes) -> Manifest:
    """The manifest in a manifest key's value."""
    return _manifest.decode(data)


def common_bounds(manifests: Sequence[Manifest], window: str) -> Bounds | None:
    """The newest bounds of ``window`` that every partition with a clock holds, or ``None``
    if they share none (a reader then answers 503, never a mix). A partition whose engine
    has no clock yet (``as_of`` is ``None``: it never saw an event) holds nothing in any
    bounds, so it does not restrict them."""
    shared: set[Bounds] | None = None
    for manifest in manifests:
        if manifest.as_of is None:
            continue
        held = {(start, end) for start, end in manifest.bounds.get(window, [])}
        shared = held if shared is None else shared & held
    if shared is None:
        return (None, None)  # no partition has seen an event: every ranking is empty
    if not shared:
        return None
    return max(shared, key=lambda b: (b[1] is not None, b[1] or 0))
