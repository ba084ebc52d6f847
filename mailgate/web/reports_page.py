"""Reports (``/reports``): the charts and tables of ``mailgate report`` for a date range."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
