"""The brokers' credential files, written from the fleet's users (I/O shell of ``config.credentials``).

Mosquitto's dynamic-security file ``dynsec.json`` (``python -m broker mosquitto-auth``) and amqtt's password file
(written by ``python -m broker`` into a temporary directory at each start). Each file is written whole under a
temporary name, mode 0600, then renamed over the old one, so a broker never reads half a file.
Fresh random salts on every write.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from config.credentials import (
    ARGON2_SALT_BYTES,
    MOSQUITTO_SALT_BYTES,
    OBSERVER_USER,
    Rule,
    amqtt_password_file,
    mosquitto_dynsec_config,
)
from config.errors import ConfigError

MOSQUITTO_DYNSEC: Final = "dynsec.json"  # plugin_opt_config_file of Mosquitto's dynamic security plugin
OBSERVER_PASSWORD: Final = "observer-password"  # for the compose healthcheck (mosquitto_sub -P "$(cat ...)")


@dataclass(frozen=True, slots=True)
class Owner:
    """A file owner to set (needs root): user and group, each a name or a number."""

    user: str | int
    group: str | int | None = None


def parse_owner(text: str, key: str = "--owner") -> Owner:
    """``USER[:GROUP]``, names or numbers (``1883:1883``, ``fleet``)."""
    user, _, group = text.strip().partition(":")
    if not user or (":" in text and not group):
        raise ConfigError(key, f"expected USER[:GROUP], got {text!r}")

    def name_or_id(word: str) -> str | int:
        return int(word) if word.isdigit() else word

    return Owner(name_or_id(user), name_or_id(group) if group else None)


def chown(path: Path, owner: Owner) -> None:
    """Give ``path`` to ``owner`` (ConfigError naming the owner if there is no such user or it is not allowed)."""
    try:
        shutil.chown(path, owner.user, owner.group)  # names or ids both work
    except (LookupError, PermissionError) as exc:
        raise ConfigError("--owner", f"cannot give {path} to {owner.user}:{owner.group}: {exc}") from exc


def write_private(path: Path, text: str, owner: Owner | None = None) -> None:
    """Replace ``path`` with ``text``, mode 0600 (and ``owner``), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        if owner is not None:
            chown(temp, owner)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_mosquitto_auth(out_dir: Path, rules: Sequence[Rule], owner: Owner | None = None) -> list[Path]:
    """Write Mosquitto's dynamic-security file and the observer's password into ``out_dir``."""
    salts = [secrets.token_bytes(MOSQUITTO_SALT_BYTES) for _ in rules]
    observer = next(rule.password for rule in rules if rule.username == OBSERVER_USER)
    files = {
        out_dir / MOSQUITTO_DYNSEC: json.dumps(mosquitto_dynsec_config(rules, salts), indent=1) + "\n",
        out_dir / OBSERVER_PASSWORD: observer + "\n",
    }
    for path, text in files.items():
        write_private(path, text, owner)
    return list(files)


def write_amqtt_passwords(path: Path, rules: Sequence[Rule]) -> None:
    """Write amqtt's password file (argon2id) to ``path``."""
    write_private(path, amqtt_password_file(rules, [secrets.token_bytes(ARGON2_SALT_BYTES) for _ in rules]))
