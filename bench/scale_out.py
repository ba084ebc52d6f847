"""Benchmark: the same mails through 1, 2 and 4 `mailgate serve` processes on one PostgreSQL.

    python bench/scale_out.py [--postgres URL] [--count 2000] [--processes 1 2 4]

Conversations (originals with up to three replies right behind them, so replies
arrive while their parent is still being processed elsewhere) are replayed over
SMTP by ``tests/replay.py``: mail i+1 leaves once mail i is stored (its
receipt committed), so every run sees the same arrival order. For each number
of processes it prints the rate, the rate against one process (same run), the
mis-threaded replies (on another conversation's ticket / opened a ticket of
their own), whether the grouping is identical to one process's, the tickets
more than one process made, and the duplicate acknowledgements. Each run gets a schema of its own, dropped after.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("MAILGATE_TEST_DATABASE_URL"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    if not args.postgres:
        parser.error("--postgres URL (or MAILGATE_TEST_DATABASE_URL) is needed")
    mails = replay.conversations(args.count)
    replies = sum(m.is_reply for m in mails)
    print(
        f"{len(mails)} mails ({replies} replies) in "
        f"{len({m.conversation for m in mails})} conversations, over SMTP\n"
    )
    work = Path(tempfile.mkdtemp(prefix="mailgate-scale-"))
    reference: replay.Result | None = None
    base_rate = 0.0
    print(
        f"{'processes':>9} {'mails/s':>8} {'÷ 1':>5} {'wrong':>6} {'new':>5} {'same':>5}"
        f" {'extra':>5} {'acks×2':>6}"
    )
    for count in args.processes:
        schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
        url = replay.new_schema(args.postgres, schema)
        try:
            with replay.gateways(work / f"p{count}", url, count) as ports:
                seconds = replay.replay(mails, ports, url)
            result = replay.result(url)
        finally:
            replay.drop_schema(args.postgres, schema)
        rate = len(mails) / seconds
        if reference is None:
            reference, base_rate = result, rate
        wrong, new = result.misthreaded(mails)
        same = "yes" if result.groups == reference.groups else "NO"
        print(
            f"{count:>9} {rate:>8.1f} {rate / base_rate:>5.2f} {wrong:>6} {new:>5} {same:>5}"
            f" {len(result.groups) - len(reference.groups):>5}"
            f" {result.duplicate_acknowledgements:>6}"
            + (f"  ({result.unfinished} not processed)" if result.unfinished else "")
        )


if __name__ == "__main__":
    main()
