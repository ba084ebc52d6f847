"""``/metrics`` on the desk's port: serve's Prometheus metrics, like ``[metrics] listen``.

No login, as on ``[metrics] listen``: a scraper has no session. The desk's port
belongs behind the reverse proxy, which passes ``/metrics`` only from the scraper
(README: "The web desk behind a proxy"). Without metrics (``mailgate web`` alone,
where nothing is counted) the page is not there (404).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics(request: Request) -> Response:
    found = request.app.state.metrics
    if found is None:
        raise HTTPException(404, "there are no metrics here: mailgate serve shows them")
    return Response(found.render(), media_type=CONTENT_TYPE)


routes: list[BaseRoute] = [Route("/metrics", metrics, methods=["GET"])]
