"""SQLite pages written per mail by ``ingest()``, by table and index, trees side by side.

    python bench/wal_pages.py [--count 300] TREE [TREE ...]

Every page a commit writes is one frame of the WAL file. Each tree runs in a child
process (``PYTHONPATH`` = the tree): 300 realistic mails are ingested into a fresh
SQLite database after a warm-up, with the automatic checkpoint off, so the WAL holds
every frame those mails wrote. After each mail, its new frames' page numbers are
named with ``dbstat`` (which table or index owns each page then: a page the free
list hands from one B-tree to another counts for the right one), and counted per
mail: in all, per commit, and per table or index. Deterministic but for random keys
(Message-IDs): the same tree gives the same counts within a few hundredths.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path


def frames(data: bytes, start: int) -> tuple[list[tuple[int, bool]], int]:
    """(page number, whether the frame ends a commit) of the WAL's frames from offset
    ``start`` (0: the first), and the offset after the last whole one."""
    if len(data) < 32:
        return [], start
    page_size = struct.unpack(">I", data[8:12])[0]
    salt = data[16:24]
    found: list[tuple[int, bool]] = []
    at = max(start, 32)
    while at + 24 + page_size <= len(data):
        page, size_after = struct.unpack(">II", data[at : at + 8])
        if data[at + 8 : at + 16] != salt:
            break  # left over from before a restart of the WAL
        found.append((page, size_after != 0))
        at += 24 + page_size
    return found, at


def child(count: int) -> None:
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from bench.corpus import corpus
    from bench.ingest import fresh
    from mailgate.intake import ingest
    from mailgate.store.db import db

    work = Path(tempfile.mkdtemp(prefix="mailgate-wal-"))
    ctx = fresh(work / "db")
    for raw in corpus(20, seed=5):  # warm up: the first ticket, directory rows
        ingest(ctx, raw, source="bench")
    db.execute_sql("PRAGMA wal_autocheckpoint = 0")
    db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = work / "db" / "mailgate.db"
    wal = Path(f"{path}-wal")
    reader = sqlite3.connect(path)
    reader.execute("PRAGMA wal_autocheckpoint = 0")
    by_name: Counter[str] = Counter()
    commits: list[Counter[str]] = [Counter()]
    written = 0
    offset = 0
    for raw in corpus(count):
        ingest(ctx, raw, source="bench")
        # Who owns each page now: a page the free list gave to another table or index
        # counts for the one it was written for.
        owner = dict(reader.execute("SELECT pageno, name FROM dbstat").fetchall())
        new, offset = frames(wal.read_bytes(), offset)
        written += len(new)
        for page, ends in new:
            name = owner.get(page, "(free list)")
            by_name[name] += 1
            commits[-1][name] += 1
            if ends:
                commits.append(Counter())
    commits = [c for c in commits if c]
    shapes: Counter[str] = Counter()
    for c in commits:
        shapes[" ".join(sorted(c))] += 1
    print(
        json.dumps(
            {
                "frames": written,
                "commits": len(commits),
                "by_name": dict(by_name.most_common()),
                "commit_sizes": [sum(c.values()) for c in commits[:12]],
                "shapes": dict(shapes.most_common(8)),
                "size": path.stat().st_size,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.count)
        return
    for tree in args.trees:
        env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--count", str(args.count)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        got = json.loads(out.strip().splitlines()[-1])
        n = args.count
        print(
            f"{tree}: {got['frames'] / n:.2f} WAL pages a mail in"
            f" {got['commits'] / n:.2f} commits a mail"
        )
        for name, frames_ in got["by_name"].items():
            print(f"  {frames_ / n:6.2f}  {name}")
        if args.verbose:
            print("  first commits' pages:", got["commit_sizes"])
            for shape, times in got["shapes"].items():
                print(f"  {times:5d} commits touch: {shape}")


if __name__ == "__main__":
    main()
