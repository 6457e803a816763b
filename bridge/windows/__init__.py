"""Windows of readings by event time (pure): aggregation, where a stream is, late readings' revisions and quick
statistics."""
