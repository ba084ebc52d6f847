"""Benchmark: the memory of a whole ``mailgate serve`` after 10,000 and 20,000 mails.

    python bench/memory.py [--count 20000] [--trees /work/main /work/wt/BRANCH]

``serve`` (SMTP listener, no IMAP, outbox delivering to a Maildir as it would) is fed
realistic mails over SMTP, one connection per mail from 4 client threads. Halfway and
at the end, once the kicked outbox run is over, the PSS (proportional set size: a
page shared by n processes counts 1/n in each) of ``serve`` and of every process
below it is read from ``/proc/PID/smaps_rollup`` and summed — what the gateway
really costs the machine, its worker processes included. Issue 16's target: at most
80 MiB after 20,000 mails, growing by less than 5 % from 10,000 to 20,000.

With ``--trees`` each tree (a checkout: ``PYTHONPATH`` for ``serve``) is measured in
turn, in the same run, so two versions compare on one machine state.

The 20,000 mails are 2,000 corpus mails (``bench/corpus.py``) sent 10 times, each
round under Message-IDs of its own (references rewritten alike, so replies still
thread): generating 20,000 distinct mails takes minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import corpus
from bench.transports import blast, gateway_config, wait_listening
from tests.support import descendants

KIB = 1024


def pss_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                name, _, rest = line.partition(":")
                if name == "Pss":
                    pss = int(rest.split()[0])
                elif name == "Rss":
                    rss = int(rest.split()[0])
    except OSError:
        return 0, 0
    return pss, rss


def measure(pid: int) -> tuple[float, float, str]:
    """PSS and RSS in MiB summed over ``pid`` and its processes, and the PSS of each."""
    pids = [pid, *descendants(pid)]
    sizes = [pss_kib(p) for p in pids]
    each = " + ".join(f"{s[0] / KIB:.1f}" for s in sizes)
    return sum(s[0] for s in sizes) / KIB, sum(s[1] for s in sizes) / KIB, each


def rounds(base: list[bytes], count: int) -> list[bytes]:
    """``count`` mails: ``base`` again and again, each round under new Message-IDs."""
    mails = []
    for n in range(count):
        raw = base[n % len(base)]
        lap = n // len(base)
        mails.append(raw.replace(b"<bench-21-", f"<bench-21-r{lap}-".encode()) if lap else raw)
    return mails


def run_tree(tree: str, mails: list[bytes], work: Path) -> tuple[float, float, float, float, str]:
    from tests.relay import free_port

    env = {**os.environ, "PYTHONPATH": tree}
    port = free_port()
    root = work / Path(tree).name
    root.mkdir()
    path = gateway_config(root, port, env=env)
    server = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "serve", "--no-imap"],
        stdout=subprocess.DEVNULL,
        stderr=(root / "serve.log").open("wb"),
        env=env,
        cwd=root,  # not a checkout: ``-m`` puts the working directory on sys.path
    )
    try:
        wait_listening(port, server)
        half = len(mails) // 2
        blast(port, mails[:half])
        time.sleep(3)  # the outbox run the last mails kicked
        pss_half, _, _ = measure(server.pid)
        blast(port, mails[half:])
        time.sleep(3)
        pss_end, rss_end, each = measure(server.pid)
    finally:
        server.terminate()
        server.wait()
    return pss_half, pss_end, rss_end, (pss_end / pss_half - 1) * 100, each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--trees", nargs="*", default=[str(Path(__file__).resolve().parents[1])])
    args = parser.parse_args()
    mails = rounds(corpus(2000, seed=21), args.count)
    work = Path(tempfile.mkdtemp(prefix="mailgate-memory-"))
    print(f"{args.count} realistic mails over SMTP to `serve`; load average {os.getloadavg()}")
    for tree in args.trees:
        half, end, rss, growth, each = run_tree(tree, mails, work)
        print(
            f"  {tree}: PSS after {args.count // 2}: {half:.1f} MiB, after {args.count}:"
            f" {end:.1f} MiB (= {each}, serve first; RSS {rss:.1f} MiB);"
            f" growth {growth:+.1f} %   (target ≤ 80 MiB, < 5 %)"
        )
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
