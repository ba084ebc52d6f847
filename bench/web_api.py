"""Benchmark: the JSON API's ticket search over HTTP, 8 clients at once (issue 15).

    python bench/web_api.py [--messages 1000000] [--clients 8] [--seconds 30]

Fills a database as ``bench/search.py`` does (a year of tickets, 5 messages each;
1,000,000 messages = 200,000 tickets), starts ``mailgate web`` in a process of its
own and lets ``--clients`` threads call the API as the agent ``alice`` (so her
visibility scope is part of every query): the default list, filtered and sorted
lists, deep pages, full-text searches (``?q=`` with the words of ``bench/search``)
and one ticket with its thread. Prints the latency per kind of call (median, p95)
and for all of them, and the request rate. Target (issue 15): p95 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.search import QUERIES, config_data, prepare
from bench.web_queue import free_port, p95
from mailgate import store
from mailgate.admin import apitokens
from mailgate.config import from_dict
from mailgate.context import open_context
from tests.support import to_toml


def calls(rng: random.Random, tickets: int) -> tuple[str, str]:
    """One call a client makes: (kind, path and query)."""
    roll = rng.random()
    if roll < 0.25:
        return "list", "/api/v1/tickets"
    if roll < 0.40:
        status = rng.choice(["open", "resolved", "new,open,pending"])
        sort = rng.choice(["-updated", "created", "-priority", "due"])
        return "filter", f"/api/v1/tickets?status={status}&sort={sort}&assignee=me"
    if roll < 0.50:
        return "page", f"/api/v1/tickets?offset={rng.randrange(0, 5000)}&limit=50"
    if roll < 0.85:
        return "search", "/api/v1/tickets?q=" + urllib.parse.quote(rng.choice(QUERIES))
    return "show", f"/api/v1/tickets/{100000 + rng.randint(1, tickets)}"


def client(
    base: str, token: str, tickets: int, seed: int, until: float, out: list[tuple[str, float]]
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        while time.monotonic() < until:
            kind, path = calls(rng, tickets)
            started = time.perf_counter()
            answer = http.get(path, timeout=60)
            took = time.perf_counter() - started
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
            out.append((kind, took))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--keep", metavar="DIR", help="fill DIR once and keep it; a later run reuses it"
    )
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mailgate-bench-api-"))
    server = None
    try:
        print(f"SQLite, {args.messages:,} messages")
        if (work / "mailgate.db").exists():
            config = from_dict(config_data(work, None), work / "mailgate.toml")
            print(f"  reusing {work}")
        else:
            config, _ = prepare(work, None, args.messages)
        port = free_port()
        data = config_data(work, None)
        data["web"] = {"listen": f"127.0.0.1:{port}"}
        path = work / "mailgate.toml"
        path.write_text(to_toml(data))
        open_context(config)
        token = apitokens.issue(config, "alice")
        store.close()
        server = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(path), "web"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        print(" ", server.stdout.readline().strip())
        base = f"http://127.0.0.1:{port}"
        tickets = args.messages // 5
        client(base, token, tickets, 0, time.monotonic() + 2, [])  # warm the caches
        results: list[tuple[str, float]] = []
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=client, args=(base, token, tickets, n + 1, until, results))
            for n in range(args.clients)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        every = [took for _, took in results]
        print(f"{args.clients} clients, {len(every)} requests in {elapsed:.0f} s:"
              f" {len(every) / elapsed:.0f} requests/s")  # fmt: skip
        for kind in ("list", "filter", "page", "search", "show"):
            took = [t for k, t in results if k == kind]
            if took:
                print(f"  {kind:<7} {len(took):>5} calls, median"
                      f" {statistics.median(took) * 1000:.0f} ms, p95 {p95(took) * 1000:.0f} ms")  # fmt: skip
        print(f"  all     median {statistics.median(every) * 1000:.0f} ms,"
              f" p95 {p95(every) * 1000:.0f} ms (target ≤ 150 ms); load average"
              f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
