"""The embedded service: durable ingest pipeline, metadata and dead letters behind the API."""
