"""Optional client libraries: a missing one is a clear message with the extra to install."""

from __future__ import annotations

import pytest

from rankstream.errors import ConfigError
from rankstream.optional import require


def test_a_missing_library_names_the_extra_to_install() -> None:
    with pytest.raises(ConfigError, match=r"rankstream\[scale\]") as caught:
        require("redis_is_not_this_module", "scale-out mode")
    assert "scale-out mode needs the Python package 'redis_is_not_this_module'" in str(caught.value)


def test_an_installed_library_is_returned() -> None:
    assert require("msgspec", "anything").__name__ == "msgspec"
