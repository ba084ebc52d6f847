"""Benchmark: mail through the SMTP listener and the IMAP poller, and IDLE latency.

    python bench/transports.py [--count 1000]

All in one run, each next to its reference (shared machines are noisy); with
``--trees A B`` the SMTP figures of two checkouts alternate round by round (``PYTHONPATH``
of the measured processes), best of ``--rounds``:

* ``ingest()`` called directly (the ceiling for any transport);
* a bare aiosmtpd server that only answers 250, and ``mailgate serve``'s listener,
  both in their own process, fed by the same client: one SMTP connection per mail
  (as MTAs mostly deliver) from 4 client threads;
* the IMAP poller draining a Dovecot folder of the same mails;
* latency from an IMAP APPEND to the committed ticket with IDLE (50 mails, one at a time).

Needs Dovecot (``apt-get install dovecot-imapd``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import corpus
from bench.ingest import config_data
from tests.dovecot import Dovecot, dovecot_binary
from tests.relay import free_port
from tests.support import to_toml

CLIENT_THREADS = 4

BARE_SERVER = textwrap.dedent("""
    import asyncio, sys
    from aiosmtpd.smtp import SMTP
    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), data_size_limit=50 * 2**20, enable_SMTPUTF8=True,
                         hostname="bare"), "127.0.0.1", int(sys.argv[1]))
        print("ready", flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
""")


def blast(port: int, mails: list[bytes]) -> float:
    """Send every mail on its own connection from a few threads; returns mails per second."""
    queue = list(reversed(mails))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                raw = queue.pop()
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    client.sendmail("sender@customer.example", ["support@example.org"], raw)
            except (OSError, smtplib.SMTPException) as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(CLIENT_THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        print(f"  ! {len(failures)} sends failed, e.g. {failures[0]}")
    return len(mails) / elapsed


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as probe:
                probe.noop()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("server exited") from None
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


def gateway_config(
    root: Path,
    port: int,
    imap: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    relay_port: int | None = None,
) -> Path:
    """The bench helpdesk listening on ``port``, its schema made; notices go to a
    Maildir, or with ``relay_port`` to that SMTP relay, delivered every second."""
    if relay_port is None:
        data = config_data(root)
        data["jobs"] = {"outbox_seconds": 3600}
    else:
        data = config_data(root, transport="smtp")
        data["outbound"]["smtp"] = {"host": "127.0.0.1", "port": relay_port, "security": "none"}
        data["jobs"] = {"outbox_seconds": 1}
    data["listener"] = {"port": port}
    if imap:
        data["imap"] = [imap]
    path = root / "mailgate.toml"
    path.write_text(to_toml(data))
    subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "db", "upgrade"],
        check=True,
        capture_output=True,
        env=env,
        cwd=root,  # not the checkout: ``-m`` puts the working directory first on sys.path
    )
    return path


def serve(path: Path, *flags: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "serve", *flags],
        stdout=subprocess.DEVNULL,
        stderr=(path.parent / "serve.log").open("wb"),
        env=env,
        cwd=path.parent,  # not a checkout: ``-m`` puts the working directory on sys.path
    )


def count_receipts(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path.parent / "mailgate.db") as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM receipt WHERE status = 'processed'").fetchone()[0]
        )


DIRECT = """
import sys, time, tempfile
from pathlib import Path
from bench.corpus import corpus
from bench.ingest import fresh
from mailgate.intake import ingest
mails = corpus(int(sys.argv[1]), seed=21)
ctx = fresh(Path(tempfile.mkdtemp(prefix="mailgate-bench-")) / "direct")
started = time.perf_counter()
for raw in mails:
    ingest(ctx, raw, source="bench")
print(len(mails) / (time.perf_counter() - started))
"""


def direct_rate(tree: str, count: int) -> float:
    """``ingest()`` called directly, one mail after the other, with ``tree``'s code."""
    done = subprocess.run(
        [sys.executable, "-c", DIRECT, str(count)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": tree},
        cwd=tempfile.gettempdir(),
    )
    return float(done.stdout.split()[-1])


def bare_rate(mails: list[bytes]) -> float:
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, bare)
        return blast(port, mails)
    finally:
        bare.terminate()
        bare.wait()


def listener_rate(tree: str, mails: list[bytes], root: Path) -> tuple[float, int]:
    """``mailgate serve`` of ``tree`` fed over SMTP; (mails/s, receipts processed)."""
    env = {**os.environ, "PYTHONPATH": tree}
    root.mkdir(parents=True)
    port = free_port()
    path = gateway_config(root, port, env=env)
    server = serve(path, "--no-imap", env=env)
    try:
        wait_listening(port, server)
        rate = blast(port, mails)
    finally:
        server.terminate()
        server.wait()
    return rate, count_receipts(path)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many, alternating")
    parser.add_argument(
        "--trees",
        nargs="*",
        default=[str(Path(__file__).resolve().parents[1])],
        help="checkouts to compare in one run (PYTHONPATH of serve), e.g. /work/main .",
    )
    parser.add_argument("--skip-imap", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    mails = corpus(args.count, seed=21)
    print(f"corpus: {len(mails)} realistic mails ({sum(map(len, mails)) / 2**20:.1f} MiB)")
    print(f"{load()} at the start\n")
    bare: list[float] = []
    direct: dict[str, list[float]] = {tree: [] for tree in args.trees}
    listener: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for n in range(args.rounds):
        bare.append(bare_rate(mails))
        line = f"  round {n + 1}: bare aiosmtpd {bare[-1]:5.0f}"
        for i, tree in enumerate(args.trees):
            direct[tree].append(direct_rate(tree, args.count))
            rate, stored = listener_rate(tree, mails, work / f"listener-{n}-{i}")
            listener[tree].append(rate)
            line += f" | {Path(tree).name}: direct {direct[tree][-1]:4.0f}, listener {rate:4.0f}"
            line += f" ({stored} stored)"
        print(f"{line}   {load()}")
    print(f"\nbest of {args.rounds} (mails/s): bare aiosmtpd answering 250 {max(bare):.0f}")
    for tree in args.trees:
        best = max(listener[tree])
        print(
            f"  {tree}: listener {best:.0f}, ingest() direct {max(direct[tree]):.0f}"
            f"  → listener ÷ bare aiosmtpd = {best / max(bare):.2f} (target ≥ 0.60),"
            f" listener ÷ ingest() direct = {best / max(direct[tree]):.2f}"
        )
    if len(args.trees) == 2:
        first, second = (max(listener[t]) for t in args.trees)
        print(f"  → listener, {args.trees[1]} ÷ {args.trees[0]} = {second / first:.2f}")
    print(f"{load()} at the end\n")
    if args.skip_imap:
        return

    here = args.trees[-1]
    direct_here = max(direct[here])
    binary = dovecot_binary()
    if binary is None:
        print("Dovecot is not installed: IMAP figures skipped")
        return
    dovecot = Dovecot(binary)
    try:
        user = dovecot.add_user()
        client = user.client()
        for raw in mails:
            client.append("INBOX", raw)
        client.logout()
        root = work / "imap"
        root.mkdir()
        secret = root / "imap.password"
        secret.write_text(user.password)
        imap = {
            "name": "bench",
            "mailbox": "support",
            "host": user.host,
            "port": user.port,
            "security": "none",
            "user": user.user,
            "password_file": str(secret),
            "batch_size": 100,
        }
        env = {**os.environ, "PYTHONPATH": here}
        path = gateway_config(root, free_port(), imap, env=env)
        started = time.perf_counter()
        server = serve(path, "--no-smtp", env=env)
        try:
            while count_receipts(path) < len(mails):
                time.sleep(0.05)
            imap_rate = len(mails) / (time.perf_counter() - started)
            print(
                f"  IMAP poller draining Dovecot                {imap_rate:8.0f} mails/s"
                "  (start-up included)"
            )
            print(f"  → IMAP poller / ingest() direct = {imap_rate / direct_here:.2f}")
            latencies = []
            for i, raw in enumerate(corpus(50, seed=33)):
                before = count_receipts(path)
                sent = time.perf_counter()
                user.append(raw)
                while count_receipts(path) == before:
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - sent)
                del i
            latencies.sort()
            p95 = latencies[int(len(latencies) * 0.95) - 1]
            print(
                f"  IMAP APPEND → ticket committed, with IDLE  p50 {statistics.median(latencies) * 1000:.0f} ms,"
                f" p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms  (target p95 < 1 s)"
            )
        finally:
            server.terminate()
            server.wait()
    finally:
        dovecot.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
