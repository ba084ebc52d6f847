"""The shape of the house, held by a test instead of by memory.

Dependencies point inward::

    cli → admin → app → transports → envelope          (the edge)
    intake → agents | routing → lifecycle → store      (the core)
    notices → store;  reactions → notices
    everything may use mail/, which uses nothing of ours

The rules below are the ones a merge must not break: ``mail/`` is pure; a
transport knows only the envelope (and errors, logs, config); only ``store/``
touches peewee and the models; only ``lifecycle`` writes ticket state; the core
never imports the edge; only the CLI ends the process; raw SQL stays in the
store; no module grows past ``MAX_LINES`` (data tables excepted). Every rule is
checked against the tree *and* against a deliberate violation
(``test_*_catches_*``), so a rule that stopped seeing anything fails too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mailgate"

# The edge: these may import the core; the core never imports them.
EDGE = ("mailgate.cli", "mailgate.admin", "mailgate.app", "mailgate.transports", "mailgate.web")
TRANSPORT_MAY_IMPORT = ("mailgate.envelope", "mailgate.errors", "mailgate.logs", "mailgate.config")
DATABASE_LIBRARIES = ("peewee", "playhouse", "psycopg2", "mailgate.store.models")
MAX_LINES = 500
# Modules that are tables of data, not code: they may be as long as the data is.
DATA_TABLES = {"mail/bounce_patterns.py", "mail/quote_patterns.py"}
# Ticket state: written by lifecycle.py through these functions of store/tickets.py only.
STATE_WRITERS = {"insert", "write_state", "merge_into"}
STATE_COLUMNS = (
    "status",
    "priority",
    "team_id",
    "assignee_id",
    "category",
    "tags",
    "merged_into_id",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "urgency",
    "impact",
)

# Ticket columns derived from other tables: written only by the store function that
# writes what they derive from, in the same transaction (column → that module).
# ``next_due_at`` is the earliest running SLA clock: store/sla.py's replace_clocks.
DERIVED_COLUMNS = {"next_due_at": "store/sla.py"}


def name_of(path: Path) -> str:
    """``mailgate/intake/plan.py`` → ``mailgate.intake.plan`` (a package → its name)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(source: str, module: str = "mailgate.x") -> set[str]:
    """Every module (and ``module.name`` for ``from … import name``) the source imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")[: -node.level]
                base = ".".join([*package, *([base] if base else [])])
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set[str]:
    return imports_in(path.read_text(), name_of(path))


def modules(pattern: str = "**/*.py") -> list[Path]:
    return sorted(p for p in PACKAGE.glob(pattern) if "__pycache__" not in p.parts)


def ours(names: set[str]) -> set[str]:
    return {n for n in names if n == "mailgate" or n.startswith("mailgate.")}


def is_under(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# --- the rules, as functions of one module's source ------------------------------------------


def pure_mail_violations(names: set[str]) -> list[str]:
    forbidden = ("peewee", "playhouse", "aiosmtpd", "imapclient", "apscheduler", "jinja2")
    forbidden += ("smtplib", "socket", "psycopg2")
    return sorted(
        n
        for n in names
        if (is_under(n, "mailgate") and not is_under(n, "mailgate.mail")) or is_under(n, forbidden)
    )


def transport_violations(names: set[str]) -> list[str]:
    return sorted(
        n
        for n in ours(names)
        if not is_under(n, TRANSPORT_MAY_IMPORT) and not is_under(n, "mailgate.transports")
    )


def database_violations(names: set[str]) -> list[str]:
    return sorted(n for n in names if is_under(n, DATABASE_LIBRARIES))


def edge_violations(names: set[str]) -> list[str]:
    return sorted(n for n in names if is_under(n, EDGE))


_UPDATE_TICKET = re.compile(r"\bupdate\s+\"?ticket\"?\s+set\b(?P<set>.*?)(\bwhere\b|$)")
_INSERT_TICKET = re.compile(r"\binsert\s+into\s+\"?ticket\"?\s*\(")


def _sql_texts(tree: ast.AST) -> list[str]:
    """Every string of the module, f-strings with ``{}`` where a value is interpolated."""
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            texts.append(
                "".join(
                    v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                    for v in node.values
                )
            )
    return [" ".join(t.lower().split()) for t in texts]


def state_write_violations(source: str) -> list[str]:
    """SQL writing ticket state, and calls of the store's state writers."""
    tree = ast.parse(source)
    found = []
    for text in _sql_texts(tree):
        if _INSERT_TICKET.search(text):
            found.append(f"SQL inserting a ticket: {text[:80]!r}")
        for match in _UPDATE_TICKET.finditer(text):
            assignments = match.group("set")
            if "{}" in assignments or any(
                re.search(rf"\b{column}\s*=", assignments) for column in STATE_COLUMNS
            ):
                found.append(f"SQL writing ticket state: {text[:80]!r}")
    # peewee's way: Ticket.update(...), Ticket.insert(...), ticket.save()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("update", "insert", "insert_many", "create", "save")
            and isinstance(node.value, ast.Attribute | ast.Name)
            and getattr(node.value, "attr", getattr(node.value, "id", "")) == "Ticket"
        ):
            found.append(f"peewee write of Ticket: .{node.attr}")
    # the store's state writers, however store.tickets was imported
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "mailgate.store":
            aliases.update(a.asname or a.name for a in node.names if a.name == "tickets")
        elif isinstance(node, ast.ImportFrom) and node.module == "mailgate.store.tickets":
            found.extend(
                f"imports the state writer {a.name}" for a in node.names if a.name in STATE_WRITERS
            )
        elif isinstance(node, ast.Import):
            aliases.update(
                a.asname for a in node.names if a.name == "mailgate.store.tickets" and a.asname
            )
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in STATE_WRITERS
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            found.append(f"calls store.tickets.{node.attr}")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in STATE_WRITERS
            and ast.unparse(node.value) == "mailgate.store.tickets"
        ):
            found.append(f"calls mailgate.store.tickets.{node.attr}")
    return found


