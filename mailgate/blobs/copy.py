"""Copy blobs from one store to another (``mailgate blobs copy --to URL``).

Resumable: a blob the target already has is skipped, so a copy stopped halfway is run
again and goes on. Verified: each blob is hashed as it streams from the source into the
target, and what the target stored must have the name (sha256) and size it should — a
blob that does not hash to its name is reported, and its wrong copy taken back. Imports
``blobs.base`` and errors only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mailgate.blobs.base import BlobStore, read_chunks


@dataclass
class CopyReport:
    copied: int = 0
    present: int = 0  # the target had it already
    missing: int = 0  # referenced, but not in the source store
    corrupt: list[str] = field(default_factory=list)  # does not hash to its name

    @property
    def total(self) -> int:
        return self.copied + self.present + self.missing + len(self.corrupt)


def copy_all(
    source: BlobStore,
    target: BlobStore,
    wanted: Iterable[str],
    progress: Callable[[CopyReport], None] | None = None,
) -> CopyReport:
    report = CopyReport()
    for sha256 in wanted:
        if target.exists(sha256):
            report.present += 1
        elif not source.exists(sha256):
            report.missing += 1
        else:
            copy_one(source, target, sha256, report)
        if progress is not None and report.total % 1000 == 0:
            progress(report)
    return report


def copy_one(source: BlobStore, target: BlobStore, sha256: str, report: CopyReport) -> None:
    stored, size = target.write_chunks(read_chunks(source.open(sha256)))
    if stored != sha256:
        report.corrupt.append(sha256)
        target.delete(stored)
        return
    if target.size(sha256) != size:
        report.corrupt.append(sha256)
        return
    report.copied += 1
