"""Hostile and broken mail at the parser: nothing raises, nothing is lost, nothing is slow.

Each case is a mail a careless client or an attacker really sends; the assertions are
what a user would see on the ticket (the text, the names, the stored attachments) and
the ``repairs`` the trace shows.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import struct
import time
from collections.abc import Iterable

import pytest

from mailgate.mail.charsets import decode_bytes, decode_header
from mailgate.mail.parse import HashSink, ParsedMail, ParseLimits, parse


class RecordingSink:
    """Keeps every stored blob, as the blob store would."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        data = b"".join(chunks)
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest, len(data)


def p(raw: bytes, limits: ParseLimits = ParseLimits()) -> ParsedMail:  # noqa: B008
    return parse(raw, HashSink(), limits=limits)


# --- header decoding never raises -----------------------------------------------------------

HOSTILE_HEADERS = [
    "=?\udcf8?Q?n?=",
    "=?utf-8\x00?Q?n?=",
    "=?\x00?B?AAAA?=",
    "=?\ud800?B?YQ==?=",
    "\ud800 lone surrogate",
    "=?base64?Q?abc?=",
    "=?rot13?Q?abc?=",
    "=?utf-16?Q?abc?=",
    "=?unicode-escape?Q?\\N{x}?=",
    "=?utf-8?B?!!!!?=",
    "=?utf-8?Q?=ZZ=?=",
    "=?" + "x" * 5000 + "?Q?a?=",
    "\x00\x01\x02 =?utf-8?Q?a?=\x00",
    "=?utf-8?Q?caf\udcc3\udca9?=",
]


@pytest.mark.parametrize("value", HOSTILE_HEADERS)
def test_decoding_a_hostile_header_never_raises(value: str) -> None:
    text = decode_header(value)
    assert isinstance(text, str)
    text.encode("utf-8")  # no lone surrogate survives
    email.utils.parseaddr(text)


def test_encoded_word_with_a_charset_that_is_no_charset_reads_as_utf8() -> None:
    assert decode_header("=?\udcf8?Q?n?=") == "n"
    assert decode_header("=?\udcf8?Q?caf=C3=A9?=") == "café"
    assert decode_header("=?\udcf8?Q?=FF?=") == "\ufffd"


