"""Optional dependencies, imported only by the mode that needs them, with an install hint.

The embedded service needs none of Kafka, Redis or S3's client libraries; scale-out mode
imports them through :func:`require`, so a missing one is a clear message naming the extra
to install, not an ``ImportError`` from deep inside.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rankstream.errors import ConfigError

EXTRAS = {"confluent_kafka": "scale", "redis": "scale", "boto3": "scale"}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`ConfigError` saying which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module.split(".")[0], "scale")
        raise ConfigError(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not"
            f" installed: pip install 'rankstream[{extra}]'"
        ) from exc
