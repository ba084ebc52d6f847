"""Tickets on behalf of someone else: an agent's forward, ``tickets create``, web forms.

The front door. ``forward`` reads an authentic agent's new mail for the customer it
is about (an attached or inline forwarded mail, or ``#requester``) and opens the
ticket's first messages; ``forms`` takes the requester of a web form's mail from
Reply-To; ``create`` is ``mailgate tickets create``: an agent starts the conversation.
Ticket state goes through the lifecycle, notices through ``reactions.finish``.
"""

from mailgate.onbehalf.create import Created, create_ticket
from mailgate.onbehalf.forms import form_requester, is_form_sender
from mailgate.onbehalf.forward import Behalf, open_first_messages, read

__all__ = [
    "Behalf",
    "Created",
    "create_ticket",
    "form_requester",
    "is_form_sender",
    "open_first_messages",
    "read",
]
