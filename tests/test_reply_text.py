"""Issue 17: ``reply_text`` on the families of replies real clients write.

Each fixture is written after a client's behaviour (s-nail/mailx, Outlook in several
languages, iOS/Android mail apps, Gmail, Thunderbird, Zoho, Yahoo); the expected
value is what the person wrote, as a reader sees it.
"""

from __future__ import annotations

import email
from collections.abc import Callable
from pathlib import Path

import pytest

from mailgate.mail.html import html_to_text
from mailgate.mail.quotes import reply_text
from tests import mailx

NOTICE = (
    "Hello Jane,\n"
    "we have opened ticket [EB#482913] for your request.\n"
    "Simply answer this mail to add information."
)


def indented(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else "" for line in text.split("\n"))


# --- indented quotes (s-nail / mailx) --------------------------------------------------------


@pytest.mark.parametrize("prefix", ["\t", "    ", "  "])
def test_answer_below_an_indented_quote_after_an_attribution_is_kept(prefix: str) -> None:
    body = (
        "On Mon, 23 Nov 2026 09:14:02 +0000, Helpdesk <support@example.org> wrote:\n"
        + indented(NOTICE, prefix)
        + "\n\nThe VPN works again after the restart.\nJane\n"
    )
    assert reply_text(body) == "The VPN works again after the restart.\nJane"


def test_answer_above_an_indented_quote_is_kept() -> None:
    body = (
        "Restarted the router, works now.\n\n"
        "Helpdesk <support@example.org> wrote:\n" + indented(NOTICE, "\t") + "\n"
    )
    assert reply_text(body) == "Restarted the router, works now."


def test_indented_header_block_of_a_reproduced_notice_is_a_quote() -> None:
    body = (
        "\tFrom: Helpdesk <support@example.org>\n"
        "\tSubject: [EB#482913] Your request\n"
        "\tDate: Mon, 23 Nov 2026 09:14:02 +0000\n\n"
        + indented(NOTICE, "\t")
        + "\n\nPlease close the ticket.\n"
    )
    assert reply_text(body) == "Please close the ticket."


def test_indented_code_in_the_persons_own_text_stays() -> None:
    body = "Run this please:\n\n    sudo systemctl restart vpn\n\nand tell me the result."
    assert reply_text(body) == body


# --- attributions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attribution",
    [
        "On Tue, 3 Mar 2026 at 10:14, Very Long Name Of A Person\n<very.long.name@customer.example>\nwrote:",
        "On Tue, 3 Mar 2026 at 10:14, Very Long Name Of A Person <very.long.name@customer.example> wrote:",
        "On Tue, 3 Mar 2026 at 10:14, Helpdesk <support@example.org> wrote",
        "---- On Tue, 03 Mar 2026 10:14:00 +0100 Helpdesk <support@example.org> wrote ----",
        "Le mar. 3 mars 2026 à 10:14, Helpdesk <support@example.org> a écrit :",
        "Am Di., 3. März 2026 um 10:14 Uhr schrieb Helpdesk <support@example.org>:",
        "El mar, 3 mar 2026 a las 10:14, Helpdesk (<support@example.org>) escribió:",
        "Il giorno mar 3 mar 2026 alle ore 10:14 Helpdesk <support@example.org> ha scritto:",
        "Op di 3 mrt. 2026 om 10:14 schreef Helpdesk <support@example.org>:",
        "2026年3月3日(火) 10:14 Helpdesk <support@example.org>:",
        "Helpdesk <support@example.org> 于2026年3月3日周二 10:14写道：",
        "2026/03/03 10:14、Helpdesk <support@example.org>のメッセージ:",
    ],
)
def test_attribution_forms_and_languages_are_removed_with_the_quote(attribution: str) -> None:
    body = f"Thanks, that helped.\n\n{attribution}\n> {NOTICE.replace(chr(10), chr(10) + '> ')}\n"
    assert reply_text(body) == "Thanks, that helped."
    unmarked = f"Thanks, that helped.\n\n{attribution}\n{NOTICE}\n"
    assert reply_text(unmarked) == "Thanks, that helped."


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "-------- Ursprüngliche Nachricht --------",
        "-------- Message original --------",
        "-------- Messaggio originale --------",
        "-------- Oorspronkelijk bericht --------",
        "-------- Mensaje original --------",
        "-------- Original message --------",
    ],
)
def test_localised_original_message_separators_cut_the_history(separator: str) -> None:
    body = f"Please call me back.\n\n{separator}\nFrom: Helpdesk\n\n{NOTICE}\n"
    assert reply_text(body) == "Please call me back."


