"""What a built wheel carries: every subpackage and every shipped template.

An installed wheel without the templates quarantines every mail ("template not
found"), and a subpackage missing from the wheel fails at the first import. Both
are decided by ``pyproject.toml``; this test reads it the way setuptools does.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mailgate"


def _setuptools() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(data["tool"]["setuptools"])


def test_every_subpackage_is_found_for_the_wheel() -> None:
    include = _setuptools()["packages"]["find"]["include"]  # type: ignore[index]
    packages = [
        ".".join(p.parent.relative_to(ROOT).parts) for p in sorted(PACKAGE.rglob("__init__.py"))
    ]
    assert "mailgate.store.migrations" in packages
    missing = [p for p in packages if not any(fnmatch.fnmatch(p, pattern) for pattern in include)]
    assert missing == []


def test_every_shipped_template_is_package_data() -> None:
    patterns = _setuptools()["package-data"]["mailgate"]  # type: ignore[index]
    shipped = [
        p.relative_to(PACKAGE).as_posix()
        for p in (PACKAGE / "templates").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert "templates/acknowledgement/subject.txt" in shipped
    missing = [f for f in shipped if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []
