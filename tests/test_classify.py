"""Tests for mailgate.mail.classify: person, auto-reply, bounce, bulk or loop.

The fixtures are mails composed for these tests in the shapes real clients,
responders and list servers write them; they go through ``parse`` first, as in
the gateway. The optional corpus tests at the end read ``../shared/corpus``
and skip where it is absent.
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from mailgate.mail.bounces import FailedRecipient, Report
from mailgate.mail.classify import (
    LOOP_HEADER,
    RULES,
    Verdict,
    classify,
    is_noreply_address,
)
from mailgate.mail.parse import HashSink, ParsedMail, Unparseable, parse
from tests.corpus import corpus_dir
from tests.test_bounces import ARF_REPORT, EXIM_DELAY, GMAIL_DELAY_DSN, POSTFIX_DSN

OWN = frozenset({"support@example.com", "Billing@Example.com"})
TOKEN = "a1b2c3d4e5f6"


def _parse(raw: str) -> ParsedMail:
    return parse(raw.encode("utf-8"), HashSink())


def _classify(raw: str | ParsedMail) -> Verdict:
    mail = _parse(raw) if isinstance(raw, str) else raw
    return classify(mail, own_addresses=OWN, loop_token=TOKEN)


def _mail(*headers: str, subject: str = "Printer on floor 3 is jammed", body: str = "Hi") -> str:
    """A plain mail from a person, with extra header lines."""
    lines = [
        "Return-Path: <jane.doe@gmail.example>",
        "From: Jane Doe <jane.doe@gmail.example>",
        "To: Example Support <support@example.com>",
        f"Subject: {subject}",
        "Date: Tue, 3 Mar 2026 12:00:00 +0100",
        "Message-ID: <CAH7x=Qq9v1@mail.gmail.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8",
        *headers,
    ]
    return "\n".join(lines) + f"\n\n{body}\n"


# --- a person's mail ----------------------------------------------------------------------------

GMAIL_PERSON = """\
Delivered-To: support@example.com
Return-Path: <jane.doe@gmail.example>
Received: from mail-sor-f41.google.example (mail-sor-f41.google.example [209.85.220.41])
        by mx.example.com (Postfix) with ESMTPS id 6B1C21A2B40
        for <support@example.com>; Tue,  3 Mar 2026 12:00:01 +0100 (CET)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.example; s=20230601;
        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject;
        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==
MIME-Version: 1.0
From: Jane Doe <jane.doe@gmail.example>
Date: Tue, 3 Mar 2026 12:00:00 +0100
Message-ID: <CAH7x=Qq9v1-kZ3mTqG+abc@mail.gmail.example>
Subject: Invoice 2026-0042 is wrong
To: support@example.com
Content-Type: multipart/alternative; boundary="0000000000001a2b3c4d5e6f7a8b"

--0000000000001a2b3c4d5e6f7a8b
Content-Type: text/plain; charset="UTF-8"

Hello, the amount on invoice 2026-0042 is wrong. Could you fix it?

Jane

--0000000000001a2b3c4d5e6f7a8b
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">Hello, the amount on invoice 2026-0042 is wrong. Could you fix it?<br><br>Jane</div>

