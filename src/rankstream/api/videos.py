"""``PUT /videos/{video_id}`` and ``GET /videos/{video_id}``: metadata joined into rankings."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from msgspec import Meta
from starlette.responses import Response

from rankstream.api.answers import VideoAnswer
from rankstream.api.errors import JSON, ApiError, bad_request
from rankstream.api.inputs import NO_CONTROL_CHARACTERS, read_body
from rankstream.api.operations import Answer, Body, Call, Operation
from rankstream.engine.events import MAX_ID_CHARS
from rankstream.store import VideoMetadata

MAX_METADATA_BYTES = 64 * 1024
_metadata = msgspec.json.Decoder(VideoMetadata)


class VideoPath(msgspec.Struct):
    """The path of a video's metadata."""

    video_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_ID_CHARS,
            pattern=NO_CONTROL_CHARACTERS,
            description="The video id, as in events (may contain '/').",
        ),
    ]


def _answer(video_id: str, metadata: VideoMetadata) -> Response:
    body = VideoAnswer(video_id, **msgspec.structs.asdict(metadata))
    return Response(msgspec.json.encode(body), media_type=JSON)


async def put_video(call: Call) -> Response:
    """Create or replace a video's metadata (durable when answered)."""
    video_id = call.path.video_id
    state = call.state
    body = await read_body(call.request, MAX_METADATA_BYTES, state.config.body_timeout)
    try:
        metadata = _metadata.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise bad_request("invalid_metadata", _decode_message(exc)) from None
    await asyncio.to_thread(state.metadata.put, video_id, metadata)
    return _answer(video_id, metadata)


async def get_video(call: Call) -> Response:
    """A video's metadata, or 404."""
    video_id = call.path.video_id
    found = call.state.metadata.get(video_id)
    if found is None:
        raise ApiError(404, "not_found", f"no metadata for video {video_id!r}")
    return _answer(video_id, found)


def _decode_message(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "the body nests too deeply"
    return str(exc)


def operations() -> list[Operation]:
    """The declarations of this module's endpoints."""
    return [
        Operation(
            "PUT",
            "/videos/{video_id:text}",
            put_video,
            summary="Create or replace a video's metadata",
            access="write",
            path_params=VideoPath,
            body=Body(
                {JSON: VideoMetadata},
                description="Every field is optional; unknown fields are refused.",
                example={"title": "Never Gonna Give You Up", "channel": "Rick Astley"},
            ),
            answers={
                200: Answer("Stored (durable)", VideoAnswer),
                400: Answer("The body or the video id is invalid"),
                408: Answer("The body was not received in time"),
                413: Answer(f"The body exceeds {MAX_METADATA_BYTES} bytes"),
                503: Answer("The metadata cannot be written (disk full or I/O error)"),
            },
        ),
        Operation(
            "GET",
            "/videos/{video_id:text}",
            get_video,
            summary="A video's metadata",
            access="read",
            path_params=VideoPath,
            answers={
                200: Answer("The metadata", VideoAnswer),
                404: Answer("No metadata for this video"),
            },
        ),
    ]
