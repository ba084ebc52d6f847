"""Webhooks: ticket events POSTed, signed, to a real HTTP receiver — once, in order, retried.

A receiver (``http.server`` in a thread on 127.0.0.1, port 0) answers what each test
tells it to. Mail comes in through the real ingest, agents act through the functions
the CLI and the desk call, SLA breaches come from the due-work job; the deliveries
are sent by ``webhooks.deliver`` (what ``serve`` runs on its own thread, and
``mailgate outbox flush``). Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mailgate import __version__, intake, jobs, outbox, webhooks
from mailgate.admin import check
from mailgate.admin import tickets as admin
from mailgate.config import Config
from mailgate.context import Context
from mailgate.errors import ConfigError, UsageError
from mailgate.store import models as m
from tests import queued
from tests.conftest import open_gateway
from tests.support import compose, config_data, load_config, merge, wait_for, write_config

SECRET = "s3cret-for-the-receiver"
SECRET_ENV = "MAILGATE_TEST_WEBHOOK_SECRET"
MAIN_EVENTS = [
    "ticket.created",
    "message.received",
    "ticket.assigned",
    "ticket.status_changed",
    "sla.breached",
]


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def event(self) -> str:
        return str(self.json["event"])


class Receiver:
    """A real HTTP server: records every POST, answers from a script per path (else 200)."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.script: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    answers = receiver.script.get(self.path, [])
                    code = answers.pop(0) if answers else 200
                    receiver.posts.append(Post(self.path, dict(self.headers), body, code))
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "http://elsewhere.example/hook")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if p.path == path]

    def accepted(self, path: str) -> list[Post]:
        return [p for p in self.at(path) if 200 <= p.answered < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def hooked_config(
    tmp_path: Path, database_url: str, receiver: Receiver, extra: dict[str, Any] | None = None
) -> Path:
    """The test gateway with two hooks: /main (most events, secret from the environment)
    and /ratings (csat.rated only, secret from a file)."""
    secret_file = tmp_path / "ratings.secret"
    secret_file.write_text("another-secret\n")
    data = config_data(
        tmp_path,
        database_url,
        {
            "webhook": [
                {"url": receiver.url("/main"), "events": MAIN_EVENTS, "secret_env": SECRET_ENV},
                {
                    "url": receiver.url("/ratings"),
                    "events": ["csat.rated"],
                    "secret_file": str(secret_file),
                },
            ],
        },
    )
    merge(data, extra or {})
    return write_config(tmp_path / "mailgate.toml", data)


@pytest.fixture
def hooked(
    tmp_path: Path,
    database_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Context]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    marker = request.node.get_closest_marker("config")
    path = hooked_config(tmp_path, database_url, receiver, marker.args[0] if marker else None)
    yield open_gateway(load_config(path))
    from mailgate import store

    store.close()


def deliveries(**where: Any) -> list[m.OutboxItem]:
    query = m.OutboxItem.select().where(m.OutboxItem.notice == "webhook")
    for key, value in where.items():
        query = query.where(getattr(m.OutboxItem, key) == value)
    return list(query.order_by(m.OutboxItem.id))


def signed(post: Post, secret: str = SECRET) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), post.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(post.headers["X-Mailgate-Signature"], expected)


def due_now() -> None:
    """Time passes: every delivery waiting for its backoff is due."""
    m.OutboxItem.update(next_attempt_at=m.utcnow()).where(
        (m.OutboxItem.notice == "webhook") & (m.OutboxItem.status == "queued")
    ).execute()


def new_ticket(ctx: Context, **mail: Any) -> int:
    outcome = intake.ingest(ctx, compose(**mail), source="smtp")
    assert outcome.ticket is not None and outcome.action == "created", outcome
    return outcome.ticket


# --- a new mail, and what agents do ------------------------------------------------------------


