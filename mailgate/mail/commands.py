"""Agent commands at the top of a mail: ``#assign me``, ``#priority high``, ``#resolve`` …

One command per line, before the reply text; blank lines between them are
fine, the first other line ends the block. Only the syntax is checked here
(known command, argument present or absent, a known priority or status); who
an agent or a team is, the caller checks against the config. Nothing is
guessed: whatever is not understood is reported, and the caller then applies
none of the mail.

Pure: imports only the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRIORITIES = ("low", "normal", "high", "emergency")
STATUSES = ("open", "pending", "resolved", "closed")

# name → (argument wanted: "required" | "none", what the argument is, for error text)
SYNTAX: dict[str, tuple[str, str]] = {
    "assign": ("required", "an agent, 'me' or 'none'"),
    "team": ("required", "a team"),
    "priority": ("required", "low, normal, high or emergency"),
    "status": ("required", "open, pending, resolved or closed"),
    "resolve": ("none", ""),
    "cc": ("required", "a mail address"),
    "note": ("none", ""),
    "merge": ("required", "a ticket number"),
    "time": ("required", "working time like 25m or 1h30m"),
    "category": ("required", "a category"),
    "urgency": ("required", "low, medium or high"),
    "impact": ("required", "low, medium or high"),
}
LEVELS = ("low", "medium", "high")
_LINE = re.compile(r"^\s*#(\S*)\s*(.*?)\s*$")
_ADDRESS = re.compile(r"^<?([^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)>?$")
_SPENT = re.compile(r"^(?:\d{1,3}h)?(?:\d{1,4}m(?:in)?)?$")
_TICKET = re.compile(r"^\[?(?:[A-Za-z][A-Za-z0-9-]*)?#?(\d{1,18})\]?$")


@dataclass(frozen=True)
class Command:
    name: str
    argument: str
    line: str


@dataclass(frozen=True)
class Commands:
    commands: tuple[Command, ...]
    problems: tuple[str, ...]
    text: str  # what follows the command block

    def has(self, name: str) -> bool:
        return any(c.name == name for c in self.commands)

    def argument(self, name: str) -> str | None:
        for command in self.commands:
            if command.name == name:
                return command.argument
        return None


def read(text: str) -> Commands:
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    problems: list[str] = []
    index = 0
    for index, line in enumerate(lines):  # noqa: B007 - the index after the loop is used
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            break
        name, argument = match.group(1).lower().rstrip(":"), match.group(2)
        problem = _check(name, argument)
        if problem:
            problems.append(f"{line.strip()!r}: {problem}")
        else:
            commands.append(Command(name, _normalise(name, argument), line.strip()))
    else:
        index = len(lines)
    seen: set[str] = set()
    for command in commands:
        if command.name in seen:
            problems.append(f"#{command.name} is given twice")
        seen.add(command.name)
    if "note" in seen and "resolve" in seen:
        problems.append("#note and #resolve exclude each other (a resolution reaches the customer)")
    rest = "\n".join(lines[index:]).strip("\n")
    return Commands(tuple(commands), tuple(problems), rest)


def _check(name: str, argument: str) -> str:
    if name not in SYNTAX:
        known = ", ".join(f"#{n}" for n in SYNTAX)
        return f"unknown command (known: {known})"
    wanted, what = SYNTAX[name]
    if wanted == "none" and argument:
        return f"#{name} takes no argument"
    if wanted == "required" and not argument:
        return f"#{name} needs {what}"
    if name in ("priority", "status", "merge") and len(argument.split()) > 1:
        return f"#{name} takes one argument: {what}"
    value = argument.lower()
    if name == "priority" and value not in PRIORITIES:
        return f"unknown priority {argument!r}: use {what}"
    if name == "status" and value not in STATUSES:
        return f"unknown status {argument!r}: use {what}"
    if name in ("urgency", "impact") and value not in LEVELS:
        return f"unknown {name} {argument!r}: use {what}"
    if name == "cc" and not all(_ADDRESS.match(a) for a in argument.replace(",", " ").split()):
        return f"{argument!r} is not a mail address"
    if name == "merge" and not _TICKET.match(argument):
        return f"{argument!r} is not a ticket number"
    if name == "time" and not (_SPENT.match(value.replace(" ", "")) and value.strip("0hmin ")):
        return f"{argument!r} is not {what}"
    return ""


def _normalise(name: str, argument: str) -> str:
    if name in ("priority", "status", "assign", "team", "urgency", "impact"):
        return argument.lower()
    if name == "merge":
        match = _TICKET.match(argument)
        return match.group(1) if match else argument
    if name == "cc":
        return " ".join(a.strip("<>").lower() for a in argument.replace(",", " ").split())
    return argument
