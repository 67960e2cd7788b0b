"""Operations: each endpoint declared once, with what it reads and what it answers.

An :class:`Operation` names its method and path, its access (public, read, write), the
structs of the query, path and header values it reads, its request body, and every answer it
gives (status, body type, headers). From that one declaration:

- :class:`PathRoute` serves it: checks the token, reads and validates every input with the
  rules of :mod:`rankstream.api.inputs`, calls the endpoint with a :class:`Call`, and turns
  any :class:`~rankstream.api.errors.ApiError` into the JSON error answer;
- :mod:`rankstream.api.openapi` documents it.

Endpoints are plain module-level ``async def endpoint(call: Call) -> Response`` functions;
they find their services in ``call.state`` (the app's lifespan state).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rankstream.api.auth import Access
from rankstream.api.errors import JSON, ApiError, error_response, from_domain
from rankstream.api.inputs import ParameterReader, header_items, path_items, query_items
from rankstream.errors import RankstreamError

if TYPE_CHECKING:
    from rankstream.api.state import AppState


class AnyTextConvertor(Convertor[str]):
    """A path parameter that may hold any character, ``/`` and newlines included, so that
    the parameter reader (not the router's 404) judges it by its declared rules. Starlette's
    own ``path`` matches ``.*``, which stops at a newline."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyTextConvertor())


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented answer: its description, body (a msgspec type answered as JSON, or
    ``None``), media type, and the names of the response headers it sets."""

    description: str
    body: Any = None
    media_type: str = JSON
    headers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: per media type, a msgspec type or a literal JSON Schema (for bodies
    the endpoint takes apart itself, such as NDJSON); plus a description and an example."""

    content: Mapping[str, Any]
    description: str
    example: Any = None


@dataclass(slots=True)
class Call:
    """What an endpoint gets: the request, the app state, and its validated inputs."""

    request: Request
    state: AppState
    request_id: str
    query: Any = None
    path: Any = None
    headers: Any = None


Endpoint = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path; see the module docstring."""

    method: str
    path: str
    endpoint: Endpoint
    summary: str
    access: Access
    answers: Mapping[int, Answer]
    query: type[msgspec.Struct] | None = None
    path_params: type[msgspec.Struct] | None = None
    headers: type[msgspec.Struct] | None = None
    body: Body | None = None
    description: str = ""

    @property
    def reads_input(self) -> bool:
        """Whether a client can send this operation something invalid (so it may answer 400)."""
        return any(p is not None for p in (self.query, self.path_params, self.headers, self.body))


@dataclass(frozen=True, slots=True)
class _Compiled:
    operation: Operation
    query: ParameterReader | None
    path: ParameterReader | None
    headers: ParameterReader | None


@dataclass
class PathRoute:
    """Serves every operation declared on one path (so a wrong method gets a 405 whose
    ``Allow`` lists all the path's methods)."""

    path: str
    operations: dict[str, _Compiled] = field(default_factory=dict)

    def add(self, operation: Operation) -> None:
        """Serve ``operation`` on this path."""
        self.operations[operation.method] = _Compiled(
            operation,
            None if operation.query is None else ParameterReader(operation.query, "query"),
            None
            if operation.path_params is None
            else ParameterReader(operation.path_params, "path"),
            None if operation.headers is None else ParameterReader(operation.headers, "header"),
        )

    def route(self) -> Route:
        """The Starlette route (``HEAD`` is served wherever ``GET`` is)."""
        return Route(self.path, self.handle, methods=list(self.operations))

    async def handle(self, request: Request) -> Response:
        """Check access, read inputs, call the endpoint; errors become JSON answers."""
        method = "GET" if request.method == "HEAD" else request.method
        compiled = self.operations[method]
        operation = compiled.operation
        state: AppState = request.scope["state"]["app"]
        request_id: str = request.scope["rankstream.request_id"]
        try:
            if state.guard.protects(operation.access):
                state.guard.check(operation.access, request.headers.get("authorization"))
            call = Call(request, state, request_id)
            if compiled.query is not None:
                call.query = compiled.query.read(query_items(request))
            elif request.scope["query_string"]:  # (request.url would build a whole URL)
                _refuse_parameters(request)
            if compiled.path is not None:
                call.path = compiled.path.read(path_items(request))
            if compiled.headers is not None:
                call.headers = compiled.headers.read(header_items(request))
            return await operation.endpoint(call)
        except ApiError as error:
            return answer_error(state, error, request_id)
        except RankstreamError as error:
            return answer_error(state, from_domain(error), request_id)


def answer_error(state: AppState, error: ApiError, request_id: str) -> Response:
    """The JSON answer of ``error``, counted by status and code."""
    state.metrics.answers.labels(str(error.status), error.code).inc()
    return error_response(error, request_id)


def _refuse_parameters(request: Request) -> None:
    """A call without declared query parameters takes none (as a misspelt one is refused)."""
    items = query_items(request)
    if items:
        raise ApiError(
            400,
            "invalid_query",
            f"unknown query parameter {items[0][0][:64]!r}; this call takes none",
        )


def routes(operations: Sequence[Operation]) -> list[Route]:
    """One Starlette route per path, in declaration order."""
    by_path: dict[str, PathRoute] = {}
    for operation in operations:
        by_path.setdefault(operation.path, PathRoute(operation.path)).add(operation)
    return [path.route() for path in by_path.values()]
