"""Tests for mailgate.mail.quotes: the visible new text of a reply.

The fixtures are reply bodies composed for these tests, in the shapes real
clients write. The optional corpus test at the end checks the public corpora
under ``../shared/corpus`` and skips where they are absent.
"""

from __future__ import annotations

import dataclasses
import email
import json
import re
import time
from dataclasses import dataclass
from email import policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mailgate.mail.quotes import Reply, split_reply, visible_text
from tests.corpus import corpus_dir

# --- no quote, no signature -------------------------------------------------------------


def test_plain_message_is_returned_unchanged_except_trailing_whitespace() -> None:
    body = "\n  Hello team,\n\nthe printer on floor 3 is jammed again.  \n\n\tThanks\nMaria  \n\n\n"
    assert visible_text(body) == body.rstrip()


def test_crlf_and_lone_cr_are_normalised_to_lf() -> None:
    assert visible_text("Line one\r\nLine two\rLine three\r\n") == "Line one\nLine two\nLine three"


def test_crlf_reply_with_quote_is_split() -> None:
    body = (
        "Works now, thanks.\r\n\r\n"
        "On Tue, Sep 25, 2012 at 8:59 AM, Chris Wanstrath <chris@example.com> wrote:\r\n"
        "> Deployed to prod.\r\n>\r\n"
    )
    reply = split_reply(body)
    assert reply.new_text == "Works now, thanks."
    assert "\r" not in reply.quoted
    assert reply.quoted.startswith("On Tue, Sep 25")


def test_empty_body_gives_empty_text() -> None:
    assert visible_text("") == ""
    assert split_reply("  \n\n") == Reply("", "", "")


