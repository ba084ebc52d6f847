"""Pure mail handling: bytes in, values out.

Nothing in this package touches the database, the network or the config
loader; it imports only the standard library, mail-parser and other modules of
``mailgate.mail``.
"""
