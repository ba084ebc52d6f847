"""Benchmark: the desk's queue and ticket pages over HTTP, 8 browsers at once (issue 15).

    python bench/web_queue.py [--messages 1000000] [--clients 8] [--seconds 30]

Fills a database as ``bench/search.py`` does (a year of tickets, 5 messages each;
1,000,000 messages = 200,000 tickets), starts ``mailgate web`` in a process of its
own, logs ``--clients`` browsers in as the agent ``alice`` through the login form
(so her visibility scope is in every query) and lets them read: the default queue,
filtered and sorted queues (every sortable column), deep pages, saved views,
full-text searches (``?q=`` with the words of ``bench/search``) and one ticket page
with its thread. Prints the latency per kind of page (median, p95) and for all of
them, and the request rate. Target (issue 15): p95 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
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
from mailgate import store
from mailgate.admin import logins
from mailgate.context import open_context
from tests.support import to_toml

COLUMNS = ("number", "subject", "requester", "team", "assignee", "priority", "status", "due",
           "updated")  # fmt: skip
KINDS = ("queue", "filter", "sort", "page", "view", "search", "ticket")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pages(rng: random.Random, tickets: int) -> tuple[str, str]:
    """One page a browser asks for: (kind, path and query)."""
    roll = rng.random()
    if roll < 0.20:
        return "queue", "/"
    if roll < 0.32:
        status = rng.choice(["open", "resolved", "new,open,pending", "all"])
        return "filter", f"/?status={status}&priority={rng.choice(['', 'high'])}&assignee=me"
    if roll < 0.44:
        column = rng.choice(COLUMNS)
        return "sort", f"/?sort={rng.choice(['', '-'])}{column}"
    if roll < 0.52:
        return "page", f"/?status=all&page={rng.randrange(1, 100)}"
    if roll < 0.62:
        return "view", f"/?view={rng.choice(['mine', 'unassigned', 'overdue'])}"
    if roll < 0.85:
        return "search", "/?status=all&q=" + urllib.parse.quote(rng.choice(QUERIES))
    return "ticket", f"/tickets/{100000 + rng.randint(1, tickets)}"


def logged_in(base: str) -> httpx.Client:
    http = httpx.Client(base_url=base)
    # Logins hash with Argon2: 8 at once on a busy machine take more than httpx's 5 s.
    form = http.get("/login", timeout=120).text
    token = re.search(r'name="csrf" value="([^"]*)"', form)
    assert token, form[:300]
    answer = http.post("/login", data={"account": "alice", "password": "bench-pw",
                                       "csrf": token.group(1)}, timeout=120)  # fmt: skip
    assert answer.status_code == 303, answer.text[:300]
    return http


def browser(
    base: str,
    tickets: int,
    seed: int,
    until: float,
    out: list[tuple[str, float]],
    think: float = 0.0,
) -> None:
    """Pages one after the other until ``until``, ``think`` seconds between them."""
    http = logged_in(base)
    try:
        read(http, tickets, seed, until, out, think)
    finally:
        http.close()


def read(
    http: httpx.Client,
    tickets: int,
    seed: int,
    until: float,
    out: list[tuple[str, float]],
    think: float = 0.0,
) -> None:
    """A logged-in browser's pages until ``until`` (kind, seconds each into ``out``)."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        read_one(http, rng, tickets, out)
        if think:
            time.sleep(think)


def read_one(
    http: httpx.Client, rng: random.Random, tickets: int, out: list[tuple[str, float]]
) -> None:
    """One page a browser picks with ``rng`` (kind, seconds into ``out``)."""
    kind, path = pages(rng, tickets)
    started = time.perf_counter()
    try:
        answer = http.get(path, timeout=60)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # The server closed the kept-alive connection as we reused it (its idle
        # timer ran first): a browser sends the GET again on a new one, so do we.
        answer = http.get(path, timeout=60)
    took = time.perf_counter() - started
    # a ticket of another team is a 404, like a number that does not exist
    ok = answer.status_code == 200 or (kind == "ticket" and answer.status_code == 404)
    assert ok, (path, answer.status_code, answer.text[:300])
    out.append((kind, took))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-queue-"))
    server = None
    try:
        print(f"SQLite, {args.messages:,} messages")
        config, _ = prepare(work, None, args.messages)
        port = free_port()
        data = config_data(work, None)
        data["web"] = {"listen": f"127.0.0.1:{port}"}
        path = work / "mailgate.toml"
        path.write_text(to_toml(data))
        open_context(config)
        logins.set_password(config, "alice", "bench-pw")
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
        browser(base, tickets, 0, time.monotonic() + 3, [])  # warm the caches
        results: list[tuple[str, float]] = []
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=browser, args=(base, tickets, n + 1, until, results))
            for n in range(args.clients)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        every = [took for _, took in results]
        print(f"{args.clients} browsers, {len(every)} pages in {elapsed:.0f} s:"
              f" {len(every) / elapsed:.0f} pages/s")  # fmt: skip
        for kind in KINDS:
            took = [t for k, t in results if k == kind]
            if took:
                print(f"  {kind:<7} {len(took):>5} pages, median"
                      f" {statistics.median(took) * 1000:.0f} ms, p95 {p95(took) * 1000:.0f} ms")  # fmt: skip
        print(f"  all     median {statistics.median(every) * 1000:.0f} ms,"
              f" p95 {p95(every) * 1000:.0f} ms (target ≤ 150 ms); load average"
              f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
