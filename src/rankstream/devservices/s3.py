"""moto's S3 in server mode on loopback: a real HTTP endpoint for boto3, in memory.

Ways to make the endpoint fail (for "S3 fails a checkpoint write" tests), all undone in place:

- :meth:`S3Server.deny_requests`: moto's own switch (``POST /moto-api/reset-auth``) turns on
  request authentication after ``after`` more requests; from then on every request (read or
  write) is answered HTTP 403 ``InvalidAccessKeyId``, because no credentials are registered in
  moto. A prompt, well-formed S3 error: boto3 raises ``ClientError``. Data stays.
  :meth:`S3Server.allow_requests` turns authentication off again.
- :meth:`S3Server.pause` / :meth:`S3Server.resume`: SIGSTOP; connections are accepted by the
  kernel but nothing answers, so clients time out (set a short ``read_timeout``). Data stays.
- :meth:`S3Server.stop` then :meth:`S3Server.start`: connection refused meanwhile, then the
  same endpoint again, empty (moto keeps everything in memory).

moto has no per-operation fault injection for S3 (its ``/moto-api/`` offers reset, seeding,
recording and canned results for a few other services), so "only writes fail" is not offered.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from rankstream.devservices._process import OneProcessService
from rankstream.devservices.ports import LOOPBACK, port_open

try:
    import boto3
    from botocore.config import Config
except ImportError as error:  # pragma: no cover - the hint is the point
    raise ImportError(
        "rankstream.devservices.s3 needs boto3: pip install 'rankstream[scale]'"
    ) from error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
ACCESS_KEY = "rankstream-test"
SECRET_KEY = "rankstream-test-secret"  # moto checks no credentials unless told to


class S3Server(OneProcessService):
    """``python -m moto.server`` on 127.0.0.1 and a free port, its log under ``work_dir``.

    The port stays the same across :meth:`stop` and :meth:`start`.
    """

    service_name = "the moto S3 server"

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``, for boto3's ``endpoint_url``."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> S3Server:
        """Start (empty) and block until moto answers HTTP; raises
        :class:`~rankstream.devservices.ServiceStartError` with the log tail."""
        command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]
        self._launch(command, "moto.log", self._answers)
        return self

    def _answers(self) -> bool:
        if not port_open(LOOPBACK, self.port):
            return False
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=1.0):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def client(self, *, read_timeout: float = 10.0, retries: int = 0) -> S3Client:
        """A boto3 S3 client for this endpoint with test credentials, path-style addressing
        and ``retries`` retries (0 by default: a failure shows at once)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=2.0,
                read_timeout=read_timeout,
                retries={"total_max_attempts": retries + 1, "mode": "standard"},
            ),
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (in us-east-1). Blocks until moto has it."""
        self.client().create_bucket(Bucket=name)

    def deny_requests(self, after: int = 0) -> None:
        """Let ``after`` more S3 requests through, then answer every one with HTTP 403
        ``InvalidAccessKeyId`` until :meth:`allow_requests`. Stored objects stay."""
        self._moto_api("reset-auth", str(after))

    def allow_requests(self) -> None:
        """Undo :meth:`deny_requests`: no request is authenticated again. Idempotent."""
        self._moto_api("reset-auth", "inf")

    def reset(self) -> None:
        """Drop every bucket and object (moto's ``/moto-api/reset``), keeping the process."""
        self._moto_api("reset", "")

    def _moto_api(self, action: str, body: str) -> None:
        # Not form-encoded (urllib's default): moto reads the raw body, which Werkzeug leaves
        # empty for a form.
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/{action}",
            data=body.encode(),
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10.0) as response:
            if response.status != 200:
                raise RuntimeError(f"moto refused {action}: HTTP {response.status}")
