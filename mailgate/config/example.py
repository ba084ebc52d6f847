"""The example configuration, as ``mailgate config example`` prints it.

A wheel carries it as ``mailgate/example.toml`` (copied from ``config/mailgate.toml``
by ``setup.py`` at build time); a checkout (``pip install -e``) reads the repository's
file. Imports the standard library and ``mailgate.errors``.
"""

from __future__ import annotations

from pathlib import Path

from mailgate.errors import MailgateError

_PACKAGE = Path(__file__).resolve().parents[1]
PLACES = (_PACKAGE / "example.toml", _PACKAGE.parent / "config" / "mailgate.toml")


def example_text() -> str:
    for place in PLACES:
        if place.is_file():
            return place.read_text(encoding="utf-8")
    raise MailgateError(
        f"the example config is missing from this installation (looked in {PLACES[0]})"
    )
