"""Start-up with a data directory that cannot be used: one clear line on stderr and exit
status 73 (EX_CANTCREAT), before anything is served, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rankstream.server import EX_CANTCREAT, DataDirError, prepare_data_dir
from tests.servers import free_port


def serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``rankstream serve --data-dir data_dir``, which must give up within seconds."""
    command = [sys.executable, "-m", "rankstream", "serve", "--data-dir", str(data_dir),
               "--port", str(free_port())]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)


def assert_refused(data_dir: Path, reason: str) -> None:
    result = serve(data_dir)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stderr == f"rankstream: cannot use data directory {data_dir}: {reason}\n"
    assert result.returncode == EX_CANTCREAT


@contextmanager
def read_only_tmpfs(mount_point: Path) -> Iterator[Path]:
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(mount_point)]
    try:
        mounted = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        pytest.fail(f"this test mounts a read-only tmpfs and could not run mount: {exc}")
    if mounted.returncode != 0:
        pytest.fail(
            "this test mounts a read-only tmpfs (needs root and a machine that allows mounts): "
            f"{' '.join(command)} failed: {mounted.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_read_only_filesystem(tmp_path: Path) -> None:
    with read_only_tmpfs(tmp_path / "ro") as read_only:
        assert_refused(read_only / "data", "read-only file system")  # cannot be created
        assert_refused(read_only, "read-only file system")  # exists, cannot be written


def test_parent_is_a_regular_file(tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("not a directory")
    assert_refused(parent / "data", f"{parent} is not a directory")


def test_data_dir_is_a_regular_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    assert_refused(data, "not a directory")


def test_a_missing_data_dir_is_created_with_its_parents(tmp_path: Path) -> None:
    data = tmp_path / "vanished" / "and" / "data"
    prepare_data_dir(data)
    assert data.is_dir()
    assert list(data.iterdir()) == []  # the write probe is gone
    prepare_data_dir(data)  # an existing, writable directory is fine


def test_prepare_data_dir_names_the_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("data").write_text("")
    expected = re.escape(f"cannot use data directory {tmp_path / 'data'}: not a directory")
    with pytest.raises(DataDirError, match=f"^{expected}$"):
        prepare_data_dir(Path("data"))
