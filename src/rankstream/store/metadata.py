"""Video metadata (title, channel, thumbnail...): what clients may store per video."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from rankstream.engine.events import TEXT_PATTERN

_TEXT = TEXT_PATTERN  # no control characters, as in events


class VideoMetadata(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What ``PUT /videos/{video_id}`` accepts. Every field is optional; strings are bounded
    (a client cannot bloat memory) and hold no control characters."""

    title: Annotated[str, Meta(max_length=500, pattern=_TEXT)] | None = None
    channel: Annotated[str, Meta(max_length=200, pattern=_TEXT)] | None = None
    thumbnail_url: Annotated[str, Meta(max_length=2048, pattern=_TEXT)] | None = None
    duration_s: Annotated[float, Meta(ge=0)] | None = None
    category: Annotated[str, Meta(max_length=64, pattern=_TEXT)] | None = None
