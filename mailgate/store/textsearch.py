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
# Words without spaces (Chinese, Japanese) are a scan (LIKE): of the newest this many
# messages (about 3 weeks at 1,000,000 a year). The whole history cost ~0.5 s a search.
SCANNED = 50_000


class Hits(pw.Source):
    """The matches as a derived table ``hits`` (ticket_id, score) peewee can join."""

    def __init__(self, text: str, params: list[Any]) -> None:
        super().__init__(alias="hits")
        self.text, self.params = text, params

    def __sql__(self, ctx: Any) -> Any:
        return ctx.literal("(").sql(pw.SQL(self.text, self.params)).literal(") AS hits")


def hits(where: Filter, cap: int) -> tuple[str, list[Any], str]:
    """SQL of (ticket_id, score) per matching ticket, lower score = better; its
    parameters; and how the search was cut ("" = not: every match, best first).

    Words: when at most ``cap`` messages match, all of them are ranked (bm25 on
    SQLite, ``ts_rank`` on PostgreSQL). When more match — a common word — the newest
    ``cap`` matching messages are taken newest first, unranked ("newest"): ranking
    2,000 matches of a common word cost 50–250 ms on 8 busy browsers' 2 cores, and
    the best of an arbitrary 2,000 of a million tells nobody much. Words without
    spaces (Chinese, Japanese) are a scan, so only the newest ``SCANNED`` messages
    are looked at ("window" when there are older ones).
    """
    parts: list[str] = []
    params: list[Any] = []
    cut = ""
    words = [term for term in where.terms if not term.cjk]
    substrings = [" ".join(term.words) for term in where.terms if term.cjk]
    like = "".join(
        " AND (m.subject LIKE ? ESCAPE '!' OR m.text LIKE ? ESCAPE '!')" for _ in substrings
    )
    like_params = [p for s in substrings for p in (_like(s), _like(s))]
    kinds = ", ".join(f"'{k}'" for k in SEARCHED_KINDS)
    if words and is_sqlite():
        expression = " ".join(_fts5(term) for term in words)
        # One pass over the index for the newest matches (a long prefix such as
        # ``termin*`` merges every term it covers: ~90 ms however few are kept), handed
        # back as one text ("id,id,…"): 2,001 rows made into Python objects and a JSON
        # list again cost more than the pass itself for a common word.
        # The oldest of the cap + 1 is left out below (the newest ``cap`` are kept).
        count, oldest, ids = database.execute_sql(
            "SELECT COUNT(*), MIN(id), group_concat(id) FROM (SELECT rowid AS id"
            f" FROM message_fts WHERE message_fts MATCH ? ORDER BY rowid DESC LIMIT {cap + 1})",
            [expression],
        ).fetchone()
        if int(count) > cap:
            cut = "newest"
            parts.append(
                "SELECT m.ticket_id AS ticket_id, MIN(-m.id) AS score FROM json_each(?) AS f"
                " JOIN message m ON m.id = f.value"
                f" WHERE m.id > ? AND m.kind IN ({kinds}){like} GROUP BY m.ticket_id"
            )
            params += [f"[{ids}]", int(oldest), *like_params]
        else:
            parts.append(
                "SELECT m.ticket_id AS ticket_id, MIN(f.score) AS score FROM (SELECT rowid AS id,"
                " bm25(message_fts) AS score FROM message_fts WHERE message_fts MATCH ?"
                f" ORDER BY rowid DESC LIMIT {cap}) AS f"  # a subquery kept whole: bm25 needs it
                f" JOIN message m ON m.id = f.id WHERE m.kind IN ({kinds}){like}"
                " GROUP BY m.ticket_id"
            )
            params += [expression, *like_params]
        if not substrings:
            score = "MIN(-m.id)" if cut else "MIN(f.score)"
            parts.append(
                f"SELECT m.ticket_id, {score} FROM (SELECT rowid AS id,"
                " bm25(attachment_fts) AS score FROM attachment_fts"
                f" WHERE attachment_fts MATCH ? ORDER BY rowid DESC LIMIT {cap}) AS f"
                " JOIN attachment a ON a.id = f.id"
                " JOIN message m ON m.id = a.message_id"
                " GROUP BY m.ticket_id"
            )
            params.append(expression)
    elif words:
        expression = " & ".join(_tsquery(term) for term in words)
        cut = "newest" if over(where, cap) else ""
        score = "MIN(-m.id)" if cut else "MIN(-ts_rank(s.doc, q))"
        parts.append(
            f"SELECT m.ticket_id AS ticket_id, {score} AS score"
            " FROM (SELECT message_id, doc FROM message_search"
            " WHERE doc @@ to_tsquery('simple', ?)"
            f" ORDER BY message_id DESC LIMIT {cap}) AS s JOIN message m ON m.id = s.message_id,"
            " to_tsquery('simple', ?) q"
            f" WHERE m.kind IN ({kinds}){like} GROUP BY m.ticket_id"
        )
        params += [expression, expression, *like_params]
        if not substrings:
            rank = f"-ts_rank(to_tsvector('simple'::regconfig, {_NAME}), q)"
            parts.append(
                f"SELECT m.ticket_id, MIN({'-m.id' if cut else rank})"
                " FROM attachment a JOIN message m ON m.id = a.message_id,"
                " to_tsquery('simple', ?) q"
                f" WHERE to_tsvector('simple'::regconfig, {_NAME}) @@ q GROUP BY m.ticket_id"
            )
            params.append(expression)
    elif substrings:
        cut = "window" if _older_than_window() else ""
        parts.append(
            "SELECT ticket_id, MIN(-id) AS score FROM (SELECT m.ticket_id, m.id FROM message m"
            f" WHERE m.id > (SELECT MAX(id) FROM message) - {SCANNED}"
            f" AND m.kind IN ({kinds}){like} ORDER BY m.id DESC LIMIT {cap}) AS f"
            " GROUP BY ticket_id"
        )
        params += like_params
        names = " AND ".join("a.filename LIKE ? ESCAPE '!'" for _ in substrings)
        # CROSS JOIN: the attachments first (SQLite took the million messages first, for
        # an index lookup of attachments each: 150 ms with no attachment at all).
        parts.append(
            "SELECT m.ticket_id, MIN(-m.id) FROM attachment a CROSS JOIN message m"
            f" WHERE m.id = a.message_id AND {names} GROUP BY m.ticket_id"
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
    return (text if is_sqlite() else text.replace("?", "%s")), params, cut


def _older_than_window() -> bool:
    """There are messages older than the newest ``SCANNED`` (two index lookups)."""
    found = database.execute_sql(  # each alone, so each is one index lookup
        "SELECT (SELECT MAX(id) FROM message) - (SELECT MIN(id) FROM message)"
    ).fetchone()
    return found is not None and found[0] is not None and int(found[0]) >= SCANNED


def over(where: Filter, cap: int) -> bool:
    """More than ``cap`` messages match the words (a bounded count: cheap however many)."""
    words = [term for term in where.terms if not term.cjk]
    if not words:
        return False
    if is_sqlite():
        text = f"SELECT rowid FROM message_fts WHERE message_fts MATCH ? LIMIT {cap + 1}"
        params: list[Any] = [" ".join(_fts5(term) for term in words)]
    else:
        text = (
            "SELECT message_id FROM message_search WHERE doc @@ to_tsquery('simple', %s)"
            f" LIMIT {cap + 1}"
        )
        params = [" & ".join(_tsquery(term) for term in words)]
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
