"""peewee without psycopg2 until a PostgreSQL database is opened.

peewee imports psycopg2 when it is imported itself, whatever database is used:
the driver's modules and its shared libraries (libpq and its own copies of
OpenSSL, Kerberos, LDAP) cost each process about 3.4 MiB of PSS (6.5 MiB RSS;
measured importing peewee with and without it), and ``serve`` and its ingest
worker each paid it on SQLite (bench/memory.py). Imported first by the store
(``store/__init__.py``), this module imports peewee with psycopg2 hidden, and
``postgresql()`` hands peewee the driver when a PostgreSQL database is opened —
what peewee's import would have done (the driver, its extensions and ``Json``,
the adapter's transaction states, the UUID adapter). A process that imported
psycopg2 before the store changes nothing: peewee takes it as always.
"""

from __future__ import annotations

import sys
from typing import Any

_HIDDEN = "psycopg2"

_hide = _HIDDEN not in sys.modules
if _hide:
    sys.modules[_HIDDEN] = None  # type: ignore[assignment]  # import psycopg2 -> ImportError
try:
    import peewee
finally:
    if _hide and sys.modules.get(_HIDDEN, False) is None:
        del sys.modules[_HIDDEN]


def postgresql() -> None:
    """Give peewee psycopg2 (imported now) if its own import went without it."""
    library: Any = peewee  # its stubs do not list the driver's globals
    if library.psycopg2 is not None:
        return
    import psycopg2
    from psycopg2 import extensions
    from psycopg2.extras import Json, register_uuid

    register_uuid()
    adapter = library.Psycopg2Adapter
    adapter.txn_idle = extensions.TRANSACTION_STATUS_IDLE
    adapter.txn_inerror = extensions.TRANSACTION_STATUS_INERROR
    adapter.txn_unknown = extensions.TRANSACTION_STATUS_UNKNOWN
    library.pg_extensions = extensions
    library.Json_pg2 = Json
    library.psycopg2 = psycopg2  # last: peewee reads it as "the driver is there"