def test_a_new_mail_is_told_as_created_and_received_signed_and_once(
    hooked: Context, receiver: Receiver
) -> None:
    number = new_ticket(hooked, subject="Card blocked")
    queued = deliveries()
    assert [(d.event, d.status, d.target) for d in queued] == [
        ("ticket.created", "queued", receiver.url("/main")),
        ("message.received", "queued", receiver.url("/main")),
    ]
    assert outbox.deliver(hooked.config).sent >= 1  # the mail sender: the notices only
    assert receiver.posts == [] and all(d.status == "queued" for d in deliveries())

    report = webhooks.deliver(hooked.config)
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    created, received = receiver.at("/main")
    assert [created.event, received.event] == ["ticket.created", "message.received"]
    for post in (created, received):
        assert signed(post)
        assert post.headers["Content-Type"] == "application/json"
        assert post.headers["User-Agent"] == f"mailgate/{__version__}"
        assert post.headers["X-Mailgate-Event"] == post.event
        assert post.headers["X-Mailgate-Delivery"] == post.json["id"]
    assert created.json["id"] != received.json["id"]
    assert [d.message_id for d in queued] == [created.json["id"], received.json["id"]]
    ticket = created.json["ticket"]
    assert ticket["number"] == number and ticket["subject"] == "Card blocked"
    assert (ticket["status"], ticket["priority"], ticket["team"]) == ("new", "normal", "level1")
    assert ticket["assignee"] is None and ticket["requester"] == "carla@customer.example"
    assert "url" not in ticket  # no desk configured: no page to link to
    assert ticket["created_at"].endswith("Z") and ticket["updated_at"].endswith("Z")
    assert created.json["actor"] == received.json["actor"]
    assert "carla@customer.example" in created.json["actor"]
    dt.datetime.fromisoformat(created.json["at"].removesuffix("Z"))
    message = received.json["message"]
    assert (message["kind"], message["direction"]) == ("customer", "in")
    assert message["from"] == "carla@customer.example" and message["from_name"] == "Carla Customer"
    assert "entire mobile online banking system is down" in message["text"]
    assert message["truncated"] is False and message["subject"] == "Card blocked"
    assert "message" not in created.json
    assert receiver.at("/ratings") == []  # subscribed to other events: nothing
    assert [d.status for d in deliveries()] == ["sent", "sent"]
    assert webhooks.deliver(hooked.config).sent == 0  # sent once
    assert len(receiver.posts) == 2


@pytest.mark.config({"web": {"public_url": "https://desk.example.org/helpdesk/"}})
def test_assign_and_status_changes_through_the_admin_functions_are_told_in_order(
    hooked: Context, receiver: Receiver
) -> None:
    number = new_ticket(hooked)
    admin.assign(hooked, number, "alice", "agent:carol")
    admin.set_status(hooked, number, "resolved", "agent:alice")
    admin.set_priority(hooked, number, "high", "agent:alice")  # not subscribed: no delivery
    with pytest.raises(UsageError):
        admin.set_status(hooked, number, "bogus", "agent:alice")  # rolled back: nothing told
    webhooks.deliver(hooked.config)
    posts = receiver.at("/main")
    assert [p.event for p in posts] == [
        "ticket.created",
        "message.received",
        "ticket.assigned",
        "ticket.status_changed",  # assigned to an agent: new → open
        "ticket.status_changed",
    ]
    assigned, opened, resolved = (p.json for p in posts[2:])
    assert assigned["change"] == {"from": None, "to": "alice"}
    assert assigned["ticket"]["assignee"] == "alice" and assigned["actor"] == "agent:carol"
    assert opened["change"] == {"from": "new", "to": "open"}
    assert resolved["change"] == {"from": "open", "to": "resolved"}
    assert resolved["ticket"]["status"] == "resolved" and resolved["actor"] == "agent:alice"
    assert resolved["ticket"]["url"] == f"https://desk.example.org/helpdesk/tickets/{number}"
    assert len({p.json["id"] for p in posts}) == 5 and all(signed(p) for p in posts)
    assert len(deliveries()) == 5


SLA = {
    "route": [{"name": "vip", "sender": ["bigcorp.example"], "priority": "emergency"}],
    "sla": [
        {"key": "severity-a", "name": "Severity A", "priorities": ["emergency"],
         "resolution": "1h"},
    ],
}  # fmt: skip