--0000000000001a2b3c4d5e6f7a8b--
"""


def test_gmail_customer_is_an_answerable_person() -> None:
    verdict = _classify(GMAIL_PERSON)
    assert verdict == Verdict("person", "no automated-mail markers", True)


def test_auto_submitted_no_is_a_person() -> None:
    verdict = _classify(_mail("Auto-Submitted: no"))
    assert (verdict.kind, verdict.answerable) == ("person", True)


def test_outlook_x_auto_response_suppress_alone_is_a_person_but_not_answerable() -> None:
    # Outlook and Exchange put this header on ordinary mail too, so it is no sign of an
    # auto-reply; but it asks for no automatic answers, and we honour that.
    verdict = _classify(_mail("X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply"))
    assert verdict.kind == "person"
    assert verdict.answerable is False
    assert "X-Auto-Response-Suppress" in verdict.reason
    only_oof = _classify(_mail("X-Auto-Response-Suppress: OOF"))
    assert (only_oof.kind, only_oof.answerable) == ("person", True)


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@shop.example",
        "no-reply@accounts.example",
        "do-not-reply@bank.example",
        "DoNotReply@portal.example",
        "mailer-daemon@mx.example",
    ],
)
def test_person_class_mail_from_no_reply_sender_is_not_answerable(sender: str) -> None:
    raw = _mail(subject="Your order 4711 has shipped").replace("jane.doe@gmail.example", sender)
    verdict = _classify(raw)
    assert verdict.kind == "person"
    assert verdict.answerable is False
    assert sender.lower() in verdict.reason


def test_postmaster_writing_a_normal_mail_is_a_person_we_do_not_auto_answer() -> None:
    raw = _mail(subject="Please stop sending to our old domain").replace(
        "jane.doe@gmail.example", "postmaster@customer.example"
    )
    verdict = _classify(raw)
    assert (verdict.kind, verdict.answerable) == ("person", False)


def test_reply_to_a_no_reply_address_is_not_answerable() -> None:
    verdict = _classify(_mail("Reply-To: no-reply@crm.example"))
    assert (verdict.kind, verdict.answerable) == ("person", False)


def test_null_envelope_sender_is_not_answerable() -> None:
    raw = _mail().replace("Return-Path: <jane.doe@gmail.example>", "Return-Path: <>")
    verdict = _classify(raw)
    assert (verdict.kind, verdict.answerable) == ("person", False)
    assert "Return-Path" in verdict.reason


def test_list_unsubscribe_alone_is_a_person_but_not_answerable() -> None:
    # Some CRM and sales tools add List-Unsubscribe to one-to-one mail; ignoring such a
    # customer would be worse than one ticket too many.
    verdict = _classify(_mail("List-Unsubscribe: <mailto:unsubscribe@crm.example?subject=u>"))
    assert (verdict.kind, verdict.answerable) == ("person", False)


# --- auto-replies -----------------------------------------------------------------------------------

EXCHANGE_OUT_OF_OFFICE = """\
Return-Path: <>
Received: from AM9PR01MB7777.eurprd01.prod.outlook.example (2603:10a6:20b:4d2::9) by
 AM9PR01MB1111.eurprd01.prod.outlook.example with HTTPS; Tue, 3 Mar 2026 11:01:02 +0000