@pytest.mark.parametrize(
    "block",
    [
        "From: Helpdesk <support@example.org>\nSent: Monday, 23 November 2026 09:14\n"
        "To: Jane <jane@customer.example>\nSubject: [EB#482913] Your request",
        "Von: Helpdesk <support@example.org>\nGesendet: Montag, 23. November 2026 09:14\n"
        "An: Jane <jane@customer.example>\nBetreff: [EB#482913] Ihre Anfrage",
        "De : Helpdesk <support@example.org>\nEnvoyé : lundi 23 novembre 2026 09:14\n"
        "À : Jane <jane@customer.example>\nObjet : [EB#482913] Votre demande",
        "De: Helpdesk <support@example.org>\nEnviado: lunes, 23 de noviembre de 2026 9:14\n"
        "Para: Jane <jane@customer.example>\nAsunto: [EB#482913] Su solicitud",
        "发件人: Helpdesk <support@example.org>\n发送时间: 2026年11月23日 9:14\n"
        "收件人: Jane <jane@customer.example>\n主题: [EB#482913] 您的请求",
        "*From:* Helpdesk <support@example.org>\n*Sent:* Monday, 23 November 2026 09:14\n"
        "*Subject:* [EB#482913] Your request",
    ],
)
def test_outlook_header_block_in_any_language_cuts_the_history(block: str) -> None:
    body = f"Works now, thanks!\n\n________________________________\n{block}\n\n{NOTICE}\n"
    assert reply_text(body) == "Works now, thanks!"


# --- mobile footers and signatures ---------------------------------------------------------------


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Get Outlook for Android",
        "Enviado desde mi iPhone",
        "Sent from my Galaxy",
    ],
)
def test_mobile_footer_followed_by_a_headerless_quote_ends_the_text(footer: str) -> None:
    body = f"Yes, tomorrow at 10 works.\n\n{footer}\n\n{NOTICE}\n"
    assert reply_text(body) == "Yes, tomorrow at 10 works."


def test_rfc3676_signature_is_removed_but_the_closing_formula_and_name_stay() -> None:
    body = (
        "The invoice is attached.\n\nBest regards\nJane Doe\nACME Ltd.\n\n"
        "-- \nJane Doe | Accounts | +49 30 1234567\nACME Ltd., Berlin\n"
    )
    assert reply_text(body) == "The invoice is attached.\n\nBest regards\nJane Doe\nACME Ltd."


@pytest.mark.parametrize(
    "closing",
    [
        "Best regards,\nJane Doe",
        "Mit freundlichen Grüßen\nJörg Müller\nKundenservice",
        "Cordialement,\nMarie Dupont",
        "Saludos,\nAna",
        "Kind regards\n\nJane",
    ],
)
def test_closing_formula_does_not_hide_a_headerless_quote_below_it(closing: str) -> None:
    body = f"The export fails again.\n\n{closing}\n\n{NOTICE}\n"
    assert reply_text(body) == f"The export fails again.\n\n{closing}"


def test_closing_formula_with_a_postscript_keeps_the_postscript() -> None:
    body = "It works.\n\nBest regards,\nJane\n\nP.S. The old ticket can be closed too."
    assert reply_text(body) == body


def test_closing_formula_is_not_the_start_of_a_quote() -> None:
    body = "Best regards and thanks for the quick help,\nthe new password works.\n\nJane"
    assert reply_text(body) == body


# --- hard-wrapped quotes -------------------------------------------------------------------------


def test_quoted_lines_that_lost_their_marker_when_wrapped_are_quote() -> None:
    body = (
        "Yes please.\n\n"
        "On Mon, 23 Nov 2026 09:14, Helpdesk <support@example.org> wrote:\n"
        "> Hello Jane, we have opened ticket [EB#482913] for your request and will\n"
        "come back to you\n"
        "> as soon as the VPN team has looked at the logs you sent to us this\n"
        "morning.\n"
        "> Best regards\n"
    )
    assert reply_text(body) == "Yes please."


def test_inline_answers_between_quotes_stay() -> None:
    body = "> Which browser do you use?\nFirefox 140.\n> And which version of the app?\n3.2.1\n"
    assert reply_text(body) == "Firefox 140.\n\n3.2.1"


