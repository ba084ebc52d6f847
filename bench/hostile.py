"""Benchmark: what hostile mail costs against a normal one, measured in one run (issue 9).

    python bench/hostile.py [--count 50]

Figures, each as a ratio to ingesting a normal mail in the same run (shared machines
are noisy; absolute numbers drift):

* a mail with 33,000 Cc (stored, a ticket, 20 collaborators: the cap and the chunked
  queries) — one mail;
* the same mail re-encoded in transit (quoted-printable, LF, a trace header): found
  as a duplicate by its content fingerprint;
* the content fingerprint alone against parsing alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import fresh
from mailgate.intake import ingest
from mailgate.mail.fingerprint import content_fingerprint
from mailgate.mail.parse import HashSink, parse


def normal(i: int) -> bytes:
    return (
        b"From: Carla <carla@customer.example>\r\nTo: support@example.org\r\n"
        b"Subject: Transfer %d hangs\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n"
        b"Message-ID: <n%d@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe, the transfer %d hangs.\r\n"
        % (i, i, i)
    )


def reencoded(i: int) -> bytes:
    raw = (
        normal(i)
        .replace(b"8bit", b"quoted-printable")
        .replace(b"\xc3\xbc\xc3\x9f", b"=C3=BC=C3=9F")
    )
    return (b"Received: from relay.example by mx.example.org; Mon, 23 Nov 2026\r\n" + raw).replace(
        b"\r\n", b"\n"
    )


def many_cc(count: int) -> bytes:
    cc = ",\r\n ".join(f"p{i}@c{i % 50}.example" for i in range(count))
    return normal(10**6).replace(b"Subject:", b"Cc: " + cc.encode() + b"\r\nSubject:", 1)


def timed(work: list[bytes], ctx: object) -> tuple[float, list[str]]:
    started = time.perf_counter()
    actions = [ingest(ctx, raw, source="pipe").action for raw in work]  # type: ignore[arg-type]
    return (time.perf_counter() - started) / len(work), actions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = fresh(Path(tmp) / "gw")
        per_normal, actions = timed([normal(i) for i in range(args.count)], ctx)
        assert set(actions) == {"created"}, actions
        per_dup, actions = timed([reencoded(i) for i in range(args.count)], ctx)
        assert set(actions) == {"duplicate"}, actions
        per_cc, actions = timed([many_cc(33_000)], ctx)
        assert actions == ["created"], actions
    mails = [normal(i) for i in range(args.count * 10)]
    started = time.perf_counter()
    parsed = [parse(raw, HashSink()) for raw in mails]
    parse_time = time.perf_counter() - started
    started = time.perf_counter()
    for mail in parsed:
        content_fingerprint(mail)
    fingerprint_time = time.perf_counter() - started
    print(f"ingest, normal mail                      {per_normal * 1000:8.1f} ms   1.00")
    print(
        f"ingest, same mail re-encoded (duplicate) {per_dup * 1000:8.1f} ms"
        f"   {per_dup / per_normal:.2f}"
    )
    print(
        f"ingest, a mail with 33,000 Cc            {per_cc * 1000:8.1f} ms"
        f"   {per_cc / per_normal:.1f}"
    )
    print(f"content fingerprint / parse              {fingerprint_time / parse_time:.3f}")


if __name__ == "__main__":
    main()
