"""One ticket (``/tickets/{number}``): the thread, attachments, and every action on it."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
