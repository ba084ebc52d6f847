"""Canned answers (issue 13): `#answer NAME` anywhere in an agent's reply, rendered for the ticket."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.desk import Desk, kinds, number_of, plain, to
from tests.support import compose, reply_to

ANSWERS = {"answers": {"dir": "{tmp}/answers"}}
CARD = """\
Dear {{ requester.name or requester.email }},

a new card is on its way (reference {{ ticket.tag }}); it arrives within five working days.

Yours, {{ agent.name }} ({{ gateway.name }})
"""


@pytest.fixture(autouse=True)
def answers_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "card.md").write_text(CARD)
    (folder / "thanks.txt").write_text("Thank you for your patience.\n")
    return folder


def queue_notice(desk: Desk, address: str) -> bytes:
    (found,) = [r.content for r in desk.deliver() if address in r.rcpt_tos
                and r.message["X-Mailgate-Notice"] == "assignment"]  # fmt: skip
    return found


@pytest.mark.config(ANSWERS)
def test_an_answer_is_inserted_where_the_agent_wrote_it(desk: Desk) -> None:
    code, text = desk.send(compose(sender="Carla Rossi <carla@customer.example>"),
                           "carla@customer.example")  # fmt: skip
    number = number_of(text)
    notice = queue_notice(desk, "alice@example.org")
    body = "#assign me\nHello Carla,\n\nabout your card:\n#answer card\nAnd finally:\n#answer THANKS\n"
    code, text = desk.send(reply_to(notice, sender="alice@example.org", body=body), "alice@example.org")
    assert code == 250, text
    mails = desk.deliver()
    (sent,) = to(mails, "carla@customer.example", "agent_reply")
    words = plain(sent)
    assert "about your card:\nDear Carla Rossi,\n\na new card is on its way" in words
    assert f"(reference [EB#{number}])" in words and "Yours, Alice Smith (Example Bank Helpdesk)" in words
    assert "And finally:\nThank you for your patience." in words
    assert "#answer" not in words


@pytest.mark.config(ANSWERS)
def test_an_unknown_answer_sends_nothing_to_the_customer(desk: Desk) -> None:
    desk.send(compose(), "carla@customer.example")
    notice = queue_notice(desk, "alice@example.org")
    raw = reply_to(notice, sender="alice@example.org", body="Dear Carla,\n#answer crad\n")
    desk.send(raw, "alice@example.org")
    mails = desk.deliver()
    assert kinds(mails) == [("command_error", "alice@example.org")]
    assert "no answer 'crad' (known: card, thanks)" in plain(to(mails, "alice@example.org")[0])


@pytest.mark.config(ANSWERS)
def test_answers_list_show_and_templates_check(desk: Desk, answers_dir: Path) -> None:
    listed = desk.cli("answers", "list")
    assert listed.returncode == 0, listed.stderr
    assert "card" in listed.stdout and "thanks" in listed.stdout
    assert "Dear {{ requester.name" in desk.cli("answers", "show", "card").stdout
    missing = desk.cli("answers", "show", "nope")
    assert missing.returncode != 0 and "no answer 'nope'" in missing.stderr
    assert desk.cli("templates", "check").returncode == 0
    (answers_dir / "broken.md").write_text("Hello {{ ticket.nonsense }}\n")
    checked = desk.cli("templates", "check")
    assert checked.returncode != 0 and "broken.md" in checked.stdout + checked.stderr
