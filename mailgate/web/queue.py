"""The queue (``GET /``): filters, full-text search, sort, saved views, pages."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
