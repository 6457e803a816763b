"""The embedded default MQTT broker (amqtt) and the Mosquitto configuration used in production."""