def derived_write_violations(source: str, column: str) -> list[str]:
    """SQL that sets the derived ticket column ``column`` (peewee's Ticket.update is
    already refused by the state rule)."""
    found = []
    for text in _sql_texts(ast.parse(source)):
        for match in _UPDATE_TICKET.finditer(text):
            if "{}" in match.group("set") or re.search(rf"\b{column}\s*=", match.group("set")):
                found.append(f"SQL writing ticket.{column}: {text[:80]!r}")
    return found


# --- the tree holds the rules ------------------------------------------------------------------


def test_pure_mail_package_imports_nothing_of_ours_and_no_database_network_or_config() -> None:
    for path in modules("mail/**/*.py"):
        assert pure_mail_violations(imports_of(path)) == [], path


def test_transports_import_only_the_envelope_errors_logs_and_config() -> None:
    for path in modules("transports/**/*.py"):
        assert transport_violations(imports_of(path)) == [], path


def test_only_the_store_touches_peewee_and_the_models() -> None:
    for path in modules():
        if is_under(name_of(path), "mailgate.store"):
            continue
        assert database_violations(imports_of(path)) == [], path


def raw_sql_violations(names: set[str]) -> list[str]:
    return sorted(n for n in names if is_under(n, "mailgate.store.sql"))


def size_violation(path: Path, lines: int) -> bool:
    return lines > MAX_LINES and path.relative_to(PACKAGE).as_posix() not in DATA_TABLES


def test_raw_sql_stays_in_the_store() -> None:
    for path in modules():
        if is_under(name_of(path), "mailgate.store"):
            continue
        assert raw_sql_violations(imports_of(path)) == [], path


def test_no_module_is_longer_than_max_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE)}: {lines} lines"
        for path in modules()
        if size_violation(path, lines := len(path.read_text().splitlines()))
    ]
    assert long == []


def test_only_the_lifecycle_writes_ticket_state() -> None:
    allowed = {PACKAGE / "lifecycle.py", PACKAGE / "store" / "tickets.py"}
    for path in modules():
        if path in allowed or is_under(name_of(path), "mailgate.store.migrations"):
            continue
        assert state_write_violations(path.read_text()) == [], path


def test_derived_ticket_columns_have_one_writer() -> None:
    for column, writer in DERIVED_COLUMNS.items():
        for path in modules():
            relative = path.relative_to(PACKAGE).as_posix()
            if relative == writer or is_under(name_of(path), "mailgate.store.migrations"):
                continue
            if relative == "store/tickets.py":  # its f-string SET takes STATE_COLUMNS only
                continue
            assert derived_write_violations(path.read_text(), column) == [], path
        assert derived_write_violations((PACKAGE / writer).read_text(), column), writer