def test_reply_is_a_frozen_dataclass_with_three_fields() -> None:
    reply = split_reply("Hi\n\n-- \nBob")
    assert [f.name for f in dataclasses.fields(reply)] == ["new_text", "signature", "quoted"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.new_text = "changed"  # type: ignore[misc]


def test_reply_with_only_a_quote_has_no_visible_text() -> None:
    body = "On Mon, Apr 2, 2012 at 6:26 PM, Megan One <megan@example.com> wrote:\n\n> Hi\n> there\n"
    reply = split_reply(body)
    assert reply.new_text == ""
    assert visible_text(body) == ""
    assert reply.quoted == body.rstrip()


def test_bare_quote_without_header_has_no_visible_text() -> None:
    assert visible_text("> just a quote\n>\n> nothing else\n") == ""


# --- ">" quotes and attribution headers -------------------------------------------------

GMAIL_TOP_POSTED = """\
Hi Anna,

I restarted the mail server, can you try again?

Best,
Jonas

On Mon, Nov 23, 2026 at 9:12 AM Anna Berg <anna.berg@example.org> wrote:

> Hello,
>
> since this morning I cannot send any mail from Outlook.
>
> Anna
"""


def test_gmail_top_posted_reply_drops_header_and_quote() -> None:
    reply = split_reply(GMAIL_TOP_POSTED)
    assert reply.new_text == (
        "Hi Anna,\n\nI restarted the mail server, can you try again?\n\nBest,\nJonas"
    )
    assert reply.signature == ""
    assert reply.quoted.startswith("On Mon, Nov 23, 2026 at 9:12 AM Anna Berg")
    assert "cannot send any mail" in reply.quoted


def test_visible_text_is_split_reply_new_text() -> None:
    for body in (GMAIL_TOP_POSTED, "Hi\n-- \nBob", "Plain", "> q\n\nanswer\n\nSent from my iPhone"):
        assert visible_text(body) == split_reply(body).new_text


def test_apple_mail_header_with_time_and_nested_quote_is_removed() -> None:
    body = """\
Sounds good, see you Friday.

> On 22 Nov 2026, at 19:21, Adam Renberg <adam@example.com> wrote:
>
> Are we still on for Friday?
>
>> On 21 Nov 2026, at 10:02, Eva Lind <eva@example.com> wrote:
>>
>> Lunch at noon?
"""
    assert visible_text(body) == "Sounds good, see you Friday."


def test_nested_quote_markers_with_spaces_are_removed() -> None:
    body = "Agreed.\n\nOn Sun, Nov 22, 2026 at 10:00 AM Bo <bo@example.com> wrote:\n> > > deep\n> > mid\n> top\n"
    reply = split_reply(body)
    assert reply.new_text == "Agreed."
    assert "deep" in reply.quoted and "deep" not in reply.new_text


def test_bottom_posted_reply_keeps_text_below_quote() -> None:
    body = """\
On 04/02/2026 06:26 PM, Megan One wrote:
> Could you send me the invoice for October?
> Thanks, Megan

Attached, it is the one numbered 2026-1041.

Regards,
Tom
"""
    reply = split_reply(body)
    assert reply.new_text == "Attached, it is the one numbered 2026-1041.\n\nRegards,\nTom"
    assert reply.quoted.startswith("On 04/02/2026 06:26 PM, Megan One wrote:")
    assert "invoice for October" in reply.quoted


def test_inline_replies_keep_answers_and_drop_quoted_lines() -> None:
    body = """\
On Tue, Apr 29, 2026 at 4:22 PM, Example Dev <dev@example.com> wrote:

> Which version are you running?

2.4.1, installed last week.

> And does it happen on every login?
>
> Or only after the nightly restart?

Only after the restart.

> Thanks!
> Dev
"""
    reply = split_reply(body)
    assert reply.new_text == "2.4.1, installed last week.\n\nOnly after the restart."
    assert "Which version" in reply.quoted
    assert "nightly restart" in reply.quoted
    assert "installed last week" not in reply.quoted
    # Blocks that were apart stay apart in the stored quote.
    assert "> Which version are you running?\n\n> And does it happen" in reply.quoted


def test_text_above_and_below_a_quote_are_both_kept() -> None:
    body = "Hi,\nOn Tue, 2026-03-01 at 18:02 +0530, Abhi Kona wrote:\n> How do I empty a bucket?\n\nList the keys and delete each.\n"
    assert visible_text(body) == "Hi,\n\nList the keys and delete each."


def test_quote_header_wrapped_over_two_lines_is_removed() -> None:
    body = """\
:+1:

On Tue, Sep 25, 2026 at 8:59 AM, Chris Wanstrath
<notifications@example.com>wrote:

> Steps 0-2 are in prod.
"""
    reply = split_reply(body)
    assert reply.new_text == ":+1:"
    assert reply.quoted.startswith("On Tue, Sep 25, 2026 at 8:59 AM, Chris Wanstrath\n<notif")


def test_quote_header_wrapped_over_three_lines_is_removed() -> None:
    body = """\
I see the same thing here.

On Dec 16, 2026, at 12:47 PM, Corey Donohoe
<reply@example.com>
wrote:

> Was this caching related?
"""
    assert visible_text(body) == "I see the same thing here."


def test_gmail_header_wrapped_before_wrote_without_quote_markers_cuts_the_rest() -> None:
    body = """\
This is a test for replying from the inbox.



On Wed, May 18, 2026 at 11:10 PM Steven Scott <notifications@example.com>
wrote:


That way people can tell how outdated their version is.

You are receiving this because you are subscribed to this thread.
"""
    reply = split_reply(body)
    assert reply.new_text == "This is a test for replying from the inbox."
    assert "outdated" in reply.quoted


def test_dated_header_without_quote_markers_cuts_the_rest() -> None:
    body = """\
And another reply!

On Nov 26, 2026, at 10:27 AM, "Watson, Dan" <dan@example.com> wrote:
This is a message.
With a second line.
"""
    assert visible_text(body) == "And another reply!"


def test_undated_sentence_ending_in_wrote_does_not_cut_the_text_after_it() -> None:
    body = "Here is what the manager wrote:\n\nPlease restart the router every Monday.\n"
    assert visible_text(body) == body.rstrip()


def test_undated_on_wrote_sentence_does_not_cut_the_text_after_it() -> None:
    body = "On the phone you wrote:\n\nthat the invoice was wrong. I checked it and it is right.\n"
    assert visible_text(body) == body.rstrip()


def test_undated_on_wrote_header_is_removed_when_a_quote_follows() -> None:
    body = "Yes.\n\nOn Monday, Bob Smith wrote:\n> Shall we keep the old printer?\n"
    assert visible_text(body) == "Yes."


def test_sentence_starting_with_on_and_ending_with_colon_is_kept() -> None:
    body = """\
On your remote host you can run:

     telnet 127.0.0.1 52698

On 9 Jan 2026, at 2:47, George Plymale wrote:

> I am having an odd issue with port forwarding.
"""
    assert visible_text(body) == "On your remote host you can run:\n\n     telnet 127.0.0.1 52698"


def test_line_starting_with_one_is_not_an_on_header() -> None:
    body = """\
One outstanding question I had:

Locally, when I run the import...

On Oct 1, 2026, at 11:55 PM, Dave Tapley wrote:

> The good news is that I found a better query.
"""
    assert visible_text(body) == (
        "One outstanding question I had:\n\nLocally, when I run the import..."
    )


def test_yahoo_dashed_on_header_cuts_the_rest() -> None:
    body = """\
Hi Katharine. Sounds great, I will start on the menu.

Joe

--- On Wed, 4/4/26, booking@example.com <booking@example.com> wrote:


From: booking@example.com <booking@example.com>
Subject: You've got a new booking inquiry!
To: joe@example.com
Date: Wednesday, April 4, 2026, 10:23 PM

New Booking Inquiry
"""
    reply = split_reply(body)
    assert reply.new_text == "Hi Katharine. Sounds great, I will start on the menu.\n\nJoe"
    assert reply.quoted.startswith("--- On Wed, 4/4/26")


def test_own_sentence_introducing_a_quote_is_kept() -> None:
    body = "Here's what my colleague wrote:\n> the server is down\n\nCan you check?\n"
    assert visible_text(body) == "Here's what my colleague wrote:\n\nCan you check?"


def test_sentence_with_time_and_address_ending_in_colon_is_not_a_cut() -> None:
    body = "Tomorrow, 10:30, please email bob@example.com:\n\nthe report and the logs.\n"
    assert visible_text(body) == body.rstrip()


def test_comparison_starting_with_greater_equal_is_not_a_quote() -> None:
    body = "Alert levels:\n>= 5 means error\n> 2 is already a quote\nthanks\n"
    assert visible_text(body) == "Alert levels:\n>= 5 means error\n\nthanks"


def test_short_undated_name_wrote_header_is_removed_with_its_quote() -> None:
    body = "Yes, that works.\n\nBob Smith wrote:\n> Can we move the call to 3pm?\n"
    assert visible_text(body) == "Yes, that works."


LOCALIZED_HEADERS = [
    pytest.param("Am 22.11.2026 um 10:00 schrieb Jana Schmidt <jana@example.de>:", id="de-apple"),
    pytest.param(
        "Am So., 22. Nov. 2026 um 10:00 Uhr schrieb Jana Schmidt <jana@example.de>:", id="de-gmail"
    ),
    pytest.param(
        "Jana Schmidt <jana@example.de> schrieb am 22.11.2026 um 10:00:", id="de-name-first"
    ),
    pytest.param(
        "Le dim. 22 nov. 2026 à 10:00, Jean Dupont <jean@example.fr> a écrit :", id="fr-gmail"
    ),
    pytest.param("Le 22/11/2026 à 10:00, Jean Dupont a écrit\u00a0:", id="fr-thunderbird-nbsp"),
    pytest.param(
        "El dom, 22 nov 2026 a las 10:00, Ana García (<ana@example.es>) escribió:", id="es-gmail"
    ),
    pytest.param(
        "Il giorno dom 22 nov 2026 alle ore 10:00 Marco Rossi <marco@example.it> ha scritto:",
        id="it-gmail",
    ),
    pytest.param(
        "Op zo 22 nov. 2026 om 10:00 schreef Daan de Vries <daan@example.nl>:", id="nl-gmail"
    ),
    pytest.param(
        "Op 22 nov. 2026 om 10:00 heeft Daan de Vries <daan@example.nl> het volgende geschreven:",
        id="nl-apple",
    ),
    pytest.param(
        "Em dom., 22 de nov. de 2026 às 10:00, João Silva <joao@example.pt> escreveu:",
        id="pt-gmail",
    ),
    pytest.param("Den sön 22 nov. 2026 kl 10:00 skrev Sven Berg <sven@example.se>:", id="sv-gmail"),
    pytest.param("22 nov. 2026 kl. 10:00 skrev Sven Berg <sven@example.se>:", id="sv-apple"),
    pytest.param("Den 22. nov. 2026 kl. 10.00 skrev Ola Nordmann <ola@example.no>:", id="no-apple"),
    pytest.param(
        "søn. 22. nov. 2026 kl. 10.00 skrev Mette Hansen <mette@example.dk>:", id="da-gmail"
    ),
    pytest.param("Mette Hansen skrev:", id="da-name-only"),
    pytest.param("W dniu 22.11.2026 o 10:00, Jan Kowalski pisze:", id="pl-thunderbird"),
    pytest.param(
        "niedz., 22 lis 2026 o 10:00 Jan Kowalski <jan@example.pl> napisał(a):", id="pl-gmail"
    ),
    pytest.param("22.11.2026 10:00, Иван Петров пишет:", id="ru-thunderbird"),
    pytest.param("вс, 22 нояб. 2026 г. в 10:00, Иван Петров <ivan@example.ru>:", id="ru-gmail"),
    pytest.param(
        "22 нояб. 2026 г., в 10:00, Иван Петров <ivan@example.ru> написал(а):", id="ru-apple"
    ),
    pytest.param("2026年11月22日(日) 10:00 山田太郎 <taro@example.jp>:", id="ja-gmail"),
    pytest.param("2026/11/22 10:00、山田太郎 <taro@example.jp> のメッセージ:", id="ja-apple"),
    pytest.param("王伟 <wei@example.cn> 于2026年11月22日周日 10:00写道：", id="zh-gmail"),
    pytest.param("在 2026年11月22日，10:00，王伟 <wei@example.cn> 写道：", id="zh-apple"),
    pytest.param("Dne 22.11.2026 v 10:00 Petr Novák napsal(a):", id="cs-thunderbird"),
    pytest.param(
        "su 22. marrask. 2026 klo 10.00 Matti Virtanen (matti@example.fi) kirjoitti:", id="fi-gmail"
    ),
    pytest.param(
        "2026년 11월 22일 (일) 오전 10:00, 김민수 <minsu@example.kr>님이 작성:", id="ko-gmail"
    ),
]


@pytest.mark.parametrize("header", LOCALIZED_HEADERS)
def test_localized_quote_header_is_removed_with_its_quote(header: str) -> None:
    body = f"Danke, erledigt.\n\n{header}\n\n> Bitte das Passwort zurücksetzen.\n> Gruß\n"
    reply = split_reply(body)
    assert reply.new_text == "Danke, erledigt."
    assert reply.quoted.startswith(header.strip())


@pytest.mark.parametrize(
    "header",
    [p for p in LOCALIZED_HEADERS if p.id not in {"da-name-only"}],
)
def test_localized_dated_header_without_quote_markers_cuts_the_rest(header: str) -> None:
    body = f"Merci, c'est réglé.\n\n{header}\n\nBonjour, pouvez-vous réinitialiser mon mot de passe ?\n"
    assert visible_text(body) == "Merci, c'est réglé."


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(
            "Kovács Béla <bela@example.hu> ezt írta (időpont: 2026. nov. 22., V, 10:00):", id="hu"
        ),
        pytest.param(
            "Ali Yılmaz <ali@example.tr>, 22 Kas 2026 Paz, 10:00 tarihinde şunu yazdı:", id="tr"
        ),
    ],
)
def test_more_gmail_quote_headers_are_removed(header: str) -> None:
    assert visible_text(f"Köszi\n\n{header}\n\n> Szia\n") == "Köszi"


