"""Issue 17's reading families through what a user sees: ``mailgate explain --json``.

Every mail, new ticket or reply, reports ``reply_text`` (what the person wrote, as it is
stored for a reply); the headers and names come out as the sender meant them. The
fixtures are whole mails written after each client's or broken mailer's behaviour.
``explain`` writes nothing, so one gateway (SQLite) serves the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate import store
from mailgate.context import Context
from mailgate.intake import explain
from tests.conftest import open_gateway
from tests.support import config_data, load_config, write_config


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    tmp = tmp_path_factory.mktemp("explain")
    data = config_data(tmp, f"sqlite:///{tmp / 'mailgate.db'}")
    yield open_gateway(load_config(write_config(tmp / "mailgate.toml", data)))
    store.close()


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


HEAD = (
    "From: Jane Doe <jane@customer.example>\nTo: support@example.org\n"
    "Subject: Re: [EB#1] VPN\nDate: Tue, 3 Mar 2026 10:20:00 +0100\n"
    "Message-ID: <family@customer.example>\nMIME-Version: 1.0\n"
)
QUOTED = "> Hello Jane,\n> we have opened ticket [EB#1] for your request.\n"
UNMARKED = "Hello Jane,\nwe have opened ticket [EB#1] for your request.\nSimply answer this mail.\n"


def plain(body: str) -> bytes:
    head = HEAD + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
    return crlf(head + "\n" + body).encode()


def html(body: str) -> bytes:
    head = HEAD + "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
    return crlf(head + "\n" + body).encode()


REPLIES = {
    "attribution wrapped over three lines": (
        "Thanks, works.\n\nOn Tue, 3 Mar 2026 at 10:14, Very Long Name Of The Helpdesk\n"
        "Team <support@example.org>\nwrote:\n" + QUOTED,
        "Thanks, works.",
    ),
    "Gmail wrapping the address": (
        "Works.\n\nOn Tue, Mar 3, 2026 at 10:14 AM Very Long Name Of The Helpdesk <\n"
        "support@example.org> wrote:\n\n" + QUOTED,
        "Works.",
    ),
    "Spanish Gmail wrapping": (
        "Gracias.\n\nEl mar., 3 mar. 2026 a las 10:14, Helpdesk (<\n"
        "support@example.org>) escribió:\n\n" + QUOTED,
        "Gracias.",
    ),
    "Italian wrapped": (
        "Grazie.\n\nIl giorno mar 3 mar 2026 alle ore 10:14 Helpdesk\n"
        "<support@example.org> ha scritto:\n" + QUOTED,
        "Grazie.",
    ),
    "Original Message": (
        "Thanks, works.\n\n-----Original Message-----\nFrom: Helpdesk\nSent: Tuesday\n" + UNMARKED,
        "Thanks, works.",
    ),
    "dashed attribution without colon": (
        "Thanks, works.\n\n---- On Tue, 03 Mar 2026 10:14:00 +0100 Helpdesk "
        "<support@example.org> wrote ----\n" + UNMARKED,
        "Thanks, works.",
    ),
    "French": (
        "Merci, ça marche.\n\nLe mar. 3 mars 2026 à 10:14, Helpdesk <support@example.org> "
        "a écrit :\n" + QUOTED,
        "Merci, ça marche.",
    ),
    "French without quote markers": (
        "Merci.\n\nLe 3 mars 2026 à 10:14, Helpdesk <support@example.org> a écrit :\n\n" + UNMARKED,
        "Merci.",
    ),
    "German Gmail": (
        "Danke, geht wieder.\n\nAm Di., 3. März 2026 um 10:14 Uhr schrieb Helpdesk "
        "<support@example.org>:\n" + QUOTED,
        "Danke, geht wieder.",
    ),
    "German Thunderbird, no address, no markers": (
        "Danke.\n\nAm 03.03.2026 um 10:14 schrieb Helpdesk:\n" + UNMARKED,
        "Danke.",
    ),
    "Spanish": (
        "Gracias, funciona.\n\nEl mar, 3 mar 2026 a las 10:14, Helpdesk (<support@example.org>) "
        "escribió:\n" + QUOTED,
        "Gracias, funciona.",
    ),
    "Portuguese": (
        "Obrigado.\n\nEm ter., 3 de mar. de 2026 às 10:14, Helpdesk <support@example.org> "
        "escreveu:\n\n" + QUOTED,
        "Obrigado.",
    ),
    "Chinese": (
        "谢谢，好了。\n\nHelpdesk <support@example.org> 于2026年3月3日周二 10:14写道：\n" + QUOTED,
        "谢谢，好了。",
    ),
    "Japanese": (
        "ありがとうございます。\n\n2026年3月3日(火) 10:14 Helpdesk <support@example.org>のメッセージ:\n"
        + QUOTED,
        "ありがとうございます。",
    ),
    "Russian Gmail": (
        "Спасибо.\n\nвт, 3 мар. 2026 г. в 10:14, Helpdesk <support@example.org>:\n" + QUOTED,
        "Спасибо.",
    ),
    "Korean Gmail": (
        "감사합니다.\n\n2026년 3월 3일 (화) 오전 10:14, Helpdesk <support@example.org>님이 작성:\n"
        + QUOTED,
        "감사합니다.",
    ),
    "Ursprüngliche Nachricht": (
        "Danke.\n\n-------- Ursprüngliche Nachricht --------\nVon: Helpdesk "
        "<support@example.org>\nDatum: 03.03.26 10:14\n" + UNMARKED,
        "Danke.",
    ),
    "Messaggio originale": (
        "Grazie.\n\n-------- Messaggio originale --------\nDa: Helpdesk <support@example.org>\n"
        + UNMARKED,
        "Grazie.",
    ),
    "Oorspronkelijk bericht": (
        "Bedankt.\n\n-------- Oorspronkelijk bericht --------\nVan: Helpdesk "
        "<support@example.org>\n" + UNMARKED,
        "Bedankt.",
    ),
    "Samsung footer then Original message": (
        "OK.\n\nSent from my Samsung Galaxy smartphone.\n\n-------- Original message --------\n"
        "From: Helpdesk <support@example.org>\nDate: 03/03/2026 10:14 (GMT+01:00)\n" + UNMARKED,
        "OK.",
    ),
    "iPhone footer, German, headerless quote": (
        "Yes, 10 works.\n\nVon meinem iPhone gesendet\n\n" + UNMARKED,
        "Yes, 10 works.",
    ),
    "Outlook for Android footer": (
        "Yes, 10 works.\n\nGet Outlook for Android\n\n" + UNMARKED,
        "Yes, 10 works.",
    ),
    "Yahoo on Android footer": (
        "Ok thanks.\n\nSent from Yahoo Mail on Android\n\n" + UNMARKED,
        "Ok thanks.",
    ),
    "Italian iPhone footer": ("Va bene.\n\nInviato da iPhone\n\n" + UNMARKED, "Va bene."),
    "French Android footer": (
        "D'accord.\n\nEnvoyé de mon appareil Android\n\n" + UNMARKED,
        "D'accord.",
    ),
    "RFC 3676 signature under a German closing": (
        "The invoice is attached.\n\nMit freundlichen Grüßen\nJörg Müller\n\n-- \n"
        "Jörg Müller · ACME GmbH\nTel. +49 30 123\n",
        "The invoice is attached.\n\nMit freundlichen Grüßen\nJörg Müller",
    ),
    "closing and name block above a headerless quote": (
        "The export fails again.\n\nCordialement,\nMarie Dupont\n\n" + UNMARKED,
        "The export fails again.\n\nCordialement,\nMarie Dupont",
    ),
    "closing with a blank line and a company block above a headerless quote": (
        "Geht wieder.\n\nMit freundlichen Grüßen\n\nJörg Müller\nKundenservice\nACME GmbH\n\n"
        + UNMARKED,
        "Geht wieder.\n\nMit freundlichen Grüßen\n\nJörg Müller\nKundenservice\nACME GmbH",
    ),
    "quoted lines that lost their marker when wrapped": (
        "Yes please.\n\nOn Tue, 3 Mar 2026 10:14, Helpdesk <support@example.org> wrote:\n"
        "> Hello Jane, we have opened ticket [EB#1] for your request and will\n"
        "come back to you\n"
        "> as soon as the VPN team has looked at the logs you sent to us this\n"
        "morning.\n> Best regards\n",
        "Yes please.",
    ),
    "Outlook block in French": (
        "Ça marche.\n\n________________________________\nDe : Helpdesk <support@example.org>\n"
        "Envoyé : mardi 3 mars 2026 10:14\nÀ : Jane <jane@customer.example>\n"
        "Objet : [EB#1] VPN\n\n" + UNMARKED,
        "Ça marche.",
    ),
    "Outlook block in German without a rule": (
        "Passt.\n\nVon: Helpdesk <support@example.org>\nGesendet: Dienstag, 3. März 2026 10:14\n"
        "An: Jane Doe <jane@customer.example>\nBetreff: AW: [EB#1] VPN\n\n" + UNMARKED,
        "Passt.",
    ),
    "Outlook block in Polish": (
        "Dzięki.\n\nOd: Helpdesk <support@example.org>\nWysłano: wtorek, 3 marca 2026 10:14\n"
        "Do: Jane <jane@customer.example>\nTemat: [EB#1] VPN\n\n" + UNMARKED,
        "Dzięki.",
    ),
    "Outlook block in Chinese": (
        "好的。\n\n发件人: Helpdesk <support@example.org>\n发送时间: 2026年3月3日 10:14\n"
        "收件人: Jane <jane@customer.example>\n主题: [EB#1] VPN\n\n" + UNMARKED,
        "好的。",
    ),
}

HTML_REPLIES = {
    "Outlook divRplyFwdMsg and appendonsend": (
        '<div>Works now.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">'
        "<b>From:</b> Helpdesk<br><b>Sent:</b> Tuesday<br><b>Subject:</b> [EB#1]</div>"
        "<div>Hello Jane, we have opened ticket [EB#1].</div>"
    ),
    "Outlook on the web, German": (
        '<div>Works now.</div><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg">'
        "<b>Von:</b> Helpdesk &lt;support@example.org&gt;<br><b>Gesendet:</b> Dienstag, 3. März "
        "2026 10:14<br><b>An:</b> Jane<br><b>Betreff:</b> [EB#1] VPN</div>"
        "<div>Hello Jane, we have opened ticket [EB#1].</div>"
    ),
    "Gmail gmail_quote": (
        '<div dir="ltr">Works now.</div><br><div class="gmail_quote"><div class="gmail_attr">'
        "On Tue, 3 Mar 2026 at 10:14, Helpdesk &lt;support@example.org&gt; wrote:</div>"
        '<blockquote class="gmail_quote">Hello Jane, we have opened ticket [EB#1].</blockquote></div>'
    ),
    "Apple Mail blockquote type=cite": (
        '<div>Works now.</div><div><br><blockquote type="cite">On 3 Mar 2026, at 10:14, '
        "Helpdesk &lt;support@example.org&gt; wrote:<br><br>Hello Jane, we have opened ticket "
        "[EB#1].</blockquote></div>"
    ),
    "Thunderbird moz-cite-prefix": (
        '<p>Works now.</p><div class="moz-cite-prefix">Am 03.03.26 um 10:14 schrieb Helpdesk:<br>'
        '</div><blockquote type="cite">Hello Jane, we have opened ticket [EB#1].</blockquote>'
    ),
}


@pytest.mark.parametrize("family", sorted(REPLIES))
def test_explain_reports_the_reply_text_of_every_family(gateway: Context, family: str) -> None:
    body, expected = REPLIES[family]
    assert explain(gateway, plain(body))["reply_text"] == expected


@pytest.mark.parametrize("family", sorted(HTML_REPLIES))
def test_explain_reports_the_reply_text_of_html_replies(gateway: Context, family: str) -> None:
    assert explain(gateway, html(HTML_REPLIES[family]))["reply_text"] == "Works now."


def test_a_new_tickets_explanation_gives_its_reply_text_too(gateway: Context) -> None:
    raw = crlf(
        "From: Jane <jane@customer.example>\nTo: support@example.org\nSubject: New problem\n"
        "\n\n  The VPN is down.   \n\nBest regards\nJane\n\n-- \nJane Doe | ACME\n\n\n"
    ).encode()
    result = explain(gateway, raw)
    assert result["action"] == "created"
    assert result["reply_text"] == "  The VPN is down.\n\nBest regards\nJane"
    assert "Jane Doe | ACME" in result["full_text"]  # a new ticket keeps the whole body


# --- headers and names -----------------------------------------------------------------------------

BASE = "To: support@example.org\nDate: Tue, 3 Mar 2026 10:20:00 +0100\nMessage-ID: <h@c.example>\n"


def attachment_mail(part_head: bytes, filename: bytes, text_charset: str = "") -> bytes:
    charset = f"; charset={text_charset}" if text_charset else ""
    return (
        crlf(
            "From: taro@customer.example\nSubject: files\n" + BASE + "MIME-Version: 1.0\n"
            f"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain{charset}\n\n"
            "hello\n--B\n"
        ).encode()
        + part_head
        + b'; filename="'
        + filename
        + crlf('"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--B--\n').encode()
    )


HEADERS: dict[str, tuple[bytes, dict[str, Any]]] = {
    "encoded word with spaces inside": (
        crlf(
            "From: =?utf-8?Q?J=C3=B6rg M=C3=BCller?= <joerg@customer.example>\n"
            "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe aus Berlin?=\n" + BASE + "\nHallo\n"
        ).encode(),
        {"from_name": "Jörg Müller", "subject": "Grüße aus Berlin"},
    ),
    "encoded word with a tab inside": (
        crlf(
            "From: joerg@customer.example\nSubject: =?utf-8?Q?Gr=C3=BC=C3=9Fe\taus Berlin?=\n"
            + BASE
            + "\nHallo\n"
        ).encode(),
        {"subject": "Grüße aus Berlin"},
    ),
    "8-bit header in the text part's charset": (
        crlf(
            "From: J\xf6rg M\xfcller <joerg@customer.example>\nSubject: Gr\xfc\xdfe aus K\xf6ln\n"
            + BASE
            + "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: 8bit\n\nSch\xf6ne Gr\xfc\xdfe\n"
        ).encode("latin-1"),
        {"from_name": "Jörg Müller", "subject": "Grüße aus Köln", "text": "Schöne Grüße"},
    ),
    "8-bit UTF-8 header without any charset": (
        crlf(
            "From: Jörg Müller <joerg@customer.example>\nSubject: Grüße aus Köln\n"
            + BASE
            + "\nok\n"
        ).encode(),
        {"from_name": "Jörg Müller", "subject": "Grüße aus Köln"},
    ),
    "8-bit cp1252 subject without any charset": (
        crlf(
            "From: anne@customer.example\nSubject: Caf\xe9 \x93special\x94 \x80 offer\n"
            + BASE
            + "\nok\n"
        ).encode("latin-1"),
        {"subject": "Café “special” € offer"},
    ),
    "mbox From line before the headers": (
        crlf(
            "From joerg@customer.example Tue Mar  3 10:20:00 2026\nFrom: joerg@customer.example\nSubject: mbox\n"
            + BASE
            + "\nhi\n"
        ).encode(),
        {"from": "joerg@customer.example", "subject": "mbox"},
    ),
    "byte-order mark and a blank line before the headers": (
        b"\xef\xbb\xbf"
        + crlf("\nFrom: joerg@customer.example\nSubject: bom\n" + BASE + "\nhi\n").encode(),
        {"from": "joerg@customer.example", "subject": "bom"},
    ),
    "a client's banner line before the headers": (
        crlf(
            "Microsoft Mail Internet Headers Version 2.0\nFrom: joerg@customer.example\nSubject: banner\n"
            + BASE
            + "\nhi\n"
        ).encode(),
        {"from": "joerg@customer.example", "subject": "banner"},
    ),
    "spaces before the colon": (
        crlf("From  : joerg@customer.example\nSubject : spaced\n" + BASE + "\nhi\n").encode(),
        {"from": "joerg@customer.example", "subject": "spaced"},
    ),
    "From <> with a Reply-To": (
        crlf(
            "From: <>\nReply-To: joerg@customer.example\nSubject: empty from\n" + BASE + "\nhi\n"
        ).encode(),
        {"from": "joerg@customer.example", "from_raw": "<>"},
    ),
    "HTML only": (
        crlf(
            "From: joerg@customer.example\nSubject: html\n" + BASE + "MIME-Version: 1.0\n"
            "Content-Type: text/html; charset=utf-8\n\n<html><head><style>p{color:red}</style>"
            "</head><body><!-- secret --><p>First paragraph.</p><p>Second<br>line two.</p>"
            '<ul><li>one</li><li>two</li></ul><p>See <a href="https://example.com/help">the help '
            'page</a> or <a href="https://example.com/faq">https://example.com/faq</a>.</p>'
            "<table><tr><td>Name</td><td>Value</td></tr><tr><td>A</td><td>1</td></tr></table>"
            "</body></html>\n"
        ).encode(),
        {
            "text": "First paragraph.\n\nSecond\nline two.\n\n- one\n- two\n\nSee the help page "
            "<https://example.com/help> or https://example.com/faq.\n\nName | Value\nA | 1"
        },
    ),
}

FILENAMES = {
    "Shift_JIS filename in a Shift_JIS mail": (
        attachment_mail(
            b"Content-Type: application/pdf\r\nContent-Disposition: attachment",
            "見積書 2026年3月.pdf".encode("shift_jis"),
            "shift_jis",
        ),
        "見積書 2026年3月.pdf",
    ),
    "GB18030 filename without any charset": (
        attachment_mail(
            b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment",
            "报价单 三月.xlsx".encode("gb18030"),
        ),
        "报价单 三月.xlsx",
    ),
    "KOI8-R filename without any charset": (
        attachment_mail(
            b"Content-Type: application/pdf\r\nContent-Disposition: attachment",
            "Счёт за март.pdf".encode("koi8-r"),
        ),
        "Счёт за март.pdf",
    ),
    "Latin-1 filename with two spaces in a Latin-1 mail": (
        attachment_mail(
            b"Content-Type: application/pdf\r\nContent-Disposition: attachment",
            "Rechnung  März 2026.pdf".encode("latin-1"),
            "iso-8859-1",
        ),
        "Rechnung  März 2026.pdf",
    ),
}


@pytest.mark.parametrize("family", sorted(HEADERS))
def test_explain_shows_headers_and_names_as_the_sender_meant_them(
    gateway: Context, family: str
) -> None:
    raw, expected = HEADERS[family]
    result = explain(gateway, raw)
    assert {key: result[key] for key in expected} == expected


@pytest.mark.parametrize("family", sorted(FILENAMES))
def test_explain_shows_8bit_filenames_decoded(gateway: Context, family: str) -> None:
    raw, expected = FILENAMES[family]
    assert [a["filename"] for a in explain(gateway, raw)["attachments"]] == [expected]


def test_the_explain_command_prints_reply_text_as_json(gateway: Context, tmp_path: Path) -> None:
    mail = tmp_path / "reply.eml"
    mail.write_bytes(plain(REPLIES["French"][0]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailgate",
            "--config",
            str(gateway.config.path),
            "explain",
            "--json",
            str(mail),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reply_text"] == "Merci, ça marche."
