"""Parsing real-looking mail from many clients: charsets, HTML, attachments, broken MIME."""

from __future__ import annotations

import base64
import email
import hashlib
import os
from pathlib import Path

import pytest

from mailgate.blobs import FileStore
from mailgate.mail.parse import HashSink, ParsedMail, Unparseable, parse
from tests.corpus import corpus_dir
from tests.support import compose


def p(raw: bytes) -> ParsedMail:
    return parse(raw, HashSink())


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


OUTLOOK_REPLY = crlf("""\
From: =?iso-8859-1?Q?J=F6rg_M=FCller?= <joerg.mueller@kunde.example>
To: "Support" <support@example.org>
Subject: AW: [EB#482913] Online-Banking gestört
Date: Mon, 23 Nov 2026 09:14:02 +0000
Message-ID: <AM6PR03MB1234ABCD@AM6PR03MB1234.eurprd03.prod.outlook.com>
In-Reply-To: <9eef8a4a58b84c7eb6a3a9d4fb9aeee3.482913@helpdesk.example.org>
References: <c5b77071e5bd4da6@kunde.example> <9eef8a4a58b84c7eb6a3a9d4fb9aeee3.482913@helpdesk.example.org>
Thread-Topic: [EB#482913] Online-Banking gestört
Thread-Index: AQHZ1234567890abcdefgh==
Content-Language: de-DE
X-MS-Has-Attach:
Content-Type: multipart/alternative; boundary="_000_AM6PR03MB1234_"
MIME-Version: 1.0

--_000_AM6PR03MB1234_
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

Hallo,

es geht wieder nicht. Preis: 5=80, =93Fehler 42=94.

Gr=FC=DFe
J=F6rg

________________________________
Von: Example Bank Helpdesk <support@example.org>
Gesendet: Montag, 23. November 2026 08:00
An: J=F6rg M=FCller <joerg.mueller@kunde.example>
Betreff: [EB#482913] Online-Banking gest=F6rt

Hello J=F6rg, we have opened ticket [EB#482913].

--_000_AM6PR03MB1234_
Content-Type: text/html; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

<html><head><style>p{margin:0}</style></head><body><p>Hallo,</p><p>es geht wieder nicht. Preis: 5=80</p>
<div id=3D"divRplyFwdMsg"><b>Von:</b> Example Bank Helpdesk<br><b>Gesendet:</b> Montag<br></div>
</body></html>

--_000_AM6PR03MB1234_--
""")

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 300).decode()
APPLE_MAIL_INLINE_IMAGE = crlf(f"""\
From: Anna Berg <anna@kunde.example>
Content-Type: multipart/alternative; boundary="Apple-Mail=_A1"
Mime-Version: 1.0 (Mac OS X Mail 16.0)
Subject: Screenshot of the error
Date: Mon, 23 Nov 2026 10:00:00 +0100
Message-Id: <A1B2C3D4-1111-2222-3333-444455556666@kunde.example>
To: support@example.org

--Apple-Mail=_A1
Content-Transfer-Encoding: 7bit
Content-Type: text/plain; charset=us-ascii

See the screenshot below.

[image: screenshot.png]

Anna

--Apple-Mail=_A1
Content-Type: multipart/related; type="text/html"; boundary="Apple-Mail=_B2"

--Apple-Mail=_B2
Content-Transfer-Encoding: 7bit
Content-Type: text/html; charset=us-ascii

<html><body>See the screenshot below.<br><img src="cid:ABC-123@kunde.example"><br>Anna</body></html>
--Apple-Mail=_B2
Content-Transfer-Encoding: base64
Content-Disposition: inline; filename=screenshot.png
Content-Type: image/png; name="screenshot.png"
Content-Id: <ABC-123@kunde.example>

{PNG}
--Apple-Mail=_B2--

--Apple-Mail=_A1--
""")

GMAIL_HTML_ONLY = crlf("""\
MIME-Version: 1.0
Date: Mon, 23 Nov 2026 11:00:00 +0100
Message-ID: <CAFx=abc123@mail.gmail.com>
Subject: Karte gesperrt
From: Ben Koch <ben.koch@gmail.example>
To: support@example.org
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Meine Karte ist gesperrt.<div><br></div><div>Bitte helfen S=
ie mir.</div><script>alert(1)</script></div>
""")

