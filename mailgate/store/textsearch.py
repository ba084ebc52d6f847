"""The text index of ticket lists: which tickets a search's words match, and how well.

Part of ``store.search`` (its front door): the terms are rendered for the index of
this backend — FTS5 ``MATCH`` on SQLite, ``tsquery`` against ``message_search`` on
PostgreSQL (migration 0007). Words in a script without spaces (Chinese, Japanese)
are matched as substrings (``LIKE``), since neither tokenizer splits them. Only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import peewee as pw

from mailgate.store.db import db as database
from mailgate.store.db import is_sqlite

if TYPE_CHECKING:
    from mailgate.store.search import Filter, TextTerm

# Entries of a thread a person wrote: not our automatic notices, auto-replies or bounces.
SEARCHED_KINDS = ("customer", "agent", "note", "external")
# The expression the GIN index of migration 0007 is built on (PostgreSQL).
_NAME = "regexp_replace(a.filename, '[[:punct:]]+', ' ', 'g')"
_EXACT = -1.0e9  # the score of a ticket found by its number or a Message-ID: first


class Hits(pw.Source):
    """The matches as a derived table ``hits`` (ticket_id, score) peewee can join."""

    def __init__(self, text: str, params: list[Any]) -> None:
        super().__init__(alias="hits")
        self.text, self.params = text, params

    def __sql__(self, ctx: Any) -> Any:
        return ctx.literal("(").sql(pw.SQL(self.text, self.params)).literal(") AS hits")


def hits(where: Filter, cap: int) -> tuple[str, list[Any]]:
    """SQL of (ticket_id, score) per matching ticket, lower score = better; its parameters.

    Among the newest ``cap`` matching messages (and attachments): ranking a million
    matches of a common word costs seconds, and tells nobody anything.
    """
    parts: list[str] = []
    params: list[Any] = []
    words = [term for term in where.terms if not term.cjk]
    substrings = [" ".join(term.words) for term in where.terms if term.cjk]
    like = "".join(
        " AND (m.subject LIKE ? ESCAPE '!' OR m.text LIKE ? ESCAPE '!')" for _ in substrings
    )
    like_params = [p for s in substrings for p in (_like(s), _like(s))]
    kinds = ", ".join(f"'{k}'" for k in SEARCHED_KINDS)
    if words and is_sqlite():
        expression = " ".join(_fts5(term) for term in words)
        parts.append(
            "SELECT m.ticket_id AS ticket_id, MIN(f.score) AS score FROM (SELECT rowid AS id,"
            " bm25(message_fts) AS score FROM message_fts WHERE message_fts MATCH ?"
            f" ORDER BY rowid DESC LIMIT {cap}) AS f"
            f" JOIN message m ON m.id = f.id WHERE m.kind IN ({kinds}){like} GROUP BY m.ticket_id"
        )
        params += [expression, *like_params]
        if not substrings:
            parts.append(
                "SELECT m.ticket_id, MIN(f.score) FROM (SELECT rowid AS id,"
                " bm25(attachment_fts) AS score FROM attachment_fts"
                f" WHERE attachment_fts MATCH ? ORDER BY rowid DESC LIMIT {cap}) AS f"
                " JOIN attachment a ON a.id = f.id"
                " JOIN message m ON m.id = a.message_id"
                " GROUP BY m.ticket_id"
            )
            params.append(expression)
    elif words:
        expression = " & ".join(_tsquery(term) for term in words)
        parts.append(
            "SELECT m.ticket_id AS ticket_id, MIN(-ts_rank(s.doc, q)) AS score"
            " FROM (SELECT message_id, doc FROM message_search"
            " WHERE doc @@ to_tsquery('simple', ?)"
            f" ORDER BY message_id DESC LIMIT {cap}) AS s JOIN message m ON m.id = s.message_id,"
            " to_tsquery('simple', ?) q"
            f" WHERE m.kind IN ({kinds}){like} GROUP BY m.ticket_id"
        )
        params += [expression, expression, *like_params]
        if not substrings:
            parts.append(
                f"SELECT m.ticket_id, MIN(-ts_rank(to_tsvector('simple'::regconfig, {_NAME}), q))"
                " FROM attachment a JOIN message m ON m.id = a.message_id,"
                " to_tsquery('simple', ?) q"
                f" WHERE to_tsvector('simple'::regconfig, {_NAME}) @@ q GROUP BY m.ticket_id"
            )
            params.append(expression)
    elif substrings:
        parts.append(
            "SELECT ticket_id, 0.0 AS score FROM (SELECT m.ticket_id FROM message m"
            f" WHERE m.kind IN ({kinds}){like} ORDER BY m.id DESC LIMIT {cap}) AS f"
            " GROUP BY ticket_id"
        )
        params += like_params
        names = " AND ".join("a.filename LIKE ? ESCAPE '!'" for _ in substrings)
        parts.append(
            "SELECT m.ticket_id, 0.0 FROM attachment a JOIN message m ON m.id = a.message_id"
            f" WHERE {names} GROUP BY m.ticket_id"
        )
        params += [_like(s) for s in substrings]
    if where.number is not None:
        parts.append(f"SELECT id, {_EXACT} FROM ticket WHERE number = ?")
        params.append(where.number)
    if where.message_id is not None:
        parts.append(f"SELECT ticket_id, {_EXACT} FROM message WHERE message_id = ?")
        params.append(where.message_id)
    union = " UNION ALL ".join(parts)
    text = f"SELECT ticket_id, MIN(score) AS score FROM ({union}) AS found GROUP BY ticket_id"
    return (text if is_sqlite() else text.replace("?", "%s")), params


def over(where: Filter, cap: int) -> bool:
    """More than ``cap`` messages match the text (a bounded count: cheap however many)."""
    words = [term for term in where.terms if not term.cjk]
    substrings = [" ".join(term.words) for term in where.terms if term.cjk]
    if words and is_sqlite():
        text = f"SELECT rowid FROM message_fts WHERE message_fts MATCH ? LIMIT {cap + 1}"
        params: list[Any] = [" ".join(_fts5(term) for term in words)]
    elif words:
        text = (
            "SELECT message_id FROM message_search WHERE doc @@ to_tsquery('simple', %s)"
            f" LIMIT {cap + 1}"
        )
        params = [" & ".join(_tsquery(term) for term in words)]
    elif substrings:
        like = " AND ".join(
            "(subject LIKE ? ESCAPE '!' OR text LIKE ? ESCAPE '!')" for _ in substrings
        )
        text = f"SELECT id FROM message WHERE {like} LIMIT {cap + 1}"
        params = [p for s in substrings for p in (_like(s), _like(s))]
        text = text if is_sqlite() else text.replace("?", "%s")
    else:
        return False
    found = database.execute_sql(f"SELECT COUNT(*) FROM ({text}) AS x", params).fetchone()
    return int(found[0]) > cap


def _fts5(term: TextTerm) -> str:
    return '"' + " ".join(term.words) + '"' + ("*" if term.prefix else "")


def _tsquery(term: TextTerm) -> str:
    words = [f"'{w}'" for w in term.words]
    if term.prefix:
        words[-1] += ":*"
    return "(" + " <-> ".join(words) + ")"


def _like(text: str) -> str:
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
