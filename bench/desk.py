"""Benchmark of issue 13's desk: importing history against ingesting live mail; the spam check.

    python bench/desk.py [--count 2000]

Measured in this one run, reported as ratios (the machines are shared and noisy):

* ``mailgate import`` (source ``import``: no notice rendered or queued, no breaker count,
  no SLA reaction) versus live ingest of the same mails into a fresh SQLite database
  (acknowledgement and team notices rendered and queued in each transaction);
* live ingest of mails that carry a spam verdict header below the threshold (read and
  judged, then processed as usual) versus the same mails without it: what reading the
  spam headers costs per mail;
* suspending spam (no ticket, no notice) versus ingesting the same mails as tickets.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import corpus
from bench.ingest import fresh, rate
from mailgate import store
from mailgate.envelope import Envelope
from mailgate.intake import ingest
from mailgate.store import models


def with_header(mails: list[bytes], header: bytes) -> list[bytes]:
    return [header + b"\r\n" + raw for raw in mails]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    mails = corpus(args.count, attachment_every=0)
    root = Path(tempfile.mkdtemp(prefix="mailgate-bench-desk-"))
    via_mta = Envelope(via_mta=True)
    try:
        print(f"{args.count} mails, SQLite, one process")
        ctx = fresh(root / "live")
        live = rate("live ingest (notices queued)", mails,
                    lambda raw: ingest(ctx, raw, source="pipe", envelope=via_mta))  # fmt: skip
        queued = models.OutboxItem.select().count()
        store.close()
        ctx = fresh(root / "import")
        quiet = rate("import (no notice, no breaker)", mails,
                     lambda raw: ingest(ctx, raw, source="import"))  # fmt: skip
        assert models.OutboxItem.select().count() == 0
        store.close()
        ctx = fresh(root / "ham")
        ham = with_header(mails, b"X-Spam-Status: No, score=1.2 required=5.0")
        judged = rate("live ingest, spam header read (ham)", ham,
                      lambda raw: ingest(ctx, raw, source="pipe", envelope=via_mta))  # fmt: skip
        store.close()
        ctx = fresh(root / "spam")
        spam = with_header(mails, b"X-Spam-Flag: YES")
        suspended = rate("spam suspended (no ticket, no notice)", spam,
                         lambda raw: ingest(ctx, raw, source="pipe", envelope=via_mta))  # fmt: skip
        assert models.Ticket.select().count() == 0
        store.close()
        print(f"  live ingest queued {queued} notices; the import queued none")
        print(f"  import / live ingest:                      {quiet / live:5.2f}")
        print(f"  ham with spam header / live ingest:        {judged / live:5.2f}")
        print(f"  suspending spam / live ingest:             {suspended / live:5.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