def test_the_derived_column_rule_catches_a_second_writer() -> None:
    for bad in (
        'sql.run("UPDATE ticket SET next_due_at = ? WHERE id = ?", due, 1)',
        'sql.run("UPDATE ticket SET updated_at = ?, next_due_at = NULL WHERE id = ?", n, 1)',
        'sql.run(f"UPDATE ticket SET {fields} WHERE id = ?", 1)',
    ):
        assert derived_write_violations(bad, "next_due_at"), bad
    fine = 'sql.run("UPDATE ticket SET updated_at = ? WHERE id = ?", now, 1)'
    assert not derived_write_violations(fine, "next_due_at")


def test_the_core_never_imports_the_edge() -> None:
    for path in modules():
        name = name_of(path)
        if is_under(name, EDGE) or name == "mailgate.__main__":
            continue
        assert edge_violations(imports_of(path)) == [], path


def test_the_store_imports_nothing_above_it() -> None:
    below = ("mailgate.store", "mailgate.config", "mailgate.errors", "mailgate.mail")
    for path in modules("store/**/*.py"):
        assert [n for n in ours(imports_of(path)) if not is_under(n, below)] == [], path


# The attachments package reads files and rows; what changes a ticket is never its business.
ATTACHMENTS_MAY_IMPORT = (
    "mailgate.attachments", "mailgate.store", "mailgate.context", "mailgate.config",
    "mailgate.errors", "mailgate.mail", "mailgate.blobs", "mailgate.logs",
)  # fmt: skip


def attachments_violations(names: set[str]) -> list[str]:
    return sorted(n for n in ours(names) if not is_under(n, ATTACHMENTS_MAY_IMPORT))


def test_attachments_import_only_the_store_blobs_and_mail() -> None:
    found = modules("attachments/**/*.py")
    assert found
    for path in found:
        assert attachments_violations(imports_of(path)) == [], path
    assert attachments_violations({"mailgate.lifecycle", "mailgate.cli.common"}) == [
        "mailgate.cli.common",
        "mailgate.lifecycle",
    ]


def test_errors_envelope_and_config_stand_alone() -> None:
    assert ours(imports_of(PACKAGE / "errors.py")) == set()
    assert ours(imports_of(PACKAGE / "envelope.py")) == set()
    for path in modules("config/*.py"):
        names = ours(imports_of(path))
        assert all(is_under(n, ("mailgate.errors", "mailgate.config")) for n in names), path


def test_only_the_cli_ends_the_process() -> None:
    for path in modules():
        if is_under(name_of(path), "mailgate.cli") or name_of(path) == "mailgate.__main__":
            continue
        source = path.read_text()
        assert "sys.exit(" not in source and "SystemExit" not in source, path


# --- and each rule sees a deliberate violation ---------------------------------------------


def test_the_mail_rule_catches_an_import_of_ours() -> None:
    assert pure_mail_violations(imports_in("from mailgate.store import tickets\n"))
    assert pure_mail_violations(imports_in("from mailgate import lifecycle\n"))
    assert pure_mail_violations(imports_in("import jinja2\n"))
    assert not pure_mail_violations(imports_in("from mailgate.mail.parse import ParsedMail\n"))


def test_the_transport_rule_catches_the_store_intake_and_notices() -> None:
    for bad in (
        "from mailgate import intake\n",
        "from mailgate.intake import ingest\n",
        "from mailgate.store import receipts\n",
        "from mailgate import lifecycle\n",
        "import mailgate.notices\n",
    ):
        assert transport_violations(imports_in(bad, "mailgate.transports.smtp")), bad
    fine = "from mailgate.envelope import Envelope\nfrom mailgate import logs\n"
    assert not transport_violations(imports_in(fine, "mailgate.transports.smtp"))


def test_the_database_rule_catches_peewee_and_the_models() -> None:
    for bad in (
        "import peewee as pw\n",
        "from playhouse.db_url import connect\n",
        "from mailgate.store import models as m\n",
        "from mailgate.store.models import Ticket\n",
        "from ..store import models\n",
    ):
        assert database_violations(imports_in(bad, "mailgate.intake.apply")), bad
    assert not database_violations(imports_in("from mailgate.store import tickets\n"))


