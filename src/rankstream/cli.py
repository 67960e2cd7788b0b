"""The ``rankstream`` command line.

``rankstream simulate`` pushes a generated stream through an in-process engine and prints the
top k of every window. Time comes from the stream spec (a fixed reference end), never from the
system clock, so the rankings printed for a given seed are always the same.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Table
from rich.text import Text

from rankstream.config import ServiceConfig, load_toml
from rankstream.engine import TopKEngine, TopKResult
from rankstream.errors import ConfigError
from rankstream.generator import StreamSpec, generate_columns
from rankstream.generator.sender import send as send_traffic
from rankstream.server import serve as run_server

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


def _read_config_file(ctx: typer.Context, value: Path | None) -> Path | None:
    """Load a TOML settings file as defaults (below environment variables and options)."""
    if value is not None:
        try:
            settings = load_toml(value)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from exc
        ctx.default_map = {**(ctx.default_map or {}), **settings}
    return value


_ENV = "RANKSTREAM_"
_DEFAULTS = ServiceConfig()  # one source of truth for the options' defaults


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of settings (keys as the option names with underscores).",
            callback=_read_config_file,
            is_eager=True,
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(envvar=f"{_ENV}HOST", help="Address to bind.")
    ] = _DEFAULTS.host,
    port: Annotated[int, typer.Option(envvar=f"{_ENV}PORT", help="Port to bind.")] = _DEFAULTS.port,
    data_dir: Annotated[
        Path, typer.Option(envvar=f"{_ENV}DATA_DIR", help="Log, checkpoints and metadata.")
    ] = _DEFAULTS.data_dir,
    sync: Annotated[
        str,
        typer.Option(
            envvar=f"{_ENV}SYNC",
            help="FULL: every acknowledged event survives power loss; NORMAL: crashes only.",
        ),
    ] = _DEFAULTS.sync,
    max_events_per_request: Annotated[
        int, typer.Option(envvar=f"{_ENV}MAX_EVENTS_PER_REQUEST", help="413 beyond this.")
    ] = _DEFAULTS.max_events_per_request,
    max_body_bytes: Annotated[
        int, typer.Option(envvar=f"{_ENV}MAX_BODY_BYTES", help="413 beyond this many bytes.")
    ] = _DEFAULTS.max_body_bytes,
    checkpoint_interval: Annotated[
        float,
        typer.Option(envvar=f"{_ENV}CHECKPOINT_INTERVAL", help="Seconds between checkpoints."),
    ] = _DEFAULTS.checkpoint_interval,
    checkpoint_every_events: Annotated[
        int,
        typer.Option(
            envvar=f"{_ENV}CHECKPOINT_EVERY_EVENTS", help="Checkpoint after this many events."
        ),
    ] = _DEFAULTS.checkpoint_every_events,
    tick_interval: Annotated[
        float, typer.Option(envvar=f"{_ENV}TICK_INTERVAL", help="Seconds between clock ticks.")
    ] = _DEFAULTS.tick_interval,
    idempotency_ttl: Annotated[
        float,
        typer.Option(envvar=f"{_ENV}IDEMPOTENCY_TTL", help="Seconds an Idempotency-Key is kept."),
    ] = _DEFAULTS.idempotency_ttl,
    dead_letter_capacity: Annotated[
        int, typer.Option(envvar=f"{_ENV}DEAD_LETTER_CAPACITY", help="Rejected events kept.")
    ] = _DEFAULTS.dead_letter_capacity,
    max_skew_ms: Annotated[
        int, typer.Option(envvar=f"{_ENV}MAX_SKEW_MS", help="Reject events this far ahead.")
    ] = _DEFAULTS.max_skew_ms,
    dedup_horizon_ms: Annotated[
        int,
        typer.Option(envvar=f"{_ENV}DEDUP_HORIZON_MS", help="event_id de-dup horizon (arrivals)."),
    ] = _DEFAULTS.dedup_horizon_ms,
    max_k: Annotated[
        int, typer.Option(envvar=f"{_ENV}MAX_K", help="Largest k a query may ask.")
    ] = _DEFAULTS.max_k,
) -> None:
    """Run the embedded service: durable ingest, the HTTP API, periodic checkpoints."""
    settings = ServiceConfig(
        host=host,
        port=port,
        data_dir=data_dir,
        sync=sync.upper(),
        max_events_per_request=max_events_per_request,
        max_body_bytes=max_body_bytes,
        checkpoint_interval=checkpoint_interval,
        checkpoint_every_events=checkpoint_every_events,
        tick_interval=tick_interval,
        idempotency_ttl=idempotency_ttl,
        dead_letter_capacity=dead_letter_capacity,
        max_skew_ms=max_skew_ms,
        dedup_horizon_ms=dedup_horizon_ms,
        max_k=max_k,
    )
    try:
        settings.validate()
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    Console(stderr=True).print(f"rankstream serving on http://{host}:{port} (data in {data_dir})")
    run_server(settings)


@app.command()
def generate(
    target: Annotated[str, typer.Option(help="Where to send: http://host:port.")],
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
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    Console().print(report.summary())


@app.command()
def demo(
    port: Annotated[
        int, typer.Option(envvar=f"{_ENV}PORT", help="Port to serve on.")
    ] = _DEFAULTS.port,
    data_dir: Annotated[
        Path, typer.Option(envvar=f"{_ENV}DATA_DIR", help="Log, checkpoints and metadata.")
    ] = _DEFAULTS.data_dir,
    rate: Annotated[float, typer.Option(min=1, help="Generated events/s.")] = 2000,
    videos: Annotated[int, typer.Option(min=1, help="Videos in the catalogue.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the traffic.")] = 7,
) -> None:
    """The service on 127.0.0.1 fed by the traffic generator; Ctrl-C stops both cleanly
    (the service drains, checkpoints and exits)."""
    settings = ServiceConfig(port=port, data_dir=data_dir)
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "rankstream", "generate", "--target", url, "--rate", str(rate),
        "--duration", str(365 * 86_400), "--videos", str(videos), "--seed", str(seed),
    ]  # fmt: skip
    generator: list[subprocess.Popen[bytes]] = []

    def start_generator_when_healthy() -> None:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    generator.append(subprocess.Popen(command))
                    return
            except httpx.HTTPError:
                time.sleep(0.2)

    Console(stderr=True).print(
        f"rankstream demo: API on {url}  (try {url}/views/top-k?window=1h&k=10, {url}/docs)\n"
        f"data in {data_dir}; Ctrl-C to stop"
    )
    threading.Thread(target=start_generator_when_healthy, daemon=True).start()
    try:
        run_server(settings)
    finally:
        for process in generator:
            process.terminate()
            process.wait(30)
