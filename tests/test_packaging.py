"""What a built wheel carries: every subpackage and every shipped template.

An installed wheel without the templates quarantines every mail ("template not
found"), and a subpackage missing from the wheel fails at the first import. Both
are decided by ``pyproject.toml``; this test reads it the way setuptools does.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support import compose, to_toml

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


# --- a built wheel, installed where no checkout is -------------------------------------------

SOURCES = ("mailgate", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "config")


def _copy_sources(target: Path) -> None:
    """The tracked sources only: a stale build/ in the checkout must not reach the wheel."""
    ignore = shutil.ignore_patterns("__pycache__", "var", "*.egg-info")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def test_a_built_wheel_installed_in_a_fresh_venv_takes_mail_and_answers_it(
    tmp_path: Path,
) -> None:
    """Build the wheel, install it outside the checkout, `db upgrade`, ingest, find the ack.

    The fresh venv gets its dependencies from the development venv through a .pth line
    (no network; its editable mailgate is not picked up, which the test asserts): what is
    tested is the wheel itself — modules, templates, migrations, the example config.
    """
    source, wheels, venv = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv"
    source.mkdir()
    _copy_sources(source)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(wheels)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("mailgate-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    dev_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (Path(site) / "dev-dependencies.pth").write_text(dev_site + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr

    # The admin's config with relative paths, run from another directory: the files
    # land beside the config, nothing in the working directory.
    etc, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    etc.mkdir()
    elsewhere.mkdir()
    mailgate = [str(venv / "bin" / "mailgate"), "--config", str(etc / "mailgate.toml")]
    env = {k: v for k, v in os.environ.items() if k not in ("MAILGATE_CONFIG", "PYTHONPATH")}

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*mailgate, *args], input=stdin, capture_output=True, cwd=elsewhere, env=env,
            timeout=120,
        )  # fmt: skip

    where = subprocess.run(
        [str(python), "-c", "import mailgate; print(mailgate.__file__)"],
        capture_output=True, text=True, cwd=elsewhere, env=env, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(site), where  # the installed copy, not the checkout
    example = run("config", "example")
    assert example.returncode == 0, example.stderr
    assert example.stdout.decode() == (ROOT / "config" / "mailgate.toml").read_text()
    (etc / "mailgate.toml").write_text(to_toml(tomllib.loads(example.stdout.decode())))
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    created = run("ingest", "-", stdin=compose(subject="From a wheel"))
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(b"created [EB#")
    assert run("outbox", "flush").returncode == 0
    sent = [p.read_bytes() for p in (etc / "var" / "sent" / "new").iterdir()]
    ack = [m for m in sent if b"To: Carla Customer <carla@customer.example>" in m
           or b"To: carla@customer.example" in m]  # fmt: skip
    assert len(ack) == 1, sent
    assert b"From a wheel" in ack[0]
    assert (etc / "var" / "mailgate.db").is_file() and (etc / "var" / "secret.key").is_file()
    assert list(elsewhere.iterdir()) == []
