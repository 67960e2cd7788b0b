"""``rankstream simulate``, run in-process: every window printed, ``all`` exactly counted;
the settings options of ``serve`` and ``demo`` (more in test_config.py)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from typer.testing import CliRunner

from rankstream.cli import app, with_settings
from rankstream.config import ServiceConfig
from rankstream.engine import DEFAULT_WINDOWS
from rankstream.generator import StreamSpec, generate_columns

ROW = re.compile(r"^\s*(\d+)\s+([A-Za-z0-9_-]{11})\s+([\d,]+)\s*$")
ARGS = ["--events", "6000", "--videos", "400", "--days", "3", "--batch-size", "700"]


@pytest.fixture(scope="module")
def output() -> str:
    result = CliRunner().invoke(app, ["simulate", *ARGS, "--seed", "3", "--k", "8"])
    assert result.exit_code == 0, result.output
    return result.output


def _ranking(output: str, window: str) -> list[tuple[int, str, int]]:
    """The rows printed under the heading of ``window``, up to the next blank line after them."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{window}  "))
    rows = []
    for line in lines[start + 1 :]:
        match = ROW.match(line)
        if match:
            rows.append((int(match[1]), match[2], int(match[3].replace(",", ""))))
        elif rows:
            break
    return rows


def test_every_window_is_printed_with_a_first_row(output: str) -> None:
    for window in DEFAULT_WINDOWS:
        rows = _ranking(output, window.name)
        assert rows, window.name
        assert rows[0][0] == 1
    assert "accepted 6,000" in output


def test_all_time_ranking_matches_a_brute_force_count(output: str) -> None:
    columns = generate_columns(StreamSpec(events=6000, videos=400, days=3, seed=3))
    counts = Counter(columns.video_ids[columns.videos].tolist())
    expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:8]
    printed = _ranking(output, "all")
    assert [(video, views) for _, video, views in printed] == expected
    assert [rank for rank, _, _ in printed] == list(range(1, 9))


def test_windows_show_utc_bounds(output: str) -> None:
    assert re.search(r"^24h  \[\d{4}-\d\d-\d\dT\d\d:\d\d:00Z, \d{4}-\d\d-\d\dT", output, re.M)
    assert "all  (every accepted event)" in output


def test_out_of_range_k_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["simulate", *ARGS, "--k", "0"])
    assert result.exit_code == 2


def test_demo_takes_the_generated_settings_and_its_own_options() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for option in ("--config", "--port", "--data-dir", "--write-token", "--max-cells"):
        assert option in result.output
    for option in ("--rate", "--videos", "--seed"):
        assert option in result.output


def test_a_command_option_may_not_shadow_a_setting() -> None:
    def command(settings: ServiceConfig, port: int = 1) -> None:
        """Would hide the --port setting."""

    with pytest.raises(TypeError, match=r"clash with settings: \['port'\]"):
        with_settings(command)
