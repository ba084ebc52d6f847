"""The short error tree of mailgate.

Dispositions of a mail (created, duplicate, quarantined…) are returned values,
never exceptions. Exceptions are for what the caller must react to::

    MailgateError
    ├── ConfigError          the config file is wrong; names the key and the file
    ├── UsageError           a command was called wrongly (unknown ticket, bad value)
    ├── TemporaryFailure     could not record/send now; the sender should retry (EX_TEMPFAIL)
    └── TemplateError        a notice template does not render; names file and line

``mailgate.cli`` turns each into one clear line and an exit status; nothing here
imports anything of mailgate.
"""

from __future__ import annotations


class MailgateError(Exception):
    """Base of every error mailgate raises on purpose."""


class ConfigError(MailgateError):
    """The configuration is invalid; the message names the key and the file."""


class UsageError(MailgateError):
    """An admin command got an argument it cannot act on."""


class TemporaryFailure(MailgateError):
    """The work could not be done now (database down, disk full); retry later."""


class TemplateError(MailgateError):
    """A notice template failed to render; the message names the file and line."""
