"""What is ranked and what is counted, defined in one place.

rankstream ranks *entities* (videos) by a *quantity* summed over events (1 per view). Every
layer that names the entity field or the counted quantity reads it from :data:`VIEWS`, so
ranking products by purchases or players by score is a different :class:`Measure`, not a
different engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measure:
    """The ranked entity and the counted quantity.

    ``entity_field`` (with ``entity_aliases``) names the event field holding the entity id.
    ``quantity_field`` names an integer event field to sum; ``None`` counts each event once.
    ``value_name`` is what a ranked item calls its summed value (``views``).
    """

    entity_field: str = "video_id"
    entity_aliases: tuple[str, ...] = ("videoId",)
    quantity_field: str | None = None
    value_name: str = "views"


VIEWS = Measure()
"""The default measure: videos ranked by number of views."""
