"""Shared configuration: settings, household definitions and the MQTT wire contract (topics and payloads); with what
both programs need besides: the MQTT client (``mqtt/``) and how the programs are run (``run/``: the supervisor that
``make up`` runs them under, logging, progress lines).

Both the simulator and the bridge depend on this package; it depends on neither.
"""
