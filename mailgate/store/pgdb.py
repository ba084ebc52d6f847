"""PostgreSQL with fewer round trips and less parsing (``db.open_database`` opens it).

Apart from ``db.py`` (the connection, transactions, faults) as ``sqlitedb.py`` is: what
travels in which round trip, and the statements each connection keeps prepared.
Imports peewee and the standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import peewee as pw
from peewee import PeeweeException


class PostgresDatabase(pw.PostgresqlDatabase):
    """PostgreSQL with fewer round trips: what needs no answer travels with what does.

    peewee runs the driver in autocommit mode and sends ``BEGIN`` on its own, a round
    trip of its own for every transaction (four or five per mail). Here ``begin()``
    only notes it, and the first statement of the transaction carries it (psycopg2
    sends ``BEGIN; INSERT …`` as one simple query, whose result is the last
    statement's). A transaction that ran no statement sends neither BEGIN nor COMMIT.
    ``SET LOCAL`` settings (``write_transaction(durable=False)``) and writes whose
    result nobody reads (``sql.later``: events, attachments, counters, the receipt's
    last update) travel the same way, with the next statement or the COMMIT; an error
    in one of them is raised there, still inside the transaction, which rolls back.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = threading.local()  # peewee keeps one connection per thread

    def _take_pending(self) -> tuple[str, bool]:
        """(the statements waiting to be sent, whether BEGIN is among them)."""
        text: str = getattr(self._pending, "text", "")
        unsent: bool = getattr(self._pending, "unsent_begin", False)
        self._pending.text, self._pending.unsent_begin = "", False
        return text, unsent

    def _take_after_commit(self) -> list[tuple[str, Callable[[], None]]]:
        after: list[tuple[str, Callable[[], None]]] = getattr(self._pending, "after", [])
        self._pending.after = []
        return after

    def send_after_commit(self, statement: str, sent: Callable[[], None]) -> None:
        """Send ``statement`` right after this transaction's COMMIT, in the same round
        trip (the server runs it once the COMMIT succeeded); ``sent()`` is called when
        it ran. A rollback, or a COMMIT that fails, drops it unsent."""
        after: list[tuple[str, Callable[[], None]]] = getattr(self._pending, "after", [])
        self._pending.after = [*after, (statement, sent)]

    def execute_alone(self, sql: str, params: Any = None) -> Any:
        """``sql`` (``?`` for parameters) as the transaction's first statement, committing
        on its own: sent without BEGIN, the server runs it in a transaction of its own
        and commits it (durably) before answering — one round trip instead of two
        (prepared from the text's second use, as ``execute_prepared``). The transaction
        then goes on as if it had just begun. Inside a transaction that already ran
        something (or a nested one) it is simply one more statement of it."""
        pending = getattr(self._pending, "text", "")
        if self.transaction_depth() != 1 or pending != "BEGIN; ":
            return self.execute_sql(_plain(sql), params)
        self._pending.text = ""
        try:
            # Prepared like store.sql's statements; outside a transaction block, so the
            # PREPARE needs no savepoint (the server runs ``PREPARE …; EXECUTE …`` as one
            # implicit transaction, committed when both succeeded).
            return self.execute_prepared(sql, params, alone=True)
        finally:
            self._pending.text, self._pending.unsent_begin = "BEGIN; ", True

    def _initialize_connection(self, conn: Any) -> None:
        """Values this session stores compressed (a queued notice's snapshot, a long mail's
        texts: anything over about 2 KB) are compressed with LZ4 rather than the server's
        default pglz: a third of the server's CPU of an outbox row's INSERT (measured:
        125–160 → 100–120 µs), and quicker to read back. One round trip per connection;
        a server without LZ4 (built without it, before 14) keeps its default."""
        if (self.server_version or 0) < 140000:
            return
        cursor = conn.cursor()
        try:
            cursor.execute("SET default_toast_compression = 'lz4'")
        except pw.psycopg2.Error:  # type: ignore[attr-defined]  # not built with LZ4
            pass
        finally:
            cursor.close()

    def begin(self, isolation_level: Any = None) -> None:
        if isolation_level is not None or getattr(self, "_isolation_level", None):
            super().begin(isolation_level)
            return
        if self.is_closed():
            # Connecting resets peewee's per-thread state (the open transactions among it):
            # it must happen now, not with the first statement.
            self.connect()
        self._pending.text, self._pending.unsent_begin = "BEGIN; ", True

    def defer(self, statement: str, params: Any = None) -> None:
        """Send ``statement`` with the transaction's next statement (or its COMMIT); at
        once when no transaction is open."""
        if self.transaction_depth() == 0:
            self.execute_sql(statement, params)
            return
        if params is not None:
            statement = self._connection_state().mogrifier.mogrify(statement, params).decode()
        pending: str = getattr(self._pending, "text", "")
        self._pending.text = f"{pending}{statement}; "

    def defer_prepared(self, text: str, params: tuple[Any, ...]) -> None:
        """``defer`` for a text of ``store.sql`` (``?`` for parameters), prepared as
        ``execute_prepared`` prepares it: from its second use on, what travels with the
        next statement is ``EXECUTE name(values)`` — the server neither parses nor plans
        the INSERT or UPDATE again (measured: 20–45 µs of its CPU each). The PREPARE
        itself runs at once, in the round trip of that second use (once per connection
        and text), so a text the server cannot prepare is found out there and sent as
        text from then on, never failing the transaction later."""
        if self.transaction_depth() == 0:
            self.execute_prepared(text, params)
            return
        statements = self._statements()
        name = statements.get(text, "")
        if name:
            marks = ", ".join("%s" for _ in params)
            self.defer(f"EXECUTE {name}({marks})" if params else f"EXECUTE {name}", params)
        elif name == "" and text in statements:
            self.execute_prepared(text, params)  # prepares it now: one round trip, once
        else:
            if name == "" and len(statements) < self.PREPARED_MAX:
                statements[text] = ""  # seen once: prepared when it comes again
            self.defer(_plain(text), params)

    def _connection_state(self) -> Any:
        """This thread's state for its current connection: ``prepared`` (text → name; ""
        seen once, None: not preparable, sent as text), ``named`` (names given), and
        ``mogrifier`` (a cursor kept for ``mogrify``: a new one for every deferred write
        cost a third of its time). A new connection starts afresh."""
        state = self._pending
        connection = self.connection()  # type: ignore[no-untyped-call]
        if getattr(state, "prepared_on", None) is not connection:
            state.prepared_on, state.prepared, state.named = connection, {}, 0
            state.mogrifier = connection.cursor()
        return state

    def _statements(self) -> dict[str, str | None]:
        statements: dict[str, str | None] = self._connection_state().prepared
        return statements

    # Prepared statements a connection keeps at most (IN lists of every length are texts
    # of their own; past this many the rest is sent as text).
    PREPARED_MAX = 200

    def execute_prepared(self, text: str, params: tuple[Any, ...], *, alone: bool = False) -> Any:
        """``text`` (``?`` for parameters, as ``store.sql`` writes it) as a prepared
        statement of this connection from its second use on: the server parses and
        plans it once instead of every time (measured: a third to a fifth of the
        server's CPU for the hot path's joins). The first PREPARE travels with that
        use (``PREPARE …; EXECUTE …``), inside a savepoint when a transaction is open,
        so a text the server cannot prepare (a parameter whose type it cannot infer:
        SQLSTATE class 42) costs a ROLLBACK TO SAVEPOINT and is sent as plain text from
        then on; any other error is the statement's own and raised as it was before.
        (Session state: a pooler in transaction mode must not sit in between — nor may
        it for the advisory locks of ``store/inflight.py``.) ``alone``: sent with no
        transaction block open on the server (``execute_alone``): no savepoint."""
        plain = _plain(text)
        state = self._pending
        statements = self._statements()
        name = statements.get(text, "")
        if text not in statements:  # the first use: plain; prepared when it comes again
            if len(statements) < self.PREPARED_MAX:
                statements[text] = ""
            return self.execute_sql(plain, params)
        if name is None:
            return self.execute_sql(plain, params)
        if name:
            marks = ", ".join("%s" for _ in params)
            return self.execute_sql(
                f"EXECUTE {name}({marks})" if params else f"EXECUTE {name}", params
            )
        parts = text.split("?")
        if len(parts) - 1 != len(params):
            statements[text] = None
            return self.execute_sql(plain, params)
        state.named += 1
        name = f"mailgate_{state.named}"
        body = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        execute = (
            f"EXECUTE {name}({', '.join('%s' for _ in params)})" if params else f"EXECUTE {name}"
        )
        prepare = f"PREPARE {name} AS {body.replace('%', '%%')}"
        inside = self.transaction_depth() > 0 and not alone
        if inside:
            sent = f"SAVEPOINT mp; {prepare}; RELEASE SAVEPOINT mp; {execute}"
        else:
            sent = f"{prepare}; {execute}"
        try:
            cursor = self.execute_sql(sent, params)
        except PeeweeException as exc:
            statements[text] = None  # (PREPARE outlives a rollback: never this name again)
            if not (pgcode(exc) or "").startswith("42"):
                raise  # the statement's own error (a deadlock, a taken key…): as before
            if inside:
                try:
                    super().execute_sql("ROLLBACK TO SAVEPOINT mp")  # type: ignore[no-untyped-call]
                except PeeweeException:
                    raise exc from None
            return self.execute_sql(plain, params)
        statements[text] = name
        return cursor

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        pending, _ = self._take_pending()
        if pending:
            # peewee always passes parameters, so psycopg2 reads % in the whole text.
            sql = pending.replace("%", "%%") + sql
        return super().execute_sql(sql, params)  # type: ignore[no-untyped-call]

    def commit(self) -> None:
        pending, unsent_begin = self._take_pending()
        after = self._take_after_commit()
        if unsent_begin and not pending.removeprefix("BEGIN; "):
            pending = ""  # nothing ran: nothing to commit
            if not after:
                return
            text = "; ".join(statement for statement, _ in after)
        else:
            text = "; ".join(["COMMIT", *(statement for statement, _ in after)])
        if pending or after:
            # The server runs the statements after COMMIT only once it succeeded.
            super().execute_sql(pending.replace("%", "%%") + text)  # type: ignore[no-untyped-call]
            for _, sent in after:
                sent()
            return
        super().commit()

    def rollback(self) -> None:
        _, unsent_begin = self._take_pending()  # writes not sent yet: simply dropped
        self._take_after_commit()
        if not unsent_begin:
            super().rollback()

    def close(self) -> bool:
        self._take_pending()
        self._take_after_commit()
        return bool(super().close())


def _plain(text: str) -> str:
    """A text of ``store.sql`` (``?`` for parameters) as psycopg2 takes it."""
    return text.replace("%", "%%").replace("?", "%s")


def pgcode(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a peewee error (the driver's error is its context)."""
    seen: BaseException | None = exc
    for _ in range(3):
        if seen is None:
            break
        code = getattr(seen, "pgcode", None)
        if code:
            return str(code)
        seen = seen.__cause__ or seen.__context__
    return None
