"""The JSON API (``/api/v1/...``) with per-agent bearer tokens, and its OpenAPI schema."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
