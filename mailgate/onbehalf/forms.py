"""Web forms: a mail From ``noreply@`` whose Reply-To names the person who filled the form in.

Contact forms (WordPress, form services, shop systems) send From an address of their
own and put the visitor in Reply-To. The visitor is the requester; the form's own
address never gets anything (``is_form_sender`` also keeps notices from it when a
form sent no usable Reply-To). ``mailbox.form_senders`` lists local parts
(``noreply``), addresses (``forms@shop.example``) or patterns (``*@forms.example``).
Pure: imports config and ``mailgate.mail`` only.
"""

from __future__ import annotations

from mailgate.config import Config, Mailbox, base_address
from mailgate.mail.parse import Address, ParsedMail


def is_form_sender(address: str, mailbox: Mailbox) -> bool:
    return mailbox.is_form_sender(address)


def form_requester(
    mail: ParsedMail, sender: Address | None, mailbox: Mailbox, config: Config
) -> tuple[Address | None, str]:
    """The requester of a web form's mail (its Reply-To) and the trace line; else as given."""
    if sender is None or not is_form_sender(sender.email, mailbox):
        return sender, ""
    if len(mail.reply_to) != 1:
        return sender, f"From {sender.email} is a web form without one Reply-To: no notice to it"
    person = mail.reply_to[0]
    email = person.email.lower()
    if base_address(email) in config.own_addresses or config.agent_for(email) is not None:
        return sender, f"From {sender.email} is a web form; its Reply-To is ours: ignored"
    return (
        Address(email, person.name),
        f"From {sender.email} is a web form: the requester is its Reply-To {email}",
    )