def test_numbered_line_above_a_complete_header_stays_text() -> None:
    body = (
        "Steps:\n1. Restart the router\n2. Try again at home\n"
        "Bob Smith <bob@example.com> wrote:\n> It still fails.\n"
    )
    reply = split_reply(body)
    assert reply.new_text == "Steps:\n1. Restart the router\n2. Try again at home"
    assert reply.quoted.startswith("Bob Smith <bob@example.com> wrote:")


def test_android_russian_header_wrapped_inside_the_address_is_removed() -> None:
    body = (
        "Привет\n"
        '02.04.2026 14:20 пользователь "bob@example.org" <\n'
        "bob@example.org> написал:\n\n> Hi\n>\n"
    )
    assert visible_text(body) == "Привет"


# --- Outlook and forwarded blocks -------------------------------------------------------


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "----- Original Message -----",
        "-------- Original Message --------",
        "-----Ursprüngliche Nachricht-----",
        "-----Message d'origine-----",
        "-----Mensaje original-----",
        "-----Messaggio originale-----",
        "-----Oorspronkelijk bericht-----",
        "-----Opprinnelig melding-----",
        "-----Alkuperäinen viesti-----",
        "-----Původní zpráva-----",
        "-----Oryginalna wiadomość-----",
        "-----Исходное сообщение-----",
        "-----Mensagem original-----",
        "----- Mail original -----",
        "------------------ 原始邮件 ------------------",
    ],
)
def test_outlook_original_message_separator_is_cut(separator: str) -> None:
    body = f"Please see my answer.\n\n\n{separator}\nSome old text without any header\n"
    reply = split_reply(body)
    assert reply.new_text == "Please see my answer."
    assert reply.quoted == f"{separator}\nSome old text without any header"