def test_random_header_bytes_never_make_decoding_raise() -> None:
    rng = random.Random(9)
    alphabet = b"=?QqBb_ \t\r\n\x00\xf8\xc3\xa9azAZ09+/"
    for _ in range(3000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        text = decode_header(raw.decode("ascii", "surrogateescape"))
        text.encode("utf-8")


def test_decoding_a_body_with_a_label_that_is_no_text_codec_never_raises() -> None:
    for label in ("base64", "rot13", "zlib", "utf-8\x00", "\udcf8", "undefined", "x" * 300):
        text, note = decode_bytes(b"caf\xc3\xa9", label)
        assert text == "café"
        assert note


def test_from_made_of_one_bad_encoded_word_without_an_address_is_read() -> None:
    mail = p(b"From: =?\xf8?Q?n?=\r\nTo: support@example.org\r\nSubject: x\r\n\r\nHello\r\n")
    assert mail.sender is None
    assert mail.from_raw == "n"
    assert mail.from_name == "n"
    assert mail.text == "Hello"
    assert any("read as UTF-8" in r for r in mail.repairs)


# --- mails that used to be quarantined ------------------------------------------------------


def test_nul_in_the_charset_parameter_is_repaired_not_quarantined() -> None:
    raw = b'From: a@example.net\r\nContent-Type: text/plain; charset="utf-8\x00"\r\n\r\nK\xc3\xa4se\r\n'
    assert p(raw).text == "Käse"


def test_nul_in_the_boundary_parameter_is_repaired_not_quarantined() -> None:
    raw = (
        b'From: a@example.net\r\nContent-Type: multipart/mixed; boundary="a\x00b"\r\n\r\n'
        b"--a\x00b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n--a\x00b--\r\n"
    )
    assert p(raw).text == "the text"


def test_raw_utf8_in_an_encoded_word_of_a_forwarded_message_names_the_attachment() -> None:
    raw = (
        b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        b"--x\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: b@example.com\r\nSubject: =?utf-8?Q?Caf\xc3\xa9 ferm\xc3\xa9?=\r\n\r\ninner\r\n"
        b"--x--\r\n"
    )
    mail = p(raw)
    assert mail.text == "see below"
    assert [a.filename for a in mail.attachments] == ["Café fermé.eml"]


def test_mime_too_deep_for_any_parser_is_read_up_to_the_limit() -> None:
    depth = 3000
    raw = b"From: a@example.net\r\nSubject: deep\r\n"
    for i in range(depth):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    raw += b"Content-Type: text/plain\r\n\r\nhello\r\n"
    mail = p(raw)  # neither raises nor is quarantined
    assert mail.subject == "deep"
    assert mail.repairs


def test_mime_deeper_than_the_limit_is_cut_with_a_repair() -> None:
    raw = b"From: a@example.net\r\n"
    for i in range(12):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    raw += b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for i in reversed(range(12)):
        raw += b"--b%d--\r\n" % i
    assert p(raw).text == "hello"
    shallow = p(raw, ParseLimits(max_depth=5))
    assert shallow.text == ""
    assert any("deeper than 5" in r for r in shallow.repairs)


def test_more_parts_than_the_limit_are_not_read() -> None:
    parts = b"".join(b"--x\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(50))
    raw = b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    raw += parts + b"--x--\r\n"
    mail = p(raw, ParseLimits(max_parts=10))
    assert "part 8" in mail.text and "part 20" not in mail.text
    assert any("more than 10 MIME parts" in r for r in mail.repairs)


def test_more_headers_than_the_limit_are_not_read() -> None:
    raw = b"From: a@example.net\r\n" + b"X-Junk: 1\r\n" * 50 + b"Subject: late\r\n\r\nbody\r\n"
    mail = p(raw, ParseLimits(max_headers=20))
    assert mail.subject == ""
    assert any("more than 20 header fields" in r for r in mail.repairs)


# --- forwarded messages are stored byte for byte --------------------------------------------


def _forwarding(inner_body_size: int, padding: int) -> tuple[bytes, bytes]:
    inner = (
        b"From: Carla <carla@customer.example>\r\nTo: support@example.org\r\n"
        b"Subject: the original\r\nMessage-ID: <orig@customer.example>\r\n\r\n"
        + b"A line of the forwarded mail, CRLF kept.\r\n" * (inner_body_size // 42 + 1)
    )
    raw = (
        b"From: Ben <ben@customer.example>\r\nTo: support@example.org\r\nSubject: Fwd\r\n"
        b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: text/plain\r\n\r\nSee the forwarded mail.\r\n"
        + b"padding line\r\n" * (padding // 14)
        + b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner
        + b"\r\n--outer--\r\n"
    )
    return raw, inner


@pytest.mark.parametrize(
    ("inner_size", "padding"),
    [(500, 0), (9_000, 0), (9_000, 20_000), (100_000, 0), (300_000, 300_000), (5_000, 20_000)],
)
def test_a_forwarded_message_is_stored_exactly_as_it_came(inner_size: int, padding: int) -> None:
    raw, inner = _forwarding(inner_size, padding)
    sink = RecordingSink()
    mail = parse(raw, sink)
    (attachment,) = mail.attachments
    assert attachment.content_type == "message/rfc822"
    assert attachment.filename == "the original.eml"
    assert attachment.sha256 == hashlib.sha256(inner).hexdigest()
    assert attachment.size == len(inner)
    assert sink.blobs[attachment.sha256] == inner


def test_every_stored_attachment_equals_its_decoded_part() -> None:
    for size in (100, 10_000, 200_000):
        payload = bytes(random.Random(size).randrange(256) for _ in range(size))
        message = email.message.EmailMessage()
        message["From"] = "a@example.net"
        message.set_content("text")
        message.add_attachment(payload, maintype="application", subtype="pdf", filename="x.pdf")
        _raw, inner = _forwarding(size, 0)
        message.add_attachment(email.message_from_bytes(inner))
        raw = message.as_bytes()
        sink = RecordingSink()
        mail = parse(raw, sink)
        stored = {a.filename: sink.blobs[a.sha256] for a in mail.attachments}
        assert stored["x.pdf"] == payload
        # The forwarded mail's body exactly as it stands in this raw mail.
        body = raw.split(b"Content-Type: message/rfc822", 1)[1].split(b"\n\n", 1)[1]
        body = body[: body.rindex(b"\n--")]
        assert stored["the original.eml"] == body


def test_a_bounce_with_a_large_returned_original_still_names_our_message() -> None:
    raw, _inner = _forwarding(20_000, 20_000)
    raw = raw.replace(b"From: Ben <ben@customer.example>", b"From: MAILER-DAEMON@mx.example.com")
    raw = raw.replace(b"Subject: Fwd", b"Subject: Undelivered Mail Returned to Sender")
    raw = raw.replace(
        b"See the forwarded mail.",
        b"I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        b"<nobody@customer.example>: host mx said: 550 5.1.1 user unknown",
    )
    mail = p(raw)
    assert mail.report is not None
    assert mail.report.original_message_id == "<orig@customer.example>"


# --- linear time on attacker input ----------------------------------------------------------


def _named(name: bytes) -> bytes:
    return (
        b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b'--x\r\nContent-Type: application/pdf; name="' + name + b'.pdf"\r\n'
        b'Content-Disposition: attachment; filename="' + name + b'.pdf"\r\n\r\nAAAA\r\n--x--\r\n'
    )


@pytest.mark.parametrize("unit", [b"a", b"\xc3\xa4", b"a;", b"a\\;"])
def test_a_100000_character_attachment_name_parses_quickly(unit: bytes) -> None:
    started = time.process_time()
    mail = p(_named(unit * 100_000))
    elapsed = time.process_time() - started
    (attachment,) = mail.attachments
    assert attachment.filename.endswith(".pdf")
    assert len(attachment.filename.encode()) <= 255
    assert elapsed < 2.0, elapsed  # quadratic code takes minutes here


# --- junk before the header block, odd header names ------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [
        b"From carla@customer.example Mon Nov 23 09:14:02 2026\r\n",
        b"\r\n",
        b"\xef\xbb\xbf",
        b"Microsoft Mail Internet Headers Version 2.0\r\n",
        b"\r\n\r\n>>> saved by MailClient 3.1 <<<\r\n\r\n",
    ],
)
def test_junk_before_the_header_block_is_skipped(junk: bytes) -> None:
    raw = junk + b"From: Carla <carla@customer.example>\r\nSubject: Help\r\n\r\nthe text\r\n"
    mail = p(raw)
    assert mail.sender is not None and mail.sender.email == "carla@customer.example"
    assert mail.subject == "Help"
    assert mail.text == "the text"


def test_header_name_with_spaces_before_the_colon_is_read() -> None:
    raw = b"Subject : Help\r\nFrom  : carla@customer.example\r\nTo: s@example.org\r\n\r\nx\r\n"
    mail = p(raw)
    assert mail.sender is not None and mail.sender.email == "carla@customer.example"
    assert mail.subject == "Help"
    assert any("space before the colon" in r for r in mail.repairs)


# --- names and addresses as the sender meant them --------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (b"Support Team", "Support Team"),
        (b"<>", ""),
        (b"undisclosed", "undisclosed"),
        (b"MAILER-DAEMON <>", "MAILER-DAEMON"),
        (b"=?utf-8?Q?J=C3=B6rg_Support?=", "Jörg Support"),
    ],
)
def test_from_without_a_usable_address_keeps_name_and_raw_value(value: bytes, name: str) -> None:
    raw = b"From: " + value + b"\r\nReply-To: help@customer.example\r\n"
    raw += b"Sender: relay@customer.example\r\nReturn-Path: <bounce@customer.example>\r\n\r\nx\r\n"
    mail = p(raw)
    assert mail.sender is None
    assert mail.from_name == name
    assert mail.from_raw == decode_header(value.decode())
    assert [a.email for a in mail.reply_to] == ["help@customer.example"]
    assert mail.sender_header is not None and mail.sender_header.email == "relay@customer.example"
    assert mail.return_path == "bounce@customer.example"
    assert [how for how, _ in mail.requester_candidates] == ["Reply-To", "Sender", "Return-Path"]


