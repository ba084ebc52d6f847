"""Canned answers: a folder of ``NAME.md`` / ``NAME.txt``, and ``#answer NAME`` in a reply.

An answer is a Jinja template with the variables of the notices (``requester.name``,
``ticket.tag``, ``agent.name`` …, see ``mailgate/templates/README.md``), rendered in
the same sandbox with undefined variables as errors. ``#answer NAME`` on a line of its
own, anywhere in an agent's reply, is replaced by the rendered answer; a name that does
not exist (or an answer that fails to render) is a problem like a command not
understood: nothing of the mail is applied or sent. Only reads.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox

from mailgate.config import Agent, Config
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.notices import Intent, sample_variables, template_line, variables_for
from mailgate.notices.rules import mailbox_of
from mailgate.store import directory
from mailgate.store.rows import TicketRow

SUFFIXES = (".md", ".txt")
_LINE = re.compile(r"^[ \t]*#answer[ \t]+(\S+)[ \t]*$", re.I | re.M)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Answer:
    name: str
    path: Path

    def first_line(self) -> str:
        for line in self.path.read_text(errors="replace").splitlines():
            if line.strip():
                return line.strip().lstrip("# ")[:70]
        return ""


def answers(config: Config) -> list[Answer]:
    """Every answer of ``[answers] dir``, by name (``NAME.md`` wins over ``NAME.txt``)."""
    if not config.answers.dir:
        return []
    folder = Path(config.answers.dir)
    if not folder.is_dir():
        raise UsageError(f"answers.dir {folder} is not a directory (in {config.path})")
    found: dict[str, Answer] = {}
    for suffix in reversed(SUFFIXES):
        for path in sorted(folder.glob(f"*{suffix}")):
            if _NAME.match(path.stem):
                found[path.stem.lower()] = Answer(path.stem.lower(), path)
    return [found[name] for name in sorted(found)]


def answer(config: Config, name: str) -> Answer:
    for item in answers(config):
        if item.name == name.lower():
            return item
    known = ", ".join(a.name for a in answers(config)) or "none configured"
    raise UsageError(f"no answer {name!r} (known: {known})")


@functools.lru_cache(maxsize=8)
def _environment(folder: str) -> jinja2.sandbox.SandboxedEnvironment:
    return jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


def render(config: Config, item: Answer, variables: dict[str, Any]) -> str:
    """The answer's text; ``UsageError`` with file and line when it does not render."""
    env = _environment(str(item.path.parent))
    try:
        return env.get_template(item.path.name).render(variables).strip("\n")
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"{item.path}:{exc.lineno}: {exc.message}") from None
    except Exception as exc:  # noqa: BLE001 - every rendering failure is one line
        where = template_line(exc) or f"{item.path}: "
        raise UsageError(f"{where}{type(exc).__name__}: {exc}") from None


def expand(ctx: Context, ticket: TicketRow, agent: Agent, text: str) -> tuple[str, list[str]]:
    """``text`` with each ``#answer NAME`` line replaced by its answer; the problems."""
    if not _LINE.search(text):
        return text, []
    box = mailbox_of(ctx.config, ticket)
    who = directory.agent_by_key(agent.key)
    intent = Intent("agent_reply", ticket, [], agent=who)
    variables = variables_for(ctx, intent, box, box.address)
    problems: list[str] = []

    def one(match: re.Match[str]) -> str:
        try:
            return render(ctx.config, answer(ctx.config, match.group(1)), variables)
        except UsageError as exc:
            problems.append(f"{match.group(0).strip()!r}: {exc}")
            return match.group(0)

    return _LINE.sub(one, text), problems


def check(config: Config) -> list[tuple[str, str]]:
    """(where, problem) for every answer that does not render against a sample ticket."""
    problems = []
    box = config.mailboxes[0]
    for item in answers(config):
        try:
            render(config, item, sample_variables(config, box, "agent_reply"))
        except UsageError as exc:
            problems.append((str(item.path), str(exc)))
    return problems
