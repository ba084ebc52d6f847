"""Figures of mailgate's mail reading on the shared real-world corpus.

    python bench/corpus_figures.py [--corpus ../shared/corpus]   (default: $MAILGATE_CORPUS)

Prints:

* reply text: per corpus, how many expected visible texts ``reply_text`` gives
  exactly (github and zapier email_reply_parser: their ``visible_text``; talon:
  its expected reply with quotes removed only, i.e. signatures kept, compared
  whitespace-insensitively for its HTML replies);
* bounces: agreement of ``FailedRecipient.permanent`` with the permanence of
  sisimai's expectation (the class of its delivery status: 5 = permanent, 4 =
  temporary), with the confusion matrix; feedback and auto-reply entries have no
  permanence and are left out, and a row sisimai repeats verbatim counts once;
* classification of the sisimai set (bounce / auto-reply / person...).

Reads the corpus only; writes nothing.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailgate.mail import quotes
from mailgate.mail.classify import classify
from mailgate.mail.html import html_to_text
from mailgate.mail.parse import HashSink, parse


def reply_text(body: str) -> str:
    fn = getattr(quotes, "reply_text", None)
    if fn is not None:
        return str(fn(body))
    return quotes.visible_text(body)


def quotes_only(body: str) -> str:
    return quotes.visible_text(body, keep_signature=True)


def _first_plain(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return str(part.get_content())
    return ""


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def reply_figures(root: Path) -> None:
    print("reply text (exact):")
    for name in ("github-email_reply_parser", "zapier-email-reply-parser"):
        expected = json.loads((root / name / "EXPECTED.json").read_text())["expected"]
        total = exact = 0
        misses = []
        for file, exp in sorted(expected.items()):
            want = exp.get("visible_text", exp.get("visible_text_stripped"))
            if want is None:
                continue
            body = (root / name / "test" / "emails" / file).read_text(encoding="utf-8")
            total += 1
            if reply_text(body).strip() == want.strip():
                exact += 1
            else:
                misses.append(file)
        print(f"  {name}: {exact}/{total}" + (f"  misses: {', '.join(misses)}" if misses else ""))
    talon = json.loads((root / "talon" / "EXPECTED.json").read_text())["expected"]
    fixtures = root / "talon" / "tests" / "fixtures"
    counts: Counter[str] = Counter()
    misses = []
    for file, exp in sorted(talon.items()):
        if file.startswith("standard_replies/"):
            got = quotes_only(_first_plain(fixtures / file)).strip()
            ok = got == exp["expected_reply_stripped"].strip()
        elif file.startswith("html_replies/"):
            text = html_to_text((fixtures / file).read_text(encoding="utf-8"))
            got = quotes_only(text)
            ok = _squash(got) == _squash(exp["expected_reply_text_whitespace_insensitive"])
        else:
            continue  # signature samples: not a quote measure
        kind = file.split("/")[0]
        counts[kind + " total"] += 1
        counts[kind] += ok
        if not ok:
            misses.append(file)
    print(
        f"  talon, quotes removed only: standard {counts['standard_replies']}/"
        f"{counts['standard_replies total']}, html {counts['html_replies']}/"
        f"{counts['html_replies total']}" + (f"  misses: {', '.join(misses)}" if misses else "")
    )


def bounce_figures(root: Path) -> None:
    base = root / "sisimai-set-of-emails"
    expected = json.loads((base / "EXPECTED.json").read_text())["expected"]
    matrix: Counter[tuple[str, str]] = Counter()
    causes: Counter[str] = Counter()
    misses = []
    for key, entry in sorted(expected.items()):
        theirs = _distinct(
            [r for r in entry["recipients"] if str(r["deliverystatus"])[:1] in ("4", "5")]
        )
        if not theirs:
            continue
        report = parse((base / key).read_bytes(), HashSink()).report
        ours = list(report.recipients) if report is not None else []
        for index, want in enumerate(theirs):
            expected_permanent = str(want["deliverystatus"]).startswith("5")
            got = ours[index].permanent if index < len(ours) else None
            label = "missing" if got is None else ("permanent" if got else "temporary")
            matrix[("permanent" if expected_permanent else "temporary", label)] += 1
            if got is not expected_permanent:
                status = ours[index].status if index < len(ours) else "-"
                action = ours[index].action if index < len(ours) else ""
                why = _why(got, status, action)
                causes[why] += 1
                misses.append(
                    f"{key} #{index + 1}: ours {label} ({status} {action}) vs "
                    f"{want['deliverystatus']} — {why}"
                )
    total = sum(matrix.values())
    agree = matrix[("permanent", "permanent")] + matrix[("temporary", "temporary")]
    print(f"bounce permanence agreement: {agree}/{total} = {agree / total:.2%}")
    print("  expected \\ ours   permanent  temporary  missing")
    for want in ("permanent", "temporary"):
        row = [matrix[(want, got)] for got in ("permanent", "temporary", "missing")]
        print(f"  {want:<16} {row[0]:>9}  {row[1]:>9}  {row[2]:>7}")
    print("  the disagreements, by what our rule saw:")
    for why, count in causes.most_common():
        print(f"    {count:>3}  {why}")
    for line in misses:
        print("   ", line)
    kinds: Counter[str] = Counter()
    for path in sorted((base / "maildir").rglob("*.eml")):
        mail = parse(path.read_bytes(), HashSink())
        verdict = classify(mail, own_addresses=frozenset(), loop_token="corpus")  # noqa: S106
        kinds[verdict.kind] += 1
    print(f"sisimai classification: {dict(kinds)}")


def _distinct(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """sisimai's expectations with a row repeated verbatim (same index, status, code and
    reason) counted once: its RFC3464 test table lists "01" twice (the second stands
    for an -02 mail that is not in the set), and the expectation file took both for
    rfc3464-01, a report about one recipient. Two rows that differ (lhost-qmail-25:
    two recipients, both numbered 1) stay two."""
    seen: set[tuple[object, ...]] = set()
    kept = []
    for row in rows:
        key = (row["index"], row["deliverystatus"], row["replycode"], row["reason"])
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def _why(got: bool | None, status: str, action: str) -> str:
    """Why our permanence differs from sisimai's, in the terms of our rule (issue 17:
    status class and action first; a 4.x.x or a delay is never permanent)."""
    if got is None:
        return "no such recipient in the report"
    if action == "delayed":
        return "delayed: never permanent"
    if status == "4.4.7":
        return "gave up after retries (4.4.7): the address itself may be fine"
    if status[:1] == "4":
        return "the report's Status is class 4 (it wins over the words): temporary"
    if status[:1] == "5":
        return "the report's Status is class 5 (it wins over the words): permanent"
    return "no status: decided by the reply code and the words"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    default = Path(
        os.environ.get("MAILGATE_CORPUS")
        or Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    parser.add_argument("--corpus", type=Path, default=default)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found at {args.corpus} (use --corpus)")
    reply_figures(args.corpus)
    bounce_figures(args.corpus)


if __name__ == "__main__":
    main()
