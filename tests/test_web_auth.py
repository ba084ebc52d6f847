"""Logging in to the web desk: passwords, sessions, logout, CSRF (issue 15)."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from mailgate.admin import logins
from mailgate.context import Context
from mailgate.store import models as m
from mailgate.store import weblogins
from mailgate.web.cookies import COOKIE
from tests.webdesk import client_for, csrf, form_csrf, login


def logged_in(client: TestClient) -> bool:
    """The login page sends a logged-in agent on to the queue."""
    return client.get("/login").status_code == 303


def try_login(client: TestClient, account: str, password: str) -> object:
    page = client.get("/login")
    return client.post(
        "/login", data={"account": account, "password": password, "csrf": form_csrf(page.text)}
    )


def test_an_agent_logs_in_with_key_or_address_and_the_cookie_is_safe(
    ctx: Context, web_client: TestClient
) -> None:
    assert not logged_in(web_client)
    logins.set_password(ctx.config, "alice", "correct horse")
    answer = try_login(web_client, "alice@EXAMPLE.org", "correct horse")
    assert answer.status_code == 303 and answer.headers["location"] == "/"  # type: ignore[attr-defined]
    cookie = answer.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert client_for(ctx).get("/login").headers["cache-control"] == "no-store"
    assert web_client.get("/nowhere").headers["cache-control"] == "no-store"
    assert "no-store" not in web_client.get("/static/desk.css").headers.get("cache-control", "")
    assert logged_in(web_client)
    # Only the SHA-256 of the session id is stored.
    token = web_client.cookies[COOKIE].strip('"').rpartition(".")[0]
    assert weblogins.session(token) is None
    assert weblogins.session(weblogins.digest(token)) is not None
    other = client_for(ctx)
    assert try_login(other, "alice", "correct horse").status_code == 303  # type: ignore[attr-defined]


def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(
    ctx: Context, web_client: TestClient
) -> None:
    logins.set_password(ctx.config, "alice", "right")
    wrong = try_login(web_client, "alice", "wrong")
    unknown = try_login(web_client, "nobody@example.org", "right")
    no_password = try_login(web_client, "bob", "")
    for answer in (wrong, unknown, no_password):
        assert answer.status_code == 200  # type: ignore[attr-defined]
        assert "That account and password do not match." in answer.text  # type: ignore[attr-defined]
    assert not logged_in(web_client)
    assert 'value="alice"' in wrong.text  # type: ignore[attr-defined]


def test_an_unknown_account_costs_a_full_password_check_in_the_current_parameters() -> None:
    """The stand-in hash verified for an unknown account is a real argon2 hash of the
    hasher's own parameters (so it takes as long as a wrong password's) that nothing matches."""
    from argon2 import PasswordHasher
    from argon2.exceptions import VerifyMismatchError

    hasher = PasswordHasher()
    assert not hasher.check_needs_rehash(logins._DUMMY_HASH)
    for password in ("", "right", "not the password of anyone"):
        try:
            hasher.verify(logins._DUMMY_HASH, password)
        except VerifyMismatchError:
            continue
        raise AssertionError(f"{password!r} matched the unknown account's stand-in hash")


def test_a_forged_or_tampered_cookie_logs_nobody_in(ctx: Context, web_client: TestClient) -> None:
    login(web_client, "alice")
    value = web_client.cookies[COOKIE].strip('"')
    token, _, mac = value.rpartition(".")
    forged = client_for(ctx)
    forged.cookies.set(COOKIE, f"{token}x.{mac}")
    assert not logged_in(forged)
    forged.cookies.set(COOKIE, value)
    assert logged_in(forged)


def test_logout_ends_the_session_server_side(ctx: Context, web_client: TestClient) -> None:
    login(web_client, "carol")
    old = web_client.cookies[COOKIE]
    token = csrf(web_client)
    assert web_client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert logged_in(web_client)
    answer = web_client.post("/logout", data={"csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert (
        f'{COOKIE}=""' in answer.headers["set-cookie"]
        or "Max-Age=0" in answer.headers["set-cookie"]
    )
    assert not logged_in(web_client)
    replay = client_for(ctx)
    replay.cookies.set(COOKIE, old)
    assert not logged_in(replay)  # the old cookie no longer works


def test_an_agent_removed_from_the_config_is_logged_out(ctx: Context, web_client: TestClient) -> None:
    import dataclasses

    login(web_client, "bob")
    assert logged_in(web_client)
    smaller = dataclasses.replace(
        ctx.config, agents=tuple(a for a in ctx.config.agents if a.key != "bob")
    )
    web_client.app.state.ctx = dataclasses.replace(ctx, config=smaller)  # type: ignore[attr-defined]
    assert not logged_in(web_client)


def test_agents_password_sets_the_password_from_stdin(
    ctx: Context, config_path: Path, web_client: TestClient
) -> None:
    def run(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mailgate", "--config", str(config_path), *args]
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, cwd=config_path.parent
        )

    done = run("agents", "password", "jane", stdin="s3cret pass\nignored\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "password set for jane\n"
    assert try_login(web_client, "jane.doe@example.org", "s3cret pass").status_code == 303  # type: ignore[attr-defined]
    empty = run("agents", "password", "jane", stdin="\n")
    assert empty.returncode == 1 and len(empty.stderr.strip().splitlines()) == 1
    assert "empty" in empty.stderr
    unknown = run("agents", "password", "zed", stdin="x\n")
    assert unknown.returncode == 1 and "zed" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_a_new_password_or_agents_logout_ends_every_session_of_the_agent(
    ctx: Context, config_path: Path, web_client: TestClient
) -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mailgate", "--config", str(config_path), *args]
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, cwd=config_path.parent
        )

    laptop, phone, bobs = web_client, client_for(ctx), client_for(ctx)
    login(laptop, "alice", "old")
    login(phone, "alice", "old")
    login(bobs, "bob", "bobs")
    done = run("agents", "password", "alice", stdin="new one\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "password set for alice; 2 desk sessions ended\n"
    assert not logged_in(laptop) and not logged_in(phone)
    assert logged_in(bobs)  # other agents keep theirs
    assert try_login(laptop, "alice", "old").status_code == 200  # type: ignore[attr-defined]
    login(laptop, "alice", "new one")
    lost = run("agents", "logout", "alice")
    assert lost.returncode == 0 and lost.stdout == "alice; 1 desk session ended\n", lost.stderr
    assert not logged_in(laptop) and logged_in(bobs)
    again = run("agents", "logout", "alice")
    assert again.stdout == "alice: no desk session was open\n"
    unknown = run("agents", "logout", "zed")
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1


def test_agents_password_asks_on_a_terminal_without_echo(
    ctx: Context, config_path: Path, web_client: TestClient
) -> None:
    import os
    import pty
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: mailgate on a terminal of its own
        command = [sys.executable, "-m", "mailgate", "--config", str(config_path)]
        os.chdir(config_path.parent)
        os.execv(sys.executable, [*command, "agents", "password", "bob"])  # noqa: S606
    seen = b""
    deadline = time.monotonic() + 30
    while b"Password for bob: " not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(fd, 1024)
    os.write(fd, b"typed on a tty\n")
    rest = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child ended: the terminal is gone
            break
        if not chunk:
            break
        rest += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, rest
    assert b"typed on a tty" not in rest  # not echoed
    assert b"password set for bob" in rest
    assert try_login(web_client, "bob", "typed on a tty").status_code == 303  # type: ignore[attr-defined]


def test_a_login_link_is_used_once_even_by_many_at_the_same_time(ctx: Context) -> None:
    import threading

    from mailgate import store

    assert logins.request_link(ctx, "alice@example.org", "http://desk")
    mail = email.message_from_bytes(bytes(m.OutboxItem.get().content), policy=email.policy.default)
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = body.split("http://desk/login/link/")[1].split()[0]
    assert logins.link_state(ctx, token) == "usable"
    won: list[object] = []
    start = threading.Barrier(6)

    def use() -> None:
        start.wait()
        try:
            won.append(logins.use_link(ctx, token))
        finally:
            store.close()

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 6 and [a.key for a in won if a is not None] == ["alice"]  # type: ignore[attr-defined]
    assert logins.link_state(ctx, token) == "used"
