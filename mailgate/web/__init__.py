"""The web desk: the queue, tickets, reports and admin pages in a browser, the JSON API.

Front door: ``create_app(ctx)`` (the ASGI application), ``start(ctx, metrics)``
(serve it in the running event loop), ``run(ctx)`` (``mailgate web``: the desk
alone); ``serve`` starts it in a child process at a lower CPU priority
(``web.process.spawn``). Every action goes through the same functions as the CLI
and the mail commands (``mailgate.admin``, ``lifecycle``), so a change made here
leaves the same events and notices. Queries come from ``mailgate.search`` and
``mailgate.reports``.

Modules: ``app`` (routes and middleware), ``server`` (uvicorn in our loop),
``process`` (the desk as serve's child), ``session`` (who is logged in, CSRF),
``auth`` (logins), ``access`` (who may see what),
``queue``/``ticket``/``reports_page``/``admin_pages`` (pages), ``api`` (JSON).
"""

from __future__ import annotations

from mailgate.web.app import create_app
from mailgate.web.server import Running, run, start

__all__ = ["Running", "create_app", "run", "start"]
