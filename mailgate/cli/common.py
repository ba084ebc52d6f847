"""What every command module shares: registering a command, opening the gateway, printing.

A command group is a module of ``mailgate.cli`` with ``ORDER`` (its place in
``mailgate --help``) and ``register(sub)`` adding its subparsers through
``command()``/``group()``. A command function takes the parsed arguments and
returns the exit status; errors are raised (``UsageError``, ``ConfigError``, …)
and turned into one line by ``mailgate.cli.main``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailgate.errors import UsageError

if TYPE_CHECKING:
    from mailgate.config import Config
    from mailgate.context import Context

EX_OK, EX_FAIL, EX_USAGE, EX_TEMPFAIL, EX_CONFIG = 0, 1, 2, 75, 78

Command = Callable[[argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def command(
    parent: Subparsers, name: str, func: Command, help_text: str
) -> argparse.ArgumentParser:
    """Add the command ``name`` under ``parent``; ``func(args)`` runs it."""
    p: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    return p


def group(sub: Subparsers, name: str, help_text: str) -> Subparsers:
    """A command group (``mailgate tickets …``): add its actions with ``command``."""
    return sub.add_parser(name, help=help_text).add_subparsers(metavar="ACTION")


def load_config(args: argparse.Namespace) -> Config:
    # Imported here, as every heavy import of the CLI: building the parser
    # (``mailgate --help``, and each command's start) must not load the package.
    from mailgate.config import find_config_path, load

    return load(find_config_path(args.config))


def context(
    args: argparse.Namespace, *, schema_required: bool = True, create_secret: bool = False
) -> Context:
    """Open the gateway the command talks to.

    Only ``db upgrade`` and ``serve`` create a missing secret key: a read-only command
    run with the wrong config must never mint a second key (every reply address in
    circulation would stop verifying) — it says which file is missing instead.
    """
    from mailgate import store
    from mailgate.context import open_context

    ctx = open_context(load_config(args), create_secret=create_secret)
    if schema_required:
        store.require_schema()
    return ctx


def print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def print_processed(outcome: Any, as_json: bool) -> int:
    """What became of a mail processed again (retried, released): one line, or its JSON.

    Exit 1 when it ended in the quarantine (the line says why), else 0."""
    if as_json:
        print_json(outcome.as_json())
    else:
        why = outcome.reason if outcome.action == "quarantined" else ""
        print(f"{outcome.action} {outcome.tag or ''} {why}".strip())
    return EX_OK if outcome.action != "quarantined" else EX_FAIL


def read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """A plain aligned table; long cells are cut so one ticket stays one line."""
    if not rows:
        print("(none)")
        return
    cells = [[_cell(r.get(key)) for key, _ in columns] for r in rows]
    widths = [min(max(len(h), *(len(c[i]) for c in cells)), 60) for i, (_, h) in enumerate(columns)]
    print("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return " ".join(str(value).split())


def ticket_number(text: str) -> int:
    try:
        return int(str(text).strip().lstrip("#"))
    except ValueError:
        raise UsageError(f"not a ticket number: {text!r}") from None


def tag(ctx: Context, number: int) -> str:
    from mailgate.mail.subject import format_tag

    return format_tag(ctx.config.gateway.ticket_prefix, number)
