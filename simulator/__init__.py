"""Smart-meter simulator: load profiles and their physics (profiles/), the pure meter core (meters/), the batch
generator (dataset/) and the live fleet that publishes over MQTT (live/)."""
