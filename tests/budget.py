"""Hypothesis budgets: one deterministic profile for ``make test``, a random one for ``make fuzz``.

``make test`` (and CI) load the ``ci`` profile: derandomized, so every run draws the same
examples and a green suite stays green; no example database. ``make fuzz`` loads ``fuzz``:
fresh random examples on every run, each test's budget multiplied by ``RANKSTREAM_FUZZ_SCALE``,
and failures saved under ``.hypothesis/`` to replay. Anything ``make fuzz`` finds becomes an
``@example(...)`` on the test, so the deterministic suite checks it from then on.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = int(os.environ.get("RANKSTREAM_FUZZ_SCALE", "5")) if PROFILE == "fuzz" else 1

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(PROFILE)


def examples(count: int) -> int:
    """The number of examples a test draws: ``count`` in CI, scaled up by ``make fuzz``."""
    return count * SCALE
