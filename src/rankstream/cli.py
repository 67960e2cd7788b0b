"""The ``rankstream`` command line.

``rankstream simulate`` pushes a generated stream through an in-process engine and prints the
top k of every window. Time comes from the stream spec (a fixed reference end), never from the
system clock, so the rankings printed for a given seed are always the same.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import httpx
import typer
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Table
from rich.text import Text

from rankstream.config import DECLARATIONS, ServiceConfig, env_var, option_name
from rankstream.engine import TopKEngine, TopKResult
from rankstream.errors import ConfigError
from rankstream.generator import StreamSpec, generate_columns
from rankstream.generator.scenarios import DEFAULT_SCENARIO, SCENARIOS
from rankstream.generator.sender import send_or_produce as send_traffic
from rankstream.server import EX_CANTCREAT, DataDirError, prepare_data_dir
from rankstream.server import serve as run_server
from rankstream.service.pipeline import wall_clock_ms

app = typer.Typer(no_args_is_help=True)


@app.callback()
def main() -> None:
    """Exact, real-time top-k rankings of video views over sliding and calendar windows."""


class _RateColumn(ProgressColumn):
    """Events per second of a task, averaged over rich's recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text("" if speed is None else f"{speed:,.0f} events/s", style="cyan")


@app.command()
def simulate(
    events: Annotated[int, typer.Option(min=1, help="Events to generate.")] = 2_000_000,
    videos: Annotated[int, typer.Option(min=1, help="Videos in the catalogue.")] = 100_000,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 30,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per ingested batch.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Seed of the generated stream.")] = 7,
    k: Annotated[int, typer.Option(min=1, max=1000, help="Rows per ranking.")] = 10,
) -> None:
    """Run a generated stream through the engine and print the top k of every window.

    The stream ends at a fixed reference time, so output depends only on the options.
    """
    console = Console()
    spec = StreamSpec(events=events, videos=videos, days=days, seed=seed)
    with console.status(f"Generating {events:,} events over {days} days..."):
        columns = generate_columns(spec)
    engine = TopKEngine()
    in_engine = 0.0  # seconds inside engine.ingest, excluding building the string columns
    progress = Progress(
        TextColumn("Ingesting"), BarColumn(), MofNCompleteColumn(), _RateColumn(), console=console
    )
    with progress:
        task = progress.add_task("ingest", total=len(columns))
        for batch, wall_time in columns.batches(batch_size):
            started = time.perf_counter()
            engine.ingest(batch, wall_time)
            in_engine += time.perf_counter() - started
            progress.advance(task, len(batch))
    for window in engine.config.windows:
        result = engine.top_k(window.name, k=k)
        console.print(Text(f"\n{result.window}  {_bounds(result)}", style="bold"))
        console.print(_ranking_table(result))
    stats = engine.stats
    rate = stats.accepted / in_engine if in_engine > 0 else 0.0
    console.print(
        f"accepted {stats.accepted:,} | late dropped {stats.late_dropped:,} | "
        f"too new {stats.rejected_too_new:,}\n"
        f"engine.ingest {in_engine:.2f} s, {rate:,.0f} events/s (one core)"
    )


def _bounds(result: TopKResult) -> str:
    if result.start is None or result.end is None:
        return "(every accepted event)"
    return f"[{_iso(result.start)}, {_iso(result.end)})"


def _ranking_table(result: TopKResult) -> Table:
    table = Table(box=box.SIMPLE)
    table.add_column("rank", justify="right")
    table.add_column("video_id")
    table.add_column("views", justify="right")
    for item in result.items:
        table.add_row(str(item.rank), item.video_id, f"{item.views:,}")
    return table


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SETTINGS_ERROR = 2  # a usage error, as click's own
_CONFIG_OPTION = inspect.Parameter(
    "config",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="TOML file of settings, keys as the setting names: port = 8000. The"
            " declarations are set there or as JSON in the environment: "
            + "; ".join(escape(f"{name} [env: {env_var(name)}]") for name in DECLARATIONS)
            + ".",
            dir_okay=False,
        ),
    ],
)


def command_line_settings() -> dict[str, FieldInfo]:
    """The settings with a command-line option: all but the :data:`DECLARATIONS`."""
    return {n: i for n, i in ServiceConfig.model_fields.items() if n not in DECLARATIONS}