OUTLOOK_ENGLISH = """\
Thanks, I have forwarded this to billing.

Kind regards
Lena

________________________________
From: CRM Comments <crm-comment@example.com>
Sent: Friday, 23 March 2026 5:08 p.m.
To: Lena Fischer
Subject: [contact:106] John Greene

A new comment has been added to the Contact named 'John Greene'.
"""


def test_outlook_header_block_is_cut_with_the_underscore_line_above_it() -> None:
    reply = split_reply(OUTLOOK_ENGLISH)
    assert reply.new_text == "Thanks, I have forwarded this to billing.\n\nKind regards\nLena"
    assert reply.quoted.startswith("________________________________\nFrom: CRM Comments")
    assert reply.signature == ""


def test_outlook_german_header_block_is_cut() -> None:
    body = """\
Hallo Herr Weber,

das Ticket ist erledigt.

Viele Grüße
Petra Lang

Von: Klaus Weber <k.weber@example.de>
Gesendet: Montag, 23. November 2026 09:14
An: Support <support@example.de>
Betreff: Drucker im 2. Stock

Hallo,
der Drucker im 2. Stock druckt nicht mehr.
"""
    reply = split_reply(body)
    assert reply.new_text == (
        "Hallo Herr Weber,\n\ndas Ticket ist erledigt.\n\nViele Grüße\nPetra Lang"
    )
    assert reply.quoted.startswith("Von: Klaus Weber")


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(
            "De : Jean Dupont <jean@example.fr>\nEnvoyé : lundi 23 novembre 2026 09:14\n"
            "À : Support <support@example.fr>\nObjet : Imprimante",
            id="fr",
        ),
        pytest.param(
            "De: Ana García <ana@example.es>\nEnviado el: lunes, 23 de noviembre de 2026 9:14\n"
            "Para: Soporte <soporte@example.es>\nAsunto: Impresora",
            id="es",
        ),
        pytest.param(
            "Da: Marco Rossi <marco@example.it>\nInviato: lunedì 23 novembre 2026 09:14\n"
            "A: Supporto <supporto@example.it>\nOggetto: Stampante",
            id="it",
        ),
        pytest.param(
            "Van: Daan de Vries <daan@example.nl>\nVerzonden: maandag 23 november 2026 09:14\n"
            "Aan: Support <support@example.nl>\nOnderwerp: Printer",
            id="nl",
        ),
        pytest.param(
            "Från: Sven Berg <sven@example.se>\nSkickat: den 23 november 2026 09:14\n"
            "Till: Support <support@example.se>\nÄmne: Skrivare",
            id="sv",
        ),
        pytest.param(
            "Od: Jan Kowalski <jan@example.pl>\nWysłano: poniedziałek, 23 listopada 2026 09:14\n"
            "Do: Wsparcie <wsparcie@example.pl>\nTemat: Drukarka",
            id="pl",
        ),
        pytest.param(
            "От: Иван Петров <ivan@example.ru>\nОтправлено: 23 ноября 2026 г. 9:14\n"
            "Кому: Поддержка <support@example.ru>\nТема: Принтер",
            id="ru",
        ),
        pytest.param(
            "发件人: 王伟 <wei@example.cn>\n发送时间: 2026年11月23日 9:14\n"
            "收件人: 支持 <support@example.cn>\n主题: 打印机",
            id="zh",
        ),
        pytest.param(
            "发件人：王伟 <wei@example.cn>\n发送时间：2026年11月23日 9:14\n收件人：支持\n主题：打印机",
            id="zh-fullwidth-colon",
        ),
        pytest.param(
            "差出人: 山田太郎 <taro@example.jp>\n送信日時: 2026年11月23日 9:14\n"
            "宛先: サポート <support@example.jp>\n件名: プリンター",
            id="ja",
        ),
        pytest.param(
            "Fra: Ola Nordmann <ola@example.no>\nSendt: mandag 23. november 2026 09:14\n"
            "Til: Support <support@example.no>\nEmne: Skriver",
            id="no-da",
        ),
        pytest.param(
            "*From:* Kim via Site [mailto:noreply@example.com]\n*Sent:* Monday, January 15, 2026 2:15 AM\n"
            "*To:* user@example.com\n*Subject:* You have a new message!",
            id="bold-rendered-as-asterisks",
        ),
        pytest.param(
            "From: Kim Lee <kim@example.com>\nDate: November 22, 2026 at 10:00:00 GMT+1\n"
            "Subject: Printer\nTo: support@example.com",
            id="apple-from-date-subject-to",
        ),
        pytest.param(
            "From: a-very-long-display-name@example.com\n  on behalf of Kim Lee\n"
            "Sent: Monday, November 23, 2026 9:14 AM\nTo: support@example.com",
            id="wrapped-from-line",
        ),
        pytest.param(
            "Subject: Printer\nDate: Mon, 23 Nov 2026 09:14:00 +0100\nFrom: Kim <kim@example.com>\n"
            "To: support@example.com",
            id="subject-first",
        ),
    ],
)
def test_outlook_localized_header_block_is_cut(block: str) -> None:
    body = f"Done, see the attached report.\n\n{block}\n\nThe old message body.\n"
    reply = split_reply(body)
    assert reply.new_text == "Done, see the attached report."
    assert reply.quoted.startswith(block.splitlines()[0])
    assert reply.quoted.endswith("The old message body.")


