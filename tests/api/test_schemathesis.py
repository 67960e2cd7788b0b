"""Schemathesis over every operation of ``/openapi.json``, with all its checks.

The schema is loaded from the running app (in-process, lifespan and all), so what is tested is
the document clients see. Every check of Schemathesis runs: no server error, responses and
headers match the documented schemas, status codes and content types are documented,
schema-valid requests are accepted and schema-invalid ones rejected, unsupported methods get
405 with ``Allow``. One setting is ours: 413 (too many events or bytes) counts as a
rejection of invalid data, as 400 does. The app is run twice: open, and with write and read
tokens (Schemathesis sends the write token, and leaves it out on purpose to check the 401s).
Finally the app's own count of unexpected exceptions
must be zero.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from pydantic import SecretStr
from schemathesis.python import asgi
from starlette.applications import Starlette

from rankstream.api import create_app
from rankstream.config import ServiceConfig
from tests.budget import PROFILE, examples

# Schemathesis' list of statuses that reject invalid data, plus 413 (too many events or bytes).
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
WRITE_TOKEN = "write-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    # An NDJSON body is text. A generated non-string (negative data of the wrong type) has no
    # form on the wire; it is sent as the nearest schema-invalid text, a blank body.
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return b""


def _config(token: str | None = None) -> schemathesis.Config:
    # With a token, Schemathesis holds the credentials (a write token may also read), so it
    # knows which cases it sends without them on purpose and expects a 401 for those.
    auth = {"openapi": {"bearer": {"bearer": token}}} if token else {}
    return schemathesis.Config.from_dict(
        {
            "auth": auth,
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
            "generation": {"max-examples": examples(25), "deterministic": PROFILE != "fuzz"},
        }
    )


def _app(name: str, **settings: Any) -> Starlette:
    # Loaded at import: Schemathesis' fixture-based loader does not support pytest 9.2 yet.
    # Without the analytics store: these apps live for the whole session, and a process
    # holds one chDB store at a time (the analytics operations have their own run,
    # tests/analytics/test_schemathesis.py, against a service process).
    data = Path(tempfile.mkdtemp(prefix=f"rankstream-{name}-"))
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    return create_app(
        ServiceConfig(
            data_dir=data / "data",
            sync="NORMAL",
            max_events_per_request=50,
            analytics=False,
            **settings,
        )
    )


APPS = {
    "open": _app("open"),
    "guarded": _app(
        "guarded", write_token=(SecretStr(WRITE_TOKEN),), read_token=(SecretStr(READ_TOKEN),)
    ),
}
open_api = schemathesis.openapi.from_asgi("/openapi.json", APPS["open"], config=_config()).exclude(
    path_regex="^/analytics/"
)
guarded_api = schemathesis.openapi.from_asgi(
    "/openapi.json", APPS["guarded"], config=_config(WRITE_TOKEN)
).exclude(path_regex="^/analytics/")


@open_api.parametrize()
def test_every_operation_of_the_open_api(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()


@guarded_api.parametrize()
def test_every_operation_with_tokens(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()


@pytest.mark.parametrize("name", list(APPS))
def test_no_unexpected_exception_was_counted(name: str) -> None:
    get: Callable[..., Any]
    with asgi.get_client(cast(Any, APPS[name])) as client:
        get = client.get
        metrics = get(
            "http://testserver/metrics", headers={"Authorization": f"Bearer {READ_TOKEN}"}
        )
    assert metrics.status_code == 200
    line = next(
        line
        for line in metrics.text.splitlines()
        if line.startswith("rankstream_http_server_errors_total ")
    )
    assert float(line.split()[1]) == 0
