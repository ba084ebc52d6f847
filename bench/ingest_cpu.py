"""CPU time of ``ingest()`` against mail-parser's parse-only, trees side by side.

    python bench/ingest_cpu.py [--count 600] [--pairs 3] TREE [TREE ...]

Wall-clock rates on a shared machine swing with the load; CPU time
(``time.process_time``) much less. Each round runs one tree in a child process
(``PYTHONPATH`` = the tree): mail-parser and ``ingest()`` into a fresh SQLite
database take turns of 50 realistic mails, and the child prints both CPU totals.
Trees alternate round by round (``--pairs`` rounds each), so every tree meets
the same load; the figure is mail-parser's CPU ÷ ingest's CPU (the rate ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 50


def child(count: int) -> None:
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    import gc

    import mailparser

    from bench.corpus import corpus
    from bench.ingest import fresh
    from mailgate.intake import ingest

    mails = corpus(count)
    work = Path(tempfile.mkdtemp(prefix="mailgate-cpu-"))
    ctx = fresh(work / "db")
    for raw in corpus(20, seed=5):  # warm up: imports, caches, the first ticket
        ingest(ctx, raw, source="bench")
        mailparser.parse_from_bytes(raw)
    spent = {"parse": 0.0, "ingest": 0.0}
    gc.collect()
    for start in range(0, len(mails), CHUNK):
        chunk = mails[start : start + CHUNK]
        began = time.process_time()
        for raw in chunk:
            mailparser.parse_from_bytes(raw)
        middle = time.process_time()
        for raw in chunk:
            ingest(ctx, raw, source="bench")
        spent["parse"] += middle - began
        spent["ingest"] += time.process_time() - middle
    print(json.dumps(spent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.count)
        return
    results: dict[str, list[tuple[float, float]]] = {t: [] for t in args.trees}
    for round_ in range(args.pairs):
        for tree in args.trees:
            env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--count", str(args.count)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            spent = json.loads(out.strip().splitlines()[-1])
            results[tree].append((spent["parse"], spent["ingest"]))
            print(
                f"round {round_ + 1} {tree}: mail-parser {spent['parse'] * 1000 / args.count:.2f}"
                f" ms a mail, ingest {spent['ingest'] * 1000 / args.count:.2f} ms a mail,"
                f" mail-parser ÷ ingest {spent['parse'] / spent['ingest']:.3f}",
                flush=True,
            )
    for tree, runs in results.items():
        ratios = ", ".join(f"{p / i:.3f}" for p, i in runs)
        mean = sum(i for _, i in runs) * 1000 / len(runs) / args.count
        print(f"{tree}: mail-parser ÷ ingest {ratios}; ingest {mean:.2f} ms CPU a mail")


if __name__ == "__main__":
    main()
