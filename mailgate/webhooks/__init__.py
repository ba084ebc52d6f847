"""Webhooks: ticket events POSTed as signed JSON to the URLs of ``[[webhook]]``.

``queue`` is a reaction (``reactions.finish`` calls it in the transaction of the
change): one outbox row (notice ``webhook``) per event and subscribed hook, its
body serialised once. ``deliver`` sends them — ``serve`` on a thread of its own,
``mailgate outbox flush`` after the mail — with ``X-Mailgate-Signature: sha256=<hex
HMAC-SHA256 of the body>`` under the hook's secret (read at send time from
``secret_env``/``secret_file``, never logged). Retries use the outbox's backoff;
``mailgate outbox list`` shows the deliveries and ``outbox retry`` sends a failed
one again.

The package: ``body`` (event names, the JSON), ``queue``, ``post`` (one HTTP POST and
what its answer means), ``delivery`` (claims, marks, retries). This front door is
what the rest of mailgate uses.
"""

from mailgate.config import WEBHOOK_EVENTS
from mailgate.webhooks.body import event_name
from mailgate.webhooks.delivery import Report, deliver, deliver_for, hook_for
from mailgate.webhooks.post import SIGNATURE_HEADER, TIMEOUT, signature
from mailgate.webhooks.queue import queue

__all__ = [
    "SIGNATURE_HEADER",
    "TIMEOUT",
    "WEBHOOK_EVENTS",
    "Report",
    "deliver",
    "deliver_for",
    "event_name",
    "hook_for",
    "queue",
    "signature",
]
