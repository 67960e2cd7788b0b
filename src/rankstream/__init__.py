"""rankstream: exact, real-time Top-K rankings over sliding and calendar windows."""

from rankstream.engine import EngineConfig, EventBatch, TopKEngine, TopKResult, ViewEvent

__all__ = ["EngineConfig", "EventBatch", "TopKEngine", "TopKResult", "ViewEvent"]
__version__ = "0.1.0"