def test_dashed_rule_with_blank_line_before_bold_header_block_is_quoted() -> None:
    body = (
        "Outlook with a reply\n\n\n ------------------------------\n\n"
        "*From:* Sync Team [mailto:noreply@example.com]\n*Sent:* Thursday, February 09, 2026 1:36 PM\n"
        "*To:* joe@example.com\n*Subject:* Sync was updated!\n\nDear user,\n"
    )
    reply = split_reply(body)
    assert reply.new_text == "Outlook with a reply"
    assert reply.quoted.startswith(" ------------------------------")


def test_single_from_line_in_the_body_is_not_a_cut() -> None:
    body = "The request came in this morning.\nFrom: the manager\n\nPlease handle it today.\n"
    assert visible_text(body) == body.rstrip()


def test_header_lines_without_a_sender_field_are_not_a_cut() -> None:
    body = "Meeting notes\nTo: all staff\nSubject: parking\n\nThe garage is closed on Friday.\n"
    assert visible_text(body) == body.rstrip()


def test_header_fields_separated_by_blank_lines_are_not_a_cut() -> None:
    body = "From: the sales team\n\nTo: everyone who asked\n\nWe ship on Monday.\n"
    assert visible_text(body) == body.rstrip()


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "---------- Weitergeleitete Nachricht ---------",
        "-------- Message transféré --------",
        "Begin forwarded message:",
        "Anfang der weitergeleiteten Nachricht:",
        "Début du message réexpédié :",
        "Inicio del mensaje reenviado:",
        "Inizio messaggio inoltrato:",
    ],
)
def test_forwarded_message_marker_is_cut(marker: str) -> None:
    body = (
        f"FYI, see below.\n\n{marker}\nFrom: Kim <kim@example.com>\nSubject: Invoice\n\nOld text\n"
    )
    reply = split_reply(body)
    assert reply.new_text == "FYI, see below."
    assert reply.quoted.startswith(marker)


def test_quote_marked_outlook_header_in_hotmail_reply_is_removed() -> None:
    body = (
        "\nHello\n\n> Subject: Test\n> From: bob@example.org\n> To: support@example.com\n"
        "> Date: Mon, 2 Apr 2026 17:44:22 +0400\n> \n> Hi\n \t\t \t   \t\t  "
    )
    assert visible_text(body) == "Hello"


# --- signatures -------------------------------------------------------------------------


def test_rfc_signature_delimiter_is_split_off() -> None:
    body = "Please reset my password.\n\n-- \nMaria Lopez\nACME Corp\n+49 30 1234567\n"
    reply = split_reply(body)
    assert reply.new_text == "Please reset my password."
    assert reply.signature == "-- \nMaria Lopez\nACME Corp\n+49 30 1234567"
    assert reply.quoted == ""


def test_keep_signature_returns_new_text_with_signature_as_written() -> None:
    body = (
        "Hello \n\n-- \nxxx\nSent with Sparrow (http://www.sparrowmailapp.com/?sig)\n\n\n"
        "On Tuesday, April 3, 2026 at 4:55 PM, xxx wrote:\n\n> Hello\n"
    )
    assert visible_text(body) == "Hello"
    assert visible_text(body, keep_signature=True) == (
        "Hello \n\n-- \nxxx\nSent with Sparrow (http://www.sparrowmailapp.com/?sig)"
    )


def test_bare_double_dash_signature_is_split_off() -> None:
    body = "I will reply under this one\n\n--\nHey there, this is my signature\n"
    reply = split_reply(body)
    assert reply.new_text == "I will reply under this one"
    assert reply.signature == "--\nHey there, this is my signature"


def test_signature_right_under_the_text_is_split_off() -> None:
    reply = split_reply("this is an email with a correct -- signature.\n-- \nrick\n")
    assert reply.new_text == "this is an email with a correct -- signature."
    assert reply.signature == "-- \nrick"


