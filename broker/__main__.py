"""Command line of the brokers' side.

``python -m broker [--host H] [--port N]`` runs the embedded amqtt broker until SIGINT or SIGTERM: only the fleet's
users get in (meters of ``FLEET_HOUSEHOLDS``, bridge, homeassistant, observer), each under its topic rules, unless
``FLEET_MQTT_ANONYMOUS=true``; TLS with ``FLEET_MQTT_TLS_CERT`` and ``FLEET_MQTT_TLS_KEY``. It needs the ``embedded``
extra (amqtt); the other commands need only the runtime dependencies (the image has no amqtt).
``python -m broker mosquitto-auth --out DIR`` writes the same users and rules for Mosquitto's dynamic security plugin
(``dynsec.json``; each meter bound to its client id ``meter-<id>``).
``python -m broker nats-config --out DIR [--nodes 3] [--mqtt-port 1883] ...`` writes one nats-server config per node
of a NATS JetStream cluster (``DIR/node-k.conf``) with the same users and rules (``broker.nats``).
``python -m broker password USER`` prints the password of USER (e.g. ``observer``, for ``mosquitto_sub``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import bcrypt

from broker.amqtt_config import AmqttAuth, amqtt_config
from broker.auth_files import chown, parse_owner, write_amqtt_passwords, write_mosquitto_auth, write_private
from broker.nats import (
    DEFAULT_CLIENT_PORT,
    DEFAULT_CLUSTER_PORT,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_NODES,
    cluster_configs,
    layout_from_bases,
)
from config.credentials import BCRYPT_COST, SERVICE_USERS, amqtt_acls, fleet_rules, nats_users, password_for
from config.errors import ConfigError
from config.run.extras import EMBEDDED, require
from config.run.logs import configure_logging
from config.secret import load_or_create_secret, secret_path
from config.settings import BROKER, Settings, load_settings, parse_port, settings_help
from config.topics import valid_meter_id

log = logging.getLogger("broker")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m broker",
        description=__doc__,
        epilog=settings_help(BROKER),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", help="address to bind (default FLEET_MQTT_HOST or 127.0.0.1; never 0.0.0.0 unless given)"
    )
    parser.add_argument("--port", help="TCP port (default FLEET_MQTT_PORT or 1883)")
    sub = parser.add_subparsers(dest="command", metavar="[COMMAND]", help="none: run the embedded broker")
    auth = sub.add_parser("mosquitto-auth", help="write Mosquitto's dynamic-security file for the fleet")
    auth.add_argument("--out", required=True, metavar="DIR", help="directory of dynsec.json and observer-password")
    auth.add_argument("--owner", metavar="USER[:GROUP]", help="give those files to this owner (needs root)")
    auth.add_argument("--secret-owner", metavar="USER[:GROUP]", help="give the fleet secret file to this owner")
    nats = sub.add_parser("nats-config", help="write the nats-server configs of a NATS JetStream cluster")
    nats.add_argument("--out", required=True, metavar="DIR", help="directory of node-k.conf and each node's files")
    nats.add_argument("--nodes", default=str(DEFAULT_NODES), help=f"how many nodes (default {DEFAULT_NODES})")
    nats.add_argument("--host", default=DEFAULT_HOST, help=f"address every node binds (default {DEFAULT_HOST})")
    for name, default in (
        ("mqtt", DEFAULT_MQTT_PORT),
        ("client", DEFAULT_CLIENT_PORT),
        ("cluster", DEFAULT_CLUSTER_PORT),
        ("http", DEFAULT_HTTP_PORT),
    ):
        nats.add_argument(f"--{name}-port", default=str(default), help=f"node 1's {name} port, node k's + k - 1")
    password = sub.add_parser("password", help="print a user's MQTT password (derived from the fleet secret)")
    password.add_argument("user", help=f"a meter id or one of {', '.join(SERVICE_USERS)}")
    return parser


def with_options(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` with the command line's overrides of them (``FLEET_*`` < command line), each parsed and checked
    under its option's name; pure. Only the embedded broker (no command) takes ``--host`` and ``--port``: the
    ``--host`` of ``nats-config`` is its nodes' address, not a setting."""
    if args.command is not None:
        return settings
    return dataclasses.replace(
        settings,
        mqtt_host=args.host or settings.mqtt_host,
        mqtt_port=parse_port(args.port, "--port") if args.port else settings.mqtt_port,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad settings)."""
    args = _parser().parse_args(argv)
    try:
        settings = with_options(load_settings(os.environ), args)
        configure_logging(settings.log_level, "broker")
        if args.command == "mosquitto-auth":
            return _mosquitto_auth(settings, Path(args.out), args.owner, args.secret_owner)
        if args.command == "password":
            return _password(settings, args.user)
        if args.command == "nats-config":
            return _nats_config(settings, args)
        return _serve(settings)
    except ConfigError as exc:
        print(f"broker: configuration error: {exc}", file=sys.stderr)
        return 2


def _mosquitto_auth(settings: Settings, out: Path, owner: str | None, secret_owner: str | None) -> int:
    path = secret_path(settings)
    secret = load_or_create_secret(path)
    if secret_owner:
        chown(path, parse_owner(secret_owner, "--secret-owner"))
    rules = fleet_rules(secret, settings.households, settings.ha_prefix)
    written = write_mosquitto_auth(out, rules, parse_owner(owner) if owner else None)
    log.info("%s written for %d users (secret %s)", ", ".join(str(p) for p in written), len(rules), path)
    return 0


def _nats_config(settings: Settings, args: argparse.Namespace) -> int:
    try:
        nodes = int(args.nodes)
    except ValueError:
        raise ConfigError("--nodes", f"not a number: {args.nodes!r}") from None
    ports = {
        name: parse_port(getattr(args, f"{name}_port"), f"--{name}-port")
        for name in ("mqtt", "client", "cluster", "http")
    }
    out = Path(args.out).absolute()  # nats-server resolves store_dir from its own working directory
    layout = layout_from_bases(
        out,
        nodes,
        host=args.host,
        client_port=ports["client"],
        cluster_port=ports["cluster"],
        http_port=ports["http"],
        mqtt_port=ports["mqtt"],
    )
    path = secret_path(settings)
    rules = fleet_rules(load_or_create_secret(path), settings.households, settings.ha_prefix)
    users = nats_users(rules, [bcrypt.gensalt(BCRYPT_COST) for _ in rules])
    for name, text in cluster_configs(layout, users).items():
        write_private(out / name, text)  # bcrypt hashes only, yet nobody else needs to read them
    mqtt = ", ".join(f"{layout.host}:{node.mqtt}" for node in layout.nodes)
    log.info("%s: %d node configs for %d users (secret %s); MQTT on %s", out, nodes, len(rules), path, mqtt)
    return 0


def _password(settings: Settings, user: str) -> int:
    if user not in SERVICE_USERS and not valid_meter_id(user):
        raise ConfigError("USER", f"not a meter id nor one of {', '.join(SERVICE_USERS)}: {user!r}")
    print(password_for(load_or_create_secret(secret_path(settings)), user))
    return 0


def _serve(settings: Settings) -> int:
    # amqtt is the embedded extra: the containers (Mosquitto) run the other commands without it.
    require("amqtt", EMBEDDED, "python -m broker")
    from amqtt.errors import BrokerError

    from broker.embedded import serve

    # amqtt logs every packet at INFO; keep its chatter at WARNING unless debugging.
    if settings.log_level != "DEBUG":
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        logging.getLogger("transitions").setLevel(logging.WARNING)
    tls = None
    if settings.mqtt_tls_cert and settings.mqtt_tls_key:
        for key, name in (
            ("FLEET_MQTT_TLS_CERT", settings.mqtt_tls_cert),
            ("FLEET_MQTT_TLS_KEY", settings.mqtt_tls_key),
        ):
            if not Path(name).is_file():
                raise ConfigError(key, f"no such file: {name}")
        tls = (settings.mqtt_tls_cert, settings.mqtt_tls_key)
    host, port = settings.mqtt_host, settings.mqtt_port
    url = f"{'mqtts' if tls else 'mqtt'}://{host}:{port}"
    # amqtt's password file, until the broker has read it
    with tempfile.TemporaryDirectory(prefix="fleet-amqtt-", ignore_cleanup_errors=True) as work:
        auth = None
        if settings.mqtt_anonymous:
            log.warning("FLEET_MQTT_ANONYMOUS=true: anyone who reaches %s may publish and subscribe anything", url)
        else:
            path = secret_path(settings)
            rules = fleet_rules(load_or_create_secret(path), settings.households, settings.ha_prefix)
            password_file = Path(work) / "passwords"
            write_amqtt_passwords(password_file, rules)
            publish_acl, subscribe_acl = amqtt_acls(rules)
            auth = AmqttAuth(str(password_file), publish_acl, subscribe_acl)
            log.info(
                "authentication on: %d users (meters %s), secret %s", len(rules), ",".join(settings.households), path
            )
        try:
            # amqtt reads its password file when the broker is made: it need not stay on disk while the broker runs.
            asyncio.run(serve(amqtt_config(host, port, auth, tls), url, loaded=lambda: shutil.rmtree(work)))
        except (OSError, BrokerError) as exc:
            log.error("cannot listen on %s:%d: %s (another broker there? try FLEET_MQTT_PORT=1884)", host, port, exc)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
