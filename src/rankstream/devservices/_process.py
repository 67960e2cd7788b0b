"""One service child process: its log file, start-up wait, stop, pause, and the atexit net."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from rankstream.devservices.ports import free_port

LOG_TAIL_LINES = 40

_running: set[subprocess.Popen[bytes]] = set()


class ServiceStartError(RuntimeError):
    """A service did not start (exited, or did not answer in time); the message ends with the
    tail of its log."""


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` every ``interval`` seconds until it is true (returns True) or
    ``timeout`` seconds have passed (returns False). Blocks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` ("" if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ServiceProcess:
    """A command run with stdout and stderr appended to ``log_path``.

    The child gets its own session, so signals for the test runner's terminal (Ctrl-C) do not
    reach it and :meth:`pause` stops only it. Until :meth:`stop` it is in a module-wide set that
    an ``atexit`` hook kills, so a crashed test session leaves nothing running.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the child was started and has not exited (a paused child is running)."""
        return self.process is not None and self.process.poll() is None

    def start(self, ready: Callable[[], bool], timeout: float) -> None:
        """Start the child and block until ``ready()`` is true.

        ``ready`` is polled every 50 ms and should return quickly. Raises
        :class:`ServiceStartError` (with the log tail) and kills the child if it exits first or
        ``timeout`` seconds pass.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        _running.add(self.process)
        process = self.process
        if not wait_until(lambda: process.poll() is not None or ready(), timeout):
            self.stop(grace=0)
            raise self.start_error(f"did not answer within {timeout} s")
        if process.poll() is not None:
            raise self.start_error(f"exited with code {self.stop()} while starting")

    def start_error(self, what: str) -> ServiceStartError:
        """A :class:`ServiceStartError` saying ``what`` happened, with the log tail."""
        return ServiceStartError(
            f"{self.name} {what}: {' '.join(self.command)}\n"
            f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
        )

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code (None if never
        started). Idempotent; works on a paused child too."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            if grace > 0:
                _signal(process, signal.SIGTERM)
                _signal(process, signal.SIGCONT)  # a paused child handles SIGTERM only now
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(grace)
            if process.poll() is None:
                process.kill()
            process.wait()
        _running.discard(process)
        return process.returncode

    def pause(self) -> None:
        """SIGSTOP: the service keeps its sockets open but answers nothing until
        :meth:`resume`. Clients see time-outs, not refused connections."""
        self._signal_running(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: undo :meth:`pause`. Idempotent."""
        self._signal_running(signal.SIGCONT)

    def _signal_running(self, sig: signal.Signals) -> None:
        if self.process is None or not self.running:
            raise RuntimeError(f"{self.name} is not running")
        _signal(self.process, sig)


class OneProcessService:
    """A service that runs as one :class:`ServiceProcess` (held in ``_process``), with
    what every such launcher offers: pause, resume, stop, and use as a context manager.
    Subclasses name themselves in ``service_name`` and implement :meth:`start`."""

    service_name = "the service"
    _process: ServiceProcess | None = None

    def __init__(self, work_dir: Path, *, start_timeout: float = 30.0) -> None:
        """Files under ``work_dir``; one free loopback ``port``, kept across restarts."""
        self.work_dir = work_dir
        self.start_timeout = start_timeout
        self.port = free_port()
        self._process = None

    def start(self) -> Self:
        """Start the process and wait until it answers; raises :class:`ServiceStartError`."""
        raise NotImplementedError

    def _launch(self, command: Sequence[str], log_name: str, ready: Callable[[], bool]) -> None:
        """Run ``command`` (output to ``work_dir / log_name``) and block until ``ready``;
        refuses to start a second process while one runs."""
        if self._process is not None and self._process.running:
            raise RuntimeError(f"{self.service_name} is already running")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._process = ServiceProcess(self.service_name, command, self.work_dir / log_name)
        self._process.start(ready, self.start_timeout)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered (clients see time-outs,
        nothing is refused) until :meth:`resume`. Data stays."""
        self._running().pause()

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`; it answers again at once."""
        self._running().resume()

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 10 s. Idempotent."""
        if self._process is not None:
            self._process.stop()

    def _running(self) -> ServiceProcess:
        if self._process is None or not self._process.running:
            raise RuntimeError(f"{self.service_name} is not running")
        return self._process

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile: nothing to signal
        os.kill(process.pid, sig)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_running):
        if process.poll() is None:
            _signal(process, signal.SIGCONT)
            process.kill()
            process.wait()
    _running.clear()