def test_underscore_mailing_list_footer_is_a_signature() -> None:
    body = (
        "Is there a way to clear a bucket?\n\n"
        "_______________________________________________\nriak-users mailing list\n"
        "riak-users@example.com\nhttp://lists.example.com/mailman/listinfo/riak-users\n"
    )
    reply = split_reply(body)
    assert reply.new_text == "Is there a way to clear a bucket?"
    assert reply.signature.startswith("____")


def test_signature_after_a_bottom_posted_answer_is_split_off() -> None:
    body = """\
On Fri, Feb 24, 2026 at 10:19 AM, <examples@example.com> wrote:

> Give us an example of how you applied what they learned.

We ran the workshop twice.


--

*Joe Smith | Director, Product Management*
"""
    reply = split_reply(body)
    assert reply.new_text == "We ran the workshop twice."
    assert reply.signature == "--\n\n*Joe Smith | Director, Product Management*"


def test_double_dash_followed_by_a_lot_of_text_is_not_a_signature() -> None:
    lines = [f"Step {n}: check cable {n} and note the result." for n in range(1, 13)]
    body = "Here is the checklist\n--\n" + "\n".join(lines) + "\n"
    reply = split_reply(body)
    assert reply.signature == ""
    assert reply.new_text == body.rstrip()


def test_double_dash_inside_a_sentence_is_not_a_signature() -> None:
    body = "Hi there!\n\nAnd here is a fix -- this is not a signature.\n\nkthxbai\n"
    assert split_reply(body) == Reply(body.rstrip(), "", "")


def test_dash_list_items_at_the_end_are_not_a_signature() -> None:
    body = "Please bring:\n-- Laptop\n-- Charger\n"
    assert visible_text(body) == body.rstrip()


def test_dash_signoff_is_a_signature() -> None:
    reply = split_reply("Thanks, that fixed it.\n\n-Abhishek Kona\n")
    assert reply.new_text == "Thanks, that fixed it."
    assert reply.signature == "-Abhishek Kona"


def test_lowercase_dash_line_is_not_a_signoff() -> None:
    body = "Shopping list\n\n-milk\n"
    assert visible_text(body) == body.rstrip()


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my iPad",
        "Sent from my BlackBerry",
        "Sent from my Verizon Wireless BlackBerry",
        "Sent from my Android phone",
        "Sent from my mobile device",
        "Sent from Mail for Windows",
        "Sent from Mail for Windows 10",
        "Sent from Outlook",
        "Sent from Yahoo Mail on Android",
        "Sent with Sparrow (http://www.sparrowmailapp.com/?sig)",
        "Get Outlook for iOS",
        "Get Outlook for Android<https://aka.ms/ghei36>",
        "Von meinem iPhone gesendet",
        "Von meinem Samsung Galaxy Smartphone gesendet",
        "Gesendet von Mail für Windows",
        "Envoyé de mon iPhone",
        "Envoyé depuis mon appareil mobile",
        "Enviado desde mi iPhone",
        "Enviado do meu iPhone",
        "Inviato da iPhone",
        "Inviato dal mio cellulare",
        "Verzonden vanaf mijn iPhone",
        "Skickat från min iPhone",
        "Sendt fra min iPhone",
        "Lähetetty iPhonesta",
        "Wysłane z mojego iPhone'a",
        "Отправлено с iPhone",
        "iPhoneから送信",
        "发自我的iPhone",
    ],
)
def test_mobile_footer_at_the_end_is_a_signature(footer: str) -> None:
    body = f"Here is another email\n\n{footer}\n"
    reply = split_reply(body)
    assert reply.new_text == "Here is another email"
    assert reply.signature == footer
    assert visible_text(body, keep_signature=True) == body.rstrip()


def test_mobile_footer_above_the_quote_is_a_signature() -> None:
    body = (
        "Hello\n\nSent from my iPhone\n\n"
        "On Apr 3, 2026, at 4:19 PM, bob <bob@example.com> wrote:\n\n> Hi\n"
    )
    reply = split_reply(body)
    assert reply == Reply(
        "Hello",
        "Sent from my iPhone",
        "On Apr 3, 2026, at 4:19 PM, bob <bob@example.com> wrote:\n\n> Hi",
    )


@pytest.mark.parametrize(
    "closing",
    [
        "Sent from a magnificent torch of pixels",
        "Sent from home",
        "Sent with sparkling regards",
        "Sent from my desk, is much easier then my mobile phone.",
    ],
)
def test_own_words_after_sent_from_are_kept(closing: str) -> None:
    body = f"I get proper rendering as well.\n\n{closing}\n"
    assert visible_text(body) == body.rstrip()


def test_mobile_footer_in_the_middle_of_the_text_is_kept() -> None:
    body = "Sent from my iPhone\nbecause the laptop is broken, so please excuse typos.\n"
    assert visible_text(body) == body.rstrip()


def test_stacked_signature_and_mobile_footer_are_both_split_off() -> None:
    body = "Call me tomorrow.\n\n-- \nBob\n\nSent from my iPhone\n"
    reply = split_reply(body)
    assert reply.new_text == "Call me tomorrow."
    assert reply.signature == "-- \nBob\n\nSent from my iPhone"


def test_signature_above_the_quote_does_not_swallow_answers_below_it() -> None:
    body = (
        "See my answers below.\n-- \nBob\n\n"
        "On Mon, Apr 2, 2026 at 6:26 PM, Megan <m@example.com> wrote:\n> Which room?\n\n"
        "Room 4.12, second floor.\n"
    )
    reply = split_reply(body)
    assert "Room 4.12, second floor." in reply.new_text
    assert reply.signature == ""


