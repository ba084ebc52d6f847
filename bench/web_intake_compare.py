"""Benchmark: intake with and without 8 browsers, for two source trees in one run (issue 15).

    python bench/web_intake_compare.py BEFORE_TREE AFTER_TREE [--messages 100000]
                                       [--clients 8] [--seconds 4] [--rounds 12]
                                       [--think 0] [--browser-nice idle]

``bench/web_intake.py`` for two trees at once: one database filled as
``bench/search.py`` does, copied, each copy upgraded by its tree; one
``mailgate serve`` of each tree (``PYTHONPATH=TREE``); every round measures each
serve alone and with ``--clients`` browsers reading back to back (or ``--think``
seconds between pages), the two phases of a pair seconds apart, the trees alternating
pair by pair, so the drift of a shared machine hits both alike. Prints per tree the
pairs, the pages' rate and latency while intake ran, and the ratio browsers ÷ alone
(median of the pairs' ratios, and of the totals; target ≥ 0.90). As in
``bench/web_intake.py`` (see there why): the jobs the fill left due are done before
serve starts, the browsers log in before the phase, and **their process runs under
``SCHED_IDLE`` unless ``--browser-nice`` gives a nice value**.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.web_intake import Browsers, intake, latency, measure, start_serve, summary


def start(tree: str, work: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    return start_serve(work, env={**os.environ, "PYTHONPATH": tree})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before_tree")
    parser.add_argument("after_tree")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--think", type=float, default=0.0)
    parser.add_argument("--browser-nice", default="idle")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-intake2-"))
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
    try:
        print(f"SQLite, {args.messages:,} messages")
        # Filled by the before tree (its schema), copied; the after tree upgrades its copy.
        fill = "import sys; from pathlib import Path; from bench.search import prepare;" \
               " prepare(Path(sys.argv[1]), None, int(sys.argv[2]))"  # fmt: skip
        subprocess.run([sys.executable, "-c", fill, str(work / "before"), str(args.messages)],
                       env={**os.environ, "PYTHONPATH": args.before_tree},
                       cwd=args.before_tree, check=True)  # fmt: skip
        shutil.copytree(work / "before", work / "after")
        for name, tree in (("before", args.before_tree), ("after", args.after_tree)):
            servers[name] = start(tree, work / name)
            intake(servers[name][1], 5)  # warm up
        browsers = {
            name: Browsers(base, args.messages // 5, args.clients, args.think, args.browser_nice)
            for name, (_, _, base) in servers.items()
        }
        pairs: dict[str, list[tuple[float, float]]] = {n: [] for n in servers}
        for n in range(args.rounds):  # the trees alternate, pair by pair
            for name, (_, smtp_port, _) in servers.items():
                pairs[name].append(measure(smtp_port, browsers[name], args.seconds, n % 2 == 1))
        for name in servers:
            pages = browsers[name].close()
            print(f"{name}: {summary(pairs[name])};"
                  f" pages {latency(pages, args.rounds * args.seconds)}")  # fmt: skip
        print(
            f"browsers: {args.clients}, think {args.think:g} s, nice {args.browser_nice};"
            f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    finally:
        for server, _, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
