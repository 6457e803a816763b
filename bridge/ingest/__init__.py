"""MQTT in: the subscriber, decoding and validation of readings, per-second history, durable storage, gap repair and
the periodic ticker that drives the background passes."""