def test_signature_above_the_quote_is_found_below_a_list_footer() -> None:
    body = (
        "Thanks, works.\n\n-- \nBob\n\n"
        "On Mon, Apr 2, 2026 at 6:26 PM, Megan <m@example.com> wrote:\n> Try again?\n\n"
        "_______________________________________________\nusers mailing list\nusers@example.com\n"
    )
    reply = split_reply(body)
    assert reply.new_text == "Thanks, works."
    assert reply.signature.startswith("-- \nBob")
    assert reply.signature.endswith("users@example.com")


def test_reply_of_only_a_signature_and_a_quote_has_no_new_text() -> None:
    body = "Sent from my iPhone\n\nOn Apr 3, 2026, at 4:19 PM, bob wrote:\n\n> Hi\n"
    reply = split_reply(body)
    assert reply.new_text == ""
    assert reply.signature == "Sent from my iPhone"


def test_signature_inside_the_quote_stays_in_the_quote() -> None:
    body = "Fine by me.\n\nOn Mon, Apr 2, 2026 at 6:26 PM, Megan <m@example.com> wrote:\n> Ok?\n> -- \n> Megan\n"
    reply = split_reply(body)
    assert reply.signature == ""
    assert reply.quoted.endswith("> Megan")


# --- speed ------------------------------------------------------------------------------