def test_quoted_local_part_stays_quoted() -> None:
    raw = b'From: "john doe"@example.com\r\nCc: Jane <"jane q"@Example.COM>\r\n\r\nx\r\n'
    mail = p(raw)
    assert mail.sender is not None and mail.sender.email == '"john doe"@example.com'
    assert [a.email for a in mail.cc] == ['"jane q"@example.com']


def test_encoded_words_with_spaces_and_tabs_inside_decode_as_meant() -> None:
    assert decode_header("=?utf-8?Q?Gr=C3=BC=C3=9Fe aus Berlin?=") == "Grüße aus Berlin"
    assert decode_header("=?utf-8?Q?Gr=C3=BC=C3=9Fe\taus Berlin?=") == "Grüße aus Berlin"
    assert decode_header("=?utf-8?B?R3LDvMOfZSBh dXMgQmVybGlu?=") == "Grüße aus Berlin"
    raw = b"From: a@example.net\r\nSubject: =?utf-8?Q?Gr=C3=BC=C3=9Fe aus Berlin?=\r\n\r\nx\r\n"
    assert p(raw).subject == "Grüße aus Berlin"


def _with_attachment(name: bytes, part_charset: bytes = b"", text_charset: bytes = b"") -> bytes:
    text_ct = b"text/plain" + (b"; charset=" + text_charset if text_charset else b"")
    part_ct = b"application/octet-stream" + (b"; charset=" + part_charset if part_charset else b"")
    return (
        b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: " + text_ct + b"\r\n\r\nsee attached\r\n"
        b"--x\r\nContent-Type: " + part_ct + b'\r\nContent-Disposition: attachment; filename="'
        + name + b'"\r\n\r\nAAAA\r\n--x--\r\n'
    )


