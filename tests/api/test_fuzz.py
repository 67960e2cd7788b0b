"""Nothing a client sends produces a 5xx: random bodies, headers, paths and queries."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.config import ServiceConfig

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["video_id", "videoId", "ts", "timestamp", "category", "x"])
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
)
printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    with TestClient(create_app(ServiceConfig(data_dir=data, sync="NORMAL"))) as test_client:
        yield test_client


def assert_client_error_or_success(status: int, body: bytes) -> None:
    assert status < 500, body
    if status >= 400:
        error = msgspec.json.decode(body)
        assert set(error) == {"error", "message"}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=bodies,
    content_type=st.sampled_from(["application/json", "application/x-ndjson", "text/plain", ""]),
    key=st.none() | printable,
)
def test_post_views(client: TestClient, body: bytes, content_type: str, key: str | None) -> None:
    headers = {"content-type": content_type}
    if key is not None:
        headers["idempotency-key"] = key
    response = client.post("/views", content=body, headers=headers)
    assert_client_error_or_success(response.status_code, response.content)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(
        st.sampled_from(["window", "k", "category", "region", "other"]), st.text(max_size=80)
    )
)
def test_get_top_k(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/views/top-k", params=params)
    assert_client_error_or_success(response.status_code, response.content)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(video_id=st.text(min_size=1, max_size=300), body=bodies, limit=printable)
def test_videos_and_dead_letters(
    client: TestClient, video_id: str, body: bytes, limit: str
) -> None:
    path = "/videos/" + quote(video_id, safe="/")
    put = client.put(path, content=body)
    assert_client_error_or_success(put.status_code, put.content)
    got = client.get(path)
    assert_client_error_or_success(got.status_code, got.content)
    letters = client.get("/dead-letters", params={"limit": limit})
    assert_client_error_or_success(letters.status_code, letters.content)