def with_settings(command: Callable[..., None]) -> Callable[..., None]:
    """Make ``command(settings: ServiceConfig, **own)`` a typer command taking every
    :class:`ServiceConfig` field as an option, generated from the field (``data_dir`` is
    ``--data-dir``; type, range, default and help from its declaration), plus ``--config``.

    Options default to ``None`` and only those given reach :meth:`ServiceConfig.load`, so
    the TOML file and the ``RANKSTREAM_*`` environment are applied by pydantic-settings
    under them. A bad setting from any source prints one line per problem to stderr and
    exits with status 2.
    """
    hints = get_type_hints(command, include_extras=True)
    first, *rest = inspect.signature(command).parameters.values()
    if hints.get(first.name) is not ServiceConfig:
        raise TypeError(f"{command.__name__}: the first parameter must be a ServiceConfig")
    own = [parameter.replace(annotation=hints[parameter.name]) for parameter in rest]
    generated = [_CONFIG_OPTION] + [
        _setting_option(name, info) for name, info in command_line_settings().items()
    ]
    clash = {p.name for p in own} & {p.name for p in generated}
    if clash:
        raise TypeError(f"{command.__name__}: options clash with settings: {sorted(clash)}")

    @functools.wraps(command)
    def run(**arguments: Any) -> None:
        config_file = arguments.pop("config")
        given = {}
        for name in command_line_settings():
            value = arguments.pop(name)
            if value is not None and value != []:  # a repeatable option not given is []
                given[name] = value
        try:
            settings = ServiceConfig.load(config_file, **given)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                typer.echo(f"rankstream: {line}", err=True)
            raise typer.Exit(_SETTINGS_ERROR) from None
        command(settings, **arguments)

    parameters = [*generated, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own)]
    run.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return run


def _setting_option(name: str, info: FieldInfo) -> inspect.Parameter:
    """``--name`` for setting ``name``: ``None`` unless given."""
    value_type: Any = info.annotation
    metavar = None
    declaration = option_name(name)
    if get_origin(value_type) is Literal:
        metavar = "[" + "|".join(map(str, get_args(value_type))) + "]"
        value_type = str
    elif get_origin(value_type) is tuple:
        item = get_args(value_type)[0]
        metavar = "TOKEN" if item is SecretStr else None
        value_type = list[str if item is SecretStr else item]  # type: ignore[misc]
    elif value_type is bool:
        declaration = f"{declaration}/--no-{declaration[2:]}"
    elif value_type not in (str, int, float, Path):
        raise TypeError(f"setting {name}: no command-line option for {value_type}")
    parts = [info.description or "", _range(info), f"[env: {env_var(name)}]", _default(info)]
    option = typer.Option(
        declaration,
        help=escape(" ".join(part for part in parts if part)),
        metavar=metavar,
        show_default=False,
    )
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[value_type | None, option],
    )


def _range(info: FieldInfo) -> str:
    """``[range: 0<=x<=65535]``, ``[range: x>0]``: as click shows an option's range."""
    low = high = ""
    for rule in info.metadata:
        if hasattr(rule, "ge"):
            low = f"{rule.ge}<="
        elif hasattr(rule, "gt"):
            low = f"{rule.gt}<"
        elif hasattr(rule, "le"):
            high = f"<={rule.le}"
        elif hasattr(rule, "lt"):
            high = f"<{rule.lt}"
    if low and not high:  # x>=1 reads better than 1<=x
        bound, sign = low.partition("<")[::2]
        return f"[range: x>{sign}{bound}]"
    return f"[range: {low}x{high}]" if high else ""


def _default(info: FieldInfo) -> str:
    default = info.get_default()
    if default == ():
        return "[default: none]"
    return f"[default: {default}]"


def _prepare_data_dir(settings: ServiceConfig) -> None:
    """Exit with a one-line message (status 73) if the data directory cannot be used."""
    try:
        prepare_data_dir(settings.data_dir)
    except DataDirError as exc:
        typer.echo(f"rankstream: {exc}", err=True)
        raise typer.Exit(EX_CANTCREAT) from None


@app.command()
@with_settings
def serve(settings: ServiceConfig) -> None:
    """Run the embedded service: durable ingest, the HTTP API, periodic checkpoints.

    Every setting comes, lowest precedence first, from its default, the --config file (TOML
    key data_dir), the environment (RANKSTREAM_DATA_DIR) and the option (--data-dir).
    With --kafka and --redis it is a scale-out API replica (see `api`).
    """
    _serve(settings)


def _serve(settings: ServiceConfig) -> None:
    if settings.kafka and not settings.redis:
        typer.echo(
            "rankstream: scale-out needs both kafka and redis (or neither, for embedded)",
            err=True,
        )
        raise typer.Exit(_SETTINGS_ERROR)
    if settings.scale_out:
        where = f"events to Kafka {settings.kafka}, rankings from Redis"
    else:
        _prepare_data_dir(settings)
        where = f"data in {settings.data_dir}"
    Console(stderr=True).print(
        f"rankstream serving on http://{settings.host}:{settings.port} ({where})"
    )
    run_server(settings)


