"""Settings from defaults, a TOML file, environment variables and options, in that order.

Every setting is declared once (``ServiceConfig``); the tests loop over its fields, so a
setting that does not reach the service from one of the sources fails here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import httpx
import pytest
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from rankstream import cli
from rankstream.cli import app
from rankstream.config import ServiceConfig, env_var, option_name
from rankstream.errors import ConfigError
from tests.servers import ServiceProcess

TOKEN = "s3cret-Token-0123456789"  # valid: 16+ printable ASCII, no space or comma


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


def test_precedence_without_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "rankstream.toml"
    toml.write_text("max_k = 5\nport = 9001\nhost = 'localhost'\n")
    monkeypatch.setenv("RANKSTREAM_MAX_K", "6")
    monkeypatch.setenv("RANKSTREAM_PORT", "9002")
    config = ServiceConfig.load(toml, max_k=7)
    assert (config.host, config.port, config.max_k) == ("localhost", 9002, 7)
    assert ServiceConfig.load().max_k == 6  # no file: environment over defaults
    assert ServiceConfig().max_k == 1000  # built directly: defaults and arguments only


# Every setting, from every source -------------------------------------------------------


SPECIAL: dict[str, Any] = {  # settings with a syntax of their own
    "publish_scopes": "all,category",
    "fields": {"user_id": "string", "team_id": "string", "score": "integer"},
    "boards": ({"name": "teams", "entity": "team_id", "measure": "sum(score)"},),
}
DECLARATIONS = ("fields", "boards")  # TOML tables and JSON in the environment; no option


def other_value(name: str, info: FieldInfo, tmp_path: Path) -> Any:
    """A valid value of the setting that is not its default."""
    default, annotation = info.get_default(), info.annotation
    if name in SPECIAL:
        return SPECIAL[name]
    if annotation is bool:
        return not default
    if get_origin(annotation) is Literal:
        return next(choice for choice in get_args(annotation) if choice != default)
    if get_origin(annotation) is tuple:
        return (TOKEN, TOKEN[::-1])
    if annotation is Path:
        return tmp_path / "elsewhere"
    if annotation is str:
        return "localhost"
    if annotation is float:
        return default + 0.5
    assert annotation is int, f"teach other_value about {annotation}"
    highest = min((rule.le for rule in info.metadata if hasattr(rule, "le")), default=None)
    return default - 1 if default == highest else default + 1


def expected_values(tmp_path: Path) -> dict[str, Any]:
    values = {
        name: other_value(name, info, tmp_path) for name, info in ServiceConfig.model_fields.items()
    }
    assert all(
        values[name] != info.get_default() for name, info in ServiceConfig.model_fields.items()
    )
    return values


def assert_arrived(config: ServiceConfig, values: dict[str, Any]) -> None:
    for name, value in values.items():
        got = getattr(config, name)
        if isinstance(value, tuple) and name not in DECLARATIONS:
            got = tuple(secret.get_secret_value() for secret in got)
        assert got == value, name


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple) and value and isinstance(value[0], dict):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(item) for item in value) + "]"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    return repr(value)


def test_every_setting_arrives_from_a_toml_file(tmp_path: Path) -> None:
    values = expected_values(tmp_path)
    toml = tmp_path / "all.toml"
    toml.write_text("".join(f"{name} = {toml_value(value)}\n" for name, value in values.items()))
    assert_arrived(ServiceConfig.load(toml), values)


def test_every_setting_arrives_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = expected_values(tmp_path)
    for name, value in values.items():
        if name in DECLARATIONS:
            text = json.dumps(value)
        else:
            text = ",".join(value) if isinstance(value, tuple) else str(value)
        monkeypatch.setenv(env_var(name), text)
    assert_arrived(ServiceConfig.load(), values)


def test_every_setting_arrives_from_serve_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = expected_values(tmp_path)
    served: list[ServiceConfig] = []
    monkeypatch.setattr(cli, "run_server", served.append)
    arguments = ["serve"]
    for name in DECLARATIONS:  # declarations come from the file or the environment only
        del values[name]
    for name, value in values.items():
        if isinstance(value, bool):  # a flag: --name or --no-name
            arguments.append(option_name(name) if value else f"--no-{option_name(name)[2:]}")
            continue
        for item in value if isinstance(value, tuple) else (value,):  # a tuple: repeated
            arguments += [option_name(name), str(item)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    [config] = served
    assert_arrived(config, values)


def test_serve_with_no_options_uses_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[ServiceConfig] = []
    monkeypatch.setattr(cli, "run_server", served.append)
    monkeypatch.chdir(tmp_path)  # the default data directory is ./data
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert served == [ServiceConfig()]


def test_sync_accepts_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceConfig.load(sync="normal").sync == "NORMAL"
    monkeypatch.setenv("RANKSTREAM_SYNC", "full")
    assert ServiceConfig.load().sync == "FULL"


# Errors ---------------------------------------------------------------------------------


def problems(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return str(error.value).splitlines()


def test_unknown_toml_key_is_an_error_naming_it(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("prot = 8000\ndedup_capacity = 5\n")
    with pytest.raises(ConfigError) as error:
        ServiceConfig.load(toml)
    assert problems(error) == [f"prot: unknown setting (config file {toml})"]


def test_out_of_range_values_name_the_setting_the_rule_and_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("max_k = 0\ncheckpoint_interval = -1\n")
    monkeypatch.setenv("RANKSTREAM_PORT", "70000")
    with pytest.raises(ConfigError) as error:
        ServiceConfig.load(toml, max_header_bytes=10)
    assert sorted(problems(error)) == [
        f"checkpoint_interval: must be > 0, got -1 (config file {toml})",
        "max_header_bytes: must be >= 1024, got 10 (option --max-header-bytes)",
        f"max_k: must be >= 1, got 0 (config file {toml})",
        "port: must be <= 65535, got 70000 (environment variable RANKSTREAM_PORT)",
    ]


def test_wrong_types_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('max_k = "many"\nsync = "SOMETIMES"\n')
    monkeypatch.setenv("RANKSTREAM_TICK_INTERVAL", "soon")
    with pytest.raises(ConfigError) as error:
        ServiceConfig.load(toml)
    assert sorted(problems(error)) == [
        f"max_k: must be an integer, got many (config file {toml})",
        f"sync: must be 'FULL' or 'NORMAL', got SOMETIMES (config file {toml})",
        "tick_interval: must be a number, got soon (environment variable RANKSTREAM_TICK_INTERVAL)",
    ]


def test_direct_construction_raises_config_error_too() -> None:
    with pytest.raises(ConfigError, match=r"^max_events_per_request: must be >= 1, got 0"):
        ServiceConfig(max_events_per_request=0)
    with pytest.raises(ConfigError, match=r"^max_k: must be <= 100000"):
        ServiceConfig(max_k=100_001)
    with pytest.raises(ConfigError, match=r"max_queued_bytes .* must be at least max_body_bytes"):
        ServiceConfig(max_body_bytes=2000, max_queued_bytes=1000)


@pytest.mark.parametrize("path", ["missing.toml", "."])
def test_a_config_file_that_cannot_be_read_is_an_error(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigError, match=f"cannot read config file {re.escape(str(tmp_path))}"):
        ServiceConfig.load(tmp_path / path)
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        ServiceConfig.load(broken)


@pytest.mark.parametrize(
    ("tokens", "rule"),
    [
        ("short-token", "token 1 of 1 has 11 characters; at least 16 needed"),
        ("with space-0123456789", "token 1 of 1 must be printable ASCII without spaces or commas"),
        (
            f"{TOKEN},tab\there-0123456789",
            "token 2 of 2 must be printable ASCII without spaces or commas",
        ),
        ("ünïcode-0123456789", "token 1 of 1 must be printable ASCII without spaces or commas"),
        (f"{TOKEN},", "token 2 of 2 is empty"),
        ("", "token 1 of 1 is empty"),
    ],
)
def test_bad_tokens_are_errors_that_do_not_show_them(
    tokens: str, rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANKSTREAM_WRITE_TOKEN", tokens)
    with pytest.raises(ConfigError) as error:
        ServiceConfig.load()
    assert problems(error) == [f"write_token: {rule} (environment variable RANKSTREAM_WRITE_TOKEN)"]
    for token in tokens.split(","):
        if token:
            assert token not in str(error.value)
    monkeypatch.delenv("RANKSTREAM_WRITE_TOKEN")
    with pytest.raises(ConfigError, match=r"^read_token: token 1 of 2 has 11 characters"):
        ServiceConfig.load(read_token=["short-token", TOKEN])


def test_tokens_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKSTREAM_WRITE_TOKEN", f"{TOKEN},{TOKEN[::-1]}")
    config = ServiceConfig.load(read_token=[TOKEN])
    assert len(config.write_token) == 2
    assert config.read_token == (SecretStr(TOKEN),)
    for text in (repr(config), str(config), config.model_dump_json()):
        assert TOKEN not in text
        assert TOKEN[::-1] not in text
    with pytest.raises(ConfigError) as error:  # another setting is wrong: tokens stay hidden
        ServiceConfig.load(read_token=[TOKEN], port=-1)
    assert TOKEN not in str(error.value)
    assert TOKEN not in repr(error.value)


# The command line -----------------------------------------------------------------------


def test_serve_help_lists_every_setting_with_its_environment_variable() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())  # rich wraps inside a box
    for name, info in ServiceConfig.model_fields.items():
        assert (name in DECLARATIONS) != (option_name(name) in text), name
        assert f"[env: {env_var(name)}]" in text, name
        assert info.description is not None
        assert name in DECLARATIONS or " ".join(info.description.split()[:4]) in text, name
    assert "--config" in text


def test_bad_settings_are_refused_before_serving_with_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 8000\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(bad)])
    assert (result.exit_code, result.stderr) == (2, f"rankstream: prot: unknown setting "
                                                    f"(config file {bad})\n")  # fmt: skip
    result = CliRunner().invoke(
        app, ["serve", "--sync", "SOMETIMES", "--port", "70000", "--write-token", "tiny"]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "rankstream: port: must be <= 65535, got 70000 (option --port)",
        "rankstream: sync: must be 'FULL' or 'NORMAL', got SOMETIMES (option --sync)",
        "rankstream: write_token: token 1 of 1 has 4 characters; at least 16 needed "
        "(option --write-token)",
    ]
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["demo", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
    assert "cannot read config file" in result.stderr


def test_a_bad_board_declaration_is_refused_before_serving(tmp_path: Path) -> None:
    bad = tmp_path / "boards.toml"
    bad.write_text(
        'fields = {user_id = "string", score = "integer"}\n'
        "[[boards]]\n"
        'name = "players"\n'
        'entity = "user_id"\n'
        'measure = "sum(user_id)"\n'
    )
    result = CliRunner().invoke(app, ["serve", "--config", str(bad)])
    assert result.exit_code == 2
    assert "board players: sum field 'user_id' is string; expected integer or decimal" in (
        result.stderr
    )
