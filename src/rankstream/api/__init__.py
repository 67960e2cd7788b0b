"""The HTTP API (Starlette): the same contract in embedded and scale-out mode."""

from rankstream.api.app import create_app

__all__ = ["create_app"]
