"""The bridge: subscribes to the meters, keeps per-second history, aggregates windows by event time and serves the
original HTTP/SSE API."""
