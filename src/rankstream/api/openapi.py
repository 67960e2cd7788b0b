"""``/openapi.json`` generated from the operation declarations, and a docs page rendering it.

Nothing here is written by hand beside the code: parameters come from the structs the
endpoints read (:mod:`rankstream.api.inputs` enforces the same rules), bodies and answers
from the msgspec types they decode and encode (``msgspec.json.schema_components``), security
from the configured tokens. Every operation also documents the answers the framework itself
gives: 400 when it reads input, 401/403 when a token is required, 500.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from rankstream.api.auth import TokenGuard
from rankstream.api.errors import JSON, ErrorAnswer
from rankstream.api.operations import Answer, Operation

_REF = "#/components/schemas/{name}"
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")

RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "Identifies the request in the service's log (the client's own"
        " X-Request-ID when it sent a valid one).",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Idempotent-Replayed": {
        "description": "true when this is the stored answer of an earlier request with the"
        " same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {
        "description": "The authentication scheme (Bearer) and, for a rejected token, why.",
        "schema": {"type": "string"},
    },
}


def build_openapi(
    operations: Sequence[Operation],
    guard: TokenGuard,
    *,
    version: str,
    named_schemas: Sequence[Any] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` as served with ``guard``'s tokens.

    ``named_schemas`` are further msgspec types to list under ``components/schemas`` (the
    event type a request body refers to by name).
    """
    types = list(_types(operations)) + list(named_schemas) + [ErrorAnswer]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(map(id, types), refs, strict=True))
    parameter_structs = {
        t.__name__ for o in operations for t in (o.query, o.path_params, o.headers) if t
    }
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        path = _CONVERTOR.sub(r"{\1}", operation.path)
        paths.setdefault(path, {})[operation.method.lower()] = _operation(
            operation, guard, components, schema_of
        )
    for name in parameter_structs:  # documented as parameters, not as schemas
        components.pop(name, None)
    _ecma_patterns(paths)
    _ecma_patterns(components)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "rankstream",
            "version": version,
            "description": "Exact real-time top-k of views. Errors are JSON"
            " {error, message, request_id}.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if any(guard.protects(o.access) for o in operations):
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "A configured token."}
        }
    return document


def _ecma_patterns(node: Any) -> None:
    """Rewrite Python's end-of-text anchor ``\\Z`` as ``$``, its meaning in JSON Schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str) and value.endswith("\\Z"):
                node[key] = value[:-2] + "$"
            else:
                _ecma_patterns(value)
    elif isinstance(node, list):
        for item in node:
            _ecma_patterns(item)


def _types(operations: Sequence[Operation]) -> Iterator[Any]:
    for operation in operations:
        for struct in (operation.query, operation.path_params, operation.headers):
            if struct is not None:
                yield struct
        if operation.body is not None:
            yield from (v for v in operation.body.content.values() if not isinstance(v, dict))
        for answer in operation.answers.values():
            if answer.body is not None and not isinstance(answer.body, dict):
                yield answer.body


def _operation(
    operation: Operation,
    guard: TokenGuard,
    components: dict[str, Any],
    schema_of: dict[int, Any],
) -> dict[str, Any]:
    def schema(value: Any) -> Any:
        return value if isinstance(value, dict) else schema_of[id(value)]

    answers = dict(operation.answers)
    if operation.reads_input:
        answers.setdefault(400, Answer("A parameter, header or the body is invalid"))
    if guard.protects(operation.access):
        answers[401] = Answer("No or an unknown bearer token", headers=("WWW-Authenticate",))
        if operation.access == "write":
            answers[403] = Answer("A read token cannot write", headers=("WWW-Authenticate",))
    answers[500] = Answer("An unexpected error (logged with the request id)")
    doc: dict[str, Any] = {
        "operationId": _operation_id(operation),
        "summary": operation.summary,
    }
    if operation.description:
        doc["description"] = operation.description
    parameters = [
        *_parameters(operation.path_params, "path", components),
        *_parameters(operation.query, "query", components),
        *_parameters(operation.headers, "header", components),
    ]
    if parameters:
        doc["parameters"] = parameters
    if operation.body is not None:
        content: dict[str, Any] = {}
        for media_type, body_type in operation.body.content.items():
            content[media_type] = {"schema": schema(body_type)}
            if media_type == JSON and operation.body.example is not None:
                content[media_type]["example"] = operation.body.example
        doc["requestBody"] = {
            "required": True,
            "description": operation.body.description,
            "content": content,
        }
    if guard.protects(operation.access):
        doc["security"] = [{"bearer": []}]
    doc["responses"] = {
        str(status): _answer(answer, status, schema) for status, answer in sorted(answers.items())
    }
    return doc


def _operation_id(operation: Operation) -> str:
    words = re.findall(r"[A-Za-z0-9]+", _CONVERTOR.sub(r"{\1}", operation.path))
    return "_".join([operation.method.lower(), *words])


def _answer(answer: Answer, status: int, schema: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"description": answer.description}
    body = answer.body if answer.body is not None or status < 400 else ErrorAnswer
    if body is not None:
        doc["content"] = {answer.media_type: {"schema": schema(body)}}
    doc["headers"] = {name: RESPONSE_HEADERS[name] for name in ("X-Request-ID", *answer.headers)}
    return doc


def _parameters(
    struct: type[msgspec.Struct] | None, location: str, components: dict[str, Any]
) -> list[dict[str, Any]]:
    if struct is None:
        return []
    described = components[struct.__name__]
    required = set(described.get("required", []))
    parameters = []
    for name, prop in described.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": location,
            "required": location == "path" or name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def docs_page(document: dict[str, Any]) -> str:
    """A self-contained HTML page listing every operation of ``document`` (no scripts, no
    external resources)."""
    rows = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            codes = ", ".join(op["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td>"
                f"<td>{html.escape(codes)}</td></tr>"
            )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>rankstream API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        "<h1>rankstream API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>."
        ' Errors are JSON <code>{"error", "message", "request_id"}</code>.</p>'
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th>"
        "<th>answers</th></tr>" + "".join(rows) + "</table></body></html>"
    )