@pytest.mark.parametrize(
    ("raw", "filename"),
    [
        (_with_attachment("Отчёт за май.pdf".encode("koi8_r"), part_charset=b"koi8-r"),
         "Отчёт за май.pdf"),
        (_with_attachment("Отчёт за май.pdf".encode("koi8_r"), text_charset=b"koi8-r"),
         "Отчёт za май.pdf".replace("za", "за")),
        (_with_attachment("Größe März.pdf".encode()), "Größe März.pdf"),
        (_with_attachment("Größe März.pdf".encode("cp1252")), "Größe März.pdf"),
        (_with_attachment("見積書 2026年.xlsx".encode("cp932")), "見積書 2026年.xlsx"),
        (_with_attachment("请查收附件报告.doc".encode("gb18030")), "请查收附件报告.doc"),
        (_with_attachment("Отчёт о работе.pdf".encode("koi8_r")), "Отчёт о работе.pdf"),
        (_with_attachment(b"=?utf-8?Q?Rechnung Nr 5.pdf?="), "Rechnung Nr 5.pdf"),
        (_with_attachment(b"my  file   name.txt"), "my  file   name.txt"),
    ],
)  # fmt: skip
def test_raw_8bit_and_spaced_file_names_are_decoded_as_meant(raw: bytes, filename: str) -> None:
    (attachment,) = p(raw).attachments
    assert attachment.filename == filename


def test_raw_8bit_subject_is_read_in_the_charset_of_the_text() -> None:
    raw = (
        b"From: a@example.net\r\nSubject: " + "Счёт оплачен".encode("koi8_r") + b"\r\n"
        b"Content-Type: text/plain; charset=koi8-r\r\n\r\n" + "Спасибо".encode("koi8_r") + b"\r\n"
    )
    mail = p(raw)
    assert mail.subject == "Счёт оплачен"
    assert mail.text == "Спасибо"


# --- TNEF --------------------------------------------------------------------------------------


def _tnef_attr(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def _mapi_long_name(name: str) -> bytes:
    value = name.encode("utf-16-le") + b"\x00\x00"
    padded = value + b"\x00" * (-len(value) % 4)
    return struct.pack("<IHHII", 1, 0x001F, 0x3707, 1, len(value)) + padded


def winmail(files: list[tuple[str, str, bytes]]) -> bytes:
    """A winmail.dat as Outlook writes it: per file its 8.3 title, data and long name."""
    out = b"\x78\x9f\x3e\x22" + b"\x01\x00"
    out += _tnef_attr(1, 0x9006, 0x0008, b"\x00\x00\x01\x00")  # TNEF version
    for short, long_name, data in files:
        out += _tnef_attr(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)
        out += _tnef_attr(2, 0x8010, 0x0001, short.encode() + b"\x00")
        out += _tnef_attr(2, 0x800F, 0x0006, data)
        out += _tnef_attr(2, 0x9005, 0x0006, _mapi_long_name(long_name))
    return out


def test_winmail_dat_files_become_attachments_and_the_original_is_kept() -> None:
    blob = winmail(
        [
            ("QUARTA~1.PDF", "Quartalsbericht Q3 2026.pdf", b"%PDF-1.4 report"),
            ("FOTO~1.JPG", "Foto vom Schaden.jpg", b"\xff\xd8\xff jpeg"),
        ]
    )
    message = email.message.EmailMessage()
    message["From"] = "jane@customer.example"
    message.set_content("Bericht anbei")
    message.add_attachment(blob, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    sink = RecordingSink()
    mail = parse(message.as_bytes(), sink)
    names = [a.filename for a in mail.attachments]
    assert names == ["winmail.dat", "Quartalsbericht Q3 2026.pdf", "Foto vom Schaden.jpg"]
    by_name = {a.filename: a for a in mail.attachments}
    assert sink.blobs[by_name["Quartalsbericht Q3 2026.pdf"].sha256] == b"%PDF-1.4 report"
    assert by_name["Quartalsbericht Q3 2026.pdf"].content_type == "application/pdf"
    assert sink.blobs[by_name["winmail.dat"].sha256] == blob


def test_a_broken_winmail_dat_is_kept_as_it_is() -> None:
    blob = b"\x78\x9f\x3e\x22\x01\x00" + b"\xff" * 40
    message = email.message.EmailMessage()
    message["From"] = "jane@customer.example"
    message.set_content("x")
    message.add_attachment(blob, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    mail = p(message.as_bytes())
    assert mail.attachments[0].filename == "winmail.dat"


def test_rfc2231_sections_the_stdlib_cannot_sort_do_not_stop_the_parse() -> None:
    raw = (
        b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain; charset*=utf-8''x; charset*0=a\r\n\r\nhello\r\n"
        b"--x\r\nContent-Type: text/plain; name*0=a.t; name*=b; name*1=xt\r\n\r\nfile\r\n--x--\r\n"
    )
    mail = p(raw)
    assert mail.text == "hello"
    assert len(mail.attachments) == 1