From: Anna Schmidt <anna.schmidt@contoso.example>
To: Example Support <support@example.com>
Subject: Automatic reply: [Ticket#100] Your request
Thread-Topic: [Ticket#100] Your request
Thread-Index: AQHZ1a2b3c4d5e6f7g8h9i0jA==
Date: Tue, 3 Mar 2026 11:01:02 +0000
Message-ID: <e4b3c2d1a0f94e8d9c7b6a5f4e3d2c1b@AM9PR01MB7777.eurprd01.prod.outlook.example>
In-Reply-To: <ticket-100.1@mailgate.example.com>
References: <ticket-100.1@mailgate.example.com>
Content-Language: de-DE
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
X-MS-Exchange-Inbox-Rules-Loop: anna.schmidt@contoso.example
X-Auto-Response-Suppress: All
X-MS-Exchange-Organization-AuthAs: Internal
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0

Ich bin bis 10. M=E4rz nicht im B=FCro. In dringenden F=E4llen wenden Sie sich
bitte an meine Kollegin.
"""


def test_exchange_out_of_office_is_auto_reply_not_person() -> None:
    verdict = _classify(EXCHANGE_OUT_OF_OFFICE)
    assert verdict.kind == "auto_reply"
    assert verdict.answerable is False
    assert verdict.reason.startswith("out-of-office subject")


def test_exchange_out_of_office_with_auto_submitted_names_the_header() -> None:
    raw = EXCHANGE_OUT_OF_OFFICE.replace(
        "X-Auto-Response-Suppress: All\n",
        "X-Auto-Response-Suppress: All\nAuto-Submitted: auto-generated\n",
    )
    assert _classify(raw).reason == "Auto-Submitted: auto-generated"


GMAIL_VACATION = """\
Return-Path: <kim.lee@gmail.example>
From: Kim Lee <kim.lee@gmail.example>
Date: Tue, 3 Mar 2026 03:04:05 -0800
Message-ID: <CAKx=vacation.1234@mail.gmail.example>
Subject: Re: [Ticket#101] Your request
To: support@example.com
In-Reply-To: <ticket-101.1@mailgate.example.com>
References: <ticket-101.1@mailgate.example.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"

I'm travelling until 9 March with limited access to email.
"""


def test_gmail_vacation_responder_is_auto_reply() -> None:
    verdict = _classify(GMAIL_VACATION)
    assert verdict == Verdict("auto_reply", "Auto-Submitted: auto-replied", False)


def test_sieve_vacation_from_thunderbird_user_is_auto_reply() -> None:
    raw = _mail(
        "Auto-Submitted: auto-replied (vacation)",
        "Precedence: bulk",
        "X-Sieve: Pigeonhole Sieve 0.5.20",
        subject="Autoreply: [Ticket#102] Your request",
    )
    verdict = _classify(raw)
    assert verdict.kind == "auto_reply"  # not bulk: auto-replies are checked first
    assert verdict.reason == "Auto-Submitted: auto-replied (vacation)"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("X-Autoreply: yes", "x-autoreply: yes"),
        ("X-Autorespond: Out of office", "x-autorespond: Out of office"),
        ("X-Autogenerated: Reply", "x-autogenerated: Reply"),
        ("X-Apple-Action: VACATION", "x-apple-action: VACATION"),
        ("Precedence: auto_reply", "Precedence: auto_reply"),
    ],
)
def test_vendor_auto_reply_headers_make_an_auto_reply(header: str, reason: str) -> None:
    assert _classify(_mail(header)) == Verdict("auto_reply", reason, False)


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: [Ticket#7] Question",
        "Out of office",
        "Out of the office until 10 March",
        "Out of Office AutoReply: [Ticket#7] Question",
        "Automatic reply: [Ticket#7] Question",
        "Auto-Reply: [Ticket#7] Question",
        "Autoreply: [Ticket#7] Question",
        "Auto reply: Nyaan",
        "AUTO: Jane Doe is out of the office (returning 10/03/2026)",
        "RE: Automatic reply: [Ticket#7] Question",
        "AW: Abwesenheitsnotiz: [Ticket#7] Frage",
        "Abwesenheitsnotiz",
        "Automatische Antwort: [Ticket#7] Frage",
        "Réponse automatique : [Ticket#7] Question",
        "Absence : [Ticket#7] Question",
        "Respuesta automática: [Ticket#7] Pregunta",
        "Fuera de la oficina: [Ticket#7] Pregunta",
        "Risposta automatica: [Ticket#7] Domanda",
        "Fuori sede: [Ticket#7] Domanda",
        "Automatisch antwoord: [Ticket#7] Vraag",
        "Afwezig: [Ticket#7] Vraag",
        "Resposta automática: [Ticket#7] Pergunta",
        "Ausente: [Ticket#7] Pergunta",
        "Frånvaro: [Ticket#7] Fråga",
        "Autosvar: [Ticket#7] Spørgsmål",
        "Automaattinen vastaus: [Ticket#7] Kysymys",
        "Automatická odpověď: [Ticket#7] Dotaz",
        "Odpowiedź automatyczna: [Ticket#7] Pytanie",
        "Автоответ: [Ticket#7] Вопрос",
        "Автоматический ответ: [Ticket#7] Вопрос",
        "自動応答: [Ticket#7] 質問",
        "自动回复: [Ticket#7] 问题",
        "자동 회신: [Ticket#7] 질문",
        "Otomatik yanıt: [Ticket#7] Soru",
    ],
)
def test_out_of_office_subjects_in_many_languages_are_auto_replies(subject: str) -> None:
    verdict = _classify(_mail(subject=subject))
    assert verdict.kind == "auto_reply", subject
    assert verdict.answerable is False


@pytest.mark.parametrize(
    "subject",
    [
        "Out of office hours support is not reachable",
        "Auto-reply not working on your side",
        "Automatic replies from your system are in English only",
        "Absence of invoice for order 4711",
        "Question about the out of office feature",
        "Re: Your ticket about the automatic reply",
        "Autosvaret virker ikke",
        "Ausente el técnico, ¿quién viene?",
        "Auto: Schaden vom 3. März",
    ],
)
def test_people_writing_about_auto_replies_stay_people(subject: str) -> None:
    assert _classify(_mail(subject=subject)).kind == "person", subject


def test_read_receipt_is_auto_reply() -> None:
    raw = (
        "From: Jane Doe <jane.doe@gmail.example>\nTo: support@example.com\n"
        "Subject: Read: [Ticket#8] Update\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="m"\n\n'
        "--m\nContent-Type: text/plain\n\nYour message was read on 3 March 2026.\n"
        "--m\nContent-Type: message/disposition-notification\n\n"
        "Reporting-UA: jane-pc; Microsoft Outlook 16.0\nFinal-Recipient: rfc822;jane.doe@gmail.example\n"
        "Original-Message-ID: <ticket-8.1@mailgate.example.com>\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n--m--\n"
    )
    verdict = _classify(raw)
    assert verdict.kind == "auto_reply"
    assert "disposition-notification" in verdict.reason


def test_vacation_sent_as_a_multipart_report_is_auto_reply_not_bounce() -> None:
    raw = (
        "From: Kim Lee <kim@partner.example>\nTo: support@example.com\n"
        "Subject: Out of Office: [Ticket#14] Question\nAuto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="v"\n\n'
        "--v\nContent-Type: text/plain\n\nI am out of the office until 10 March.\n"
        "--v\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mail.partner.example\n\n"
        "Final-Recipient: rfc822; kim@partner.example\nAction: delivered\nStatus: 2.0.0\n"
        "--v--\n"
    )
    verdict = _classify(raw)
    assert verdict.kind == "auto_reply"
    assert verdict.answerable is False


def test_delivered_report_with_out_of_office_markers_is_an_auto_reply() -> None:
    # Whatever the report reader made of it, a person's away notice is an auto-reply.
    report = Report("delivered", (FailedRecipient("kim@partner.example", "2.0.0", "delivered"),))
    mail = dataclasses.replace(
        _parse(_mail(subject="Out of Office: [Ticket#14] Question")), report=report
    )
    assert _classify(mail).kind == "auto_reply"
    assert _classify(dataclasses.replace(mail, subject="Status")).kind == "bounce"


# --- bounces ---------------------------------------------------------------------------------------


def test_postfix_dsn_is_a_bounce_naming_the_report_type() -> None:
    verdict = _classify(POSTFIX_DSN)
    assert verdict == Verdict(
        "bounce", "bounce report: multipart/report; report-type=delivery-status", False
    )


def test_bounce_is_checked_before_auto_reply() -> None:
    # The Postfix report carries "Auto-Submitted: auto-replied" like many reports do.
    assert "Auto-Submitted: auto-replied" in POSTFIX_DSN
    assert _classify(POSTFIX_DSN).kind == "bounce"


def test_delay_notices_are_bounce_kind_with_a_delay_report() -> None:
    for raw in (GMAIL_DELAY_DSN, EXIM_DELAY):
        mail = _parse(raw)
        verdict = _classify(mail)
        assert verdict.kind == "bounce"
        assert verdict.reason.startswith("delay report")
        assert mail.report is not None and not mail.report.permanent


def test_abuse_feedback_report_is_bounce_kind_with_a_feedback_report() -> None:
    mail = _parse(ARF_REPORT)
    verdict = _classify(mail)
    assert verdict.kind == "bounce"
    assert verdict.reason == "feedback report: multipart/report; report-type=feedback-report"
    assert mail.report is not None and mail.report.kind == "feedback"


def test_null_return_path_from_mailer_daemon_is_a_bounce_even_without_a_readable_report() -> None:
    raw = (
        "Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.partner.example>\n"
        "To: support@example.com\nSubject: Returned mail\nContent-Type: text/plain\n\n"
        "(report body lost)\n"
    )
    mail = dataclasses.replace(_parse(raw), report=None)
    verdict = _classify(mail)
    assert verdict.kind == "bounce"
    assert verdict.reason == "Return-Path <> from mailer-daemon@mx.partner.example"


def test_daemon_sender_with_report_subject_is_a_bounce_without_a_report() -> None:
    raw = (
        "Return-Path: <MAILER-DAEMON@mx.partner.example>\n"
        "From: postmaster@mx.partner.example\nTo: support@example.com\n"
        "Subject: Undeliverable: [Ticket#3] Update\nContent-Type: text/plain\n\n(empty)\n"
    )
    mail = dataclasses.replace(_parse(raw), report=None)
    verdict = _classify(mail)
    assert verdict.kind == "bounce"
    assert verdict.reason.startswith("From postmaster@mx.partner.example with subject")


def test_exchange_ndr_marker_header_is_a_bounce() -> None:
    mail = dataclasses.replace(_parse(_mail("X-MS-Exchange-Message-Is-Ndr:")), report=None)
    assert _classify(mail) == Verdict("bounce", "X-MS-Exchange-Message-Is-Ndr", False)


def test_person_complaining_about_a_bounce_is_a_person() -> None:
    verdict = _classify(
        _mail(
            subject="My mail to you could not be delivered",
            body="I got 'Undelivered Mail Returned to Sender' from MAILER-DAEMON. "
            "<support@example.com>: host said: 550 5.1.1 user unknown",
        )
    )
    assert (verdict.kind, verdict.answerable) == ("person", True)


# --- bulk ----------------------------------------------------------------------------------------------

MAILMAN_POST = """\
Return-Path: <dev-bounces+support=example.com@lists.example.org>
From: Chris Maintainer <chris@project.example>
To: dev@lists.example.org
Subject: [dev] Release 2.4 planning
Date: Tue, 3 Mar 2026 09:00:00 +0000
Message-ID: <87a1b2c3d4.fsf@project.example>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
Precedence: list
List-Id: Developers <dev.lists.example.org>
List-Archive: <https://lists.example.org/archives/list/dev@lists.example.org/>
List-Help: <mailto:dev-request@lists.example.org?subject=help>
List-Post: <mailto:dev@lists.example.org>
List-Subscribe: <mailto:dev-join@lists.example.org>
List-Unsubscribe: <mailto:dev-leave@lists.example.org>
Sender: dev-bounces@lists.example.org
Errors-To: dev-bounces@lists.example.org

Let us plan the release.
"""


def test_mailing_list_post_is_bulk() -> None:
    assert _classify(MAILMAN_POST) == Verdict("bulk", "Precedence: list", False)


def test_list_id_alone_is_bulk() -> None:
    raw = MAILMAN_POST.replace("Precedence: list\n", "")
    assert _classify(raw) == Verdict("bulk", "List-Id: Developers <dev.lists.example.org>", False)


@pytest.mark.parametrize("precedence", ["bulk", "junk", "list", "Bulk"])
def test_bulk_precedence_is_bulk(precedence: str) -> None:
    verdict = _classify(_mail(f"Precedence: {precedence}"))
    assert (verdict.kind, verdict.answerable) == ("bulk", False)


def test_newsletter_with_one_click_unsubscribe_is_bulk() -> None:
    raw = _mail(
        "List-Unsubscribe: <https://news.shop.example/u/abc>, <mailto:u-abc@news.shop.example>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        subject="Spring sale: 20% off",
    ).replace("jane.doe@gmail.example", "news@news.shop.example")
    assert _classify(raw).kind == "bulk"


# --- loops --------------------------------------------------------------------------------------------


def test_our_loop_header_with_our_token_is_a_loop() -> None:
    verdict = _classify(_mail(f"{LOOP_HEADER}: {TOKEN}"))
    assert verdict == Verdict("loop", "X-Mailgate-Loop carries our loop token", False)


def test_loop_header_with_another_token_is_not_a_loop() -> None:
    # Another mailgate (a partner's helpdesk) mailing us is a person's mail.
    assert _classify(_mail(f"{LOOP_HEADER}: 0000other0000")).kind == "person"


def test_loop_is_checked_before_everything_else() -> None:
    verdict = _classify(_mail(f"{LOOP_HEADER}: {TOKEN}", "Auto-Submitted: auto-replied"))
    assert verdict.kind == "loop"


@pytest.mark.parametrize(
    "sender",
    [
        "support@example.com",
        "Support@EXAMPLE.com",
        "support+1042@example.com",
        "billing@example.com",
    ],
)
def test_mail_from_our_own_address_is_a_loop(sender: str) -> None:
    verdict = _classify(_mail().replace("jane.doe@gmail.example", sender))
    assert verdict.kind == "loop"
    assert verdict.answerable is False


def test_similar_but_foreign_address_is_not_ours() -> None:
    for sender in (
        "support@example.com.evil.example",
        "xsupport@example.com",
        "support@sub.example.com",
    ):
        assert _classify(_mail().replace("jane.doe@gmail.example", sender)).kind == "person"


# --- the table and the helpers ------------------------------------------------------------------------


def test_rule_table_order_is_loop_bounce_auto_reply_list_alert_bulk() -> None:
    kinds = [rule.kind for rule in RULES]
    order = ["loop", "bounce", "auto_reply", "list_alert", "bulk"]
    assert [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k] == order
    assert len({rule.name for rule in RULES}) == len(RULES)


@pytest.mark.parametrize(
    "address",
    [
        "noreply@example.com",
        "no-reply@accounts.example",
        "no_reply@x.example",
        "NoReply.Billing@x.example",
        "billing-noreply@x.example",
        "noreply+abc123@x.example",
        "do-not-reply@x.example",
        "donotreply@x.example",
        "DoNotReply@x.example",
        "mailer-daemon@x.example",
        "MAILER-DAEMON@x.example",
        "postmaster@x.example",
        "bounce@x.example",
        "bounces+user=example.com@x.example",
        "bounce-12345-678@x.example",
        "dev-bounces@lists.example.org",
        "owner-dev@lists.example.org",
        "dev-request@lists.example.org",
        "dev-owner@lists.example.org",
        "listserv@x.example",
        "<no-reply@x.example>",
    ],
)
def test_no_reply_and_daemon_addresses_are_recognised(address: str) -> None:
    assert is_noreply_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "jane.doe@gmail.example",
        "support@example.com",
        "replies@x.example",
        "bouncer@club.example",
        "norbert@x.example",
        "info@x.example",
        "reply@x.example",
        "",
    ],
)
def test_ordinary_addresses_are_not_no_reply(address: str) -> None:
    assert not is_noreply_address(address)


def test_classify_of_a_person_takes_a_few_microseconds() -> None:
    mail = _parse(GMAIL_PERSON)
    classify(mail, own_addresses=OWN, loop_token=TOKEN)
    rounds = 20_000
    started = time.process_time()
    for _ in range(rounds):
        classify(mail, own_addresses=OWN, loop_token=TOKEN)
    each = (time.process_time() - started) / rounds
    print(f"classify(person): {each * 1e6:.1f} µs")
    assert each < 100e-6  # measured ~5 µs; the bound only catches accidental body scans


# --- the optional real-world corpus -----------------------------------------------------------------------

# Measured: 434/436. The two disagreements are deliberate: sisimai's lhost-sendmail-14 is
# a bounce *forwarded by a person* ("Fwd: Returned mail", From the person) -- for a
# helpdesk that is the customer asking for help, so "person" (its report is read, marked
# forwarded, for the agent); lhost-fml-02 is an ezmlm
# list's "you are not a member" notice, so "list_alert". lhost-kddi-03 (no-reply@ under
# Return-Path <>, subject "Mail", returning our message) is read as the bounce it is.
# rb-issue-368 (in sisimai's "not a bounce" folder because it broke sisimai) is a
# real mailbox-full bounce from postmaster@ with Return-Path <>, so "bounce" is expected.
_MAX_CORPUS_MISSES = 6


def test_sisimai_corpus_is_classified_as_expected() -> None:
    root = corpus_dir() / "sisimai-set-of-emails"
    if not root.is_dir():
        pytest.skip("sisimai-set-of-emails not in the corpus")
    expected = json.loads((root / "EXPECTED.json").read_text())["expected"]
    misses: list[str] = []
    total = 0
    for path in sorted((root / "maildir").rglob("*.eml")):
        key = path.relative_to(root).as_posix()
        mail = parse(path.read_bytes(), HashSink())
        verdict = classify(mail, own_addresses=OWN, loop_token=TOKEN)
        assert verdict.answerable is False or verdict.kind == "person"
        total += 1
        entry = expected.get(key)
        if entry is None:
            want = "person" if "/not/" in key and "rb-issue" not in key else "bounce"
        else:
            reason = entry["recipients"][0]["reason"]
            want = "auto_reply" if reason == "vacation" else "bounce"
            if reason in ("feedback", "delivered") and verdict.kind == "bounce":
                assert mail.report is not None
                assert mail.report.kind == reason, key
        if verdict.kind != want:
            misses.append(f"{key}: {verdict.kind} ({verdict.reason}) != {want}")
    print("\n".join(misses))
    print(f"classification {total - len(misses)}/{total}")
    assert len(misses) <= _MAX_CORPUS_MISSES


def test_real_replies_from_mail_clients_are_people() -> None:
    root = corpus_dir() / "talon"
    if not root.is_dir():
        pytest.skip("talon corpus not present")
    seen = 0
    for path in sorted(root.rglob("*.eml")):
        try:
            mail = parse(path.read_bytes(), HashSink())
        except Unparseable:
            continue
        seen += 1
        verdict = classify(mail, own_addresses=OWN, loop_token=TOKEN)
        assert verdict.kind == "person", (path, verdict)
    assert seen >= 5


def test_every_extra_corpus_mail_classifies_without_exception() -> None:
    root = corpus_dir() / "extra"
    if not root.is_dir():
        pytest.skip("extra corpus not present")
    kinds: dict[str, int] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            mail = parse(path.read_bytes(), HashSink())
        except Unparseable:
            continue
        verdict = classify(mail, own_addresses=OWN, loop_token=TOKEN)
        kinds[verdict.kind] = kinds.get(verdict.kind, 0) + 1
    print(kinds)
    assert kinds.get("person", 0) > 0 and kinds.get("bounce", 0) > 0
