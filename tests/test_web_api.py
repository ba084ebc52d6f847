"""The JSON API: bearer tokens, who sees what, and every change through the same core.

Starlette's TestClient over ``create_app(ctx)`` on SQLite and on the real
PostgreSQL; tokens from ``mailgate agents token KEY`` (``mailgate.cli.main``);
mail arrives through ``intake.ingest`` as the listener hands it over, and what
the customer gets is read from the outbox.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from mailgate import intake
from mailgate.admin import apitokens, tickets
from mailgate.cli import main
from mailgate.context import Context
from mailgate.store import models as m
from mailgate.web import create_app
from tests import queued
from tests.support import compose, reply_to

API = "/api/v1"


def token(ctx: Context, agent: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {apitokens.issue(ctx.config, agent)}"}


def customer_ticket(ctx: Context, **mail: Any) -> int:
    outcome = intake.ingest(ctx, compose(**mail), source="smtp")
    assert outcome.action == "created" and outcome.ticket is not None, outcome
    return int(outcome.ticket)


def outbox(number: int) -> list[tuple[str, tuple[str, ...]]]:
    """(notice, recipients) of every mail queued for ticket ``number``, in order."""
    ticket = m.Ticket.get(m.Ticket.number == number)
    items = m.OutboxItem.select().where(m.OutboxItem.ticket == ticket.id).order_by(m.OutboxItem.id)
    return [(i.notice, tuple(i.recipients)) for i in items]


def events(ctx: Context, number: int) -> list[tuple[str, str, str, str]]:
    found = tickets.detail(ctx.config, number)["events"]
    return [(e["kind"], e["actor"], e["old"], e["new"]) for e in found]


def is_error(response: Any, status: int) -> str:
    """The one-sentence JSON error of ``response``, which must have ``status``."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"], body
    assert "Traceback" not in response.text
    return str(body["error"])


@pytest.fixture
def client(ctx: Context) -> TestClient:
    return TestClient(create_app(ctx))


@pytest.fixture
def queue(ctx: Context) -> dict[str, int]:
    """A ticket of team level1 (Alice, Bob), one of online-banking (Bob, Carol; round robin
    gives it to Bob), and a level1 ticket assigned to Jane (of sysadmins only)."""
    found = {
        "level1": customer_ticket(ctx, subject="Card terminal broken", body="The card terminal."),
        "banking": customer_ticket(
            ctx, to="banking@example.org", subject="Card login", body="My card login fails."
        ),
        "jane": customer_ticket(ctx, subject="Server card", body="The card reader server."),
    }
    tickets.set_team(ctx, found["jane"], "sysadmins", "admin:cli")
    tickets.assign(ctx, found["jane"], "jane", "admin:cli")
    return found


