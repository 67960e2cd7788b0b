"""The OpenAPI description of the HTTP API, and a self-contained docs page rendering it."""

from __future__ import annotations

import html
from typing import Any

WINDOWS = ["1h", "24h", "7d", "30d", "hour", "day", "month", "all"]

_ERROR = {
    "description": "Client error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            }
        }
    },
}
_EVENT = {
    "type": "object",
    "required": ["video_id", "timestamp"],
    "properties": {
        "video_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "alias videoId",
        },
        "timestamp": {
            "oneOf": [
                {"type": "integer", "description": "epoch ms"},
                {"type": "string", "format": "date-time"},
            ],
            "description": "alias ts; ISO-8601 strings need a timezone",
        },
        "category": {"type": "string", "maxLength": 64},
        "region": {"type": "string", "maxLength": 64},
        "event_id": {"type": "string", "maxLength": 128, "description": "de-duplication key"},
    },
    "additionalProperties": True,
}
_ITEM = {
    "type": "object",
    "properties": {
        "rank": {"type": "integer"},
        "video_id": {"type": "string"},
        "views": {"type": "integer"},
        "title": {"type": "string"},
        "channel": {"type": "string"},
        "thumbnail_url": {"type": "string"},
    },
}
_METADATA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 500},
        "channel": {"type": "string", "maxLength": 200},
        "thumbnail_url": {"type": "string", "maxLength": 2048},
        "duration_s": {"type": "number", "minimum": 0},
        "category": {"type": "string", "maxLength": 64},
    },
    "additionalProperties": False,
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "rankstream",
        "version": "0.1.0",
        "description": "Exact real-time top-k of views.",
    },
    "paths": {
        "/views": {
            "post": {
                "summary": "Ingest views (an object, an array, or NDJSON); 202 means durable",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {"type": "string", "maxLength": 200},
                    }
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [_EVENT, {"type": "array", "items": _EVENT}]}
                        },
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    }
                },
                "responses": {
                    "202": {
                        "description": "Accepted events are durable; invalid ones are listed",
                        **_json_body(
                            {
                                "type": "object",
                                "properties": {
                                    "accepted": {"type": "integer"},
                                    "rejected": {"type": "integer"},
                                    "duplicates": {"type": "integer"},
                                    "errors": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "index": {"type": "integer"},
                                                "error": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            }
                        ),
                    },
                    "400": _ERROR,
                    "413": _ERROR,
                    "503": _ERROR,
                },
            }
        },
        "/views/top-k": {
            "get": {
                "summary": "The exact top k of a window, optionally by category and region",
                "parameters": [
                    {
                        "name": "window",
                        "in": "query",
                        "schema": {"enum": WINDOWS, "default": "24h"},
                    },
                    {
                        "name": "k",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                    },
                    {
                        "name": "category",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                    {
                        "name": "region",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Ranking; times are epoch ms, window bounds null for all",
                        **_json_body(
                            {
                                "type": "object",
                                "properties": {
                                    "window": {"type": "string"},
                                    "window_start": {"type": ["integer", "null"]},
                                    "window_end": {"type": ["integer", "null"]},
                                    "as_of": {"type": ["integer", "null"]},
                                    "k": {"type": "integer"},
                                    "category": {"type": ["string", "null"]},
                                    "region": {"type": ["string", "null"]},
                                    "items": {"type": "array", "items": _ITEM},
                                },
                            }
                        ),
                    },
                    "400": _ERROR,
                },
            }
        },
        "/videos/{video_id}": {
            "put": {
                "summary": "Create or replace a video's metadata",
                "parameters": [
                    {
                        "name": "video_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": _json_body(_METADATA),
                "responses": {"200": {"description": "Stored"}, "400": _ERROR},
            },
            "get": {
                "summary": "A video's metadata",
                "parameters": [
                    {
                        "name": "video_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {"200": {"description": "Metadata"}, "404": _ERROR},
            },
        },
        "/status": {
            "get": {
                "summary": "Counters: accepted, applied, rejected, checkpoint, recovery",
                "responses": {"200": {"description": "Status"}},
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness",
                "responses": {"200": {"description": "ok"}, "503": _ERROR},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Prometheus text"}},
            }
        },
        "/dead-letters": {
            "get": {
                "summary": "The newest rejected events with their reasons",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    }
                ],
                "responses": {"200": {"description": "Dead letters"}, "400": _ERROR},
            }
        },
    },
}


def _docs_html() -> str:
    rows = []
    for path, methods in OPENAPI["paths"].items():
        for method, op in methods.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>rankstream API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        "<h1>rankstream API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>."
        ' Errors are JSON <code>{"error", "message"}</code> with a 4xx status.</p>'
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


DOCS_HTML = _docs_html()
