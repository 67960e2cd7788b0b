"""What the HTTP API serves from, behind two seams: :class:`Ingest` (where events go) and
:class:`RankingSource` (where rankings come from).

Implementations: the embedded pipeline is both (events into its log and engine, rankings
from the engine in this process); in scale-out mode an API replica produces to Kafka and
reads rankings the workers published to Redis. The HTTP handlers see only these seams.
"""

from rankstream.serving.protocols import BoardSource, Ingest, RankingSource

__all__ = ["BoardSource", "Ingest", "RankingSource"]
