"""Issue 17: bounces that do not over-suppress, success notices, plain-text bounces,
mailing-list alerts, quoted local parts. Fixtures written after what the servers send."""

from __future__ import annotations

import pytest

from mailgate.mail.classify import classify
from mailgate.mail.parse import HashSink, ParsedMail, parse

OWN = frozenset({"support@example.org"})


def p(text: str) -> ParsedMail:
    return parse(text.replace("\n", "\r\n").encode(), HashSink())


def kind(mail: ParsedMail) -> str:
    return classify(mail, own_addresses=OWN, loop_token="tok").kind


def dsn(
    action: str, status: str, diagnostic: str = "", recipient: str = "carla@customer.example"
) -> str:
    return f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: support@example.org
Subject: Delivery Status Notification
Return-Path: <>
Content-Type: multipart/report; report-type=delivery-status; boundary=B

--B
Content-Type: text/plain

This is the mail system at host mx.example.org.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--B
Content-Type: text/rfc822-headers

From: support@example.org
To: {recipient}
Subject: [EB#1] Your ticket
Message-ID: <notice-1@example.org>

--B--
"""


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "permanent"),
    [
        ("failed", "5.1.1", "550 5.1.1 user unknown", True),
        # The status class decides, before the reply code and the words:
        ("failed", "4.2.2", "552 4.2.2 mailbox full, try again later", False),
        ("failed", "4.7.1", "550 greylisted, please try again later", False),
        ("failed", "4.4.7", "retry timeout exceeded", False),
        ("failed", "4.4.3", "DNS lookup timed out", False),
        # A delay is never permanent, whatever its status says.
        ("delayed", "5.0.0", "550 will retry", False),
        ("delayed", "4.0.0", "", False),
        # The Status field is the reporting MTA's judgement: a remote answer of another
        # class does not overrule it (Postfix softens a 5xx greeting to 4.5.0 while
        # other hosts may still take the mail; the answer itself says "try later").
        ("failed", "4.5.0", "550 5.5.0 service refused, please try later", False),
        # No status: the reply code decides, then the words.
        ("failed", "", "421 too many connections, rate limited", False),
        ("failed", "", "550 no such user here", True),
    ],
)
def test_permanence_comes_from_status_class_and_action_then_code_then_text(
    action: str, status: str, diagnostic: str, permanent: bool
) -> None:
    mail = p(dsn(action, status, diagnostic))
    assert mail.report is not None
    (recipient,) = mail.report.recipients
    assert recipient.permanent is permanent
    assert mail.report.original_message_id == "<notice-1@example.org>"


SENDMAIL_REFUSED_GREETING = """\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
To: support@example.org
Subject: Returned mail: see transcript for details
Content-Type: multipart/report; report-type=delivery-status; boundary=S

--S
Content-Type: text/plain

   ----- The following addresses had permanent fatal errors -----
<carla@customer.example>
    (reason: 554 mx1.customer.example ESMTP not accepting connections)

   ----- Transcript of session follows -----
... while talking to mx1.customer.example.:
<<< 554 mx1.customer.example ESMTP not accepting connections
>>> QUIT
<<< 421 4.7.0 mx1.customer.example Error: too many errors
554 5.0.0 Service unavailable

--S
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: RFC822; carla@customer.example
Action: failed
Status: 5.5.0
Diagnostic-Code: SMTP; 554 mx1.customer.example ESMTP not accepting connections

--S--
"""


def test_the_status_field_wins_over_a_transcripts_later_answers() -> None:
    # The 421 4.7.0 answers our QUIT after the refusal; the failure is the 554 greeting
    # ("no SMTP service here"), which the MTA itself reported as permanent (5.5.0).
    mail = p(SENDMAIL_REFUSED_GREETING)
    assert mail.report is not None
    (recipient,) = mail.report.recipients
    assert (recipient.status, recipient.reply_code, recipient.permanent) == ("5.5.0", "554", True)


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_a_success_dsn_is_a_delivery_report_not_a_failure(action: str) -> None:
    mail = p(dsn(action, "2.0.0", "250 2.0.0 OK queued"))
    assert mail.report is not None
    assert mail.report.kind == "delivered"
    assert not mail.report.permanent
    assert [r.action for r in mail.report.recipients] == [action]


def test_quoted_local_part_in_a_dsn_stays_quoted() -> None:
    mail = p(dsn("failed", "5.1.1", "550 5.1.1 unknown", recipient='"john doe"@example.com'))
    assert mail.report is not None
    assert [r.address for r in mail.report.recipients] == ['"john doe"@example.com']


POSTFIX_PLAIN = """\
From: postmaster@mx.customer.example
To: support@example.org
Subject: Undelivered Mail Returned to Sender
Date: Mon, 23 Nov 2026 10:00:00 +0100

This is the mail system at host mx.customer.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<carla@customer.example>: host mx.customer.example said: 550 5.1.1
    <carla@customer.example>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

From: support@example.org
To: carla@customer.example
Subject: [EB#1] Your ticket
Message-ID: <notice-2@example.org>

Hello Carla
"""


def test_plain_text_bounce_without_a_dsn_part_is_a_bounce() -> None:
    mail = p(POSTFIX_PLAIN)
    assert kind(mail) == "bounce"
    assert mail.report is not None
    (recipient,) = mail.report.recipients
    assert (recipient.address, recipient.status, recipient.permanent) == (
        "carla@customer.example",
        "5.1.1",
        True,
    )
    assert mail.report.original_message_id == "<notice-2@example.org>"


def test_no_reply_sender_returning_our_mail_under_the_null_sender_is_a_bounce() -> None:
    raw = """\
Return-Path: <>
From: no-reply@notify.carrier.example
To: support@example.org
Subject: Mail
Content-Type: multipart/mixed; boundary=K

--K
Content-Type: text/plain

Your mail sent on: Mon, 23 Nov 2026 10:00:00 +0900
     Could not be delivered to: <carla@carrier.example>
     As their mailbox is full.

--K
Content-Type: message/rfc822

From: support@example.org
To: carla@carrier.example
Subject: [EB#1] Your ticket
Message-ID: <notice-3@example.org>

Hello
--K--
"""
    mail = p(raw)
    assert kind(mail) == "bounce"
    assert mail.report is not None
    (recipient,) = mail.report.recipients
    assert recipient.address == "carla@carrier.example"
    assert mail.report.original_message_id == "<notice-3@example.org>"


def test_a_customer_writing_that_her_order_could_not_be_delivered_is_a_person() -> None:
    mail = p(
        "From: Carla <carla@customer.example>\nTo: support@example.org\n"
        "Subject: Undelivered parcel\n\nMy order could not be delivered, please help.\n"
    )
    assert kind(mail) == "person"


MAILMAN_HOLD = """\
From: team-owner@lists.customer.example
To: support@example.org
Subject: Your message to Team awaits moderator approval
List-Id: <team.lists.customer.example>
X-Mailman-Version: 3.3.8
Content-Type: multipart/mixed; boundary=M

--M
Content-Type: text/plain

Your mail to 'Team' with the subject [EB#1] Your ticket is being held until
the list moderator can review it for approval.

--M
Content-Type: message/rfc822

From: support@example.org
To: team@lists.customer.example
Subject: [EB#1] Your ticket
Message-ID: <notice-4@example.org>

Hello team
--M--
"""


@pytest.mark.parametrize(
    ("raw", "original"),
    [
        (MAILMAN_HOLD, "<notice-4@example.org>"),
        (
            "From: Google Groups <noreply-groups@googlegroups.example>\n"
            "To: support@example.org\nSubject: Message loop detected\n"
            "X-Google-Group-Id: 12345\nIn-Reply-To: <notice-5@example.org>\n\n"
            "Your message was not delivered to the group because a mail loop was detected.\n",
            "<notice-5@example.org>",
        ),
        (
            "From: helpdesk-list-request@customer.example\nTo: support@example.org\n"
            "Subject: Mail loop detected\nReferences: <a@x> <notice-6@example.org>\n\nLoop.\n",
            "<notice-6@example.org>",
        ),
        (
            "From: list-admin@customer.example\nTo: support@example.org\n"
            "Subject: You support@example.org are not member (team ML)\n"
            "Mailing-List: contact team-help@customer.example; run by ezmlm\n\nNot a member.\n",
            "",
        ),
    ],
)
def test_mailing_list_alerts_are_list_alerts_about_our_mail(raw: str, original: str) -> None:
    mail = p(raw)
    assert kind(mail) == "list_alert"
    assert mail.report is not None and mail.report.kind == "list_alert"
    assert not any(r.bad_address for r in mail.report.recipients)  # nobody's address is bad
    assert mail.report.original_message_id == original


FML_NOT_MEMBER = """\
From: team-admin@lists.customer.example
To: support@example.org
Subject: You support@example.org are not member (team ML)
Message-ID: <200601020304.FML00001.team@lists.customer.example>
X-MLServer: fml [fml 4.0.3 release]
List-Subscribe: <mailto:team-ctl@lists.customer.example?body=subscribe>

You are not a member of this mailing list <team@lists.customer.example>.

If you know the general guide of this list, please send mail with
the mail body

	guide

to the address

	team-ctl@lists.customer.example
"""

SYMPA_REJECT = """\
From: support-l-request@lists.customer.example
To: support@example.org
Subject: Your message to support-l was rejected by the list moderator
List-Id: <support-l.lists.customer.example>
List-Post: <mailto:support-l@lists.customer.example>

Your message was rejected by the list moderator. Please write to
support-l-owner@lists.customer.example if you think this is an error.
"""

LOOP_NAMING_THE_GROUP = """\
From: Groups <noreply-groups@groups.customer.example>
To: support@example.org
Subject: Mail loop detected
X-Google-Group-Id: 777

A mail loop was detected for <helpdesk@groups.customer.example>: your message
was not delivered to the group.
"""


@pytest.mark.parametrize(
    ("raw", "the_list", "action", "status"),
    [
        # The notice's text names the list in angle brackets; -ctl is its command robot.
        (FML_NOT_MEMBER, "team@lists.customer.example", "failed", "5.7.1"),
        # No address in the text but the list's owner: List-Post says which list.
        (SYMPA_REJECT, "support-l@lists.customer.example", "failed", "5.7.1"),
        # A hold names only 'Team': the returned original says where our mail went.
        (MAILMAN_HOLD, "team@lists.customer.example", "delayed", "4.0.0"),
        (LOOP_NAMING_THE_GROUP, "helpdesk@groups.customer.example", "failed", "5.4.6"),
        # Refused by a moderator is a refusal, not a hold.
        (
            SYMPA_REJECT.replace("by the list moderator", "by the moderator"),
            "support-l@lists.customer.example",
            "failed",
            "5.7.1",
        ),
    ],
)
def test_a_list_alert_names_the_list_that_refused_or_held_our_mail(
    raw: str, the_list: str, action: str, status: str
) -> None:
    mail = p(raw)
    assert kind(mail) == "list_alert"
    assert mail.report is not None
    (recipient,) = mail.report.recipients
    assert (recipient.address, recipient.action, recipient.status) == (the_list, action, status)
    # A refusal is final for that mail, a hold is a wait; the list's address is never bad.
    assert recipient.permanent is (action == "failed")
    assert not recipient.bad_address


def test_a_list_alert_naming_only_its_robots_and_us_names_no_list() -> None:
    mail = p(
        "From: list-admin@customer.example\nTo: support@example.org\n"
        "Subject: You support@example.org are not member (team ML)\n"
        "X-MLServer: fml\n\n"
        "Mail from <support@example.org> is not accepted. Write to list-ctl@customer.example,\n"
        "or to the owner list-owner@customer.example.\n"
    )
    assert kind(mail) == "list_alert"
    assert mail.report is not None and mail.report.recipients == ()


def test_a_person_writing_about_moderation_is_not_a_list_alert() -> None:
    mail = p(
        "From: Carla <carla@customer.example>\nTo: support@example.org\n"
        "Subject: My post awaits moderator approval for days\n\nCan you help?\n"
    )
    assert kind(mail) == "person"


def test_list_traffic_without_an_alert_stays_bulk() -> None:
    mail = p(
        "From: someone@customer.example\nTo: team@lists.customer.example\n"
        "Subject: Lunch on Friday\nList-Id: <team.lists.customer.example>\n\nPizza?\n"
    )
    assert kind(mail) == "bulk"


# --- a person forwarding a delivery report: the person's mail, the report read for the agent

APPLE_MAIL_FORWARD = """\
From: Carla Rossi <carla@customer.example>
To: support@example.org
Subject: Fwd: Undelivered Mail Returned to Sender
Content-Type: text/plain; charset=utf-8

My invoice never reached my father, see below. Can you send it again?

Begin forwarded message:

> From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>
> Subject: Undelivered Mail Returned to Sender
> Date: 2 March 2026 at 09:14:02 CET
> To: carla@customer.example
>
> This is the mail system at host mx.customer.example.
>
> I'm sorry to have to inform you that your message could not
> be delivered to one or more recipients.
>
> <dad@family.example>: host mx.family.example[192.0.2.7] said: 550 5.1.1
>     <dad@family.example>: Recipient address rejected: User unknown
"""

OUTLOOK_GERMAN_FORWARD = """\
From: Hans Meier <hans@firma.example>
To: support@example.org
Subject: WG: Unzustellbar: Angebot 2026
Content-Type: text/plain; charset=utf-8

Hallo, was ist hier los?

-----Ursprüngliche Nachricht-----
Von: Mail Delivery Subsystem <postmaster@firma.example>
Gesendet: Montag, 2. März 2026 10:01
An: hans@firma.example
Betreff: Undeliverable: Angebot 2026

Delivery has failed to these recipients or groups:

einkauf@kunde.example
The email address you entered couldn't be found.

Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found'
"""

ATTACHED_DELAY_WARNING = """\
From: Carla Rossi <carla@customer.example>
To: support@example.org
Subject: Fwd: Delivery Status Notification (Delay)
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=OUT

--OUT
Content-Type: text/plain

Is this a problem on your side?

--OUT
Content-Type: message/rfc822

From: Mail Delivery Subsystem <mailer-daemon@mx.customer.example>
To: carla@customer.example
Subject: Delivery Status Notification (Delay)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=IN

--IN
Content-Type: text/plain

Delivery to the following recipient has been delayed: office@slow.example

--IN
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.customer.example

Final-Recipient: rfc822; office@slow.example
Action: delayed
Status: 4.4.1
Diagnostic-Code: smtp; 421 4.4.1 connection timed out

--IN--

--OUT--
"""


@pytest.mark.parametrize(
    ("raw", "address", "status", "permanent"),
    [
        (APPLE_MAIL_FORWARD, "dad@family.example", "5.1.1", True),
        (OUTLOOK_GERMAN_FORWARD, "einkauf@kunde.example", "5.1.10", True),
        (ATTACHED_DELAY_WARNING, "office@slow.example", "4.4.1", False),
    ],
)
def test_a_report_a_person_forwards_is_read_but_the_mail_stays_theirs(
    raw: str, address: str, status: str, permanent: bool
) -> None:
    mail = p(raw)
    assert kind(mail) == "person"  # asking for help: a ticket, never a bounce
    assert mail.report is not None and mail.report.forwarded
    (recipient,) = mail.report.recipients
    assert (recipient.address, recipient.status) == (address, status)
    assert recipient.permanent is permanent


@pytest.mark.parametrize(
    "raw",
    [
        # An ordinary forward: the forwarded block is a person's mail, not a report.
        "From: Carla <carla@customer.example>\nTo: support@example.org\nSubject: Fwd: Invoice\n\n"
        "See below.\n\n---------- Forwarded message ---------\nFrom: Bob <bob@shop.example>\n"
        "Subject: Invoice\n\nThe invoice could not be delivered by post, 550 EUR are due.\n",
        # A marker in prose, with no header block below it.
        "From: Carla <carla@customer.example>\nTo: support@example.org\nSubject: Question\n\n"
        "Begin forwarded message:\nthe mailer-daemon said my mail to x@y.example failed.\n",
    ],
)
def test_a_forward_that_carries_no_report_has_none(raw: str) -> None:
    mail = p(raw)
    assert kind(mail) == "person"
    assert mail.report is None
