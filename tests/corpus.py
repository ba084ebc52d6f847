"""Where the optional real-world corpus lives (``../shared/corpus`` beside the repository).

Tests that read it skip cleanly where it is absent (a user's fresh clone);
``MAILGATE_CORPUS`` points elsewhere when it lives somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def corpus_dir() -> Path:
    """The corpus root, or skip the calling test when it is not there."""
    override = os.environ.get("MAILGATE_CORPUS")
    root = Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "corpus"
    if not root.is_dir():
        pytest.skip(f"real-world corpus not found at {root} (optional)")
    return root
