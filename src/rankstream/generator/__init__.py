"""Synthetic view streams: reproducible, realistic input for demos, tests and benchmarks."""

from rankstream.generator.synthetic import (
    REFERENCE_END_MS,
    StreamColumns,
    StreamSpec,
    generate_batches,
    generate_columns,
    video_id_strings,
)

__all__ = [
    "REFERENCE_END_MS",
    "StreamColumns",
    "StreamSpec",
    "generate_batches",
    "generate_columns",
    "video_id_strings",
]
