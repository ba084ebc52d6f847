"""Serving the desk: behind a proxy (trusted X-Forwarded-*, root_path), /metrics, the
[web] config checks, and the desk inside a real ``mailgate serve`` (issue 15)."""

from __future__ import annotations

import dataclasses
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailgate.admin import logins
from mailgate.context import Context
from mailgate.errors import ConfigError
from mailgate.metrics import Metrics
from mailgate.store import models as m
from mailgate.web import create_app
from mailgate.web.cookies import COOKIE
from tests.conftest import open_gateway
from tests.support import config_data, load_config, write_config
from tests.webdesk import client_for, csrf, form_csrf, login

PROXY = "10.0.0.1"


def try_login(client: TestClient, account: str, password: str, **headers: str) -> int:
    page = client.get("/login", headers=headers)
    answer = client.post(
        "/login",
        data={"account": account, "password": password, "csrf": form_csrf(page.text)},
        headers=headers,
    )
    return answer.status_code


@pytest.mark.config({"web": {"trusted_proxies": [PROXY, "2001:db8::/64"]}})
def test_the_client_address_of_a_trusted_proxy_counts_for_the_rate_limit(ctx: Context) -> None:
    logins.set_password(ctx.config, "bob", "right")
    proxy = client_for(ctx, client=(PROXY, 1))
    # The client puts a fake address in front; our proxy appends what it saw.
    noisy = {"x-forwarded-for": "192.0.2.250, 203.0.113.5"}
    for i in range(logins.CLIENT_LIMIT):
        assert try_login(proxy, f"guess{i}", "x", **noisy) == 200
    assert {a.client for a in m.WebLoginAttempt.select()} == {"203.0.113.5"}
    assert try_login(proxy, "bob", "right", **noisy) == 429
    # Another client behind the same proxy is not locked out; nor is a chain of proxies.
    assert try_login(proxy, "bob", "right", **{"x-forwarded-for": "203.0.113.6"}) == 303
    chain = {"x-forwarded-for": f"203.0.113.5, {PROXY}"}
    assert try_login(client_for(ctx, client=(PROXY, 1)), "bob", "right", **chain) == 429
    v6 = client_for(ctx, client=("2001:db8::7", 1))
    assert try_login(v6, "bob", "right", **noisy) == 429


@pytest.mark.config({"web": {"trusted_proxies": [PROXY]}})
def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(ctx: Context) -> None:
    logins.set_password(ctx.config, "bob", "right")
    peer = client_for(ctx, client=("192.0.2.9", 1))
    for i in range(logins.CLIENT_LIMIT):
        spoofed = {"x-forwarded-for": f"203.0.113.{i}", "x-forwarded-proto": "https"}
        assert try_login(peer, f"guess{i}", "x", **spoofed) == 200
    assert {a.client for a in m.WebLoginAttempt.select()} == {"192.0.2.9"}
    assert try_login(peer, "bob", "right", **{"x-forwarded-for": "203.0.113.77"}) == 429


@pytest.mark.config({"web": {"secure_cookies": True}})
def test_secure_cookies_marks_every_cookie_secure(ctx: Context) -> None:
    client = TestClient(create_app(ctx), base_url="https://testserver", follow_redirects=False)
    page = client.get("/login")
    assert "; secure" in page.headers["set-cookie"].lower()
    logins.set_password(ctx.config, "alice", "pw")
    answer = client.post(
        "/login", data={"account": "alice", "password": "pw", "csrf": form_csrf(page.text)}
    )
    assert answer.status_code == 303 and "; secure" in answer.headers["set-cookie"].lower()


@pytest.mark.config({"web": {"trusted_proxies": [PROXY]}})
def test_https_forwarded_by_a_trusted_proxy_makes_https_login_links(ctx: Context) -> None:
    for peer, scheme in ((PROXY, "https"), ("192.0.2.9", "http")):
        client = client_for(ctx, client=(peer, 1))
        client.headers["x-forwarded-proto"] = "https"
        page = client.get("/login")
        client.post(
            "/login/link", data={"address": "bob@example.org", "csrf": form_csrf(page.text)}
        )
        item = m.OutboxItem.select().order_by(m.OutboxItem.id.desc()).get()
        assert f"{scheme}://testserver/login/link/".encode() in bytes(item.content).replace(
            b"=\n", b""
        )


