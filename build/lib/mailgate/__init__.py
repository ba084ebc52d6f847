"""mailgate: an email-driven ticketing gateway.

Mail arrives through a transport (SMTP/LMTP listener, IMAP poller, MTA pipe),
goes through the one front door ``mailgate.intake.ingest()``, and becomes a
ticket or a threaded reply; ticket state changes only through
``mailgate.lifecycle``; notices leave through the outbox. The README's "How mail
flows" maps every step to its module.
"""

__version__ = "0.1.0"
