"""Command line: ``python -m broker [--host H] [--port N]`` runs the embedded amqtt broker until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from amqtt.errors import BrokerError

from broker.embedded import serve
from config.errors import ConfigError
from config.logs import configure_logging
from config.settings import load_settings, parse_port

log = logging.getLogger("broker")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad settings)."""
    parser = argparse.ArgumentParser(prog="python -m broker", description=__doc__)
    parser.add_argument(
        "--host", help="address to bind (default FLEET_MQTT_HOST or 127.0.0.1; never 0.0.0.0 unless given)"
    )
    parser.add_argument("--port", help="TCP port (default FLEET_MQTT_PORT or 1883)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(os.environ)
        port = parse_port(args.port, "--port") if args.port else settings.mqtt_port
    except ConfigError as exc:
        print(f"broker: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, "broker")
    # amqtt logs every packet at INFO; keep its chatter at WARNING unless debugging.
    if settings.log_level != "DEBUG":
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        logging.getLogger("transitions").setLevel(logging.WARNING)
    host = args.host or settings.mqtt_host
    try:
        asyncio.run(serve(host, port))
    except (OSError, BrokerError) as exc:
        log.error("cannot listen on %s:%d: %s (another broker there? try FLEET_MQTT_PORT=1884)", host, port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
