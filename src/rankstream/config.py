"""Service configuration: every setting of ``rankstream serve`` declared once, here.

Each field of :class:`ServiceConfig` carries its default, type, range and description; the
description is the option's ``--help`` text (the CLI generates its options from these
fields), the environment variable is ``RANKSTREAM_<NAME>`` and the TOML key is the field name.

:meth:`ServiceConfig.load` reads, lowest precedence first: the defaults, a TOML file
(``--config``; ``port = 8000``), ``RANKSTREAM_*`` environment variables
(``RANKSTREAM_PORT=8000``) and command-line options. pydantic-settings does the reading and
merging; every problem (unknown TOML key, bad type, value out of range) is a
:class:`~rankstream.errors.ConfigError` with one line per problem naming the setting, where
the value came from and the rule. ``ServiceConfig(port=...)`` uses the defaults and its
arguments only (no environment, no file), so tests and embedders get what they ask for.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from rankstream.boards import VIEW_FIELDS, BoardSpec, parse_boards
from rankstream.engine import EngineConfig
from rankstream.errors import ConfigError

SCOPE_KINDS = ("all", "category", "region", "category_region")
DECLARATION: dict[str, Any] = {"declaration": True}
"""Marks the settings that are declarations (tables, lists of tables): set in the TOML file
or, as JSON, in the environment; they have no command-line option."""
VIDEOS_DECLARATION: dict[str, Any] = {
    "name": "videos",
    "entity": "video_id",
    "aliases": ["videoId"],
    "scopes": ["category", "region"],
    "value_name": "views",
}
"""The default board: today's videos by views, as a declaration."""

ENV_PREFIX = "RANKSTREAM_"
MIB = 1024 * 1024
MIN_TOKEN_LENGTH = 16

Tokens = Annotated[tuple[SecretStr, ...], NoDecode]  # NoDecode: env values are not JSON