def listed(client: TestClient, headers: dict[str, str], query: str = "") -> set[int]:
    response = client.get(f"{API}/tickets{query}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["tickets"]) and body["exact"] is True
    return {row["number"] for row in body["tickets"]}


def test_agents_token_prints_one_line_that_works_and_is_kept_hashed(
    ctx: Context, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(ctx.config.path)]
    assert main([*config, "agents", "token", "alice"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.endswith("\n") and len(out.splitlines()) == 1
    secret = out.strip()
    assert secret.startswith("mg_") and len(secret) >= 40
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"{API}/tickets", headers=bearer).status_code == 200
    (row,) = m.ApiToken.select()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert row.last_used_at is not None and row.revoked_at is None
    assert main([*config, "agents", "tokens", "alice", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert shown["id"] == row.id and shown["last_used_at"] and secret not in json.dumps(shown)
    # An unknown agent: one line, exit 1, no token.
    assert main([*config, "agents", "token", "nobody"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "no agent 'nobody'" in err
    assert m.ApiToken.select().count() == 1
    # Revoked: refused from then on.
    assert main([*config, "agents", "token", "alice", "--revoke", str(row.id)]) == 0
    assert capsys.readouterr().out.strip() == "revoked 1 token of alice"
    is_error(client.get(f"{API}/tickets", headers=bearer), 401)
    assert main([*config, "agents", "token", "alice", "--revoke", "all"]) == 1
    assert "no active tokens" in capsys.readouterr().err


def test_an_agent_removed_from_the_config_and_added_back_has_no_token_or_session_left(
    ctx: Context, client: TestClient
) -> None:
    from mailgate.admin import database
    from tests.webdesk import client_for, login

    bobs_token = token(ctx, "bob")
    alices_token = token(ctx, "alice")
    desk = client_for(ctx)
    login(desk, "bob")
    assert client.get(f"{API}/tickets", headers=bobs_token).status_code == 200
    without_bob = dataclasses.replace(
        ctx.config, agents=tuple(a for a in ctx.config.agents if a.key != "bob")
    )
    database.sync_directory(without_bob)  # serve's reload (SIGHUP) or `db upgrade` does this
    database.sync_directory(ctx.config)  # … and bob comes back: a new start, not the old keys
    is_error(client.get(f"{API}/tickets", headers=bobs_token), 401)
    assert desk.get("/login").status_code == 200  # the old session ended: the login page
    assert client.get(f"{API}/tickets", headers=alices_token).status_code == 200
    assert [t["revoked_at"] is not None for t in apitokens.listing(ctx.config, "bob")] == [True]
    # A token used while its agent is missing from the config dies there and then.
    carols = token(ctx, "carol")
    client.app.state.ctx = dataclasses.replace(  # type: ignore[attr-defined]
        ctx, config=dataclasses.replace(
            ctx.config, agents=tuple(a for a in ctx.config.agents if a.key != "carol")
        )
    )
    is_error(client.get(f"{API}/tickets", headers=carols), 401)
    client.app.state.ctx = ctx  # type: ignore[attr-defined]
    is_error(client.get(f"{API}/tickets", headers=carols), 401)


class LoggedIn:
    """The session contract of ``web.session``: a logged-in admin on ``request.state``."""

    def __init__(self, app: ASGIApp, agent: Any) -> None:
        self.app, self.agent = app, agent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["agent"] = self.agent
        await self.app(scope, receive, send)


def test_without_a_valid_token_every_call_is_401(
    ctx: Context, client: TestClient, queue: dict[str, int]
) -> None:
    number = queue["level1"]
    calls = [
        ("GET", f"{API}/tickets", None),
        ("GET", f"{API}/tickets/{number}", None),
        (
            "POST",
            f"{API}/tickets",
            {"requester": "x@customer.example", "subject": "s", "text": "t"},
        ),
        ("POST", f"{API}/tickets/{number}/reply", {"text": "Hello"}),
        ("POST", f"{API}/tickets/{number}/note", {"text": "Hello"}),
        ("PATCH", f"{API}/tickets/{number}", {"status": "closed"}),
    ]
    before = (events(ctx, number), outbox(number), m.Ticket.select().count())
    alice = token(ctx, "alice")["Authorization"]
    gone = dataclasses.replace(
        ctx,
        config=dataclasses.replace(
            ctx.config, agents=tuple(a for a in ctx.config.agents if a.key != "alice")
        ),
    )
    removed = TestClient(create_app(gone))
    carol = ctx.config.agent("carol")
    with_session = TestClient(LoggedIn(create_app(ctx), carol))
    with_session.cookies.set("session", "a-session-cookie")
    for method, path, body in calls:
        for headers in (
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer mg_not-a-token"},
            {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
            {"Authorization": alice.replace("Bearer mg_", "Bearer mg_x")},
        ):
            answer = client.request(method, path, json=body, headers=headers)
            assert is_error(answer, 401), (method, path, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
        # An agent removed from the config: its token is refused.
        answer = removed.request(method, path, json=body, headers={"Authorization": alice})
        assert "no longer configured" in is_error(answer, 401)
        # A session (a browser's cookie) never authenticates the API.
        answer = with_session.request(method, path, json=body)
        assert "Authorization: Bearer" in is_error(answer, 401)
    assert (events(ctx, number), outbox(number), m.Ticket.select().count()) == before
    # Used while alice was not configured, her token died: back in the config, it stays dead.
    is_error(client.get(f"{API}/tickets", headers={"Authorization": alice}), 401)


def test_an_agent_sees_and_acts_on_tickets_of_their_teams_and_their_own_only(
    ctx: Context, client: TestClient, queue: dict[str, int]
) -> None:
    alice, jane, carol = token(ctx, "alice"), token(ctx, "jane"), token(ctx, "carol")
    level1, banking, janes = queue["level1"], queue["banking"], queue["jane"]
    assert listed(client, alice) == {level1}
    assert listed(client, jane) == {janes}
    assert listed(client, carol) == {level1, banking, janes}  # an admin sees everything
    assert listed(client, alice, "?q=card") == {level1}
    assert listed(client, jane, "?q=card") == {janes}
    assert listed(client, carol, "?q=card&sort=created") == {level1, banking, janes}
    assert listed(client, alice, "?team=online-banking") == set()
    assert client.get(f"{API}/tickets/{level1}", headers=alice).status_code == 200
    # Another team's ticket is answered exactly as one that does not exist.
    missing = 999_999_999 if banking != 999_999_999 else 999_999_998
    before = (events(ctx, banking), outbox(banking))
    for path_of, method, body in (
        (lambda n: f"{API}/tickets/{n}", "GET", None),
        (lambda n: f"{API}/tickets/{n}", "PATCH", {"status": "closed", "assignee": "alice"}),
        (lambda n: f"{API}/tickets/{n}/reply", "POST", {"text": "Hello from Alice"}),
        (lambda n: f"{API}/tickets/{n}/note", "POST", {"text": "A note"}),
    ):
        hidden = client.request(method, path_of(banking), json=body, headers=alice)
        absent = client.request(method, path_of(missing), json=body, headers=alice)
        assert is_error(hidden, 404) == f"no ticket #{banking}", (method, hidden.text)
        assert is_error(absent, 404) == f"no ticket #{missing}"
        assert hidden.headers.keys() == absent.headers.keys()
        assert client.request(method, path_of(banking), json=body, headers=jane).status_code == 404
    assert (events(ctx, banking), outbox(banking)) == before
    # Jane sees the ticket assigned to her, though it is not of her team... and Carol all.
    assert client.get(f"{API}/tickets/{janes}", headers=jane).status_code == 200
    assert client.get(f"{API}/tickets/{banking}", headers=carol).status_code == 200
    # Once assigned to Alice, she sees it too.
    tickets.assign(ctx, banking, "alice", "admin:cli")
    assert client.get(f"{API}/tickets/{banking}", headers=alice).status_code == 200
    assert listed(client, alice) == {level1, banking}
    assert listed(client, alice, "?assignee=me") == {banking}


def test_show_is_tickets_show_json_and_lists_filter_sort_and_page(
    ctx: Context, client: TestClient, queue: dict[str, int]
) -> None:
    carol = token(ctx, "carol")
    number = queue["level1"]
    shown = client.get(f"{API}/tickets/{number}", headers=carol).json()
    assert shown == json.loads(json.dumps(tickets.detail(ctx.config, number)))
    assert shown["messages"][0]["text"].startswith("The card terminal")
    page = client.get(f"{API}/tickets?sort=created&limit=2", headers=carol).json()
    assert [t["number"] for t in page["tickets"]] == [queue["level1"], queue["banking"]]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    rest = client.get(f"{API}/tickets?sort=created&limit=2&offset=2", headers=carol).json()
    assert [t["number"] for t in rest["tickets"]] == [queue["jane"]]
    assert listed(client, carol, "?team=sysadmins&assignee=jane") == {queue["jane"]}
    assert listed(client, carol, "?q=%22login%20fails%22") == {queue["banking"]}
    assert listed(client, carol, f"?q=%23{queue['jane']}") == {queue["jane"]}
    # Mistakes: one sentence naming the parameter, never a traceback.
    for query, says in (
        ("?status=bogus", "status: unknown value 'bogus'"),
        ("?limit=0", "limit: from 1 to 500"),
        ("?limit=501", "limit: from 1 to 500"),
        ("?offset=-1", "offset: give a number of at least 0"),
        ("?limit=x", "limit: give a whole number"),
        ("?sort=size", "sort: unknown field"),
        ("?team=nope", "team: no such team 'nope'"),
        ("?colour=red", "unknown parameter 'colour'"),
        ("?breached=maybe", "breached: give true or false"),
        ("?created_after=yesterday-ish", "created_after:"),
    ):
        assert says in is_error(client.get(f"{API}/tickets{query}", headers=carol), 400), query


def test_create_queues_for_the_customer_exactly_what_tickets_create_does(
    ctx: Context, client: TestClient
) -> None:
    jane = token(ctx, "jane")
    body = {
        "requester": "carla@customer.example",
        "subject": "Your new card",
        "text": "Dear Carla,\n\nyour new card left today.\n\nJane",
        "priority": "high",
    }
    answer = client.post(f"{API}/tickets", json=body, headers=jane)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    number = created["number"]
    assert answer.headers["location"] == f"{API}/tickets/{number}" == created["url"]
    assert created["tag"] == f"[EB#{number}]"
    by_cli = tickets.create(
        ctx,
        requester="carla@customer.example",
        subject="Your new card",
        text="Dear Carla,\n\nyour new card left today.\n\nJane",
        agent_key="jane",
        priority="high",
    )
    assert outbox(number) == outbox(by_cli)
    assert ("agent_reply", ("carla@customer.example",)) in outbox(number)
    assert events(ctx, number) == events(ctx, by_cli)
    shown = client.get(answer.headers["location"], headers=jane).json()
    assert (shown["assignee"], shown["priority"], shown["status"]) == ("jane", "high", "open")
    # Mistakes: 400 for the shape of the body, 422 for what the gateway refuses.
    count = m.Ticket.select().count()
    for bad, status, says in (
        ({**body, "requester": "not-an-address"}, 422, "is not a mail address"),
        ({**body, "team": "nope"}, 422, "no team 'nope'"),
        ({**body, "priority": "urgent"}, 422, "priority: one of"),
        ({**body, "text": " "}, 422, "the message is empty"),
        ({**body, "colour": "red"}, 400, "unknown field 'colour'"),
        ({**body, "subject": 5}, 400, "'subject' must be a string"),
        ({"subject": "x", "text": "y"}, 400, "'requester' is required"),
    ):
        assert says in is_error(client.post(f"{API}/tickets", json=bad, headers=jane), status)
    for raw in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"):
        said = is_error(client.post(f"{API}/tickets", content=raw, headers=jane), 400)
        assert said.startswith(("the body is not valid JSON", "the body must be a JSON object"))
    assert m.Ticket.select().count() == count


def test_reply_mails_the_customer_and_note_stays_internal(
    ctx: Context, client: TestClient, queue: dict[str, int]
) -> None:
    alice = token(ctx, "alice")
    number = queue["level1"]
    before = outbox(number)
    answer = client.post(
        f"{API}/tickets/{number}/reply", json={"text": "Hi, on it."}, headers=alice
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"number": number, "tag": f"[EB#{number}]", "result": "reply queued"}
    new = outbox(number)[len(before) :]
    assert ("agent_reply", ("carla@customer.example",)) in new
    item = m.OutboxItem.select().where(m.OutboxItem.notice == "agent_reply").get()
    assert b"Hi, on it." in queued.mail(item) and b"Alice Smith" in queued.mail(item)
    shown = tickets.detail(ctx.config, number)
    assert shown["messages"][-1]["kind"] == "agent"
    assert shown["messages"][-1]["text"].startswith("Hi, on it.")
    sent = len(outbox(number))
    answer = client.post(f"{API}/tickets/{number}/note", json={"text": "Internal."}, headers=alice)
    assert answer.status_code == 200, answer.text
    customer = [n for n, to in outbox(number)[sent:] if "carla@customer.example" in to]
    assert customer == []
    notes = [x for x in tickets.detail(ctx.config, number)["messages"] if x["kind"] == "note"]
    assert [x["text"] for x in notes] == ["Internal."]
    says = is_error(
        client.post(f"{API}/tickets/{number}/reply", json={"text": ""}, headers=alice), 422
    )
    assert says == "the reply is empty"
    assert "'text' is required" in is_error(
        client.post(f"{API}/tickets/{number}/note", json={}, headers=alice), 400
    )


def test_patch_leaves_the_events_an_agents_mail_commands_leave(
    ctx: Context, client: TestClient
) -> None:
    by_mail = customer_ticket(ctx, subject="First", body="Help one.")
    by_api = customer_ticket(ctx, subject="Second", body="Help two.")
    notice = next(
        queued.mail(i)
        for i in m.OutboxItem.select().order_by(m.OutboxItem.id)
        if "alice@example.org" in i.recipients and f"{by_mail}".encode() in queued.mail(i)
    )
    commands = "#priority high\n#assign bob\n#status pending\n\nWaiting for your answer."
    outcome = intake.ingest(
        ctx, reply_to(notice, sender="alice@example.org", body=commands), source="smtp"
    )
    assert outcome.action == "appended", outcome
    alice = token(ctx, "alice")
    answer = client.patch(
        f"{API}/tickets/{by_api}",
        json={"priority": "high", "assignee": "bob", "status": "pending"},
        headers=alice,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] == {"assignee": True, "priority": True, "status": True}
    assert answer.json()["ticket"]["status"] == "pending"

    def changes(number: int) -> set[tuple[str, str, str, str]]:
        return {e for e in events(ctx, number) if e[0] in ("priority", "assignee", "status")}

    assert ("assignee", "agent:alice", "", "bob") in changes(by_api)
    assert ("priority", "agent:alice", "normal", "high") in changes(by_api)
    assert {e for e in changes(by_mail) if e[0] != "status"} <= changes(by_api)
    assert ("status", "agent:alice", "pending") in {e[:2] + e[3:] for e in changes(by_mail)}
    assert ("status", "agent:alice", "pending") in {e[:2] + e[3:] for e in changes(by_api)}
    # Bob hears of the assignment either way.
    for number in (by_mail, by_api):
        assert ("assignment", ("bob@example.org",)) in outbox(number)
    # The team, then unassigned; nothing to change is a 400, unknown values 422.
    answer = client.patch(
        f"{API}/tickets/{by_api}", json={"team": "sysadmins", "assignee": None}, headers=alice
    )
    assert answer.status_code == 200, answer.text
    assert ("team", "agent:alice", "level1", "sysadmins") in events(ctx, by_api)
    assert tickets.detail(ctx.config, by_api)["assignee"] is None
    carol = token(ctx, "carol")  # Alice no longer sees it: another team, not hers
    assert (
        client.patch(f"{API}/tickets/{by_api}", json={"status": "open"}, headers=alice).status_code
        == 404
    )
    before = events(ctx, by_api)
    for bad, status, says in (
        ({}, 400, "nothing to change"),
        ({"status": "done"}, 422, "status: one of"),
        ({"priority": "high", "team": "nope"}, 422, "team: no team 'nope'"),
        ({"assignee": "nobody", "status": "open"}, 422, "assignee: no agent 'nobody'"),
        ({"subject": "x"}, 400, "unknown field 'subject'"),
        ({"status": None}, 400, "'status' needs a value"),
    ):
        said = is_error(client.patch(f"{API}/tickets/{by_api}", json=bad, headers=carol), status)
        assert says in said, (bad, said)
    assert events(ctx, by_api) == before  # a refused PATCH changed nothing, not even half


def test_the_openapi_document_describes_every_route(client: TestClient) -> None:
    from mailgate.web import api

    answer = client.get(f"{API}/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    document = json.loads(answer.text)
    assert document["openapi"].startswith("3.1") and document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    routes = {
        (route.path.replace("{number:int}", "{number}"), method)
        for route in api.routes
        for method in (route.methods or ()) - {"HEAD"}  # type: ignore[attr-defined]
    }
    assert routes and routes == described

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]


def test_unknown_api_paths_and_methods_answer_json(ctx: Context, client: TestClient) -> None:
    alice = token(ctx, "alice")
    assert is_error(client.get(f"{API}/nothing", headers=alice), 404)
    assert is_error(client.delete(f"{API}/tickets", headers=alice), 405)


def test_the_desk_answers_without_waiting_for_delayed_acks() -> None:
    """Found by bench/web_api.py: every keep-alive request took 40 ms more without NODELAY."""
    import socket

    from mailgate.web.server import bind

    listening = bind("127.0.0.1:0", "mailgate.toml")
    listening.setblocking(True)
    try:
        with socket.create_connection(listening.getsockname()[:2]):
            accepted, _ = listening.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        listening.close()
