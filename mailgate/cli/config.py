"""``mailgate config example``: print the complete, commented example configuration."""

from __future__ import annotations

import argparse
import sys

from mailgate.cli.common import EX_OK, Subparsers, command, group

ORDER = 15


def register(sub: Subparsers) -> None:
    c = group(sub, "config", "the configuration file")
    command(c, "example", _example, "print the example config (a start for your own)")


def _example(args: argparse.Namespace) -> int:
    from mailgate.config.example import example_text

    sys.stdout.write(example_text())
    return EX_OK