FORWARDED = crlf("""\
From: Carla Customer <carla@customer.example>
To: support@example.org
Subject: Fwd: Suspicious mail
Message-ID: <fwd-1@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=utf-8

Is this mail really from you?

--outer
Content-Type: message/rfc822

From: Fake Bank <security@phish.example>
To: carla@customer.example
Subject: Verify your account
Message-ID: <phish-1@phish.example>

Click here to verify your account now.

--outer--
""")


def test_outlook_reply_with_mislabelled_latin1_reads_as_windows_1252() -> None:
    mail = p(OUTLOOK_REPLY)
    assert mail.sender is not None
    assert mail.sender.email == "joerg.mueller@kunde.example"
    assert mail.sender.name == "Jörg Müller"
    assert mail.subject == "AW: [EB#482913] Online-Banking gestört"
    assert "Preis: 5€, “Fehler 42”." in mail.text
    assert mail.in_reply_to == ("<9eef8a4a58b84c7eb6a3a9d4fb9aeee3.482913@helpdesk.example.org>",)
    assert mail.references[0] == "<c5b77071e5bd4da6@kunde.example>"
    assert "5€" in mail.html


def test_apple_mail_inline_image_is_an_inline_attachment_with_content_id() -> None:
    mail = p(APPLE_MAIL_INLINE_IMAGE)
    assert mail.text.startswith("See the screenshot below.")
    assert [(a.filename, a.content_type, a.inline, a.content_id) for a in mail.attachments] == [
        ("screenshot.png", "image/png", True, "ABC-123@kunde.example")
    ]
    assert mail.attachments[0].size == 308


def test_html_only_mail_gets_a_clean_text_rendering() -> None:
    mail = p(GMAIL_HTML_ONLY)
    assert "Meine Karte ist gesperrt." in mail.text
    assert "Bitte helfen Sie mir." in mail.text
    assert "<div" not in mail.text and "alert" not in mail.text


def test_forwarded_mail_is_an_attachment_and_does_not_pollute_the_body() -> None:
    mail = p(FORWARDED)
    assert mail.text == "Is this mail really from you?"
    assert [a.filename for a in mail.attachments] == ["Verify your account.eml"]
    assert mail.attachments[0].content_type == "message/rfc822"


def test_gb2312_label_on_gbk_text_is_decoded_as_gbk() -> None:
    body = "镕 堃 请帮忙".encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        body.decode("gb2312")
    raw = (
        b"From: li@example.cn\nTo: support@example.org\nSubject: =?gb2312?B?"
        + base64.b64encode("问题 镕".encode("gbk"))
        + b"?=\n"
        b"Content-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: 8bit\n\n" + body
    )
    mail = p(raw)
    assert mail.text == "镕 堃 请帮忙"
    assert mail.subject == "问题 镕"


def test_iso_2022_jp_with_microsoft_extensions_keeps_circled_numbers() -> None:
    # ①② are NEC row 13 (JIS 0x2D21, 0x2D22): outside strict ISO-2022-JP.
    body = b'\x1b$B-!-"\x1b(B OK \x1b$B%F%9%H\x1b(B\n'
    raw = (
        b"From: taro@example.jp\nTo: support@example.org\n"
        b"Subject: =?ISO-2022-JP?B?GyRCLSEtIhsoQg==?=\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\n\n" + body
    )
    mail = p(raw)
    assert mail.text == "①② OK テスト"
    assert mail.subject == "①②"


def test_unknown_charset_never_crashes_and_is_noted() -> None:
    raw = (
        b"From: x@example.com\nTo: support@example.org\nSubject: hi\n"
        b"Content-Type: text/plain; charset=x-klingon\nContent-Transfer-Encoding: 8bit\n\n"
        b"caf\xc3\xa9 ok\n"
    )
    mail = p(raw)
    assert mail.text == "café ok"
    assert any("x-klingon" in d for d in mail.defects)


def test_raw_8bit_headers_are_decoded_not_dropped() -> None:
    raw = (
        "From: Jörg <j@example.de>\nTo: support@example.org\nSubject: Grüße aus Köln\n\nhallo\n"
    ).encode()
    mail = p(raw)
    assert mail.subject == "Grüße aus Köln"
    assert mail.sender is not None and mail.sender.name == "Jörg"
    latin1 = b"From: j@example.de\nTo: support@example.org\nSubject: Gr\xfc\xdfe\n\nx\n"
    assert p(latin1).subject == "Grüße"