@pytest.mark.config(SLA)
def test_an_sla_breach_from_the_due_work_is_told_with_its_due_time(
    hooked: Context, receiver: Receiver
) -> None:
    number = new_ticket(hooked, sender="Ops <ops@bigcorp.example>", subject="Outage")
    created = m.Ticket.get(m.Ticket.number == number).created_at
    assert jobs.run(hooked, at=created + dt.timedelta(minutes=30)).done == []
    done = jobs.run(hooked, at=created + dt.timedelta(minutes=61)).done
    assert [d.kind for d in done][-1] == "sla_breach"  # (the warning came too late to warn)
    webhooks.deliver(hooked.config)
    assert "sla.warning" not in [p.event for p in receiver.posts]  # not subscribed
    (breach,) = [p for p in receiver.at("/main") if p.event == "sla.breached"]
    body = breach.json
    assert body["sla"]["clock"] == "resolution" and body["actor"] == "system:sla"
    assert body["ticket"]["number"] == number and body["ticket"]["priority"] == "emergency"
    due = dt.datetime.fromisoformat(body["at"].removesuffix("Z"))
    assert abs(due - (created + dt.timedelta(hours=1))) <= dt.timedelta(seconds=2)
    assert signed(breach)
    assert jobs.run(hooked, at=created + dt.timedelta(hours=3)).done == []
    assert len(deliveries(event="sla.breached")) == 1


