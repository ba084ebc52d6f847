"""``mailgate blobs …``: one blob's exact bytes, and copying every blob to another store."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mailgate.cli.common import EX_FAIL, EX_OK, Subparsers, command, context, group
from mailgate.errors import UsageError

ORDER = 90


def register(sub: Subparsers) -> None:
    b = group(sub, "blobs", "the blob store: raw mails and files by sha256")
    p = command(b, "get", _get, "the exact bytes of one blob (to stdout, or -o FILE)")
    p.add_argument("sha256")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p = command(
        b,
        "copy",
        _copy,
        "copy every blob the database references to another store (resumable, verified)",
    )
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="file:///path, postgresql://…, s3://bucket/prefix",
    )
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="the target's S3 endpoint (default: storage.s3_endpoint)",
    )


def _get(args: argparse.Namespace) -> int:
    from mailgate.admin import blobs

    ctx = context(args, schema_required=False)
    with blobs.open_blob(ctx, args.sha256) as source:
        if args.output is None:
            shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
            return EX_OK
        try:
            with Path(args.output).open("wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
                size = target.tell()
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"{args.sha256}: {size} bytes written to {args.output}", file=sys.stderr)
    return EX_OK


def _copy(args: argparse.Namespace) -> int:
    from mailgate.admin import blobs

    ctx = context(args)

    def progress(report: blobs.CopyReport) -> None:
        print(f"… {report.total} blobs looked at, {report.copied} copied", file=sys.stderr)

    report = blobs.copy_to(ctx, args.to, s3_endpoint=args.s3_endpoint, progress=progress)
    print(
        f"{report.copied} copied, {report.present} already there, "
        f"{report.missing} missing from {ctx.blobs.url}, {len(report.corrupt)} corrupt"
    )
    for sha256 in report.corrupt:
        print(f"mailgate: blob {sha256} does not match its sha256; not copied", file=sys.stderr)
    if report.missing:
        print(
            f"mailgate: {report.missing} referenced blob(s) are not in {ctx.blobs.url}",
            file=sys.stderr,
        )
    return EX_FAIL if report.corrupt or report.missing else EX_OK
