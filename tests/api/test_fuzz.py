"""Nothing a client sends produces a 5xx: random bodies, headers, paths and query strings.

Each test also asserts that the app counted no unexpected exception
(``rankstream_http_server_errors_total`` stays zero), so a 500 cannot hide behind a
well-formed JSON answer. The ``@example``s are inputs that once answered 500; they stay as
permanent regression cases (``make fuzz`` adds any new find here).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, urlencode

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.config import ServiceConfig
from tests.budget import examples

DEEP = b"[" * 5000 + b"]" * 5000
HUGE_INT = b"1" + b"0" * 5000

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 10, max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["video_id", "videoId", "ts", "timestamp", "category", "region", "event_id", "x"]
            )
            | st.text(),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(msgspec.json.encode),
    st.lists(json_values, max_size=5).map(lambda vs: b"\n".join(map(msgspec.json.encode, vs))),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
)
# Any text, with the digits of every script and the characters that have fooled parsers.
TRICKY = ["\u00b2", "\u0661\u0662", "\uff11\uff10", " 10", "+5", "1_0", "1e3", "0x1"]
params_text = st.text(max_size=40) | st.sampled_from(TRICKY)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=60)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    app = create_app(ServiceConfig(data_dir=data, sync="NORMAL"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def server_errors(client: TestClient) -> float:
    registry = client.app_state["app"].registry
    return registry.get_sample_value("rankstream_http_server_errors_total") or 0.0


def assert_no_server_error(client: TestClient, status: int, body: bytes) -> None:
    """A 2xx-4xx answer; errors in the one JSON shape; no exception counted by the app."""
    assert status < 500, body
    if status >= 400 and body:  # (HEAD answers have no body)
        error = msgspec.json.decode(body)
        assert set(error) == {"error", "message", "request_id"}
    assert server_errors(client) == 0


@settings(max_examples=examples(150))
@given(
    body=bodies,
    content_type=st.sampled_from(["application/json", "application/x-ndjson", "text/plain", ""]),
    key=st.none() | header_text,
)
@example(body=DEEP, content_type="application/json", key=None)
@example(body=DEEP, content_type="application/x-ndjson", key=None)
@example(body=b"[" + DEEP + b"]", content_type="application/json", key=None)
@example(body=b'{"video_id": "a", "ts": ' + HUGE_INT + b"}", content_type="", key=None)
@example(body=b"[" + HUGE_INT + b"]", content_type="application/json", key=None)
def test_post_views(client: TestClient, body: bytes, content_type: str, key: str | None) -> None:
    headers = [(b"content-type", content_type.encode())]
    if key is not None:
        headers.append((b"idempotency-key", key.encode("latin-1")))
    response = client.post("/views", content=body, headers=headers)
    assert_no_server_error(client, response.status_code, response.content)


@settings(max_examples=examples(150))
@given(
    params=st.lists(
        st.tuples(st.sampled_from(["window", "k", "category", "region", "other"]), params_text),
        max_size=5,
    )
)
@example(params=[("k", "\u00b2")])  # superscript two: str.isdigit() but not int()
@example(params=[("k", "1" * 5000)])
@example(params=[("k", "10"), ("k", "11")])
def test_get_top_k(client: TestClient, params: list[tuple[str, str]]) -> None:
    response = client.get("/views/top-k?" + urlencode(params))
    assert_no_server_error(client, response.status_code, response.content)


@settings(max_examples=examples(100))
@given(video_id=st.text(min_size=1, max_size=300), body=bodies, limit=params_text)
@example(video_id="a", body=b'{"title": "\\ud800"}', limit="\u00b2")
@example(video_id="a", body=DEEP, limit="1" * 5000)
@example(video_id="a\x00b", body=b'{"duration_s": 1e999}', limit="0")
def test_videos_and_dead_letters(
    client: TestClient, video_id: str, body: bytes, limit: str
) -> None:
    path = "/videos/" + quote(video_id, safe="/")
    put = client.put(path, content=body)
    assert_no_server_error(client, put.status_code, put.content)
    got = client.get(path)
    assert_no_server_error(client, got.status_code, got.content)
    letters = client.get("/dead-letters", params={"limit": limit})
    assert_no_server_error(client, letters.status_code, letters.content)


@settings(max_examples=examples(100))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=st.sampled_from(
        ["/views", "/views/top-k", "/videos/x", "/status", "/health", "/metrics", "/nope", "/"]
    ),
    headers=st.dictionaries(
        st.sampled_from(
            ["content-length", "content-type", "authorization", "idempotency-key", "x-request-id"]
        ),
        header_text,
        max_size=3,
    ),
)
@example(method="POST", path="/views", headers={"content-length": "\u00b2"})
@example(method="GET", path="/status", headers={"authorization": "Bearer \u00b2"})
def test_any_method_path_and_headers(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    response = client.request(method, path, headers=raw, content=b"{}")
    if response.status_code < 500 and method != "HEAD":
        assert "x-request-id" in response.headers
    assert_no_server_error(client, response.status_code, response.content)
