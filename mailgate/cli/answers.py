"""``mailgate answers list|show``: the canned answers agents insert with ``#answer NAME``."""

from __future__ import annotations

import argparse

from mailgate.cli.common import EX_OK, Subparsers, command, group, load_config, print_json, table

ORDER = 72


def register(sub: Subparsers) -> None:
    a = group(sub, "answers", "canned answers for #answer NAME")
    p = command(a, "list", _list, "list the canned answers of [answers] dir")
    p.add_argument("--json", action="store_true")
    p = command(a, "show", _show, "print a canned answer as written (its Jinja source)")
    p.add_argument("name")


def _list(args: argparse.Namespace) -> int:
    from mailgate import answers

    rows = [
        {"name": item.name, "file": str(item.path), "first_line": item.first_line()}
        for item in answers.answers(load_config(args))
    ]
    if args.json:
        print_json(rows)
    else:
        table(rows, [("name", "NAME"), ("first_line", "BEGINS"), ("file", "FILE")])
    return EX_OK


def _show(args: argparse.Namespace) -> int:
    from mailgate import answers

    item = answers.answer(load_config(args), args.name)
    print(item.path.read_text(errors="replace").rstrip("\n"))
    return EX_OK
