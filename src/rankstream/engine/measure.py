"""What is ranked and what is counted, defined in one place.

rankstream ranks *entities* (videos) by a *quantity* summed over events (1 per view). Every
layer that names the entity field, the scope fields or the counted quantity reads them from
a :class:`Measure` (:data:`VIEWS` by default), so ranking products by revenue or players by
score within their team is a different :class:`Measure`, not a different engine.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_QUANTITY = 10**9
"""The largest value one event may add, in scaled units (``quantity_scale``): sums are exact
64-bit integers, so a series overflows only after 9.2 billion events of this size."""


@dataclass(frozen=True, slots=True)
class Measure:
    """The ranked entity, the scope fields and the counted quantity.

    ``entity_field`` (with ``entity_aliases``) names the event field holding the entity id.
    ``scope_fields``: at most two optional label fields an answer can be narrowed by; the
    engine keeps them in its first and second label slot (named ``category`` and ``region``
    inside the engine, whatever the fields are called).
    ``quantity_field`` names a numeric event field to sum; ``None`` counts each event once.
    ``quantity_scale``: decimal places the sum keeps exactly: a value is stored as the
    integer ``value * 10**quantity_scale`` (``19.99`` with scale 2 is 1999); a value with
    more places, a negative one or one above :data:`MAX_QUANTITY` scaled units makes the
    event invalid for this measure.
    ``value_name`` is what a ranked item calls its summed value (``views``).
    """

    entity_field: str = "video_id"
    entity_aliases: tuple[str, ...] = ("videoId",)
    quantity_field: str | None = None
    value_name: str = "views"
    scope_fields: tuple[str, ...] = ("category", "region")
    quantity_scale: int = 0


VIEWS = Measure()
"""The default measure: videos ranked by number of views, by category and region."""
