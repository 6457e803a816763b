"""Shared configuration: settings, household definitions and the MQTT wire contract.

Both the simulator and the bridge depend on this package; it depends on neither.
"""
