"""``mailgate agents list|password|logout`` and ``mailgate teams list``: who is who, logins."""

from __future__ import annotations

import argparse
import getpass
import sys

from mailgate.cli import apitokens
from mailgate.cli.common import EX_OK, Subparsers, command, context, group, print_json, table

ORDER = 50


def register(sub: Subparsers) -> None:
    a = group(sub, "agents", "agents from the config")
    p = command(a, "list", _agents_list, "list agents, their teams and open tickets")
    p.add_argument("--json", action="store_true")
    p = command(
        a,
        "password",
        _agents_password,
        "set an agent's web desk password (prompted on a terminal, else one line of stdin)",
    )
    p.add_argument("key", metavar="KEY", help="the agent's key")
    p = command(a, "logout", _agents_logout, "end every web desk session of an agent")
    p.add_argument("key", metavar="KEY", help="the agent's key")
    apitokens.add_commands(a)  # agents token / agents tokens (the JSON API's tokens)
    tm = group(sub, "teams", "teams from the config")
    p = command(tm, "list", _teams_list, "list teams, members and queues")
    p.add_argument("--json", action="store_true")


def _agents_list(args: argparse.Namespace) -> int:
    from mailgate.admin import directory

    ctx = context(args)
    rows = directory.agents(ctx.config)
    if args.json:
        print_json(rows)
    else:
        table(
            rows,
            [
                ("key", "AGENT"),
                ("name", "NAME"),
                ("role", "ROLE"),
                ("emails", "ADDRESSES"),
                ("teams", "TEAMS"),
                ("open_tickets", "OPEN"),
            ],
        )
    return EX_OK


def _agents_password(args: argparse.Namespace) -> int:
    from mailgate.admin import logins

    ctx = context(args)
    logins.agent_by_key(ctx.config, args.key)  # before asking for a password it cannot use
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.key}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    agent, ended = logins.set_password(ctx.config, args.key, password)
    print(f"password set for {agent.key}{_ended(ended)}")
    return EX_OK


def _agents_logout(args: argparse.Namespace) -> int:
    from mailgate.admin import logins

    ctx = context(args)
    agent, ended = logins.log_out_everywhere(ctx.config, args.key)
    print(f"{agent.key}{_ended(ended) or ': no desk session was open'}")
    return EX_OK


def _ended(count: int) -> str:
    return f"; {count} desk session{'s' if count != 1 else ''} ended" if count else ""


def _teams_list(args: argparse.Namespace) -> int:
    from mailgate.admin import directory

    ctx = context(args)
    rows = directory.teams(ctx.config)
    if args.json:
        print_json(rows)
    else:
        table(
            rows,
            [
                ("key", "TEAM"),
                ("name", "NAME"),
                ("address", "ADDRESS"),
                ("members", "MEMBERS"),
                ("assignment", "ASSIGNMENT"),
                ("escalation", "ESCALATION"),
                ("queue", "UNASSIGNED"),
                ("open_tickets", "OPEN"),
            ],
        )
    return EX_OK
