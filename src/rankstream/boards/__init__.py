"""Named leaderboards: any entity, counted or summed, scoped and filtered, from one stream.

- :mod:`.spec`: the declarations (fields, boards), checked at start-up;
- :mod:`.routing`: which boards each event fits, decoded by each board's rules;
- :mod:`.board_set`: one engine per board, one accept-or-refuse decision per event;
- :mod:`.questions`: rising entities and group leaders, beyond each board's top k.
"""

from rankstream.boards.board_set import (
    INVALID,
    BoardScreening,
    BoardSet,
    BoardStats,
    Ingested,
)
from rankstream.boards.questions import Leaders, Rising, leaders, rising
from rankstream.boards.routing import BoardRouter, Routed
from rankstream.boards.spec import (
    VIDEOS,
    VIEW_FIELDS,
    BoardSpec,
    Filter,
    parse_boards,
    parse_window,
)

__all__ = [
    "INVALID",
    "VIDEOS",
    "VIEW_FIELDS",
    "BoardRouter",
    "BoardScreening",
    "BoardSet",
    "BoardSpec",
    "BoardStats",
    "Filter",
    "Ingested",
    "Leaders",
    "Rising",
    "Routed",
    "leaders",
    "parse_boards",
    "parse_window",
    "rising",
]
