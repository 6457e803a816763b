"""Shared configuration: settings, household definitions and the MQTT wire contract; with what both programs need
besides (the MQTT client, progress lines) and the supervisor that ``make up`` runs them under.

Both the simulator and the bridge depend on this package; it depends on neither.
"""
