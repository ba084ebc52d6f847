"""``mailgate templates check`` and ``preview``: every template against a sample, one notice."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mailgate.cli.common import (
    EX_FAIL,
    EX_OK,
    Subparsers,
    command,
    context,
    group,
    load_config,
)

if TYPE_CHECKING:
    from mailgate.context import Context

ORDER = 70


def register(sub: Subparsers) -> None:
    tp = group(sub, "templates", "notice templates")
    command(tp, "check", _templates_check, "render every template against a sample ticket")
    p = command(tp, "preview", _templates_preview, "print a notice exactly as it would be sent")
    p.add_argument("name", help="acknowledgement, assignment, customer_reply, agent_reply, …")
    p.add_argument("--ticket", metavar="NUMBER", help="render for this ticket (default: a sample)")


def _templates_check(args: argparse.Namespace) -> int:
    from mailgate.admin import templates

    config = load_config(args)
    problems = templates.check_templates(config)
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    print(f"templates: {errors} error(s), {warnings} warning(s)")
    return EX_FAIL if errors else EX_OK


def _templates_preview(args: argparse.Namespace) -> int:
    from mailgate.admin import templates

    if args.ticket is None:
        config = load_config(args)
        from mailgate.blobs import open_store

        ctx = Context(config, open_store(config), b"preview-key-not-secret")
        content = templates.preview(ctx, args.name, None)
    else:
        ctx = context(args)
        from mailgate.admin import tickets

        content = templates.preview(ctx, args.name, tickets.ticket(args.ticket).number)
    sys.stdout.write(content.decode("utf-8", "replace").replace("\r\n", "\n"))
    return EX_OK
