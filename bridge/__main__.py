"""Command line: ``python -m bridge [--broker mqtt://host:port[,...]] [--host H] [--port N]`` serves the API with
gunicorn."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from config.errors import ConfigError
from config.run.fdlimit import raise_soft_limit
from config.run.logs import configure_logging
from config.secret import bridge_settings
from config.settings import BRIDGE, Settings, load_settings, parse_broker_urls, parse_port, settings_help


def with_options(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` with the command line's overrides of them (``FLEET_*`` < command line), each parsed and checked
    under its option's name; pure."""
    return dataclasses.replace(
        settings,
        broker=settings.broker if args.broker is None else parse_broker_urls(args.broker, "--broker"),
        http_host=args.host or settings.http_host,
        http_port=parse_port(args.port, "--port") if args.port else settings.http_port,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad settings)."""
    parser = argparse.ArgumentParser(
        prog="python -m bridge",
        description=__doc__,
        epilog=settings_help(BRIDGE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--broker",
        help="mqtt[s]://[user:pass@]host:port, or a comma-separated list to fail over between (default FLEET_BROKER)",
    )
    parser.add_argument("--host", help="HTTP bind address (default FLEET_HTTP_HOST or 127.0.0.1)")
    parser.add_argument("--port", help="HTTP port (default FLEET_HTTP_PORT or 5000)")
    args = parser.parse_args(argv)
    try:
        settings = with_options(load_settings(os.environ), args)
        # Credentials (derived from the fleet secret), TLS and the client id, whether the broker comes from --broker or
        # FLEET_*.
        settings = bridge_settings(settings)
    except ConfigError as exc:
        print(f"bridge: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, "bridge")
    # Before gunicorn forks: the worker that accepts the connections inherits the raised limit.
    fd_limit = raise_soft_limit(logging.getLogger("bridge"))
    from bridge.http.server import BridgeServer  # gunicorn only where it is served

    BridgeServer(settings, settings.http_host, settings.http_port, fd_limit.soft).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
