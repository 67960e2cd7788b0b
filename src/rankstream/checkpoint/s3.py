"""Checkpoints in any S3-compatible object store (AWS S3, MinIO, Ceph, moto...).

Partition ``p``'s checkpoint covering its records before offset ``o`` is the object
``<prefix>/p<p>/ckpt-<o>.bin`` (offset zero-padded, so listing order is offset order). A
PUT is atomic: readers see the whole object or none. The newest ``keep`` of each partition
are kept; older ones are deleted after a newer one is stored.

A save raises exactly when its PUT failed, and then the held checkpoints are as they were.
Deleting the older ones afterwards is best effort: if listing or deleting fails, the save
still succeeded (the new checkpoint is stored; raising would make a caller believe it was
not), the failure is logged, and the next save deletes every checkpoint beyond ``keep``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from rankstream.checkpoint.protocol import Checkpoint
from rankstream.errors import ConfigError
from rankstream.optional import require

logger = logging.getLogger("rankstream.checkpoint")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> ``(bucket, prefix)`` (prefix without slashes at the ends)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError(f"checkpoints: expected s3://BUCKET/PREFIX, got {url!r}")
    return parsed.netloc, parsed.path.strip("/")


class S3CheckpointStore:
    """Checkpoints under ``s3://bucket/prefix`` through ``client`` (a boto3 S3 client)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", keep: int = 2) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.keep = max(1, keep)

    @classmethod
    def from_url(
        cls, url: str, endpoint_url: str | None = None, keep: int = 2
    ) -> S3CheckpointStore:
        """A store for ``s3://bucket/prefix`` (credentials from the usual AWS sources)."""
        boto3 = require("boto3", "S3 checkpoints")
        bucket, prefix = parse_s3_url(url)
        client = boto3.client("s3", endpoint_url=endpoint_url or None)
        return cls(client, bucket, prefix, keep)

    def _folder(self, partition: int) -> str:
        return f"{self.prefix}/p{partition}/" if self.prefix else f"p{partition}/"

    def save(self, checkpoint: Checkpoint) -> None:
        """See :meth:`CheckpointStore.save`; raises the client's error (botocore's
        ``ClientError``, ``BotoCoreError``) if and only if the PUT fails. Blocks for the PUT,
        a listing and a DELETE per checkpoint beyond ``keep``."""
        key = f"{self._folder(checkpoint.partition)}ckpt-{checkpoint.offset:020d}.bin"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=checkpoint.data)
        try:
            for _, old in self._held(checkpoint.partition)[: -self.keep]:
                self.client.delete_object(Bucket=self.bucket, Key=old)
        except Exception as exc:  # stored already; the next save deletes what is left
            logger.warning(
                "checkpoint %s stored, but older ones were not deleted (the next save retries): %s",
                key,
                exc,
            )

    def offsets(self, partition: int) -> list[int]:
        """See :meth:`CheckpointStore.offsets`."""
        return [offset for offset, _ in self._held(partition)]

    def newest_first(self, partition: int) -> Iterator[Checkpoint]:
        """See :meth:`CheckpointStore.newest_first`."""
        for offset, key in reversed(self._held(partition)):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except self.client.exceptions.NoSuchKey:  # deleted by a concurrent save
                continue
            yield Checkpoint(partition, offset, body)

    def _held(self, partition: int) -> list[tuple[int, str]]:
        folder = self._folder(partition)
        held = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder
        ):
            for item in page.get("Contents", []):
                name = item["Key"][len(folder) :]
                if name.startswith("ckpt-") and name.endswith(".bin"):
                    held.append((int(name[5:-4]), item["Key"]))
        return sorted(held)
