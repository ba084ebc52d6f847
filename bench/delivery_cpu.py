"""Benchmark: CPU time of the outbox's delivery per notice (what ``serve``'s outbox thread costs).

    python bench/delivery_cpu.py [--mails 1500] [--rounds 2] [--per-run 90] [--profile FILE]
                                 [--dump DIR]

The tree measured is the one ``PYTHONPATH`` names (printed first). ``--mails`` mails of
the bench corpus are ingested into a fresh SQLite database (not measured); the queued
notices are then delivered over SMTP to a sink in its own process (aiosmtpd, PIPELINING
offered as Postfix does), and the delivery's CPU time (``time.process_time``: this
process only, so neither the sink nor the machine's load counts) is divided by the
notices sent. A delivery run takes at most ``--per-run`` notices, as ``serve``'s runs
(kicked every half second) do under load; each round starts from a copy of the same
database. ``--profile`` writes
a cProfile of the last round; ``--dump DIR`` writes every queued notice composed (the
multipart boundaries and Thread-Index's random byte fixed), one file per row, to compare
the bytes two trees produce.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Appended, not inserted: a tree on PYTHONPATH (main, a branch) is the one measured.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from bench.corpus import corpus
from bench.ingest import _SINK_PROGRAM, fresh
from mailgate import outbox, store
from mailgate.context import open_context
from mailgate.intake import ingest
from tests.relay import free_port


def _fixed_randomness() -> None:
    """The only random bytes of a composed notice, made repeatable (for ``--dump``)."""
    import random

    from mailgate.attachments import relay
    from mailgate.mail import compose

    rng = random.Random(5)

    class _Fixed:
        @staticmethod
        def token_hex(n: int) -> str:
            return rng.randbytes(n).hex()

        @staticmethod
        def randbits(k: int) -> int:
            return rng.getrandbits(k)

    compose.secrets = _Fixed  # type: ignore[assignment]
    relay.secrets = _Fixed  # type: ignore[assignment]


def dump(ctx_root: Path, out: Path) -> int:
    from mailgate.notices import snapshot
    from mailgate.store import models
    from mailgate.store import outbox as outbox_rows

    _fixed_randomness()
    ctx = open_context(_config(ctx_root))
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for row in models.OutboxItem.select().order_by(models.OutboxItem.id):
        content = bytes(row.content)
        if not snapshot.is_snapshot(content):
            continue
        composed = snapshot.compose_mail(ctx.config, ctx.blobs, content)
        sha256 = outbox_rows.referenced_blob(composed.content)
        mail = ctx.blobs.open(sha256).read() if sha256 else composed.content
        (out / f"{row.id}.eml").write_bytes(mail)
        (out / f"{row.id}.txt").write_text(composed.text)
        count += 1
    return count


def _config(root: Path, port: int = 0):  # type: ignore[no-untyped-def]
    from bench.ingest import config

    return config(
        root,
        transport="smtp",
        smtp={"host": "127.0.0.1", "port": port, "security": "none"},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--per-run", type=int, default=90,
        help="notices a delivery run takes at most (serve at ~110 mails/s: ~90 a run)",
    )  # fmt: skip
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--dump", type=Path)
    parser.add_argument(
        "--seed", type=Path, help="the ingested database kept here, or taken from here if there"
    )
    args = parser.parse_args()
    import mailgate

    print(f"tree: {Path(mailgate.__file__).resolve().parents[1]}")
    work = Path(tempfile.mkdtemp(prefix="delivery-cpu-"))
    port = free_port()
    try:
        seed = args.seed or work / "seed"
        if not (seed / "mailgate.db").exists():
            ctx = fresh(
                seed, transport="smtp", smtp={"host": "127.0.0.1", "port": port, "security": "none"}
            )
            for raw in corpus(args.mails):
                ingest(ctx, raw, source="bench")
            store.close()
        if args.dump:
            copy = work / "dump"
            shutil.copytree(seed, copy)
            print(f"dumped {dump(copy, args.dump)} composed notices to {args.dump}")
            return
        sink = subprocess.Popen(
            [sys.executable, "-c", _SINK_PROGRAM, str(port)], stdout=subprocess.PIPE, text=True
        )
        assert sink.stdout is not None
        sink.stdout.readline()
        try:
            for attempt in range(args.rounds):
                root = work / f"round-{attempt}"
                shutil.copytree(seed, root)
                ctx = open_context(_config(root, port))
                profiler = (
                    cProfile.Profile(time.process_time)
                    if args.profile and attempt == args.rounds - 1
                    else None
                )
                gc.collect()
                started, wall = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                sent = runs = 0
                while True:
                    report = outbox.deliver(ctx.config, limit=args.per_run)
                    sent, runs = sent + report.sent, runs + 1
                    if not report.sent:
                        break
                if profiler:
                    profiler.disable()
                cpu, wall = time.process_time() - started, time.perf_counter() - wall
                print(
                    f"round {attempt}: {sent} notices sent, CPU {cpu:.2f} s ="
                    f" {1000 * cpu / max(sent, 1):.2f} ms a notice ({runs} runs, wall {wall:.2f} s)"
                    + (" [profiled]" if profiler else "")
                )
                if profiler:
                    profiler.dump_stats(args.profile)
        finally:
            sink.kill()
            sink.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
