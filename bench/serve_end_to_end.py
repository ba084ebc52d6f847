"""Benchmark: ``mailgate serve`` end to end — mails in over SMTP, notices out to a relay.

    python bench/serve_end_to_end.py [--count 1000] [--rounds 3] [--trees A B]

What a helpdesk runs: the listener hands each mail to the ingest worker while serve's
outbox thread delivers the acknowledgements and team notices to the relay, on the same
two cores. ``bench/ingest.py``'s end-to-end figure calls ``ingest()`` and then the
delivery one after the other in one process; this one measures the product. For each
tree, alternating round by round (best of ``--rounds``), fed the same mails by the same
client (4 threads, one SMTP connection per mail):

* *intake only*: the relay is down (nothing listens on its port), so the notices stay
  queued — the rate at which mails are answered with 250;
* *end to end*: the relay is a bare aiosmtpd sink in its own process, offering
  PIPELINING as Postfix does — the rate counted
  until the sink has the last notice (the mails divided by the time from the first
  mail sent to the last notice received).

→ end to end ÷ intake only, the issue's "end to end ÷ ingest only" for serve.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import corpus
from bench.transports import blast, gateway_config, load, wait_listening
from tests.relay import free_port

# Counts what it receives: "<count> <time of the last>" rewritten in a file per mail.
SINK = textwrap.dedent("""
    import asyncio, os, sys, time
    from aiosmtpd.smtp import SMTP
    path, count = sys.argv[2], 0
    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            # Offered as Postfix offers it (RFC 2920); a tree that pipelines uses it.
            session.host_name = hostname
            return [responses[0], "250-PIPELINING", *responses[1:]]
        async def handle_DATA(self, server, session, envelope):
            global count
            count += 1
            with open(path + ".tmp", "w") as out:
                out.write(f"{count} {time.time()}")
            os.replace(path + ".tmp", path)
            return "250 OK"
    async def main():
        loop = asyncio.get_running_loop()
        await loop.create_server(
            lambda: SMTP(Handler(), data_size_limit=50 * 2**20, enable_SMTPUTF8=True,
                         hostname="sink"), "127.0.0.1", int(sys.argv[1]))
        print("ready", flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
""")

# After the last mail, the sink counts as done once nothing arrived for this long.
QUIET_SECONDS = 3.0


def read_sink(path: Path) -> tuple[int, float]:
    try:
        count, last = path.read_text().split()
    except (FileNotFoundError, ValueError):
        return 0, 0.0
    return int(count), float(last)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its threads included), from ``/proc``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def one_run(
    tree: str, mails: list[bytes], root: Path, *, delivered: bool
) -> tuple[float, int, dict[str, float]]:
    """(mails/s, notices the relay got, CPU seconds a mail of each process): until the
    last 250, or until the last notice."""
    env = {**os.environ, "PYTHONPATH": tree}
    root.mkdir(parents=True)
    port, relay_port = free_port(), free_port()
    path = gateway_config(root, port, env=env, relay_port=relay_port)
    counted = root / "sink.count"
    sink = None
    if delivered:
        sink = subprocess.Popen(
            [sys.executable, "-c", SINK, str(relay_port), str(counted)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
    server = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "serve", "--no-imap"],
        stdout=subprocess.DEVNULL,
        stderr=(root / "serve.log").open("wb"),
        env=env,
        cwd=root,
    )
    try:
        wait_listening(port, server)
        # CPU is read before and after, so that starting up does not count.
        workers = children(server.pid)
        processes = {"serve": [server.pid], "worker": workers}
        if sink is not None:
            processes["sink"] = [sink.pid]
        before = {k: sum(map(cpu_seconds, pids)) for k, pids in processes.items()}
        client = time.process_time()
        started = time.time()
        intake = blast(port, mails)
        if not delivered:
            return intake, 0, spent(processes, before, client, len(mails))
        seen, since = -1, time.monotonic()
        while time.monotonic() - since < QUIET_SECONDS:
            count, _ = read_sink(counted)
            if count != seen:
                seen, since = count, time.monotonic()
            time.sleep(0.1)
        count, last = read_sink(counted)
        cpu = spent(processes, before, client, len(mails))
        return len(mails) / max(last - started, 1e-9), count, cpu
    finally:
        server.terminate()
        server.wait()
        if sink is not None:
            sink.terminate()
            sink.wait()


def spent(
    processes: dict[str, list[int]], before: dict[str, float], client: float, count: int
) -> dict[str, float]:
    """CPU seconds a mail of each process since ``before`` (the client: this process)."""
    cpu = {k: (sum(map(cpu_seconds, pids)) - before[k]) / count for k, pids in processes.items()}
    cpu["client"] = (time.process_time() - client) / count
    return cpu


def cpu_line(cpu: dict[str, float]) -> str:
    return " ".join(f"{k} {v * 1000:.1f}" for k, v in cpu.items())


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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    mails = corpus(args.count, seed=21)
    print(f"corpus: {len(mails)} realistic mails ({sum(map(len, mails)) / 2**20:.1f} MiB)")
    print(f"{load()} at the start\n")
    held: dict[str, list[float]] = {tree: [] for tree in args.trees}
    ends: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for n in range(args.rounds):
        line, cpu = f"  round {n + 1}:", ""
        for i, tree in enumerate(args.trees):
            rate, _, cpu_held = one_run(tree, mails, work / f"held-{n}-{i}", delivered=False)
            held[tree].append(rate)
            end, notices, cpu_end = one_run(tree, mails, work / f"sent-{n}-{i}", delivered=True)
            ends[tree].append(end)
            line += f" | {Path(tree).name}: intake {rate:4.0f}, end to end {end:4.0f}"
            line += f" ({notices} notices)"
            cpu += f"\n    {Path(tree).name} CPU ms a mail, intake only: {cpu_line(cpu_held)};"
            cpu += f" end to end: {cpu_line(cpu_end)}"
        print(line + cpu, flush=True)
    print(f"\n{load()} at the end")
    for tree in args.trees:
        best_held, best_end = max(held[tree]), max(ends[tree])
        print(
            f"{Path(tree).name}: serve intake only {best_held:.0f} mails/s, end to end"
            f" {best_end:.0f} mails/s → end to end ÷ intake only = {best_end / best_held:.2f}"
            "  (target ≥ 0.80)"
        )


if __name__ == "__main__":
    main()
