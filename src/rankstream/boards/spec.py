"""Leaderboard declarations: the event fields, and what each named board ranks.

Declared once, in the configuration, and checked at start-up (a bad declaration is a
:class:`~rankstream.errors.ConfigError` naming the board and the problem)::

    fields = {user_id = "string", team_id = "string", score = "integer"}

    [[boards]]
    name = "players"
    entity = "user_id"
    measure = "sum(score)"
    scopes = ["team_id"]
    windows = ["10m", "1h", "24h", "all"]

- **fields**: every event field a board may use, with its type: ``string``, ``integer``,
  ``decimal(N)`` (a number kept exactly to ``N`` decimal places) or ``boolean``.
  ``timestamp`` and ``event_id`` are built in.
- **entity**: a ``string`` field naming what is ranked (``aliases``: other names the same
  field may arrive under, e.g. ``videoId``).
- **measure**: ``count`` (each event counts 1) or ``sum(FIELD)`` over an ``integer`` or
  ``decimal(N)`` field (fixed point: ``19.99`` in a ``decimal(2)`` field adds 1999 hundredths;
  answers give the sum back as a decimal). A negative value, one with more places than
  declared, or one above :data:`~rankstream.engine.measure.MAX_QUANTITY` scaled units makes
  the event unfit for the board.
- **scopes**: up to two ``string`` fields an answer can be narrowed by (``?team_id=red``).
- **filter**: ``FIELD == VALUE`` or ``FIELD in [VALUE, ...]`` (JSON literals of the field's
  type); only matching events feed the board.
- **windows**: names from :data:`WINDOW_NAMES`, or ``Nm`` / ``Nh`` / ``Nd`` for any other
  sliding window (minute buckets up to 24 hours, hour buckets beyond).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rankstream.engine.measure import Measure
from rankstream.engine.windows import DAY, DEFAULT_WINDOWS, HOUR, MINUTE, WindowSpec
from rankstream.errors import ConfigError

BUILT_IN_FIELDS = ("timestamp", "ts", "event_id")
"""Fields every event has (or may have) whatever the declaration: not declarable."""
WINDOW_NAMES = tuple(w.name for w in DEFAULT_WINDOWS)
"""The named windows (sliding ``1h`` ... and calendar ``hour``, ``day``, ``month``, ``all``)."""
MAX_SCOPES = 2

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DECIMAL = re.compile(r"^decimal\((\d{1,2})\)$")
_SUM = re.compile(r"^sum\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")
_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|in)\s*(.+?)\s*$", re.DOTALL)
_SLIDING = re.compile(r"^([1-9]\d{0,4})([mhd])$")
_UNITS = {"m": MINUTE, "h": HOUR, "d": DAY}

FieldTypes = Mapping[str, str]
Scalar = str | int | bool


@dataclass(frozen=True, slots=True)
class Filter:
    """``field`` must hold one of ``values`` (compared as JSON values of the field's type)."""

    field: str
    values: tuple[Scalar, ...]

    def matches(self, value: Any) -> bool:
        """Whether an event whose field holds ``value`` (``None``: absent) is selected."""
        return value is not None and any(
            type(value) is type(v) and value == v  # 1 never matches true, nor "1" 1
            for v in self.values
        )


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """One declared leaderboard (see the module docstring). ``value_name`` is what an item
    calls its value in answers (``views`` for the default ``videos`` board)."""

    name: str
    entity: str
    measure: str = "count"
    scopes: tuple[str, ...] = ()
    filter: Filter | None = None
    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    scale: int = 0
    entity_aliases: tuple[str, ...] = ()
    value_name: str = "value"

    @property
    def sum_field(self) -> str | None:
        """The summed field, or ``None`` for ``count``."""
        found = _SUM.match(self.measure)
        return found.group(1) if found else None

    @property
    def engine_measure(self) -> Measure:
        """What the board's engine decodes and sums."""
        return Measure(
            entity_field=self.entity,
            entity_aliases=self.entity_aliases,
            quantity_field=self.sum_field,
            value_name=self.value_name,
            scope_fields=self.scopes,
            quantity_scale=self.scale,
        )

    def window(self, name: str) -> WindowSpec | None:
        """The board's window called ``name``, if it has one."""
        return next((w for w in self.windows if w.name == name), None)

    def describe(self) -> dict[str, Any]:
        """The declaration as ``GET /leaderboards`` shows it."""
        return {
            "name": self.name,
            "entity": self.entity,
            "measure": self.measure,
            "scale": self.scale,
            "scopes": list(self.scopes),
            "filter": None
            if self.filter is None
            else {"field": self.filter.field, "values": list(self.filter.values)},
            "windows": [w.name for w in self.windows],
            "value_name": self.value_name,
        }


VIDEOS = BoardSpec(
    name="videos",
    entity="video_id",
    scopes=("category", "region"),
    entity_aliases=("videoId",),
    value_name="views",
)
"""Today's board: videos by views, by category and region, in every default window."""
VIEW_FIELDS: dict[str, str] = {"video_id": "string", "category": "string", "region": "string"}
"""The fields of a view event, declared by default."""


def parse_window(name: str) -> WindowSpec:
    """A window by name: one of :data:`WINDOW_NAMES`, or ``Nm`` / ``Nh`` / ``Nd`` sliding."""
    for spec in DEFAULT_WINDOWS:
        if spec.name == name:
            return spec
    found = _SLIDING.match(name)
    if found is None:
        raise ConfigError(
            f"unknown window {name!r}: expected one of {', '.join(WINDOW_NAMES)},"
            " or Nm, Nh or Nd (e.g. 10m)"
        )
    size = int(found.group(1)) * _UNITS[found.group(2)]
    if size > 400 * DAY:
        raise ConfigError(f"window {name}: at most 400 days")
    resolution = MINUTE if size <= DAY else HOUR
    if size % resolution:
        raise ConfigError(f"window {name}: beyond 24h a window is a whole number of hours")
    return WindowSpec(name, "sliding", resolution=resolution, size=size)


def parse_field_types(fields: Mapping[str, str]) -> dict[str, str]:
    """The declared fields, checked: names, types, none of :data:`BUILT_IN_FIELDS`."""
    checked: dict[str, str] = {}
    for name, kind in fields.items():
        if not _FIELD.match(name):
            raise ConfigError(f"field {name!r}: a name is letters, digits and _ (at most 64)")
        if name in BUILT_IN_FIELDS:
            raise ConfigError(f"field {name!r} is built in: do not declare it")
        if kind not in ("string", "integer", "boolean") and not _DECIMAL.match(kind):
            raise ConfigError(
                f"field {name!r}: unknown type {kind!r}; expected string, integer,"
                " decimal(N) or boolean"
            )
        checked[name] = kind
    return checked


def parse_board(declaration: Mapping[str, Any], fields: FieldTypes) -> BoardSpec:
    """A :class:`BoardSpec` from its declaration (a TOML table), checked against ``fields``."""
    known = {"name", "entity", "aliases", "measure", "scopes", "filter", "windows", "value_name"}
    name = declaration.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"board name {name!r}: lowercase letters, digits, - and _, starting with a letter"
        )
    where = f"board {name}"
    unknown = set(declaration) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; expected {sorted(known)}")
    entity = declaration.get("entity")
    _expect_field(where, "entity", entity, fields, ("string",))
    measure = str(declaration.get("measure", "count"))
    scale = 0
    if measure != "count":
        summed = _SUM.match(measure)
        if summed is None:
            raise ConfigError(f"{where}: measure must be count or sum(FIELD), got {measure!r}")
        kind = _expect_field(where, "sum", summed.group(1), fields, ("integer", "decimal"))
        decimal = _DECIMAL.match(kind)
        scale = int(decimal.group(1)) if decimal else 0
        measure = f"sum({summed.group(1)})"
    scopes = declaration.get("scopes", [])
    if not isinstance(scopes, list) or len(scopes) > MAX_SCOPES:
        raise ConfigError(f"{where}: scopes must be a list of at most {MAX_SCOPES} fields")
    for scope in scopes:
        _expect_field(where, "scope", scope, fields, ("string",))
    if len(set(scopes)) != len(scopes) or entity in scopes:
        raise ConfigError(f"{where}: scopes must differ from each other and from the entity")
    windows = declaration.get("windows", list(WINDOW_NAMES))
    if not isinstance(windows, list) or not windows:
        raise ConfigError(f"{where}: windows must be a non-empty list")
    try:
        specs = tuple(parse_window(str(w)) for w in windows)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if len({w.name for w in specs}) != len(specs):
        raise ConfigError(f"{where}: a window is listed twice")
    value_name = declaration.get("value_name", "value")
    if not isinstance(value_name, str) or not _FIELD.match(value_name):
        raise ConfigError(f"{where}: value_name must be a field-like name")
    aliases = declaration.get("aliases", [])
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and _FIELD.match(a) and a not in fields for a in aliases
    ):
        raise ConfigError(f"{where}: aliases must be a list of other, undeclared field names")
    raw_filter = declaration.get("filter")
    return BoardSpec(
        name=name,
        entity=str(entity),
        measure=measure,
        scopes=tuple(scopes),
        filter=None if raw_filter is None else parse_filter(where, raw_filter, fields),
        windows=specs,
        scale=scale,
        entity_aliases=tuple(aliases),
        value_name=value_name,
    )