def test_under_a_root_path_links_redirects_and_the_cookie_path_follow_it(ctx: Context) -> None:
    client = client_for(ctx, root_path="/helpdesk")
    page = client.get("/helpdesk/login")
    assert page.status_code == 200
    assert 'action="/helpdesk/login"' in page.text and 'action="/helpdesk/login/link"' in page.text
    assert 'href="/helpdesk/static/desk.css"' in page.text
    assert client.get("/helpdesk/static/desk.css").status_code == 200
    assert "Path=/helpdesk" in page.headers["set-cookie"]
    logins.set_password(ctx.config, "carol", "pw")
    answer = client.post(
        "/helpdesk/login",
        data={"account": "carol", "password": "pw", "csrf": form_csrf(page.text)},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/helpdesk/"
    assert "Path=/helpdesk" in answer.headers["set-cookie"]
    assert client.get("/helpdesk/login").headers["location"] == "/helpdesk/"
    out = client.post("/helpdesk/logout", data={"csrf": csrf(client)})
    assert out.headers["location"] == "/helpdesk/login"
    assert "Path=/helpdesk" in out.headers["set-cookie"] and COOKIE in out.headers["set-cookie"]


def test_metrics_are_on_the_desk_port_when_serve_counts_them(ctx: Context) -> None:
    metrics = Metrics(ctx.config)
    metrics.received.labels("smtp", "created").inc()
    with TestClient(create_app(ctx, metrics=metrics)) as client:
        answer = client.get("/metrics")  # no login: a scraper has none
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'mailgate_mails_received_total{result="created",source="smtp"} 1.0' in answer.text
    with client_for(ctx) as alone:
        assert alone.get("/metrics").status_code == 404


def test_metrics_nobody_can_read_count_nothing_and_show_nothing(ctx: Context) -> None:
    metrics = Metrics(ctx.config, counting=False)  # serve without [metrics] listen or a desk
    metrics.received.labels("smtp", "created").inc()
    metrics.latency.labels("smtp").observe(0.5)
    assert metrics.render() == b""
    assert metrics.start() is None


@pytest.mark.parametrize(
    ("web", "key"),
    [
        ({"listen": "8025"}, "web.listen"),
        ({"listen": "127.0.0.1:http"}, "web.listen"),
        ({"listen": "127.0.0.1:70000"}, "web.listen"),
        ({"listen": "::1:8025"}, "web.listen"),
        ({"root_path": "helpdesk"}, "web.root_path"),
        ({"root_path": "/helpdesk/"}, "web.root_path"),
        ({"session_hours": 0}, "web.session_hours"),
        ({"workers": 33}, "web.workers"),
        ({"intake_share": 0}, "web.intake_share"),
        ({"intake_share": 1.5}, "web.intake_share"),
        ({"trusted_proxies": ["10.0.0.1", "proxy.example.org"]}, "web.trusted_proxies[1]"),
        ({"public_url": "desk.example.org"}, "web.public_url"),
    ],
)
def test_a_wrong_web_setting_is_one_line_naming_key_and_file(
    tmp_path: Path, web: dict[str, Any], key: str
) -> None:
    path = write_config(
        tmp_path / "mailgate.toml", config_data(tmp_path, "sqlite:///x.db", {"web": web})
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{key}: ") and str(path) in message and "\n" not in message


@pytest.mark.parametrize(
    "web",
    [
        {"listen": "[::1]:0", "root_path": "/helpdesk", "trusted_proxies": ["::1", "10.0.0.0/8"]},
        {"listen": "localhost:8025", "root_path": "", "public_url": "https://desk.example.org/x"},
    ],
)
def test_good_web_settings_load(tmp_path: Path, web: dict[str, Any]) -> None:
    path = write_config(
        tmp_path / "mailgate.toml", config_data(tmp_path, "sqlite:///x.db", {"web": web})
    )
    assert load_config(path).web.listen == web["listen"]


def test_serve_runs_the_desk_on_a_free_port(
    tmp_path: Path,
    database_url: str,
    serve_in_thread: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = config_data(
        tmp_path,
        database_url,
        {"listener": {"port": 0}, "web": {"listen": "127.0.0.1:0", "root_path": "/desk"}},
    )
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    running = serve_in_thread(ctx, imap=False)
    url = running.gateway.web.url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/desk/")
    assert not url.startswith("http://127.0.0.1:0/")
    # The proxy strips /desk (nginx: proxy_pass http://127.0.0.1:PORT/;), the pages keep it.
    stripped = url.removesuffix("/desk/") + "/login"
    with urllib.request.urlopen(stripped, timeout=10) as answer:  # noqa: S310
        body = answer.read().decode()
        assert answer.status == 200 and 'action="/desk/login"' in body
        assert "mailgate_login=" in answer.headers["set-cookie"]
        assert "default-src 'self'" in answer.headers["content-security-policy"]
    running.stop()
    assert capsys.readouterr().out == ""  # serve says where the desk is in its log only


def test_an_agent_logged_in_twice_has_two_sessions(ctx: Context, web_client: TestClient) -> None:
    other = client_for(ctx)
    login(web_client, "alice")
    login(other, "alice", "pw")
    assert web_client.get("/login").status_code == 303 and other.get("/login").status_code == 303
    assert csrf(web_client) != csrf(other)
    assert dataclasses.is_dataclass(ctx.config.web)
