"""Admin pages (``/admin/...``): quarantine, suspended mail, outbox, limits, the config."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
