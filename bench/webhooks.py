"""Benchmark: what webhooks cost ingest, and how fast they leave.

    python bench/webhooks.py [--count 1000]

Measured in this one run, as ratios (shared, noisy machines):

* the ingest rate with two ``[[webhook]]`` subscribed to every event (a new ticket
  queues ``ticket.created`` and ``message.received`` for each: 4 rows in the mail's
  transaction) versus none, alternated twice, best of each;
* deliveries per second from ``webhooks.deliver`` to a local HTTP receiver (a real
  ``http.server`` on 127.0.0.1, signatures checked), versus the mail outbox's
  Maildir deliveries per second of the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import corpus
from bench.ingest import config_data, ingest_all
from mailgate import outbox, store, webhooks
from mailgate.config import from_dict
from mailgate.context import Context, open_context
from mailgate.store import directory

SECRET = b"bench-secret"


class Receiver:
    def __init__(self) -> None:
        self.count = 0
        self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                good = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
                receiver.count += 1
                receiver.bad += self.headers.get("X-Mailgate-Signature") != good
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


def fresh(root: Path, hooks: list[dict[str, Any]]) -> Context:
    root.mkdir(parents=True)
    data = config_data(root)
    data["webhook"] = hooks
    ctx = open_context(from_dict(data, root / "bench.toml"))
    store.upgrade()
    with store.write_transaction():
        directory.sync(ctx.config)
    return ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    os.environ["MAILGATE_BENCH_WEBHOOK_SECRET"] = SECRET.decode()
    mails = corpus(args.count)
    receiver = Receiver()
    every = list(webhooks.WEBHOOK_EVENTS)
    hooks = [
        {"url": receiver.url(f"/{n}"), "events": every,
         "secret_env": "MAILGATE_BENCH_WEBHOOK_SECRET"}
        for n in ("a", "b")
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        print(f"webhooks: {len(mails)} mails (new tickets and replies)")
        rates: dict[str, list[float]] = {"plain": [], "hooked": []}
        for turn in range(2):  # alternated: the machine's noise falls on both alike
            for name, with_hooks in (("plain", []), ("hooked", hooks)):
                ctx = fresh(Path(tmp) / f"{name}{turn}", with_hooks)
                label = f"ingest(), {'two [[webhook]], every event' if with_hooks else 'none'}"
                rates[name].append(ingest_all(ctx, mails, label))
                if turn == 0 or not with_hooks:
                    store.close()
        plain, hooked = max(rates["plain"]), max(rates["hooked"])
        print(f"  → ingest with webhooks / without (best of 2 each) = {hooked / plain:.2f}")
        started = time.perf_counter()
        mail = outbox.deliver(ctx.config)
        mail_rate = mail.sent / (time.perf_counter() - started)
        print(f"  mail outbox to Maildir: {mail.sent} mails, {mail_rate:8.0f} /s")
        started = time.perf_counter()
        report = webhooks.deliver(ctx.config)
        hook_rate = report.sent / (time.perf_counter() - started)
        print(f"  webhooks to 127.0.0.1: {report.sent} deliveries, {hook_rate:8.0f} /s"
              f" (failed {report.failed}, bad signatures {receiver.bad})")  # fmt: skip
        print(f"  → webhook deliveries / mail deliveries per second = {hook_rate / mail_rate:.2f}")
        store.close()


if __name__ == "__main__":
    main()
