"""Benchmark: the desk's queue pages and API calls of two source trees, in one run (issue 15).

    python bench/web_compare.py BEFORE_TREE BEFORE_DIR AFTER_TREE AFTER_DIR
                                [--clients 8] [--seconds 20] [--rounds 2]

Each DIR holds a database filled by ``bench/search.py``'s ``prepare`` (copies of one,
each upgraded by its own tree: ``mailgate db upgrade``). Starts ``mailgate web`` of
each tree (``PYTHONPATH=TREE``) on its copy and lets ``--clients`` browsers
(``bench/web_queue.py``) and then ``--clients`` API clients (``bench/web_api.py``) work
against one desk, then the other, ``--rounds`` times alternating, so load from
elsewhere on the machine weighs on both alike. Prints per kind of page or call the
p95 of each tree, and after ÷ before of the p95s and of the request rates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.search import config_data
from bench.web_api import client
from bench.web_queue import KINDS, browser, free_port, p95
from mailgate import store
from mailgate.admin import apitokens, logins
from mailgate.config import from_dict
from mailgate.context import open_context
from tests.support import to_toml

API_KINDS = ("list", "filter", "page", "search", "show")


def start(tree: str, work: Path) -> tuple[subprocess.Popen[str], str, str]:
    """``mailgate web`` of ``tree`` on the database in ``work``: process, base URL, API token."""
    config = from_dict(config_data(work, None), work / "mailgate.toml")
    open_context(config)
    logins.set_password(config, "alice", "bench-pw")
    token = apitokens.issue(config, "alice")
    store.close()
    port = free_port()
    data = config_data(work, None)
    data["web"] = {"listen": f"127.0.0.1:{port}"}
    path = work / "mailgate.toml"
    path.write_text(to_toml(data))
    server = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "web"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": tree},
        cwd=work,  # not a checkout: `python -m` would import the working directory's mailgate
    )
    assert server.stdout is not None
    print(f"  {tree}: {server.stdout.readline().strip()}")
    return server, f"http://127.0.0.1:{port}", token


def load(target: Callable[..., None], args: tuple[Any, ...], clients: int, seconds: float
         ) -> tuple[list[tuple[str, float]], float]:  # fmt: skip
    results: list[tuple[str, float]] = []
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=target, args=(*args, n + 1, until, results)) for n in range(clients)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees_and_dirs", nargs=4, metavar="TREE_OR_DIR")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tickets", type=int, default=200_000)
    args = parser.parse_args()
    before_tree, before_dir, after_tree, after_dir = args.trees_and_dirs
    desks = {}
    try:
        for name, tree, work in (("before", before_tree, before_dir),
                                 ("after", after_tree, after_dir)):  # fmt: skip
            desks[name] = start(tree, Path(work))
        pages: dict[str, list[tuple[str, float]]] = {"before": [], "after": []}
        calls: dict[str, list[tuple[str, float]]] = {"before": [], "after": []}
        elapsed = {k: {"pages": 0.0, "calls": 0.0} for k in desks}
        for _, base, token in desks.values():  # warm the caches
            browser(base, args.tickets, 0, time.monotonic() + 3, [])
            client(base, token, args.tickets, 0, time.monotonic() + 2, [])
        for _ in range(args.rounds):
            for name, (_, base, token) in desks.items():
                got, took = load(browser, (base, args.tickets), args.clients, args.seconds)
                pages[name] += got
                elapsed[name]["pages"] += took
                got, took = load(client, (base, token, args.tickets), args.clients, args.seconds)
                calls[name] += got
                elapsed[name]["calls"] += took
        for label, results, kinds, unit in (("queue pages", pages, KINDS, "pages"),
                                            ("API calls", calls, API_KINDS, "calls")):  # fmt: skip
            print(f"{label}, {args.clients} clients, p95 before / after (ms):")
            for kind in (*kinds, "all"):
                b = [t for k, t in results["before"] if kind in (k, "all")]
                a = [t for k, t in results["after"] if kind in (k, "all")]
                if a and b:
                    print(f"  {kind:<7} {p95(b) * 1000:6.0f} / {p95(a) * 1000:6.0f}"
                          f"  median {statistics.median(b) * 1000:4.0f} /"
                          f" {statistics.median(a) * 1000:4.0f}  after÷before p95"
                          f" {p95(a) / p95(b):.2f}")  # fmt: skip
            rate = {n: len(results[n]) / elapsed[n][unit] for n in results}
            print(f"  rate {rate['before']:.0f} / {rate['after']:.0f} {unit}/s"
                  f" (after÷before {rate['after'] / rate['before']:.2f})")  # fmt: skip
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        for server, _, _ in desks.values():
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