def test_the_state_rule_catches_sql_peewee_and_the_store_writers() -> None:
    for bad in (
        'sql.run("UPDATE ticket SET status = ? WHERE id = ?", "open", 1)',
        'sql.run("UPDATE ticket SET priority = ?, updated_at = ?" " WHERE id = ?", p, n, 1)',
        'sql.run(f"UPDATE ticket SET {fields} WHERE id = ?", 1)',
        'sql.insert("INSERT INTO ticket (number, subject) VALUES (?, ?)", 1, "x")',
        "m.Ticket.update(assignee=3).where(m.Ticket.id == 1).execute()",
        "from mailgate.store import tickets as t\nt.write_state(1, {'status': 'open'})",
        "from mailgate.store import tickets\ntickets.merge_into(1, 2, now)",
        "from mailgate.store.tickets import insert",
        "import mailgate.store.tickets\nmailgate.store.tickets.write_state(1, {})",
    ):
        assert state_write_violations(bad), bad
    for fine in (
        'sql.run("UPDATE ticket SET updated_at = ? WHERE id = ?", now, 1)',
        "sql.run(\"UPDATE receipt SET status = 'processed' WHERE id = ?\", 1)",
        "from mailgate.store import tickets\ntickets.by_number(5)",
    ):
        assert not state_write_violations(fine), fine


def test_the_edge_rule_catches_the_cli_admin_app_and_transports() -> None:
    for bad in (
        "from mailgate.cli import main\n",
        "from mailgate.admin import tickets\n",
        "from mailgate import app\n",
        "from mailgate.transports import smtp\n",
    ):
        assert edge_violations(imports_in(bad)), bad


def test_the_sql_and_size_rules_catch_a_violation() -> None:
    assert raw_sql_violations(imports_in("from mailgate.store import sql\n", "mailgate.outbox"))
    assert raw_sql_violations(imports_in("from mailgate.store.sql import run\n"))
    assert not raw_sql_violations(imports_in("from mailgate.store import outbox\n"))
    assert size_violation(PACKAGE / "outbox" / "delivery.py", MAX_LINES + 1)
    assert not size_violation(PACKAGE / "mail" / "bounce_patterns.py", MAX_LINES + 1)


# Search and reports: queries the CLI and the web desk share. They read through the store
# and know config, errors and dates; they change nothing (no lifecycle, intake, notices).
QUERY_PACKAGES_MAY_IMPORT = (
    "mailgate.search",
    "mailgate.reports",
    "mailgate.store",
    "mailgate.config",
    "mailgate.errors",
    "mailgate.mail",
    "mailgate.sla",
)


def query_package_violations(names: set[str]) -> list[str]:
    return sorted(n for n in ours(names) if not is_under(n, QUERY_PACKAGES_MAY_IMPORT))


def test_search_and_reports_only_read_through_the_store() -> None:
    for path in modules("search/**/*.py") + modules("reports/**/*.py"):
        assert query_package_violations(imports_of(path)) == [], path
    assert modules("search/**/*.py") and modules("reports/**/*.py")


def test_the_query_rule_catches_a_writer() -> None:
    for bad in (
        "from mailgate import lifecycle\n",
        "from mailgate.intake import ingest\n",
        "from mailgate import notices\n",
        "from mailgate.admin import tickets\n",
    ):
        assert query_package_violations(imports_in(bad, "mailgate.reports.figures")), bad
    assert not query_package_violations(imports_in("from mailgate.store import reports\n"))


# --- issue 13's packages: one front door each --------------------------------------------------

# Each is reached through its ``__init__`` only; what lies behind it may change freely.
FRONT_DOORS = ("mailgate.onbehalf", "mailgate.suspended", "mailgate.answers", "mailgate.webhooks")


def front_door_violations(names: set[str], module: str) -> list[str]:
    """Imports of a module behind a front door, from outside that package."""
    found = []
    for door in FRONT_DOORS:
        if is_under(module, door):
            continue
        inside = {p.stem for p in (PACKAGE / door.split(".", 1)[1]).glob("*.py")} - {"__init__"}
        found.extend(n for n in names if n.startswith(door + ".") and n.split(".")[2] in inside)
    return sorted(found)


def test_the_desk_packages_are_entered_by_their_front_door() -> None:
    for path in modules():
        assert front_door_violations(imports_of(path), name_of(path)) == [], path


def test_the_front_door_rule_catches_a_side_entrance() -> None:
    bad = "from mailgate.onbehalf.forward import read\n"
    assert front_door_violations(imports_in(bad, "mailgate.intake.plan"), "mailgate.intake.plan")
    fine = "from mailgate import onbehalf\nfrom mailgate.onbehalf import read\n"
    assert not front_door_violations(imports_in(fine), "mailgate.intake.plan")
    assert not front_door_violations(imports_in(bad, "mailgate.onbehalf"), "mailgate.onbehalf")
