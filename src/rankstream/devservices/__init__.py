"""Real services on loopback for tests, benchmarks and ``make run-cluster``.

Each launcher starts one service as a child process bound to 127.0.0.1 on free ports, waits
until it answers, and stops it again; none is imported here, so importing this package needs
nothing beyond rankstream itself:

- :mod:`.kafka`: :class:`~.kafka.KafkaBroker`, a single-node KRaft broker (jars from
  ``make services``; needs ``rankstream[scale]``).
- :mod:`.redis`: :class:`~.redis.RedisServer` and :class:`~.redis.RedisCluster`
  (``redis-server`` from Debian).
- :mod:`.s3`: :class:`~.s3.S3Server`, moto's S3 in server mode (``moto[server]``).

Every launcher is a context manager; an ``atexit`` hook kills whatever a crashed caller left
running. A service that does not start in time raises :class:`ServiceStartError` with the end
of its log.
"""

from __future__ import annotations

from rankstream.devservices._process import ServiceProcess, ServiceStartError

__all__ = ["ServiceProcess", "ServiceStartError"]