def parse_boards(
    declarations: Sequence[Mapping[str, Any]], fields: Mapping[str, str]
) -> tuple[BoardSpec, ...]:
    """Every declared board, checked (names unique, at least one board)."""
    types = parse_field_types(fields)
    boards = tuple(parse_board(d, types) for d in declarations)
    if not boards:
        raise ConfigError("at least one board must be declared")
    names = [b.name for b in boards]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"board {name} is declared twice")
    return boards


def parse_filter(where: str, text: object, fields: FieldTypes) -> Filter:
    """``FIELD == VALUE`` or ``FIELD in [VALUE, ...]``, values of the field's type."""
    found = _FILTER.match(text) if isinstance(text, str) else None
    if found is None:
        raise ConfigError(f"{where}: filter must be FIELD == VALUE or FIELD in [...], got {text!r}")
    field, operator, literal = found.groups()
    kind = _expect_field(where, "filter", field, fields, ("string", "integer", "boolean"))
    try:
        value = json.loads(literal)
    except ValueError:
        raise ConfigError(f"{where}: filter value {literal} is not a JSON literal") from None
    values = value if operator == "in" else [value]
    if (operator == "in" and not isinstance(value, list)) or not values:
        raise ConfigError(f'{where}: filter \'in\' takes a non-empty list, e.g. ["a", "b"]')
    python = {"string": str, "integer": int, "boolean": bool}[kind]
    for item in values:
        if type(item) is not python:
            raise ConfigError(f"{where}: filter value {item!r} is not a {kind} ({field} is)")
    return Filter(field, tuple(values))


def _expect_field(
    where: str, role: str, name: object, fields: FieldTypes, kinds: tuple[str, ...]
) -> str:
    """The declared type of field ``name``, which must be one of ``kinds``."""
    if not isinstance(name, str) or name not in fields:
        declared = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{where}: {role} field {name!r} is not declared (fields: {declared})")
    kind = fields[name]
    if not kind.startswith(kinds):
        raise ConfigError(
            f"{where}: {role} field {name!r} is {kind}; expected {' or '.join(kinds)}"
        )
    return kind
