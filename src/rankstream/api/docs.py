"""``/openapi.json`` and ``/docs``: the API's own description, generated at start-up."""

from __future__ import annotations

from starlette.responses import HTMLResponse, Response

from rankstream.api.errors import JSON
from rankstream.api.operations import Answer, Call, Operation


async def get_openapi(call: Call) -> Response:
    """The OpenAPI 3.1 document (:func:`rankstream.api.openapi.build_openapi`)."""
    return Response(call.state.openapi, media_type=JSON)


async def get_docs(call: Call) -> Response:
    """A page listing every operation (self-contained: no scripts, no external resources)."""
    return HTMLResponse(call.state.docs_html)


def operations() -> list[Operation]:
    """The declarations of this module's endpoints."""
    return [
        Operation(
            "GET",
            "/openapi.json",
            get_openapi,
            summary="This API's OpenAPI 3.1 description",
            access="public",
            answers={200: Answer("The OpenAPI document", {"type": "object"})},
        ),
        Operation(
            "GET",
            "/docs",
            get_docs,
            summary="A page listing every operation",
            access="public",
            answers={200: Answer("HTML", {"type": "string"}, "text/html")},
        ),
    ]
