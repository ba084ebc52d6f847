"""Notices: the mail mailgate writes because something happened to a ticket.

The front door. A transaction's events go through ``rules.py`` (events → which
notice, to whom: a readable table), ``breaker.py`` (circuit breaker and
recipient health: who may get automatic mail now), ``render.py`` (the templates
and their variables), ``queue.py`` (subject and text rendered, outbox rows
holding a snapshot, in the same transaction) and ``snapshot.py`` (the snapshot,
composed into the mail when the outbox sends it; ``mail_of`` shows it before).
Delivery is ``mailgate.outbox``'s job; checking and previewing templates is
``mailgate.admin.templates``'.

A new notice kind: a rule in ``rules.py``, a template set in
``mailgate/templates/``, a ``[mailbox.notices]`` switch, its documentation in
``mailgate/templates/README.md``.
"""

from mailgate.notices.agentqueue import send_digests, send_queue
from mailgate.notices.breaker import prune, record_bounce
from mailgate.notices.loginlink import send_login_link
from mailgate.notices.queue import compose_now, queue
from mailgate.notices.render import (
    CUSTOMER_FACING,
    SHIPPED_TEMPLATES,
    STAFF_KINDS,
    TEMPLATE_FILES,
    TEMPLATE_KINDS,
    Rendered,
    environment,
    next_templates,
    render,
    sample_variables,
    search_path,
    switch_templates,
    template_line,
    variables_for,
)
from mailgate.notices.rules import Intent, People, people_of
from mailgate.notices.snapshot import mail_of

__all__ = [
    "CUSTOMER_FACING",
    "SHIPPED_TEMPLATES",
    "STAFF_KINDS",
    "TEMPLATE_FILES",
    "TEMPLATE_KINDS",
    "Intent",
    "People",
    "Rendered",
    "compose_now",
    "environment",
    "mail_of",
    "next_templates",
    "people_of",
    "prune",
    "queue",
    "record_bounce",
    "render",
    "sample_variables",
    "search_path",
    "send_digests",
    "send_login_link",
    "send_queue",
    "switch_templates",
    "template_line",
    "variables_for",
]
