"""Property-based fuzzing of the whole intake: hostile and broken mail never breaks ingest().

Kept small and deterministic here (derandomized: the same examples on every run,
so CI is stable); ``python bench/fuzz.py`` runs many more and prints what it finds.
Each property: no exception escapes ``ingest()``, every input ends as exactly one
finished receipt, and nothing is answered "try again later" while the database and
the disk are fine.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailgate.context import Context
from mailgate.intake import ingest
from tests import mailfuzz
from tests.corpus import corpus_dir

FAST = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


# Found by the long run: a raw 8-bit byte as the charset of an encoded word made the
# header peek before storage raise — the listener answered 451 and the pipe 75, for ever.
UNSTORABLE = b"From: =?\xf8?Q?n?=\r\n"


@FAST
@given(raw=mailfuzz.mutated(mailfuzz.seed_mails()))
@example(raw=UNSTORABLE)
def test_mutated_mail_always_ends_as_one_receipt(ctx: Context, raw: bytes) -> None:
    assert mailfuzz.check(ctx, raw) is None


@FAST
@given(raw=mailfuzz.generated_mime())
def test_generated_mime_always_ends_as_one_receipt(ctx: Context, raw: bytes) -> None:
    assert mailfuzz.check(ctx, raw) is None


@FAST
@given(data=st.data())
def test_mutated_real_world_mail_always_ends_as_one_receipt(ctx: Context, data: st.DataObject) -> None:
    seeds = mailfuzz.corpus_mails(corpus_dir(), limit=200)  # skips when the corpus is absent
    raw = data.draw(mailfuzz.mutated(seeds))
    assert mailfuzz.check(ctx, raw) is None


FORWARDED_WITH_8BIT_BOUNDARY = (
    b"From: a@b.example\r\nTo: support@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
    b"Content-Type: message/rfc822\r\n\r\nFrom: x@y.example\r\n"
    b'Content-Type: multipart/mixed; boundary="c\xfd"\r\n\r\n--c\xfd\r\n'
    b"Content-Type: text/plain\r\n\r\nbody\r\n--c\xfd--\r\n--b--\r\n"
)


def test_a_forwarded_mail_with_an_8bit_boundary_becomes_a_ticket(ctx: Context) -> None:
    assert ingest(ctx, FORWARDED_WITH_8BIT_BOUNDARY, source="smtp").action == "created"


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@b.example\r\nTo: support@example.org\r\nSubject: =?\xc3\xb8?Q?n?=\r\n\r\nx\r\n",
        b"From: a@b.example\r\nTo: support@example.org\r\n"
        b"Content-Type: text/plain; charset=\x00us-ascii\r\n\r\nHello\r\n",
        b"From: a@b.example\r\nTo: support@example.org\r\n"
        b"Date: Tue, 26 Sep 2000 12:23:03 -0555555555555555555500\r\n\r\nHello\r\n",
    ],
    ids=["8-bit charset name", "NUL in the charset parameter", "a 20-digit time zone"],
)
def test_a_broken_charset_label_or_date_still_makes_a_ticket(
    ctx: Context, raw: bytes
) -> None:
    """Found by the long run: such mails were quarantined as a 'parser error'."""
    assert ingest(ctx, raw, source="smtp").action == "created"