class ServiceConfig(BaseSettings):
    """Settings of the embedded service (durations in seconds unless named ``_ms``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,  # a ValidationError printed anywhere never shows a token
        validate_default=True,
    )

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to bind.")
    port: int = Field(default=8000, ge=0, le=65_535, description="TCP port to bind.")
    data_dir: Path = Field(
        default=Path("data"),
        description="Directory of the log, checkpoints and metadata; created if missing.",
    )
    max_events_per_request: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Events one POST /views may carry (413 beyond).",
    )
    max_body_bytes: int = Field(
        default=16 * MIB, ge=1, description="Bytes one request body may have (413 beyond)."
    )
    sync: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description="FULL: every acknowledged event survives power loss; "
        "NORMAL: survives a process crash only.",
    )
    checkpoint_interval: float = Field(
        default=60.0, gt=0, description="Seconds between checkpoints."
    )
    checkpoint_every_events: int = Field(
        default=2_000_000, ge=1, description="Also checkpoint after this many events."
    )
    tick_interval: float = Field(
        default=1.0, gt=0, description="Seconds between clock ticks (sliding windows move on them)."
    )
    idempotency_ttl: float = Field(
        default=86_400.0, gt=0, description="Seconds an Idempotency-Key and its answer are kept."
    )
    dead_letter_capacity: int = Field(
        default=10_000, ge=0, description="Newest rejected events kept for GET /dead-letters."
    )
    max_skew_ms: int = Field(
        default=300_000,
        ge=0,
        description="Events more than this many ms ahead of server time are rejected.",
    )
    dedup_horizon_ms: int = Field(
        default=600_000,
        ge=0,
        description="An event_id seen within this many ms of arrivals is a duplicate.",
    )
    dedup_capacity: int = Field(
        default=2_000_000,
        ge=0,
        description="Most event_ids remembered for de-duplication (oldest go first).",
    )
    max_k: int = Field(
        default=1000, ge=1, le=100_000, description="Largest k a top-k query may ask for."
    )
    write_token: Tokens = Field(
        default=(),
        description="Bearer token accepted for writes; several for rotation (repeat the option, "
        "or comma-separated in the environment). At least 16 printable ASCII characters, "
        "no spaces or commas.",
    )
    read_token: Tokens = Field(
        default=(),
        description="Bearer token accepted for reads; several for rotation, as for write_token.",
    )
    max_queued_requests: int = Field(
        default=1024, ge=1, description="Ingest requests waiting for the writer (429 beyond)."
    )
    max_queued_bytes: int = Field(
        default=256 * MIB, ge=1, description="Body bytes of ingest requests waiting (429 beyond)."
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1024,
        le=MIB,
        description="Total bytes of a request's headers (431 beyond).",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to receive a request's headers, and then its body (408 beyond).",
    )
    keep_alive_timeout: float = Field(
        default=5.0, gt=0, description="Seconds an idle keep-alive connection is kept open."
    )
    max_connections: int = Field(
        default=1000, ge=1, description="Concurrent connections and requests (503 beyond)."
    )
    max_videos: int = Field(
        default=10_000_000, ge=1, description="Most distinct videos the engine holds."
    )
    max_categories: int = Field(
        default=65_535, ge=1, le=65_535, description="Most distinct categories the engine holds."
    )
    max_regions: int = Field(
        default=65_535, ge=1, le=65_535, description="Most distinct regions the engine holds."
    )
    max_cells: int = Field(
        default=10_000_000,
        ge=1,
        description="Most cells (a video in one category and region) the engine holds;"
        " budget 0.7-0.9 KB of memory each.",
    )
    kafka: str = Field(
        default="",
        description="Scale-out: Kafka bootstrap servers HOST:PORT[,HOST:PORT...], optionally"
        " /TOPIC; empty: the embedded service.",
    )
    topic: str = Field(
        default="video_views",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Scale-out: the topic of view events (key video_id, value the event JSON).",
    )
    group: str = Field(
        default="rankstream", min_length=1, description="Scale-out: the workers' consumer group."
    )
    redis: str = Field(
        default="",
        description="Scale-out: where workers publish rankings and API replicas read them,"
        " redis://HOST:PORT/DB.",
    )
    redis_cluster: bool = Field(
        default=False, description="Scale-out: the redis URL names a node of a Redis Cluster."
    )
    checkpoints: str = Field(
        default="",
        description="Scale-out workers: a directory, or s3://BUCKET/PREFIX, for partition"
        " checkpoints.",
    )
    s3_endpoint: str = Field(
        default="", description="Scale-out: an S3-compatible endpoint URL (empty: AWS's)."
    )
    board: str = Field(
        default="views",
        pattern=r"^[a-z0-9_-]{1,64}$",
        description="Scale-out: the leaderboard's name in Redis keys.",
    )
    publish_depth: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Scale-out: items published per ranking (the largest k API replicas serve).",
    )
    publish_scopes: str = Field(
        default="all,category,region,category_region",
        description="Scale-out: scope kinds published (comma-separated: all, category, region,"
        " category_region).",
    )
    hot_copies: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Scale-out: extra read copies of each global ranking; replicas read one at"
        " random (spreads hot keys over a Redis Cluster's nodes).",
    )
    publish_questions: bool = Field(
        default=True,
        description="Scale-out workers: also publish each board's rising lists and group"
        " leaders (what /leaderboards/{name}/rising and /leaders read on replicas; about a"
        " third more work per publish round).",
    )
    publish_interval: float = Field(
        default=0.5, gt=0, description="Scale-out workers: seconds between publishes to Redis."
    )
    produce_timeout_ms: int = Field(
        default=30_000,
        ge=1000,
        description="Scale-out API: ms to wait for the broker to acknowledge a request's"
        " events before answering 503.",
    )
    session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="Scale-out workers: Kafka consumer-group session timeout (a dead worker's"
        " partitions move after it).",
    )

    analytics: bool = Field(
        default=True,
        description="Embedded: keep every accepted event in the analytics store (chDB, in"
        " data_dir/analytics) and serve /analytics/*.",
    )
    analytics_ttl_days: int = Field(
        default=730,
        ge=0,
        le=36_500,
        description="Days of raw and hourly analytics rows kept, by event time; 0 keeps"
        " them for ever.",
    )
    analytics_batch_rows: int = Field(
        default=100_000,
        ge=1,
        le=1_000_000,
        description="Most events the analytics loader inserts at once.",
    )
    analytics_url: str = Field(
        default="",
        description="Scale-out API: the analytics loader's address (http://HOST:PORT);"
        " /analytics/* is forwarded there. Empty: answered 503.",
    )
    analytics_group: str = Field(
        default="rankstream-analytics",
        min_length=1,
        description="Scale-out analytics loader: its own consumer group (not the workers').",
    )
    analytics_checkpoints: str = Field(
        default="",
        description="Scale-out analytics loader: a directory, or s3://BUCKET/PREFIX, for its"
        " engine checkpoints (not the workers'); empty: data_dir/analytics-checkpoints.",
    )
    fields: dict[str, str] = Field(
        default_factory=lambda: dict(VIEW_FIELDS),
        description="Event fields the boards may use, with their types: string, integer,"
        " decimal(N) or boolean (a TOML table; JSON in the environment).",
        json_schema_extra=DECLARATION,
    )
    boards: tuple[dict[str, Any], ...] = Field(
        default=(dict(VIDEOS_DECLARATION),),
        description="The leaderboards, each a TOML table [[boards]] with name, entity,"
        " measure, scopes, filter, windows (see docs/LEADERBOARDS.md; JSON in the"
        " environment). Default: the videos board.",
        json_schema_extra=DECLARATION,
    )

    if not TYPE_CHECKING:  # mypy keeps the keyword signature pydantic derives from the fields

        def __init__(self, **values: Any) -> None:
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise ConfigError(_describe(exc, _SOURCES.get())) from None
            except SettingsError as exc:  # a source could not read a value at all
                raise ConfigError(str(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest precedence first: options (init arguments), environment, TOML file.
        Outside :meth:`load` only the arguments count."""
        sources = _SOURCES.get()
        if sources is None:
            return (init_settings,)
        if sources.toml_file is None:
            return init_settings, env_settings
        toml = TomlConfigSettingsSource(settings_cls, toml_file=sources.toml_file)
        return init_settings, env_settings, toml

    @classmethod
    def load(cls, config_file: Path | None = None, **options: Any) -> ServiceConfig:
        """Settings from the defaults < ``config_file`` (TOML) < ``RANKSTREAM_*`` environment
        variables < ``options`` (field names; pass only what the user gave).

        Raises :class:`ConfigError` listing every problem, one line each.
        """
        toml = {} if config_file is None else _read_toml(config_file)
        with _loading(_Sources(config_file, toml, frozenset(options))):
            return cls(**options)

    @field_validator("sync", mode="before")
    @classmethod
    def _upper_case_sync(cls, value: object) -> object:
        if isinstance(value, str) and value.upper() in ("FULL", "NORMAL"):
            return value.upper()
        return value

    @field_validator("write_token", "read_token", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        """``a,b`` (environment, TOML string) is two tokens; a list is taken as it is."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(","))
        return value

    @field_validator("write_token", "read_token")
    @classmethod
    def _check_tokens(cls, tokens: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        """Never puts the token itself in the message."""
        for number, token in enumerate(tokens, 1):
            secret = token.get_secret_value()
            which = f"token {number} of {len(tokens)}"
            if not secret:
                raise ValueError(f"{which} is empty")
            if any(not "!" <= char <= "~" or char == "," for char in secret):
                raise ValueError(f"{which} must be printable ASCII without spaces or commas")
            if len(secret) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"{which} has {len(secret)} characters; at least {MIN_TOKEN_LENGTH} needed"
                )
        return tokens

    @model_validator(mode="after")
    def _check_together(self) -> ServiceConfig:
        """Rules that involve more than one setting."""
        if self.max_queued_bytes < self.max_body_bytes:
            raise ValueError(
                f"max_queued_bytes ({self.max_queued_bytes}) must be at least max_body_bytes "
                f"({self.max_body_bytes}), or the largest request could never be queued"
            )
        try:
            self.board_specs()
        except ConfigError as exc:
            raise ValueError(f"boards: {exc}") from None
        try:
            self.engine_config()
        except ConfigError as exc:
            raise ValueError(f"engine: {exc}") from None
        if self.redis and not self.kafka:  # (kafka alone: the analytics loader; `serve`
            # and `api` check for redis themselves)
            raise ValueError("scale-out needs both kafka and redis (or neither, for embedded)")
        unknown = set(self.scope_kinds) - set(SCOPE_KINDS)
        if unknown or not self.scope_kinds:
            raise ValueError(
                f"publish_scopes: expected some of {', '.join(SCOPE_KINDS)};"
                f" got {self.publish_scopes!r}"
            )
        return self

    @property
    def scale_out(self) -> bool:
        """Whether this is a scale-out process (Kafka and Redis set), not the embedded one."""
        return bool(self.kafka)

    @property
    def bootstrap(self) -> str:
        """The Kafka bootstrap servers (``kafka`` without its ``/TOPIC``)."""
        return self.kafka.split("/", 1)[0]

    @property
    def kafka_topic(self) -> str:
        """The topic: the ``/TOPIC`` of ``kafka`` if given, else ``topic``."""
        _, _, topic = self.kafka.partition("/")
        return topic or self.topic

    @property
    def scope_kinds(self) -> frozenset[str]:
        """The scope kinds ``publish_scopes`` names."""
        return frozenset(k.strip() for k in self.publish_scopes.split(",") if k.strip())

    @property
    def served_k(self) -> int:
        """The largest k a top-k query may ask: ``max_k``, or in scale-out the published
        depth if smaller."""
        return min(self.max_k, self.publish_depth) if self.scale_out else self.max_k

    def board_specs(self) -> tuple[BoardSpec, ...]:
        """The declared boards, checked against the declared fields."""
        return parse_boards(self.boards, self.fields)

    def engine_config(self) -> EngineConfig:
        """The engine settings these service settings imply."""
        config = EngineConfig(
            max_skew=self.max_skew_ms,
            dedup_horizon=self.dedup_horizon_ms,
            dedup_capacity=self.dedup_capacity,
            max_k=self.max_k,
            candidate_size=max(2000, 2 * self.max_k),
            max_videos=self.max_videos,
            max_categories=self.max_categories,
            max_regions=self.max_regions,
            max_cells=self.max_cells,
        )
        config.validate()
        return config


@dataclass(frozen=True)
class _Sources:
    """What :meth:`ServiceConfig.load` is reading, to say where a bad value came from."""

    toml_file: Path | None
    toml: dict[str, Any]  # the file's settings, as read
    options: frozenset[str]  # the names given as options


_SOURCES: ContextVar[_Sources | None] = ContextVar("rankstream_config_sources", default=None)


@contextmanager
def _loading(sources: _Sources) -> Iterator[None]:
    token = _SOURCES.set(sources)
    try:
        yield
    finally:
        _SOURCES.reset(token)


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's settings; a missing, unreadable or malformed file is a ConfigError."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read config file {path}: {reason.lower()}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def env_var(name: str) -> str:
    """The environment variable of setting ``name``."""
    return f"{ENV_PREFIX}{name.upper()}"


def option_name(name: str) -> str:
    """The command-line option of setting ``name``."""
    return "--" + name.replace("_", "-")


def _origin(name: str, sources: _Sources | None) -> str:
    if sources is None:
        return "argument"
    if name in sources.options:
        return f"option {option_name(name)}"
    variable = env_var(name)
    if any(key.upper() == variable for key in os.environ):
        return f"environment variable {variable}"
    if name in sources.toml:
        return f"config file {sources.toml_file}"
    return "default"


_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "literal_error": "must be {expected}",
    "string_too_short": "must not be empty",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "path_type": "must be a path",
    "tuple_type": "must be a list",
    "extra_forbidden": "unknown setting",
}


def _describe(exc: ValidationError, sources: _Sources | None) -> str:
    """One line per problem: ``port: must be <= 65535, got 70000 (option --port)``."""
    return "\n".join(_describe_one(error, sources) for error in exc.errors())


def _describe_one(error: ErrorDetails, sources: _Sources | None) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    ctx = error.get("ctx", {})
    if error["type"] == "value_error":
        rule = str(ctx.get("error", error["msg"]))
    elif error["type"] in _RULES:
        bounds = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()
        }
        rule = _RULES[error["type"]].format(**bounds)
    else:
        rule = error["msg"].replace("Input should be", "must be")
    secret = name in ServiceConfig.model_fields and _is_secret(name)
    shown = "" if secret or error["type"] == "extra_forbidden" else f", got {_show(error)}"
    if not name:  # a rule over several settings
        return rule
    return f"{name}: {rule}{shown} ({_origin(name, sources)})"


def _number(value: object) -> object:
    """``0`` rather than ``0.0`` in a rule."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _is_secret(name: str) -> bool:
    return SecretStr in get_args(ServiceConfig.model_fields[name].annotation)


def _show(error: ErrorDetails) -> str:
    value = error["input"]
    text = value if isinstance(value, str) and value and " " not in value else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


DECLARATIONS = tuple(
    name
    for name, info in ServiceConfig.model_fields.items()
    if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("declaration")
)
"""The settings that are declarations (``fields``, ``boards``): TOML tables, or JSON in the
environment, never command-line options."""
