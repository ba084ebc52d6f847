"""Secrets named by the config: the key that signs reply addresses, and passwords.

Never read from the config file itself — only from the environment variable or
the file the config names — and never logged.

Imports the standard library, ``mailgate.errors`` and the sections.
"""

from __future__ import annotations

import os
from pathlib import Path

from mailgate.config.sections import Config
from mailgate.errors import ConfigError

SECRET_ENV = "MAILGATE_SECRET_KEY"


def read_secret_key(config: Config, *, create: bool) -> bytes:
    """The HMAC key for reply tokens: ``MAILGATE_SECRET_KEY`` or the key file.

    With ``create`` a missing key file is generated (0600): a new install works
    at once, and the key never appears in the config or the logs.
    """
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode()
    key_path = Path(config.gateway.secret_key_file)
    try:
        key = key_path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                f"gateway.secret_key_file: {key_path} does not exist; run `mailgate db upgrade` "
                f"or set {SECRET_ENV} (in {config.path})"
            ) from None
        key = _create_key(key_path, config.path)
    except OSError as exc:
        raise ConfigError(
            f"gateway.secret_key_file: cannot read {key_path}: {exc.strerror} (in {config.path})"
        ) from None
    if len(key) < 16:
        raise ConfigError(f"gateway.secret_key_file: {key_path} holds fewer than 16 bytes")
    return key


def _create_key(key_path: Path, config_path: Path) -> bytes:
    """Write a new random key; several processes starting at once end with one key.

    The key is written to a temporary file and linked into place, so nobody ever
    reads half a key; whoever loses the race reads the winner's.
    """
    key = os.urandom(32).hex().encode()
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = key_path.with_name(f".{key_path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        try:
            os.link(tmp, key_path)
        except FileExistsError:
            key = key_path.read_bytes().strip()
        finally:
            tmp.unlink()
    except OSError as exc:
        raise ConfigError(
            f"gateway.secret_key_file: cannot create {key_path}: {exc.strerror} (in {config_path})"
        ) from None
    return key


def read_password(env_name: str, file_name: str, what: str) -> str:
    """A password named by the config: from an environment variable or a file."""
    if env_name:
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(f"{what}.password_env: environment variable {env_name} is not set")
        return value
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{what}.password_file: cannot read {file_name}: {exc.strerror}"
            ) from None
    return ""
