"""MQTT in: the subscriber, decoding and validation of readings, per-second history, durable storage and gap repair."""
