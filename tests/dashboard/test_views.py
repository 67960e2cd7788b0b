"""The dashboard of the default ``views`` scenario: boards equal to the API, filters in the
URL, live updates, a video's trend, screenshots, pausing when hidden, surviving a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from rankstream.api.dashboard import CONTENT_SECURITY_POLICY
from tests.dashboard.conftest import PHONE, WIDE, api, assert_panels_equal_api
from tests.servers import ServiceProcess


def test_the_page_and_its_files_are_served_with_a_same_origin_policy(
    views_server: ServiceProcess,
) -> None:
    for path, media_type in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ]:
        answer = httpx.get(f"{views_server.url}{path}")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith(media_type)
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "http" not in httpx.get(f"{views_server.url}/").text.replace('href="/docs"', "")


def test_every_board_equals_its_api_answer_and_filters_follow_the_url(
    views_server: ServiceProcess, dashboard: Any, tmp_path: Path
) -> None:
    board = dashboard(views_server.url)
    board.open("window=1h&k=10")
    panels = assert_panels_equal_api(board, views_server.url)
    assert {p["panel"]: p["url"] for p in panels} == {
        "videos:top": "/views/top-k?window=1h&k=10",
        "videos:rising": "/leaderboards/videos/rising?short=1h&long=24h&k=10",
        "videos:leaders": "/leaderboards/videos/leaders?by=category&window=1h&k=10",
    }
    top = next(p for p in panels if p["panel"] == "videos:top")
    assert all(row["sub"] for row in top["rows"])  # channel · video id
    board.page.screenshot(path=str(tmp_path / "dashboard-1280x800.png"))

    # A window and k from the form: the URL follows, the board changes, and equals the API.
    board.page.select_option("#window", "24h")
    board.page.select_option("#k", "5")
    board.page.wait_for_function(
        "() => document.querySelector('[data-panel=\"videos:top\"]').dataset.url"
        " === '/views/top-k?window=24h&k=5'"
    )
    assert board.page.evaluate("() => location.hash") == "#window=24h&k=5"
    panels = assert_panels_equal_api(board, views_server.url)
    assert len(next(p for p in panels if p["panel"] == "videos:top")["rows"]) == 5

    # A scope value: the category of the first group leader.
    category = api(views_server.url, "/leaderboards/videos/leaders?by=category&window=24h")
    chosen = category["items"][1]["group"]
    unfiltered = next(p for p in panels if p["panel"] == "videos:top")["rows"]
    board.page.fill("#scope-category", chosen)
    board.page.press("#scope-category", "Enter")
    board.page.wait_for_function(
        "() => document.querySelector('[data-panel=\"videos:top\"]').dataset.url"
        f" === '/views/top-k?window=24h&k=5&category={chosen}'"
    )
    assert board.page.evaluate("() => location.hash") == f"#window=24h&k=5&category={chosen}"
    panels = assert_panels_equal_api(board, views_server.url)
    assert next(p for p in panels if p["panel"] == "videos:top")["rows"] != unfiltered

    # The URL alone reproduces the view (a shared link).
    shared = dashboard(views_server.url)
    shared.open(f"window=24h&k=5&category={chosen}")
    assert shared.page.input_value("#window") == "24h"
    assert shared.page.input_value("#scope-category") == chosen
    assert_panels_equal_api(shared, views_server.url)

    board.page.set_viewport_size(PHONE)
    board.page.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
    for name in ("dashboard-1280x800.png", "dashboard-phone.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    board.assert_clean()
    shared.assert_clean()


def test_a_live_update_shows_a_new_entry_and_its_rise(
    views_server: ServiceProcess, dashboard: Any
) -> None:
    board = dashboard(views_server.url)
    board.open("window=1h&k=10")
    leader = api(views_server.url, "/views/top-k?window=1h&k=1")["items"][0]["views"]
    now = int(time.time() * 1000)
    events = [
        {"video_id": "dash-live-video", "timestamp": now, "category": "music", "region": "JP"}
    ] * (leader + 10)
    registered = httpx.put(
        f"{views_server.url}/videos/dash-live-video",
        json={"title": "Live from the test", "channel": "dashboard tests", "category": "music"},
    )
    assert registered.status_code in (200, 201, 204), registered.text
    posted = httpx.post(f"{views_server.url}/views", json=events, timeout=30)
    assert posted.status_code == 202
    # Marked new on the first refresh that shows it, then ranked first.
    board.page.wait_for_selector(
        "[data-panel='videos:top'] li[data-entity='dash-live-video'] .move.new", timeout=10_000
    )
    rows = next(p for p in board.panels() if p["panel"] == "videos:top")["rows"]
    assert rows[0]["entity"] == "dash-live-video"
    assert float(rows[0]["value"]) == leader + 10
    assert rows[0]["name"] == "Live from the test"
    assert_panels_equal_api(board, views_server.url)
    board.assert_clean()


def test_clicking_a_video_shows_its_metadata_and_trend(
    views_server: ServiceProcess, dashboard: Any, tmp_path: Path
) -> None:
    board = dashboard(views_server.url, WIDE)
    board.open("window=1h&k=10")
    first = board.page.locator("[data-panel='videos:top'] li[data-rank='1'] button")
    video = board.page.get_attribute("[data-panel='videos:top'] li[data-rank='1']", "data-entity")
    assert video
    first.focus()
    board.page.keyboard.press("Enter")  # keyboard works as well as a click
    chart = board.page.wait_for_selector("#detail-chart svg[data-kind='trend']", timeout=15_000)
    assert chart is not None
    assert int(chart.get_attribute("data-points") or 0) == 60  # an hour of minutes
    assert board.page.text_content("#detail-title") == video
    metadata = api(views_server.url, f"/videos/{video}")
    assert metadata["title"] in (board.page.text_content("#detail-meta") or "")
    board.page.screenshot(path=str(tmp_path / "dashboard-detail.png"), full_page=True)
    board.page.keyboard.press("Escape")
    assert board.page.is_hidden("#detail")
    board.assert_clean()


def test_refreshes_pause_while_hidden_and_the_page_survives_a_restart(
    views_server: ServiceProcess, dashboard: Any
) -> None:
    board = dashboard(views_server.url)
    board.open()
    board.page.evaluate(
        """() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    board.page.wait_for_selector("body[data-state='paused']")
    paused_at = board.refreshes()
    time.sleep(4.5)
    assert board.refreshes() <= paused_at + 1  # (a round already under way may finish)
    board.page.evaluate(
        """() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    board.wait_refreshes(board.refreshes() + 1, timeout_ms=5_000)
    board.assert_clean()

    views_server.stop()
    board.page.wait_for_selector("body[data-state='down']", timeout=10_000)
    assert "reconnecting" in (board.page.text_content("#connection") or "")
    views_server.start()
    board.page.wait_for_selector("body[data-state='reconnected']", timeout=20_000)
    assert "reconnected" in (board.page.text_content("#connection") or "")
    assert_panels_equal_api(board, views_server.url)
    # While the server was down, the browser said so: nothing else.
    board.assert_clean(allowed=("ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE"))


def test_a_process_without_boards_still_shows_the_videos_board(
    views_server: ServiceProcess, dashboard: Any
) -> None:
    # As a scale-out replica that answers /leaderboards with 503 (not built there yet).
    board = dashboard(views_server.url)
    board.page.route(
        f"{views_server.url}/leaderboards",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": "leaderboards_unavailable", "message": "-", "request_id": "-"}',
        ),
    )
    board.open("window=24h&k=5")
    panels = assert_panels_equal_api(board, views_server.url)
    assert [p["url"] for p in panels] == ["/views/top-k?window=24h&k=5"]
    board.assert_clean(allowed=("status of 503",))


def test_a_slow_panel_is_asked_for_less_often(views_server: ServiceProcess, dashboard: Any) -> None:
    # Risers over a big board cost the server long while it ingests: here made slow in the
    # browser (300 ms), the page asks for them again only after 20x that, and says so.
    board = dashboard(views_server.url)
    asked: list[str] = []

    def slow(route: Any) -> None:
        asked.append(route.request.url)
        time.sleep(0.3)
        route.continue_()

    board.page.route("**/leaderboards/videos/rising*", slow)
    board.open("window=1h&k=10")
    caption = "[data-panel='videos:rising'] .caption"
    board.page.wait_for_function(
        f"() => document.querySelector(\"{caption}\").textContent.includes('slow to compute')"
    )
    first = len(asked)
    board.wait_refreshes(board.refreshes() + 2)  # two more rounds, 4 s: not due again yet
    assert len(asked) == first
    assert_panels_equal_api(board, views_server.url)
    board.assert_clean()
