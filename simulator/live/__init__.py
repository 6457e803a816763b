"""The live fleet: the simulation clock, pacing, delivery, the outbox and the selector loop that publishes over
MQTT."""
