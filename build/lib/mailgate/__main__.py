"""``python -m mailgate``: the same entry point as the ``mailgate`` console script."""

from mailgate.cli import main

raise SystemExit(main())
