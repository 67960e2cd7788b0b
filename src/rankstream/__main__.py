"""``python -m rankstream``: the same as the ``rankstream`` command."""

from rankstream.cli import app

app()
