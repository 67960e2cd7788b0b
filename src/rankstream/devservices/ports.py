"""Free loopback ports, and waiting until something listens on one."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may take it)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1: all are held open until all are found."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_open(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds now (blocks at most 0.5 s)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts a TCP connection; :class:`TimeoutError` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")
        time.sleep(0.05)
