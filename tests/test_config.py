"""Settings from defaults, a TOML file, environment variables and options, in that order."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rankstream.cli import app
from rankstream.config import ServiceConfig, load_toml
from rankstream.errors import ConfigError
from tests.servers import ServiceProcess


def events(n: int) -> list[dict[str, object]]:
    return [{"video_id": f"v{i}", "ts": time.time_ns() // 1_000_000} for i in range(n)]


def test_toml_then_environment_then_options(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    config = tmp_path / "rankstream.toml"
    config.write_text("max_events_per_request = 2\nmax_k = 5\n")
    from_file = service_factory("--config", str(config), data_dir=tmp_path / "a")
    assert httpx.post(f"{from_file.url}/views", json=events(3)).status_code == 413
    assert httpx.get(f"{from_file.url}/views/top-k", params={"k": 6}).status_code == 400
    env = {"RANKSTREAM_MAX_EVENTS_PER_REQUEST": "3"}
    from_env = service_factory("--config", str(config), data_dir=tmp_path / "b", env=env)
    assert httpx.post(f"{from_env.url}/views", json=events(3)).status_code == 202
    assert httpx.post(f"{from_env.url}/views", json=events(4)).status_code == 413
    from_option = service_factory(
        "--config", str(config), "--max-events-per-request", "4", data_dir=tmp_path / "c", env=env
    )
    assert httpx.post(f"{from_option.url}/views", json=events(4)).status_code == 202


def test_unknown_or_bad_settings_are_refused_before_serving(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 8000\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(bad)])
    assert result.exit_code != 0
    assert "unknown settings" in result.output
    result = CliRunner().invoke(app, ["serve", "--sync", "SOMETIMES", "--port", "0"])
    assert result.exit_code != 0
    assert "sync must be FULL" in result.output


def test_load_toml_and_validate() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(Path("/nonexistent/rankstream.toml"))
    with pytest.raises(ConfigError, match="max_events_per_request"):
        ServiceConfig(max_events_per_request=0).validate()
    with pytest.raises(ConfigError, match="max_k"):
        ServiceConfig(max_k=0).validate()
