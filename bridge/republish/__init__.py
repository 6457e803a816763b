"""Republishing to MQTT: window aggregates for Home Assistant and other consumers, and HA discovery."""