@app.command()
@with_settings
def api(settings: ServiceConfig) -> None:
    """Run a stateless scale-out API replica: POST /views produces to Kafka (202 once the
    broker acknowledged), rankings are read from what the workers publish to Redis. The
    same HTTP contract as `serve`; needs --kafka HOST:PORT[/TOPIC] and --redis URL."""
    if not settings.scale_out:
        typer.echo("rankstream: api needs --kafka and --redis (or use serve)", err=True)
        raise typer.Exit(_SETTINGS_ERROR)
    _serve(settings)


@app.command()
@with_settings
def worker(
    settings: ServiceConfig,
    name: Annotated[str, typer.Option(help="This worker's name in status and logs.")] = "",
) -> None:
    """Run a scale-out worker: joins the consumer group, keeps one engine per assigned
    partition, publishes rankings to Redis and checkpoints to --checkpoints (a directory or
    s3://BUCKET/PREFIX). SIGINT/SIGTERM checkpoint and leave the group."""
    from rankstream.backends import open_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        running = open_worker(settings, wall_clock_ms, name or f"worker-{os.getpid()}")
    except ConfigError as exc:
        typer.echo(f"rankstream: {exc}", err=True)
        raise typer.Exit(_SETTINGS_ERROR) from None
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: running.stop())
    running.run()


@app.command("analytics-loader")
@with_settings
def analytics_loader(settings: ServiceConfig) -> None:
    """Run the scale-out analytics loader: joins its own consumer group on the topic
    (--analytics-group), loads every event the workers count into the analytics store in
    --data-dir exactly once, and serves /analytics/*, /status and /metrics on --host/--port
    (point API replicas' --analytics-url here). Needs --kafka HOST:PORT[/TOPIC] and the
    workers' engine settings (--max-skew-ms, --dedup-horizon-ms, capacity limits)."""
    import uvicorn

    from rankstream.api.analytics_loader import create_loader_app
    from rankstream.api.http11 import bounded_protocol
    from rankstream.backends import analytics_loader_settings, open_analytics_loader

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        analytics_loader_settings(settings)
    except ConfigError as exc:
        typer.echo(f"rankstream: {exc}", err=True)
        raise typer.Exit(_SETTINGS_ERROR) from None
    _prepare_data_dir(settings)
    Console(stderr=True).print(
        f"rankstream analytics loader on http://{settings.host}:{settings.port}"
        f" (topic {settings.kafka_topic}, store in {settings.data_dir / 'analytics'})"
    )
    app_ = create_loader_app(settings, open_analytics_loader)
    server = uvicorn.Server(
        uvicorn.Config(
            app_,
            host=settings.host,
            port=settings.port,
            http=bounded_protocol(settings.max_header_bytes, settings.body_timeout),
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
            limit_concurrency=settings.max_connections,
        )
    )
    server.run()


analytics = typer.Typer(no_args_is_help=True)
app.add_typer(analytics, name="analytics", help="The analytics store (ClickHouse SQL).")

QUERY_FORMATS = {"table": "PrettyCompactMonoBlock", "csv": "CSVWithNames", "json": "JSONEachRow"}
"""``analytics query --format`` -> the ClickHouse output format printed."""