def test_rfc2231_and_rfc2047_attachment_names_are_decoded_and_made_safe() -> None:
    raw = crlf("""\
From: a@example.com
To: support@example.org
Subject: files
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

see attached
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b
Content-Type: application/octet-stream; name="=?utf-8?B?Li4vLi4vZXRjL3Bhc3N3ZAo=?="
Content-Disposition: attachment; filename="=?utf-8?B?Li4vLi4vZXRjL3Bhc3N3ZAo=?="
Content-Transfer-Encoding: base64

cm9vdDp4OjA6MDo=
--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="C:\\\\Users\\\\evil\\\\a\x07b.exe"

MZ
--b--
""")
    names = [a.filename for a in p(raw).attachments]
    assert names[0] == "Rechnung März.pdf"
    assert names[1] == "passwd"
    assert names[2] == "ab.exe"
    assert all("/" not in n and "\\" not in n for n in names)


def test_no_message_id_gets_a_deterministic_synthesized_one() -> None:
    raw = b"From: a@example.com\nTo: support@example.org\nSubject: no id\n\nbody\n"
    first, second = p(raw), p(raw)
    assert first.message_id_synthesized
    assert first.message_id == second.message_id
    assert first.message_id == f"<{hashlib.sha256(raw).hexdigest()[:40]}@sha256.mailgate.invalid>"


def test_garbage_bytes_are_unparseable() -> None:
    with pytest.raises(Unparseable):
        p(os.urandom(2000).replace(b":", b";"))
    with pytest.raises(Unparseable):
        p(b"")


def test_deeply_nested_mime_does_not_crash_the_parser() -> None:
    depth = 2000
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    raw = (
        "From: a@example.com\nTo: support@example.org\nSubject: bomb\nMIME-Version: 1.0\n"
        + head
        + "Content-Type: text/plain\n\nhi\n"
    ).encode()
    try:
        mail = p(raw)
    except Unparseable as exc:
        assert "MIME" in str(exc) or "Recursion" in str(exc)
    else:
        assert mail.subject == "bomb"


def test_large_attachment_is_streamed_and_hashes_like_the_stdlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    raw = compose(attachments=[("dump.bin", "application/octet-stream", data)])
    store = FileStore(tmp_path / "blobs")
    mail = parse(raw, store)
    (attachment,) = mail.attachments
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachment.size == len(data)
    assert store.get(attachment.sha256) == data
    assert "entire mobile online banking" in mail.text


def test_streaming_and_plain_parsing_agree_on_nested_attachments() -> None:
    from mailgate.mail import parse as parse_module

    inner = compose(
        subject="inner", attachments=[("a.bin", "application/octet-stream", os.urandom(200_000))]
    )
    raw = compose(
        attachments=[
            ("b.pdf", "application/pdf", os.urandom(300_000)),
            ("small.txt", "text/plain", b"hello"),
        ]
    )
    msg = email.message_from_bytes(raw)
    msg.attach(email.message_from_bytes(inner))
    big = msg.as_bytes()
    streamed = p(big)
    old = parse_module.STREAM_ABOVE
    parse_module.STREAM_ABOVE = 10**12
    try:
        plain = p(big)
    finally:
        parse_module.STREAM_ABOVE = old
    assert [(a.filename, a.sha256, a.size) for a in streamed.attachments] == [
        (a.filename, a.sha256, a.size) for a in plain.attachments
    ]
    assert streamed.text == plain.text


def test_a_forged_extraction_marker_cannot_reference_stored_blobs() -> None:
    raw = crlf("""\
From: a@example.com
To: support@example.org
Subject: forged
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

hi
--b
Content-Type: application/pdf
X-Mailgate-Extracted: 0000-0

--b--
""")
    mail = p(raw)
    assert mail.attachments == ()
    assert any("forged" in d for d in mail.defects)


