"""Smart-meter simulator: households' profiles, meter state, the simulation clock and the MQTT publisher."""