# --- HTML --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        '<div>Works now.</div><div id="divRplyFwdMsg"><b>From:</b> Helpdesk<br><b>Sent:</b> '
        "Monday<br><b>Subject:</b> [EB#1]</div><div>" + NOTICE + "</div>",
        '<div>Works now.</div><div id="appendonsend"></div><hr><div><b>Von:</b> Helpdesk<br>'
        "<b>Gesendet:</b> Montag<br><b>Betreff:</b> [EB#1]</div><div>" + NOTICE + "</div>",
        '<div dir="ltr">Works now.</div><br><div class="gmail_quote"><div class="gmail_attr">'
        "On Mon, 23 Nov 2026 at 09:14, Helpdesk &lt;support@example.org&gt; wrote:</div>"
        '<blockquote class="gmail_quote">' + NOTICE + "</blockquote></div>",
        '<div>Works now.</div><div><br><blockquote type="cite">On 23 Nov 2026, at 09:14, '
        "Helpdesk &lt;support@example.org&gt; wrote:<br><br>" + NOTICE + "</blockquote></div>",
    ],
)
def test_html_reply_families_give_only_the_new_text(html: str) -> None:
    assert reply_text(html_to_text(html)) == "Works now."


# --- the shape of reply_text -------------------------------------------------------------------


def test_reply_text_has_no_blank_lines_at_either_end_and_lines_are_right_stripped() -> None:
    body = "\n\n  Hello   \nsecond line\t\n\n\n> quoted\n"
    assert reply_text(body) == "  Hello\nsecond line"


def test_reply_text_of_an_empty_or_quote_only_body_is_empty() -> None:
    assert reply_text("") == ""
    assert reply_text("> only a quote\n") == ""


# --- quotes recognised by the notice they reproduce (real s-nail and bsd-mailx replies) ---------

MAILX = Path(__file__).resolve().parent / "data" / "mailx"
ANSWER = "The VPN works again after the restart.\n\nAlice"


def _body(raw: bytes) -> str:
    message = email.message_from_bytes(raw)
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def _notice_text() -> str:
    return _body((MAILX / "notice.eml").read_bytes())


@pytest.mark.parametrize(
    "name", sorted(p.name for p in MAILX.glob("*.eml") if p.name != "notice.eml")
)
def test_a_real_mailx_reply_gives_only_the_answer_when_the_notice_is_known(name: str) -> None:
    body = _body((MAILX / name).read_bytes())
    assert reply_text(body, known=[_notice_text()]) == ANSWER


def test_an_indented_notice_without_any_attribution_needs_the_notice_to_be_seen() -> None:
    body = _body((MAILX / "s-nail-quote-no-heading.eml").read_bytes())
    assert "waits in the Level 1 queue" in reply_text(body)  # nothing says "quote" but the text
    assert reply_text(body, known=[_notice_text()]) == ANSWER
    assert reply_text(body, known=["An entirely different notice about another ticket."]) != ANSWER


def test_an_indented_block_of_the_agents_own_stays_even_when_the_notice_is_known() -> None:
    body = (
        "Please run this on the server:\n\n"
        "    systemctl restart online-banking-gateway.service\n"
        "    journalctl -u online-banking-gateway --since today\n\n"
        "and send me the output."
    )
    assert reply_text(body, known=[_notice_text()]) == body


def test_a_trimmed_indented_quote_of_part_of_the_notice_is_a_quote() -> None:
    body = (
        "\tLatest message from Carla Customer <carla@customer.example>:\n"
        "\tthe entire mobile online banking system is down.\n\n"
        "We are on it, the gateway is restarting."
    )
    assert reply_text(body, known=[_notice_text()]) == "We are on it, the gateway is restarting."


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("s-nail-quote-tab.eml", lambda n: mailx.s_nail_body(n, ANSWER)),
        ("s-nail-quote-no-heading.eml", lambda n: mailx.s_nail_body(n, ANSWER, heading=False)),
        ("s-nail-quote-four-spaces.eml", lambda n: mailx.s_nail_body(n, ANSWER, indent="    ")),
        ("s-nail-debian-rc.eml", lambda n: mailx.s_nail_body(n, ANSWER, indent="> ")),
        ("bsd-mailx-tilde-m-debian-rc.eml", lambda n: mailx.bsd_mailx_tilde_m_body(n, ANSWER)),
    ],
)
def test_the_reply_builders_write_what_the_real_clients_wrote(
    name: str, build: Callable[[bytes], str]
) -> None:
    """The end-to-end tests answer their own notices with these builders: byte for byte
    what s-nail and bsd-mailx wrote for the stored notice."""
    real = (MAILX / name).read_bytes().decode().split("\n\n", 1)[1]
    assert build((MAILX / "notice.eml").read_bytes()) == real
