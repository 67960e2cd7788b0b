"""Reading a request: one set of rules for every query, path and header value, and the body.

An operation declares each part it reads as a msgspec ``Struct`` whose field types carry the
rules (``Annotated[int, Meta(ge=1, le=1000)]``, ``Literal[...]``, string lengths, patterns).
:class:`ParameterReader` compiles such a struct once and reads values with these rules:

- integers are 1 to 18 ASCII digits (no superscripts such as ``²``, no other scripts'
  digits, signs, spaces or exponents), then within their range;
- strings are within their length in characters and match their pattern;
- literals are one of their values;
- a query parameter the operation does not declare, or one given twice, is an error (a
  misspelt filter must not silently widen a ranking).

The OpenAPI document is generated from the same structs (:mod:`rankstream.api.openapi`), so
the documented rules and the enforced ones cannot drift.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from msgspec import inspect
from starlette.requests import ClientDisconnect, Request

from rankstream.api.errors import ApiError, bad_request
from rankstream.engine.events import TEXT_PATTERN

Location = Literal["query", "path", "header"]

_DIGITS = re.compile(r"[0-9]{1,18}")
NO_CONTROL_CHARACTERS = TEXT_PATTERN
"""Pattern of text parameters: no C0/C1 control characters (as event fields)."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # attribute of the struct
    wire: str  # name in the request (lower case for headers)
    required: bool
    parse: Callable[[str], object]  # raises ValueError with the rule's wording


class ParameterReader:
    """Reads one location (query, path or headers) of a request into ``struct``."""

    def __init__(self, struct: type[msgspec.Struct], location: Location) -> None:
        self.struct = struct
        self.location = location
        info = inspect.type_info(struct)
        if not isinstance(info, inspect.StructType):
            raise TypeError(f"{struct!r} is not a msgspec Struct")
        self._fields = tuple(
            _Field(
                name=field.name,
                wire=field.encode_name.lower() if location == "header" else field.encode_name,
                required=field.required,
                parse=_parser(field.type),
            )
            for field in info.fields
        )
        self._by_wire = {f.wire: f for f in self._fields}

    def read(self, items: Iterable[tuple[str, str]]) -> Any:
        """An instance of the struct, or :class:`ApiError` 400 naming the parameter and rule.

        ``items`` are ``(name, value)`` pairs as received (headers: lower-case names).
        """
        values: dict[str, object] = {}
        seen: set[str] = set()
        for wire, raw in items:
            field = self._by_wire.get(wire)
            if field is None:
                if self.location == "query":
                    known = ", ".join(sorted(self._by_wire)) or "none"
                    raise bad_request(
                        "invalid_query", f"unknown query parameter {wire[:64]!r}; known: {known}"
                    )
                continue
            if wire in seen:
                raise bad_request(_code(self.location), f"{wire} is given more than once")
            seen.add(wire)
            try:
                values[field.name] = field.parse(raw)
            except ValueError as exc:
                raise bad_request(_code(self.location), f"{wire}: {exc}") from None
        for field in self._fields:
            if field.required and field.name not in values:
                raise bad_request(_code(self.location), f"{field.wire} is required")
        return self.struct(**values)


def _code(location: Location) -> str:
    return {"query": "invalid_query", "path": "invalid_path", "header": "invalid_header"}[location]


def _parser(kind: inspect.Type) -> Callable[[str], object]:
    """The parse function of a declared type (optional types parse their inner type)."""
    if isinstance(kind, inspect.Metadata):  # descriptions and such: the rules are inside
        return _parser(kind.type)
    if isinstance(kind, inspect.UnionType):
        inner = [t for t in kind.types if not isinstance(t, inspect.NoneType)]
        if len(inner) != 1:
            raise TypeError(f"unsupported parameter type {kind!r}")
        return _parser(inner[0])
    if isinstance(kind, inspect.IntType):
        return _int_parser(kind)
    if isinstance(kind, inspect.StrType):
        return _str_parser(kind)
    if isinstance(kind, inspect.LiteralType):
        return _literal_parser(kind)
    raise TypeError(f"unsupported parameter type {kind!r}")


def _int_parser(kind: inspect.IntType) -> Callable[[str], int]:
    low = kind.ge if kind.ge is not None else (kind.gt + 1 if kind.gt is not None else 0)
    high = kind.le if kind.le is not None else (kind.lt - 1 if kind.lt is not None else None)
    rule = f"must be an integer from {low}" + (f" to {high}" if high is not None else " up")

    def parse(raw: str) -> int:
        if not _DIGITS.fullmatch(raw):  # ASCII digits only: str.isdigit() also takes '²'
            raise ValueError(rule)
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise ValueError(rule)
        return value

    return parse


def _str_parser(kind: inspect.StrType) -> Callable[[str], str]:
    low = kind.min_length or 0
    high = kind.max_length
    pattern = re.compile(kind.pattern) if kind.pattern is not None else None
    length = f"{low} to {high}" if high is not None else f"at least {low}"
    if pattern is not None and pattern.pattern == NO_CONTROL_CHARACTERS:
        rule = f"must be {length} characters without control characters"
    elif pattern is not None:
        rule = f"must be {length} characters matching {pattern.pattern}"
    else:
        rule = f"must be {length} characters"

    def parse(raw: str) -> str:
        if len(raw) < low or (high is not None and len(raw) > high):
            raise ValueError(rule)
        if pattern is not None and pattern.search(raw) is None:
            raise ValueError(rule)
        return raw

    return parse


def _literal_parser(kind: inspect.LiteralType) -> Callable[[str], str]:
    allowed = {str(v): v for v in kind.values}
    rule = "must be one of " + ", ".join(allowed)

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(rule)
        return raw

    return parse


def query_items(request: Request) -> list[tuple[str, str]]:
    """The query string's ``(name, value)`` pairs, repeats kept."""
    return request.query_params.multi_items()


def header_items(request: Request) -> list[tuple[str, str]]:
    """The headers' ``(lower-case name, value)`` pairs."""
    return request.headers.items()


def path_items(request: Request) -> list[tuple[str, str]]:
    """The path parameters' ``(name, value)`` pairs."""
    params: Mapping[str, str] = request.path_params
    return list(params.items())


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body: 413 once it passes ``limit`` bytes (by its declared length or as
    it streams in), 408 if it takes longer than ``timeout`` seconds, 400 if the client
    disconnects before sending it all."""
    declared = request.headers.get("content-length")
    if declared is not None and _DIGITS.fullmatch(declared) and int(declared) > limit:
        raise too_large(limit)
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"the body was not received within {timeout:g} s"
        ) from None
    except ClientDisconnect:
        raise bad_request("client_disconnected", "the body was not received in full") from None
    return b"".join(chunks)


def too_large(limit: int) -> ApiError:
    """The 413 of a body over ``limit`` bytes."""
    return ApiError(413, "body_too_large", f"the body exceeds {limit} bytes")
