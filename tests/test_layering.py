"""The dependency direction of ARCHITECTURE.md, held by a test instead of by memory.

cli → app → transports → ingest → notify | outbox → tickets → models | mail → config | errors
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mailgate"
STDLIB_AND_PARSER = {"mailparser"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(pattern: str) -> list[Path]:
    return sorted(PACKAGE.glob(pattern))


def test_pure_mail_package_imports_no_database_network_or_config() -> None:
    for path in modules("mail/*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "mailgate":
                assert name.startswith("mailgate.mail"), f"{path.name} imports {name}"
            else:
                assert top not in {
                    "peewee",
                    "playhouse",
                    "aiosmtpd",
                    "imapclient",
                    "apscheduler",
                    "jinja2",
                    "smtplib",
                    "socket",
                    "psycopg2",
                }, f"{path.name} imports {name}"


def test_transports_never_touch_the_database() -> None:
    for path in modules("transports/*.py"):
        names = imports_of(path)
        assert not {n for n in names if n in {"peewee", "playhouse", "mailgate.models"}}, path.name


def test_the_core_never_imports_a_transport_or_the_cli() -> None:
    core = [p for p in modules("*.py") if p.name not in {"cli.py", "app.py", "__main__.py"}]
    for path in core:
        for name in imports_of(path):
            assert not name.startswith(("mailgate.transports", "mailgate.cli", "mailgate.app")), (
                f"{path.name} imports {name}"
            )


def test_errors_and_config_stand_alone() -> None:
    assert not {n for n in imports_of(PACKAGE / "errors.py") if n.startswith("mailgate")}
    for path in modules("config/*.py"):
        ours = {n for n in imports_of(path) if n.startswith("mailgate")}
        assert all(n == "mailgate.errors" or n.startswith("mailgate.config.") for n in ours), path


def test_only_the_cli_exits_the_process() -> None:
    for path in modules("**/*.py"):
        if path.name in {"cli.py", "__main__.py"}:
            continue
        source = path.read_text()
        assert "sys.exit(" not in source and "SystemExit" not in source, path.name
