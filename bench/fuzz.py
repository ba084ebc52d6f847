"""Fuzz the whole intake for longer than `make test` does, and print what broke.

    python bench/fuzz.py [--examples 2000] [--seed 1] [--corpus ../shared/corpus]

Three runs of ``--examples`` inputs each — mutated seed mails, generated MIME,
mutated real-world mail (when the corpus is there) — through ``ingest()`` into a
fresh SQLite gateway. Prints how many inputs each run tried and every distinct
failure (what went wrong and where) with the shortest input that showed it.
Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.store import models
from tests import mailfuzz
from tests.conftest import open_gateway
from tests.support import config_data, load_config, write_config


def run(name: str, strategy: st.SearchStrategy[bytes], examples: int, seed: int, ctx: object) -> dict[str, bytes]:
    """Feed ``examples`` inputs to ``check``; distinct problems with their shortest input."""
    found: dict[str, bytes] = {}
    tried = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=strategy)
    def feed(raw: bytes) -> None:
        nonlocal tried
        tried += 1
        problem = mailfuzz.check(ctx, raw)  # type: ignore[arg-type]
        if problem is not None:
            key = problem.split(" at ", 1)[-1] if " at " in problem else problem[:80]
            if key not in found or len(raw) < len(found[key]):
                found[key] = raw
                found_problem[key] = problem

    found_problem: dict[str, str] = {}
    started = time.perf_counter()
    from hypothesis import seed as hypothesis_seed

    hypothesis_seed(seed)(feed)()
    elapsed = time.perf_counter() - started
    print(f"{name}: {tried} inputs in {elapsed:.0f} s, {len(found)} distinct failures")
    for key, raw in found.items():
        print(f"  FAIL {found_problem[key]}")
        print(f"       input ({len(raw)} bytes): {raw[:600]!r}")
    return found


def report_exceptions(ctx: object) -> None:
    """Mails quarantined because code raised (not because they are unreadable): for the
    parser's owners, each distinct error once, with the smallest mail that showed it."""
    rows = models.Receipt.select().where(
        models.Receipt.status == "quarantined",
        models.Receipt.reason.startswith("parser error") | models.Receipt.reason.startswith("processing error"),
    )
    smallest: dict[str, models.Receipt] = {}
    for row in rows:
        key = row.reason[:120]
        if key not in smallest or row.size < smallest[key].size:
            smallest[key] = row
    print(f"quarantined by an exception (stored, not lost; the parser could do better): {len(smallest)} distinct")
    for key, row in sorted(smallest.items()):
        raw = ctx.blobs.get(row.sha256)  # type: ignore[attr-defined]
        print(f"  {key}")
        print(f"       input ({len(raw)} bytes): {raw[:600]!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    default_corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    parser.add_argument("--corpus", type=Path, default=default_corpus)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mailgate-fuzz-"))
    try:
        data = config_data(tmp, f"sqlite:///{tmp / 'fuzz.db'}")
        ctx = open_gateway(load_config(write_config(tmp / "mailgate.toml", data)))
        failures = {}
        failures.update(run("mutated seed mails", mailfuzz.mutated(mailfuzz.seed_mails()), args.examples, args.seed, ctx))
        failures.update(run("generated MIME", mailfuzz.generated_mime(), args.examples, args.seed, ctx))
        if args.corpus.is_dir():
            seeds = mailfuzz.corpus_mails(args.corpus, limit=1000)
            failures.update(run(f"mutated corpus mail ({len(seeds)} seeds)", mailfuzz.mutated(seeds), args.examples, args.seed, ctx))
        else:
            print(f"mutated corpus mail: skipped, no corpus at {args.corpus}")
        report_exceptions(ctx)
        models.db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