def test_a_rating_goes_to_the_hook_that_wants_it_signed_with_its_file_secret(
    hooked: Context, receiver: Receiver
) -> None:
    import email
    import email.policy
    import re

    number = new_ticket(hooked)
    admin.set_status(hooked, number, "resolved", "agent:alice")
    (resolution,) = m.OutboxItem.select().where(m.OutboxItem.notice == "resolution")
    parsed = email.message_from_bytes(queued.mail(resolution), policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    good = re.search(r"Good: mailto:(\S+?)\?subject=", text)
    assert good is not None
    rating = compose(to=good.group(1), subject="Rating: good", body="Quick, thanks!\n")
    assert intake.ingest(hooked, rating, source="smtp").action == "rated"
    webhooks.deliver(hooked.config)
    (rated,) = receiver.at("/ratings")
    assert rated.event == "csat.rated" and rated.json["ticket"]["number"] == number
    assert rated.json["rating"] == {"score": "good", "comment": "Quick, thanks!"}
    assert signed(rated, "another-secret") and not signed(rated)
    main = [p.event for p in receiver.at("/main")]  # the rating is no message.received
    assert main == ["ticket.created", "message.received", "ticket.status_changed"]


def test_every_other_change_is_told_to_a_hook_that_wants_every_event(
    tmp_path: Path, database_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    data = config_data(
        tmp_path,
        database_url,
        {"webhook": [{"url": receiver.url("/all"), "events": list(webhooks.WEBHOOK_EVENTS),
                      "secret_env": SECRET_ENV}]},
    )  # fmt: skip
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    first, second = new_ticket(ctx), new_ticket(ctx, subject="Same again")
    admin.reply(ctx, first, "alice", "We are on it.")
    admin.set_priority(ctx, first, "high", "agent:alice")
    admin.set_team(ctx, first, "sysadmins", "agent:alice")
    admin.merge(ctx, second, first, "agent:alice")
    webhooks.deliver(ctx.config)
    told = [(p.event, p.json["ticket"]["number"], p.json.get("change")) for p in receiver.posts]
    assert told[:4] == [
        ("ticket.created", first, None),
        ("message.received", first, None),
        ("ticket.created", second, None),
        ("message.received", second, None),
    ]
    later = [t for t in told[4:] if t[0] != "ticket.assigned"]  # sysadmins assign by themselves
    assert later == [
        ("ticket.status_changed", first, {"from": "new", "to": "open"}),  # answered
        ("message.sent", first, None),
        ("ticket.priority_changed", first, {"from": "normal", "to": "high"}),
        ("ticket.team_changed", first, {"from": "level1", "to": "sysadmins"}),
        ("ticket.merged", second, {"from": "new", "to": f"into #{first}"}),
        ("ticket.merged", first, {"from": None, "to": f"from #{second}"}),
    ]
    (sent,) = [p.json for p in receiver.posts if p.event == "message.sent"]
    assert sent["message"]["kind"] == "agent" and "We are on it." in sent["message"]["text"]
    assert sent["actor"] == "agent:alice"
    from mailgate import store

    store.close()


# --- retries, failures, order -----------------------------------------------------------------


def test_a_500_then_200_is_delivered_once_after_the_retry_with_the_same_id_and_in_order(
    hooked: Context, receiver: Receiver
) -> None:
    receiver.script["/main"] = [500]
    new_ticket(hooked)
    report = webhooks.deliver(hooked.config)
    assert (report.sent, report.retried) == (0, 1)
    (first,) = receiver.at("/main")  # message.received waits behind ticket.created
    assert first.event == "ticket.created" and first.answered == 500
    waiting, behind = deliveries()
    assert (waiting.status, waiting.attempts, waiting.last_error) == (
        "queued",
        1,
        "HTTP 500 Internal Server Error",
    )
    assert waiting.next_attempt_at > m.utcnow() + dt.timedelta(seconds=20)  # the backoff
    assert behind.status == "queued" and behind.attempts == 0
    assert webhooks.deliver(hooked.config).sent == 0  # not due yet: the next one waits too
    assert len(receiver.at("/main")) == 1

    due_now()
    assert webhooks.deliver(hooked.config).sent == 2
    posts = receiver.at("/main")
    assert [(p.event, p.answered) for p in posts] == [
        ("ticket.created", 500),
        ("ticket.created", 200),
        ("message.received", 200),
    ]
    assert posts[0].body == posts[1].body  # the same bytes, the same delivery id
    assert posts[0].headers["X-Mailgate-Delivery"] == posts[1].headers["X-Mailgate-Delivery"]
    assert len(receiver.accepted("/main")) == 2
    assert [(d.status, d.attempts) for d in deliveries()] == [("sent", 2), ("sent", 1)]


def test_a_404_fails_shows_in_outbox_list_and_retry_sends_it_again(
    hooked: Context, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script["/main"] = [404]
    new_ticket(hooked)
    report = webhooks.deliver(hooked.config)
    assert (report.sent, report.failed) == (1, 1)  # a failed one does not hold the next back
    failed, sent = deliveries()
    assert (failed.status, failed.last_error) == ("failed", "HTTP 404 Not Found")
    assert sent.status == "sent"

    cli = [sys.executable, "-m", "mailgate", "--config", str(tmp_path / "mailgate.toml")]
    listed = subprocess.run(
        [*cli, "outbox", "list", "--json", "--status", "failed"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["notice"], row["event"], row["url"]) == (
        "webhook",
        "ticket.created",
        receiver.url("/main"),
    )
    assert row["status"] == "failed" and row["last_error"] == "HTTP 404 Not Found"
    assert row["recipients"] == [receiver.url("/main")] and row["ticket"] is not None
    table = subprocess.run(
        [*cli, "outbox", "list"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "webhook ticket.created" in table and receiver.url("/main") in table
    # status tells the failed delivery apart from mail: the acknowledgement still waits
    status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, timeout=60)
    data = json.loads(status.stdout)
    assert data["webhooks"]["failed"] == 1 and data["outbox"]["failed"] == 0
    assert data["outbox"]["queued"] == m.OutboxItem.select().where(
        m.OutboxItem.notice != "webhook", m.OutboxItem.status == "queued"
    ).count()
    text = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=60)
    assert "outbox: 1 webhook delivery(ies) failed" in text.stderr
    assert "mail(s) failed" not in text.stderr
    assert "webhooks   0 queued, 1 failed, 0 uncertain" in text.stdout

    again = subprocess.run(
        [*cli, "outbox", "retry", str(row["id"])], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    flushed = subprocess.run(
        [*cli, "outbox", "flush"],
        capture_output=True, text=True, timeout=60, env={**_env(), SECRET_ENV: SECRET},
    )  # fmt: skip
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert [p.answered for p in receiver.at("/main") if p.event == "ticket.created"] == [404, 200]
    assert deliveries()[0].status == "sent"


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_a_redirect_is_not_followed_and_fails(hooked: Context, receiver: Receiver) -> None:
    receiver.script["/main"] = [302]
    new_ticket(hooked)
    webhooks.deliver(hooked.config)
    first = deliveries()[0]
    assert first.status == "failed"
    assert first.last_error == (
        "HTTP 302 Found: redirects are not followed (http://elsewhere.example/hook)"
    )
    assert [p.answered for p in receiver.at("/main")] == [302, 200]  # nobody went elsewhere


def test_a_refused_connection_is_retried_and_never_holds_up_the_mail(
    tmp_path: Path, database_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv(SECRET_ENV, SECRET)
    data = config_data(
        tmp_path,
        database_url,
        {
            "webhook": [
                {"url": f"http://127.0.0.1:{closed}/hook", "events": ["ticket.created"],
                 "secret_env": SECRET_ENV},
                {"url": receiver.url("/main"), "events": ["ticket.created"],
                 "secret_env": SECRET_ENV},
            ],
        },
    )  # fmt: skip
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    new_ticket(ctx)
    report = webhooks.deliver(ctx.config)
    assert (report.sent, report.retried, report.failed) == (1, 1, 0)  # the other hook got it
    refused = deliveries(target=f"http://127.0.0.1:{closed}/hook")[0]
    assert refused.status == "queued" and refused.last_error.startswith("cannot connect:")
    assert "refused" in refused.last_error.lower()
    assert len(receiver.accepted("/main")) == 1
    mail = outbox.deliver(ctx.config)  # the acknowledgement leaves, the breaker untouched
    assert mail.sent >= 1 and mail.failed == 0
    assert m.OutboxItem.get(m.OutboxItem.notice == "acknowledgement").status == "sent"


def test_an_unset_secret_defers_the_delivery_and_fails_check(
    hooked: Context, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    (main, ratings) = [c for c in check.checks(hooked.config) if c.name.startswith("webhook ")]
    assert main.ok and ratings.ok
    monkeypatch.delenv(SECRET_ENV)
    Path(hooked.config.webhooks[1].secret_file).unlink()
    (main, ratings) = [c for c in check.checks(hooked.config) if c.name.startswith("webhook ")]
    assert not main.ok and not ratings.ok
    assert main.detail.startswith(f"webhook[0].secret_env: environment variable {SECRET_ENV}")
    assert "not set" in main.detail and str(hooked.config.path) in main.detail
    assert ratings.detail.startswith("webhook[1].secret_file: cannot read")
    new_ticket(hooked)
    assert webhooks.deliver(hooked.config).retried == 1
    assert receiver.posts == []
    waiting = deliveries()[0]
    assert waiting.status == "queued" and SECRET_ENV in waiting.last_error
    monkeypatch.setenv(SECRET_ENV, SECRET)
    due_now()
    assert webhooks.deliver(hooked.config).sent == 2 and all(map(signed, receiver.posts))


def test_a_delivery_left_sending_by_a_stopped_sender_is_sent_again_with_its_id(
    hooked: Context, receiver: Receiver
) -> None:
    new_ticket(hooked)
    first = deliveries()[0]
    m.OutboxItem.update(status="sending", attempts=1, next_attempt_at=m.utcnow()).where(
        m.OutboxItem.id == first.id
    ).execute()
    assert webhooks.deliver(hooked.config).sent == 2
    assert receiver.at("/main")[0].json["id"] == first.message_id
    assert deliveries()[0].last_error == ""


def test_serve_delivers_webhooks_on_their_own_thread(
    tmp_path: Path,
    database_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    serve_in_thread: Any,
) -> None:
    import smtplib

    monkeypatch.setenv(SECRET_ENV, SECRET)
    path = hooked_config(tmp_path, database_url, receiver, {"listener": {"port": 0}})
    ctx = open_gateway(load_config(path))
    running = serve_in_thread(ctx, imap=False)
    server = running.gateway.server
    assert server is not None
    port = int(server.sockets[0].getsockname()[1])
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("carla@customer.example", ["support@example.org"], compose())
    posts = wait_for(lambda: len(receiver.at("/main")) >= 2 and receiver.at("/main"))
    assert [p.event for p in posts] == ["ticket.created", "message.received"]
    assert all(map(signed, posts))


# --- the config ---------------------------------------------------------------------------------


def _load(tmp_path: Path, hooks: list[dict[str, Any]], **extra: Any) -> Config:
    data = config_data(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {"webhook": hooks, **extra})
    return load_config(write_config(tmp_path / "mailgate.toml", data))


GOOD = {"url": "https://hooks.example.org/mailgate", "events": ["ticket.created"],
        "secret_env": "X"}  # fmt: skip


@pytest.mark.parametrize(
    ("hook", "says"),
    [
        ({"url": "ftp://hooks.example.org/x"}, "webhook[0].url: an http:// or https:// URL"),
        ({"url": "https:///nohost"}, "webhook[0].url: an http:// or https:// URL"),
        ({"url": "hooks.example.org/x"}, "webhook[0].url: an http:// or https:// URL"),
        ({"url": "https://hooks.example.org/x "}, "webhook[0].url: an http:// or https:// URL"),
        ({"url": "https://u:p@hooks.example.org/"}, "webhook[0].url: no credentials"),
        ({"url": "https://hooks.example.org:http/"}, "webhook[0].url: "),
        ({"events": ["ticket.exploded"]}, "webhook[0].events[0]: unknown event 'ticket.exploded'"),
        ({"events": []}, "webhook[0].events: name at least one event"),
        ({"secret_env": ""}, "webhook[0].secret_env: name the signing secret with exactly one"),
        ({"secret_file": "/etc/x"}, "webhook[0].secret_env: name the signing secret with exactly"),
        ({"secret": "hunter2"}, "webhook[0].secret: secrets do not belong in the config file"),
        ({"headers": "x"}, "webhook[0].headers: unknown key"),
    ],
)
def test_a_bad_webhook_is_one_line_naming_key_and_file(
    tmp_path: Path, hook: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, [{**GOOD, **hook}])
    line = str(caught.value)
    assert line.startswith(says) and "\n" not in line
    assert line.endswith(f"(in {tmp_path / 'mailgate.toml'})")
    assert "hunter2" not in line


def test_one_hook_per_url_and_a_good_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^webhook\[1\]\.url: the same URL as webhook\[0\]"):
        _load(tmp_path, [GOOD, GOOD])
    relative = {**GOOD, "secret_env": "", "secret_file": "hook.secret"}
    config = _load(tmp_path, [relative, {**GOOD, "url": "http://127.0.0.1:9000/"}])
    assert config.webhooks[0].secret_file == str(tmp_path / "hook.secret")  # next to the config
    assert config.webhooks[1].events == ("ticket.created",)


def test_the_example_configs_webhook_block_is_accurate(tmp_path: Path) -> None:
    """The commented [[webhook]] at the end of config/mailgate.toml, uncommented, loads."""
    import tomllib

    example = Path(__file__).resolve().parents[1] / "config" / "mailgate.toml"
    text = example.read_text()
    block = text[text.index("# [[webhook]]") :]
    lines = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# ")]
    toml = "\n".join(line for line in lines if line.startswith(("[[", "url ", "events ", "secret")))
    (hook,) = tomllib.loads(toml)["webhook"]
    assert set(hook) == {"url", "events", "secret_env"}
    config = _load(tmp_path, [hook])
    assert config.webhooks[0].events == tuple(hook["events"])
    for name in webhooks.WEBHOOK_EVENTS:  # the comment names every event
        assert name in block
