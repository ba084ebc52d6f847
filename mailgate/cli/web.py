"""``mailgate web``: the web desk alone (``serve`` runs it too when ``[web]`` is set)."""

from __future__ import annotations

import argparse

from mailgate.cli.common import Subparsers, command, context

ORDER = 11


def register(sub: Subparsers) -> None:
    command(sub, "web", _web, "run the web desk alone (serve runs it too when [web] is set)")


def _web(args: argparse.Namespace) -> int:
    from mailgate import web

    return web.run(context(args, create_secret=True))
