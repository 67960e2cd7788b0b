"""The dashboard of the ``game`` scenario behind read tokens: top teams, top players, hot
streakers and team MVPs, each equal to its API answer; the token asked for and kept in
sessionStorage, never in the URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.dashboard.conftest import PHONE, READ_TOKEN, api, assert_panels_equal_api
from tests.servers import ServiceProcess

# The page's first round is refused until it has a token: the browser logs those 401s.
REFUSED = "status of 401"


def test_the_game_dashboard_asks_for_a_token_and_shows_every_board(
    game_server: ServiceProcess, dashboard: Any, tmp_path: Path
) -> None:
    board = dashboard(game_server.url)
    board.page.goto(f"{game_server.url}/#window=1h&k=10")
    board.page.wait_for_selector("body[data-state='auth']")
    assert board.page.is_visible("#token")
    board.page.fill("#token", READ_TOKEN)
    board.page.press("#token", "Enter")
    board.wait_refreshes(1)
    assert board.page.evaluate("() => sessionStorage.getItem('rankstream.token')") == READ_TOKEN
    assert READ_TOKEN not in board.page.url

    panels = assert_panels_equal_api(board, game_server.url, READ_TOKEN)
    # The notes' game dashboard: top teams, top players, hot streakers, team MVPs.
    assert {p["panel"]: p["url"] for p in panels} == {
        "teams:top": "/leaderboards/teams/top-k?window=1h&k=10",
        "teams:rising": "/leaderboards/teams/rising?short=10m&long=1h&k=10",
        "players:top": "/leaderboards/players/top-k?window=1h&k=10",
        "players:rising": "/leaderboards/players/rising?short=10m&long=1h&k=10",
        "players:leaders": "/leaderboards/players/leaders?by=team_id&window=1h&k=10",
    }
    board.page.screenshot(path=str(tmp_path / "game-1280x800.png"))

    # A team: the players board narrows to it, the teams board (no such scope) does not.
    team = api(game_server.url, "/leaderboards/teams/top-k?window=1h&k=1", READ_TOKEN)
    chosen = team["items"][0]["entity"]
    board.page.fill("#scope-team_id", chosen)
    board.page.press("#scope-team_id", "Enter")
    board.page.wait_for_function(
        "() => document.querySelector('[data-panel=\"players:top\"]').dataset.url"
        f" === '/leaderboards/players/top-k?window=1h&k=10&team_id={chosen}'"
    )
    assert board.page.evaluate("() => location.hash") == f"#window=1h&k=10&team_id={chosen}"
    panels = assert_panels_equal_api(board, game_server.url, READ_TOKEN)
    leaders = api(
        game_server.url, "/leaderboards/players/leaders?by=team_id&window=1h&k=100", READ_TOKEN
    )
    mvp = next(i["entity"] for i in leaders["items"] if i["group"] == chosen)
    top = next(p for p in panels if p["panel"] == "players:top")["rows"]
    assert top[0]["entity"] == mvp

    # A player: no analytics here, so the page shows the values it has seen, and says why.
    board.page.click("[data-panel='players:top'] li[data-rank='1'] button")
    board.page.wait_for_selector("#detail-chart svg[data-kind='seen']")
    assert "no per-entity history" in (board.page.text_content("#detail-note") or "")

    board.page.set_viewport_size(PHONE)
    board.page.screenshot(path=str(tmp_path / "game-phone.png"), full_page=True)
    board.assert_clean(allowed=(REFUSED,))
