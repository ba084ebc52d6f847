"""Several gateway processes on one PostgreSQL give exactly the result of one process.

Replies arrive while their parent is still being processed by the other process
(``tests/replay.py``); the grouping of Message-IDs into tickets must be the one a
single process makes of the same mails in the same order, with one
acknowledgement per ticket, final when the last SMTP answer came.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests import replay

MAILS = 100
PARTS = 40  # each original takes a while: its replies meet it in flight


@pytest.mark.postgres
def test_two_serve_processes_thread_replies_exactly_as_one_process_does(
    tmp_path: Path, database_url: str
) -> None:
    mails = replay.conversations(MAILS, parts=PARTS)
    replies = sum(m.is_reply for m in mails)
    assert replies >= MAILS // 3  # the corpus really has replies right behind their parents
    base = os.environ["MAILGATE_TEST_DATABASE_URL"]
    single_schema = f"single_{uuid.uuid4().hex[:10]}"
    single_url = replay.new_schema(base, single_schema)
    try:
        with replay.gateways(tmp_path / "one", single_url, 1) as ports:
            replay.replay(mails, ports, single_url)
        one = replay.result(single_url)
    finally:
        replay.drop_schema(base, single_schema)
    with replay.gateways(tmp_path / "two", database_url, 2) as ports:
        replay.replay(mails, ports, database_url)
    two = replay.result(database_url)  # read after the last answer: no repair job ran

    # One process threads every conversation onto its own ticket (the reference is right).
    assert one.misthreaded(mails) == (0, 0)
    assert len(one.groups) == len({m.conversation for m in mails})
    assert two.misthreaded(mails) == (0, 0)
    assert two.groups == one.groups
    assert two.unfinished == 0
    assert sorted(two.acknowledgements.values()) == [1] * len(two.groups)
