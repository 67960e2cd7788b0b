"""``make screenshot``: the README's picture of the dashboard, taken from a live demo.

Starts ``rankstream demo`` on a free loopback port (its own temporary data directory), lets
the generator run for a few seconds, opens the dashboard in Debian's headless Chromium at
1280x800, opens the top video's details (its trend from the analytics store) and saves a
full-page PNG. The demo is stopped with Ctrl-C (SIGINT) whatever happens.

    python -m tests.dashboard.screenshot docs/dashboard.png [--scenario views|game|shop]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tests.dashboard.conftest import CHROMIUM_ARGS, WIDE
from tests.servers import free_port


def main() -> None:
    """Parse the arguments, take the screenshot; exit status 1 with the demo's log on failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("output", type=Path)
    parser.add_argument("--scenario", default="views", choices=["views", "game", "shop"])
    parser.add_argument("--seconds", type=float, default=8.0, help="traffic before the picture")
    options = parser.parse_args()
    executable = shutil.which("chromium")
    if executable is None:
        sys.exit("screenshot: chromium is not installed (make services installs it)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="rankstream-screenshot-") as work:
        log = Path(work) / "demo.log"
        with open(log, "wb") as out:
            demo = subprocess.Popen(
                [sys.executable, "-m", "rankstream", "demo", "--port", str(port),
                 "--data-dir", f"{work}/data", "--rate", "1500", "--videos", "2000",
                 "--scenario", options.scenario],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            _wait_for_traffic(url, options.seconds)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=WIDE, bypass_csp=True)  # type: ignore[arg-type]
                page.goto(f"{url}/#window=1h&k=10")
                page.wait_for_function("() => Number(document.body.dataset.refreshes) >= 3")
                page.click("[data-panel] li[data-rank='1'] button")
                page.wait_for_selector("#detail-chart svg")
                page.wait_for_timeout(2500)  # one more refresh: rank moves and sparklines
                options.output.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(options.output), full_page=True)
                browser.close()
        except Exception:
            print(log.read_text(), file=sys.stderr)
            raise
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
    print(f"screenshot: {options.output}")


def _wait_for_traffic(url: str, seconds: float) -> None:
    """Until the demo has taken events for ``seconds`` (at most a minute to start)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/status", timeout=1).json()["events_accepted"] > 0:
                time.sleep(seconds)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the demo took no events within a minute")


if __name__ == "__main__":
    main()
