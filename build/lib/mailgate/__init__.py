"""mailgate: an email-driven ticketing gateway.

Mail arrives through a transport (SMTP/LMTP listener, IMAP poller, MTA pipe),
goes through the one front door ``mailgate.ingest.ingest()``, and becomes a
ticket or a threaded reply; notices leave through the outbox.
"""

__version__ = "0.1.0"
