"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

``make services`` installs Chromium with apt; Playwright's own browser download is never
used. Without Chromium these tests fail (they never skip).

Servers here are fed a fixed amount of generated traffic and then left idle, so that what
the page shows and what the API answers can be compared at any moment afterwards.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from rankstream.generator.scenarios import SCENARIOS
from tests.servers import ServiceProcess

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
READ_TOKEN = "dash-read-token-0123456789"
WRITE_TOKEN = "dash-write-token-0123456789"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; a missing one fails the test with how to install it.

    Package scope, not session: Playwright's sync API runs an event loop in this thread
    while it is open, so it must be closed before other packages' tests call
    ``asyncio.run``."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: `make services` installs it (apt-get)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Dashboard:
    """A page of the dashboard with every request and console message it made recorded."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def open(self, hash_: str = "") -> None:
        """Load ``/`` (with ``#hash_``) and wait for the first complete refresh."""
        self.page.goto(f"{self.origin}/{'#' + hash_ if hash_ else ''}")
        self.wait_refreshes(1)

    def refreshes(self) -> int:
        """How many refresh rounds the page completed."""
        return int(self.page.evaluate("() => Number(document.body.dataset.refreshes || 0)"))

    def wait_refreshes(self, count: int, timeout_ms: float = 20_000) -> None:
        """Wait until the page completed ``count`` refresh rounds in all."""
        self.page.wait_for_function(
            f"() => Number(document.body.dataset.refreshes || 0) >= {count}", timeout=timeout_ms
        )

    def panels(self) -> list[dict[str, Any]]:
        """Every rendered panel: its key, kind, the API path it shows, its rows by rank."""
        panels: list[dict[str, Any]] = self.page.evaluate(
            """() => [...document.querySelectorAll('[data-panel]')].map(a => ({
                panel: a.dataset.panel, kind: a.dataset.kind, url: a.dataset.url,
                rows: [...a.querySelectorAll('li')].map(li => ({
                    rank: Number(li.dataset.rank), entity: li.dataset.entity,
                    value: li.dataset.value, name: li.querySelector('.name').textContent,
                    sub: li.querySelector('.sub').textContent,
                })).sort((x, y) => x.rank - y.rank),
            }))"""
        )
        return panels

    def assert_clean(self, allowed: tuple[str, ...] = ()) -> None:
        """No request left the origin and no console error was logged (but ``allowed``)."""
        # data: URLs (the empty favicon) are not network requests.
        outside = [u for u in self.requests if not u.startswith(f"{self.origin}/")]
        assert not [u for u in outside if not u.startswith("data:")], outside
        errors = [e for e in self.console_errors if not any(a in e for a in allowed)]
        assert not errors, errors


@pytest.fixture
def dashboard(browser: Browser) -> Iterator[Any]:
    """A factory: ``dashboard(origin, viewport=WIDE)`` -> a recorded :class:`Dashboard`.

    Every page is checked at teardown: no request outside its origin, no console error.
    (Pages run with ``bypass_csp`` only so that Playwright can evaluate its wait conditions;
    the policy itself is asserted on the served headers.)
    """
    made: list[Dashboard] = []

    def make(origin: str, viewport: dict[str, int] = WIDE) -> Dashboard:
        context = browser.new_context(viewport=viewport, bypass_csp=True)  # type: ignore[arg-type]
        page = context.new_page()
        board = Dashboard(page, origin)

        def on_request(request: Request) -> None:
            board.requests.append(request.url)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                board.console_errors.append(message.text)

        page.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda error: board.console_errors.append(f"pageerror {error}"))
        made.append(board)
        return board

    yield make
    for board in made:
        board.page.context.close()


def feed(url: str, *options: str) -> None:
    """Run ``rankstream generate`` against ``url`` for a fixed, short duration, to the end."""
    subprocess.run(
        [sys.executable, "-m", "rankstream", "generate", "--target", url, "--rate", "3000",
         "--duration", "2", "--seed", "7", *options],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def views_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The default service (the ``videos`` board, analytics on) after 2 s of generated
    views with metadata, then idle."""
    service = ServiceProcess(tmp_path_factory.mktemp("views") / "data", "--sync", "NORMAL")
    service.start()
    try:
        feed(service.url, "--videos", "300")
        yield service
    finally:
        service.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def game_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The game scenario's boards behind read and write tokens, analytics off, after 2 s of
    generated scores, then idle."""
    game = SCENARIOS["game"]
    env = {
        "RANKSTREAM_FIELDS": json.dumps(game.fields),
        "RANKSTREAM_BOARDS": json.dumps(game.boards),
        "RANKSTREAM_READ_TOKEN": READ_TOKEN,
        "RANKSTREAM_WRITE_TOKEN": WRITE_TOKEN,
    }
    service = ServiceProcess(
        tmp_path_factory.mktemp("game") / "data", "--sync", "NORMAL", "--no-analytics", env=env
    )
    service.start()
    try:
        feed(service.url, "--scenario", "game", "--token", WRITE_TOKEN)
        yield service
    finally:
        service.stop(signal.SIGKILL)


def api(url: str, path: str, token: str | None = None) -> Any:
    """The JSON answer of ``GET path``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(f"{url}{path}", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def expected_rows(kind: str, answer: dict[str, Any]) -> list[tuple[int, str, float]]:
    """What a panel of ``kind`` must show for ``answer``: (rank, entity, value)."""
    items = answer["items"]
    if kind == "rising":
        return [(i["rank"], i["entity"], float(i["ratio"])) for i in items]
    if "video_id" in (items[0] if items else {}):
        return [(i["rank"], i["video_id"], float(i["views"])) for i in items]
    return [(i["rank"], i["entity"], float(i["value"])) for i in items]


def assert_panels_equal_api(
    board: Dashboard, url: str, token: str | None = None
) -> list[dict[str, Any]]:
    """Every panel on the page shows exactly its API answer (the data is idle, so the last
    render and an answer now must agree). Returns the panels."""
    board.wait_refreshes(board.refreshes() + 1)
    panels = board.panels()
    assert panels
    for panel in panels:
        answer = api(url, panel["url"], token)
        shown = [(r["rank"], r["entity"], float(r["value"])) for r in panel["rows"]]
        assert shown == expected_rows(panel["kind"], answer), panel["panel"]
        assert shown, f"{panel['panel']} is empty"
        if panel["url"].startswith("/views/top-k"):  # names are titles from the metadata
            assert [r["name"] for r in panel["rows"]] == [
                i.get("title") or i["video_id"] for i in answer["items"]
            ]
        if panel["kind"] == "leaders":
            assert [r["name"] for r in panel["rows"]] == [
                f"{i['group']}: {i['entity']}" for i in answer["items"]
            ]
    return panels