@analytics.command("query")
@with_settings
def analytics_query(
    settings: ServiceConfig,
    sql: Annotated[
        str,
        typer.Argument(help="One ClickHouse SELECT (tables: views, views_hourly, load_progress)."),
    ],
    output: Annotated[
        Literal["table", "csv", "json"],
        typer.Option("--format", help="table, csv (with a header) or json (one object a row)."),
    ] = "table",
) -> None:
    """Run read-only SQL against the analytics store in --data-dir and print the result.

    The store is opened in ClickHouse's read-only mode: ClickHouse itself refuses writes,
    DDL and leaving that mode. A store is open in one process at a time: while the service
    runs, ask its /analytics API instead."""
    from rankstream.analytics import AnalyticsError, AnalyticsStore

    try:
        store = AnalyticsStore(settings.data_dir / "analytics", read_only=True)
    except AnalyticsError as exc:
        typer.echo(f"rankstream: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        sys.stdout.write(store.text(sql, QUERY_FORMATS[output]))
    except AnalyticsError as exc:
        typer.echo(f"rankstream: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()


def _known_scenario(name: str) -> str:
    if name not in SCENARIOS:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(SCENARIOS)}")
    return name


_SCENARIO_HELP = "What traffic: " + "; ".join(f"{s.name}: {s.summary}" for s in SCENARIOS.values())


@app.command()
def generate(
    target: Annotated[str, typer.Option(help="http://host:port, or kafka://host:port/topic.")],
    rate: Annotated[float, typer.Option(min=0, help="Events/s; 0 = as fast as possible.")] = 1000,
    duration: Annotated[float, typer.Option(min=0.001, help="Seconds to send for.")] = 60,
    videos: Annotated[int, typer.Option(min=1, help="Videos in the catalogue.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the traffic (reproducible).")] = 7,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per request (max).")] = 1000,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 4,
    malformed_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share of deliberately malformed events.")
    ] = 0.0,
    metadata: Annotated[
        bool, typer.Option(help="Register titles and channels of the top videos first.")
    ] = True,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="RANKSTREAM_TOKEN",
            help="A write token, sent as Authorization: Bearer (when the server needs one).",
            show_default=False,
        ),
    ] = None,
    scenario: Annotated[
        str,
        typer.Option(
            metavar=f"[{'|'.join(SCENARIOS)}]",
            help=_SCENARIO_HELP + " (--videos and --malformed-share shape views only).",
            callback=_known_scenario,
            autocompletion=lambda: list(SCENARIOS),
        ),
    ] = DEFAULT_SCENARIO,
) -> None:
    """Send realistic traffic to a running service; prints what the server answered."""
    try:
        report = send_traffic(
            target,
            rate,
            duration,
            videos,
            seed,
            batch_size=batch_size,
            concurrency=concurrency,
            malformed_share=malformed_share,
            register_metadata=metadata,
            token=token,
            scenario=scenario,
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    Console().print(report.summary())


@app.command()
@with_settings
def demo(
    settings: ServiceConfig,
    rate: Annotated[float, typer.Option(min=1, help="Generated events/s.")] = 2000,
    videos: Annotated[int, typer.Option(min=1, help="Videos in the catalogue.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the traffic.")] = 7,
    scenario: Annotated[
        str,
        typer.Option(
            metavar=f"[{'|'.join(SCENARIOS)}]",
            help=_SCENARIO_HELP + "; the service serves the boards the scenario is made for"
            " (boards declared in --config or the environment win).",
            callback=_known_scenario,
            autocompletion=lambda: list(SCENARIOS),
        ),
    ] = DEFAULT_SCENARIO,
) -> None:
    """The service (on 127.0.0.1 unless --host) fed by the traffic generator; Ctrl-C stops
    both cleanly (the service drains, checkpoints and exits)."""
    chosen = SCENARIOS[scenario]
    declared = settings.boards != ServiceConfig().boards
    if chosen.boards is not None and not declared:
        settings = settings.model_copy(update={"fields": chosen.fields, "boards": chosen.boards})
    _prepare_data_dir(settings)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    url = f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"
    command = [
        sys.executable, "-m", "rankstream", "generate", "--target", url, "--rate", str(rate),
        "--duration", str(365 * 86_400), "--videos", str(videos), "--seed", str(seed),
        "--scenario", scenario,
    ]  # fmt: skip
    generator: list[subprocess.Popen[bytes]] = []
    environment = dict(os.environ)
    if settings.write_token:  # in the environment, not the command line (ps shows that)
        environment["RANKSTREAM_TOKEN"] = settings.write_token[0].get_secret_value()

    def start_generator_when_healthy() -> None:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    generator.append(subprocess.Popen(command, env=environment))
                    return
            except httpx.HTTPError:
                time.sleep(0.2)

    auth = (
        "writes need a bearer token (the generator is given the first)"
        if settings.write_token
        else "off; to require tokens: --write-token TOKEN / RANKSTREAM_WRITE_TOKEN (writes), "
        "--read-token / RANKSTREAM_READ_TOKEN (queries); see SECURITY.md"
    )
    first = settings.board_specs()[0].name
    tries = (
        f"{url}/views/top-k?window=1h&k=10"
        if chosen.boards is None
        else f"{url}/leaderboards, {url}/leaderboards/{first}/top-k"
    )
    Console(stderr=True).print(
        f"rankstream demo: dashboard on {url}/\n"
        f"API on {url}  (try {tries}, {url}/docs)\n"
        f"data in {settings.data_dir}; auth {auth}; Ctrl-C to stop"
    )
    threading.Thread(target=start_generator_when_healthy, daemon=True).start()
    try:
        run_server(settings)
    finally:
        for process in generator:
            process.terminate()
            process.wait(30)