ONE_MB = 1_000_000


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("x" * ONE_MB, id="one-long-line"),
        pytest.param("word " * (ONE_MB // 5) + ":", id="one-long-line-ending-in-colon"),
        pytest.param(">" * ONE_MB, id="one-long-quote-marker-line"),
        pytest.param("Hi\n" + "> quoted line of text\n" * (ONE_MB // 22), id="long-quote"),
        pytest.param("To: x\n" * (ONE_MB // 6), id="header-like-lines"),
        pytest.param("On Mon, Bob wrote:\n" * (ONE_MB // 19), id="undated-headers"),
        pytest.param("Some text\n\n" * (ONE_MB // 11), id="plain-paragraphs"),
        pytest.param("--\n" * (ONE_MB // 3), id="delimiters"),
        pytest.param("Sent from my " + "a " * (ONE_MB // 2), id="long-footer-like-line"),
        pytest.param("-" + "A" * ONE_MB, id="long-signoff-like-line"),
        pytest.param("\n" * ONE_MB, id="blank-lines"),
        pytest.param("a:\n\n" * (ONE_MB // 4), id="colon-lines-and-blanks"),
    ],
)
def test_one_megabyte_body_is_processed_quickly(body: str) -> None:
    # Catastrophic backtracking or a quadratic scan takes minutes here; the
    # linear scan takes a few hundred milliseconds at worst.
    for call in (split_reply, visible_text):
        started = time.process_time()
        call(body)
        assert time.process_time() - started < 1.0


# --- optional real-world corpus ---------------------------------------------------------
#
# How the corpus expectations map onto this API:
#
# * github/zapier email_reply_parser (EXPECTED.json ``expected``): ``visible_text`` is
#   compared with visible_text() (trailing whitespace ignored), ``visible_text_stripped``
#   after strip(), reply_contains/not_contains against visible_text(), ``max_seconds``
#   by timing split_reply(). Fragment expectations become: a fragment ERP calls quoted
#   must be absent from our visible text, a signature fragment must be in our signature,
#   any other visible fragment must be in our visible text, fragment 0 starts it
#   (``first_fragment``), and ``fragment_count == 1`` means nothing at all is removed.
#   (ERP leaves a quote that sits above new text visible; mailgate never shows quoted
#   material, so "absent" is the deliberate reading of ``quoted``.) Other fragment
#   counts are implementation details and are not checked.
# * talon standard replies: talon's extract_from_plain removes quotations but keeps
#   signatures, so its reply text is compared with visible_text(keep_signature=True).
# * talon html replies: converted to text by the small converter below (blockquotes
#   as "> " lines, as mailgate's converter does) and compared whitespace-insensitively.
# * talon signature samples: the expected signature against split_reply().signature.

ERP_CORPORA = ("github-email_reply_parser", "zapier-email-reply-parser")

# Entries where mailgate deliberately differs; run as strict xfails so that a change
# of behaviour shows up here.
KNOWN_DIFFERENCES = {
    "talon/signature/emails/stripped/jeff_body": (
        "talon finds an undelimited name + 'via mobile' block by machine learning over the "
        "sender's name; mailgate only splits delimited signatures and known footers, since "
        "guessing would cut real closing lines out of relayed replies"
    ),
    "talon/signature/emails/stripped/long_body": (
        "undelimited name/address block recognised by talon's classifier; see jeff_body"
    ),
    "talon/signature/emails/stripped/short_url_body": (
        "talon treats 'Thank you,\\nNoam' as signature; mailgate keeps sign-offs in the text"
    ),
    "talon/signature/emails/stripped/johndoeexamplecom_body": (
        "undelimited contact block recognised by talon's classifier; see jeff_body"
    ),
    "talon/signature/emails/stripped/sparse_body": (
        "the block starts with a long dash rule; mailgate does not split at dash rules "
        "because they also separate sections of ordinary text"
    ),
}


@dataclass(frozen=True)
class CorpusCase:
    key: str
    kind: str  # "erp", "talon-plain", "talon-html" or "talon-signature"
    path: Path
    expected: dict[str, Any]


def _corpus_root_or_none() -> Path | None:
    # corpus_dir() skips when the corpus is absent; at collection time that just
    # means there are no entries to parametrize over.
    try:
        return corpus_dir()
    except pytest.skip.Exception:
        return None


def _corpus_cases() -> list[Any]:
    root = _corpus_root_or_none()
    if root is None:
        return [pytest.param(None, id="corpus-absent")]
    cases: list[CorpusCase] = []
    for name in ERP_CORPORA:
        data = json.loads((root / name / "EXPECTED.json").read_text(encoding="utf-8"))
        for file, exp in data["expected"].items():
            path = root / name / "test" / "emails" / file
            cases.append(CorpusCase(f"{name}/{file}", "erp", path, exp))
    talon = json.loads((root / "talon" / "EXPECTED.json").read_text(encoding="utf-8"))
    fixtures = root / "talon" / "tests" / "fixtures"
    for file, exp in talon["expected"].items():
        if file.startswith("standard_replies/"):
            kind = "talon-plain"
        elif file.startswith("html_replies/"):
            kind = "talon-html"
        else:
            kind = "talon-signature"
        cases.append(CorpusCase(f"talon/{file}", kind, fixtures / file, exp))
    params = []
    for case in cases:
        reason = KNOWN_DIFFERENCES.get(case.key)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(case, id=case.key, marks=marks))
    return params


def _first_text_plain(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            content = part.get_content()
            assert isinstance(content, str)
            return content
    raise AssertionError(f"no text/plain part in {path}")


class _HtmlToText(HTMLParser):
    """Just enough HTML to text for the corpus: blocks become lines, quotes "> "."""

    _BLOCKS = frozenset(
        {"p", "div", "br", "tr", "li", "ul", "ol", "table", "hr", "blockquote", "pre"}
        | {"h1", "h2", "h3", "h4", "h5", "h6"}
    )
    _SKIPPED = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._buffer: list[str] = []
        self._depth = 0
        self._skipping = 0

    def _flush(self, force: bool = False) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if text or force:
            self.lines.append("> " * self._depth + text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self._flush(force=tag == "br")
            if tag == "blockquote":
                self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self._flush()
            if tag == "blockquote":
                self._depth = max(0, self._depth - 1)

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._buffer.append(data)


def _html_to_text(html: str) -> str:
    parser = _HtmlToText()
    parser.feed(html)
    parser.close()
    parser._flush()
    return "\n".join(parser.lines)


def _no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _rstrip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip()


def _check_erp(body: str, exp: dict[str, Any]) -> None:
    reply = split_reply(body)
    shown = visible_text(body)
    if "visible_text" in exp:
        assert shown == exp["visible_text"].rstrip()
    if "visible_text_stripped" in exp:
        assert shown.strip() == exp["visible_text_stripped"].strip()
    for text in exp.get("reply_contains", []):
        assert text in shown
    for text in exp.get("reply_not_contains", []):
        assert text not in shown
    if "first_fragment" in exp:
        # The transcribed fragment lost the trailing spaces of its lines.
        assert _rstrip_lines(shown).startswith(_rstrip_lines(exp["first_fragment"]))
    if exp.get("fragment_count") == 1:
        assert reply == Reply(body.replace("\r\n", "\n").rstrip(), "", "")
    flags = exp.get("fragment_flags")

    def role(index: int) -> str:
        if flags is None:
            return "visible" if index == 0 else "quoted"
        if flags["signature"][index]:
            return "signature"
        if flags["quoted"][index]:
            return "quoted"
        return "hidden" if flags["hidden"][index] else "visible"

    for index, pattern in exp.get("fragment_regex", []):
        found_in_text = re.search(pattern, shown, re.MULTILINE) is not None
        match role(index):
            case "visible":
                assert found_in_text, (index, pattern)
            case "quoted":
                assert not found_in_text, (index, pattern)
            case "signature":
                assert re.search(pattern, reply.signature, re.MULTILINE), (index, pattern)
    for index, text in exp.get("fragment_exact", {}).items():
        if not text.strip():
            continue
        match role(int(index)):
            case "signature":
                assert text.strip() in reply.signature
            case "quoted":
                assert text.strip() not in shown
            case "visible":
                assert text.strip() in shown


@pytest.mark.parametrize("case", _corpus_cases())
def test_real_world_corpus_entry(case: CorpusCase | None) -> None:
    corpus_dir()  # skips when the corpus is absent
    assert case is not None
    exp = case.expected
    if case.kind == "erp":
        body = case.path.read_text(encoding="utf-8")
        started = time.process_time()
        _check_erp(body, exp)
        if "max_seconds" in exp:
            assert time.process_time() - started < exp["max_seconds"]
    elif case.kind == "talon-plain":
        body = _first_text_plain(case.path)
        expected = exp["expected_reply_stripped"]
        assert visible_text(body, keep_signature=True).strip() == expected.strip()
    elif case.kind == "talon-html":
        text = _html_to_text(case.path.read_text(encoding="utf-8"))
        expected = exp["expected_reply_text_whitespace_insensitive"]
        assert _no_space(visible_text(text, keep_signature=True)) == _no_space(expected)
    else:
        fixtures = case.path.parents[3]
        body = case.path.read_text(encoding="utf-8")
        signature = (fixtures / exp["expected_signature_file"]).read_text(encoding="utf-8")
        assert split_reply(body).signature == signature.strip()
