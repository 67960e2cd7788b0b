"""Service configuration: one place for every setting of ``rankstream serve``.

Values come, lowest precedence first, from the defaults here, an optional TOML file
(``--config``; keys are the field names, e.g. ``port = 8000``), ``RANKSTREAM_*``
environment variables (``RANKSTREAM_PORT=8000``) and command-line options.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from rankstream.engine import EngineConfig
from rankstream.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Settings of the embedded service (durations in seconds unless named ``_ms``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    max_events_per_request: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    sync: str = "FULL"
    checkpoint_interval: float = 60.0
    checkpoint_every_events: int = 2_000_000
    tick_interval: float = 1.0
    idempotency_ttl: float = 86_400.0
    dead_letter_capacity: int = 10_000
    max_skew_ms: int = 300_000
    dedup_horizon_ms: int = 600_000
    dedup_capacity: int = 2_000_000
    max_k: int = 1000
    write_token: tuple[SecretStr, ...] = ()
    read_token: tuple[SecretStr, ...] = ()
    max_queued_requests: int = 1024
    max_queued_bytes: int = 256 * 1024 * 1024
    max_header_bytes: int = 16384
    body_timeout: float = 30.0

    def engine_config(self) -> EngineConfig:
        """The engine settings these service settings imply."""
        config = EngineConfig(
            max_skew=self.max_skew_ms,
            dedup_horizon=self.dedup_horizon_ms,
            dedup_capacity=self.dedup_capacity,
            max_k=self.max_k,
            candidate_size=max(2000, 2 * self.max_k),
        )
        config.validate()
        return config

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the bad setting."""
        if self.sync not in ("FULL", "NORMAL"):
            raise ConfigError("sync must be FULL (survives power loss) or NORMAL (crashes only)")
        if not 1 <= self.max_events_per_request <= 1_000_000:
            raise ConfigError("max_events_per_request must be 1 to 1,000,000")
        if self.checkpoint_interval <= 0 or self.tick_interval <= 0:
            raise ConfigError("checkpoint_interval and tick_interval must be positive")
        self.engine_config()


def load_toml(path: Path) -> dict[str, Any]:
    """Settings from a TOML file, checked against the known names."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    known = {f.name for f in fields(ServiceConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown settings in {path}: {', '.join(unknown)}")
    return raw
