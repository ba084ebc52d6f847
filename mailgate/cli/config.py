"""``mailgate config example``: the commented example configuration; ``config show``: the
effective one (defaults filled in, secrets hidden — the web desk's /admin/config)."""

from __future__ import annotations

import argparse
import sys

from mailgate.cli.common import EX_OK, Subparsers, command, group, load_config

ORDER = 15


def register(sub: Subparsers) -> None:
    c = group(sub, "config", "the configuration file")
    command(c, "example", _example, "print the example config (a start for your own)")
    command(c, "show", _show, "print the effective config, defaults filled in, secrets hidden")


def _example(args: argparse.Namespace) -> int:
    from mailgate.config.example import example_text

    sys.stdout.write(example_text())
    return EX_OK


def _show(args: argparse.Namespace) -> int:
    from mailgate.admin.settings import settings

    config = load_config(args)
    print(f"# {config.path}")
    for key, value in settings(config):
        print(f"{key} = {value}")
    return EX_OK