def test_every_corpus_mail_parses_without_an_exception() -> None:
    root = corpus_dir()
    files = [
        f
        for f in root.rglob("*")
        if f.is_file() and f.suffix not in (".json", ".md", ".txt") and "LICENSE" not in f.name
    ]
    assert len(files) > 400
    failures = []
    for path in files:
        try:
            p(path.read_bytes())
        except Unparseable:
            continue
        except Exception as exc:  # noqa: BLE001 - the point is to list them all
            failures.append(f"{path.relative_to(root)}: {exc!r}")
    assert failures == []


def _shape(message: email.message.Message) -> list[tuple[object, ...]]:
    shape: list[tuple[object, ...]] = []
    for part in message.walk():
        multipart = part.is_multipart()
        shape.append(
            (
                part.get_content_type(),
                tuple(part.items()),
                None if multipart else part.get_payload(decode=True),
                part.preamble if multipart else None,
                (part.epilogue or "") if multipart else None,
            )
        )
    return shape


def _tree_cases() -> list[bytes]:
    from bench.corpus import corpus

    return [OUTLOOK_REPLY, APPLE_MAIL_INLINE_IMAGE, GMAIL_HTML_ONLY, FORWARDED, *corpus(60)]


def test_fast_tree_builder_builds_what_the_stdlib_builds() -> None:
    from mailgate.mail.mime import Irregular, build_tree

    built = 0
    for raw in _tree_cases():
        try:
            tree = build_tree(raw)
        except Irregular:
            continue
        built += 1
        assert _shape(tree) == _shape(email.message_from_bytes(raw))
    assert built >= 60


def test_fast_tree_builder_matches_the_stdlib_on_the_corpus_or_steps_aside() -> None:
    from mailgate.mail.mime import Irregular, build_tree

    root = corpus_dir()
    same = 0
    for path in root.rglob("*.eml"):
        raw = path.read_bytes()
        try:
            tree = build_tree(raw)
        except Irregular:
            continue
        assert _shape(tree) == _shape(email.message_from_bytes(raw)), path
        same += 1
    assert same > 300


PLAIN_ADDRESSES = crlf("""\
From: Noor =?utf-8?q?M=C3=BCller?= <Noor.6@Customer6.EXAMPLE>
To: "Smith, Bob" <bob@example.org>, carla@example.org,
 =?utf-8?q?J=C3=B6rg?=
 Petrov <joerg@example.org>
Cc: <dana@example.org>, Eve Example <eve@example.org>
Reply-To: =?utf-8?q?=3Cx=40evil=2Eexample=3E?= <reply@example.org>
Subject: plain address headers
Message-ID: <plain-1@example.org>
X-Folded: one
 two
\tthree

Hello.
""")


def test_plain_address_headers_read_as_written() -> None:
    """The common forms (quoted names with commas, folded lists, encoded names, bare
    addresses) give every recipient with the name the sender gave, decoded."""
    mail = p(PLAIN_ADDRESSES)
    assert mail.sender is not None
    assert (mail.sender.email, mail.sender.name) == ("Noor.6@customer6.example", "Noor Müller")
    assert [(a.email, a.name) for a in mail.to] == [
        ("bob@example.org", "Smith, Bob"),
        ("carla@example.org", ""),
        ("joerg@example.org", "Jörg Petrov"),
    ]
    assert [(a.email, a.name) for a in mail.cc] == [
        ("dana@example.org", ""),
        ("eve@example.org", "Eve Example"),
    ]
    # An encoded name that decodes to an address is a name, never the address.
    assert [a.email for a in mail.reply_to] == ["reply@example.org"]
    assert mail.header("x-folded") == "one two three"
    assert mail.from_name == "Noor Müller"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_header_blocks_read_like_the_stdlib(newline: str) -> None:
    """Every part's header block gives the fields the stdlib's parser would, however
    irregular (folds, a Unix From line, a field without a name, a bare CR)."""
    head = (
        "From sender@example.org Mon Nov 23 09:14:02 2026\n"
        "From: a@example.org\nSubject: one\n two\n: no name\nX-CR: a\rb\n"
        "Message-ID: <blocks@example.org>\n"
    )
    raw = (head + "\nbody\n").replace("\n", newline).encode()
    mail = p(raw)
    reference = email.message_from_bytes(raw)
    assert mail.subject == "one two"
    assert mail.header_names == tuple(k.lower() for k in reference)
