"""XOAUTH2 tokens for Gmail and Microsoft 365: a token command, or a rotating refresh token."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mailgate.config import ImapAccount
from mailgate.errors import ConfigError, TemporaryFailure
from mailgate.transports.imap import access_token
from tests.relay import free_port


class TokenEndpoint(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        type(self).seen.append(form)
        status, body = type(self).answers.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def endpoint() -> Iterator[str]:
    TokenEndpoint.answers, TokenEndpoint.seen = [], []
    server = http.server.HTTPServer(("127.0.0.1", free_port()), TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/token"
    server.shutdown()


def account(**extra: Any) -> ImapAccount:
    return ImapAccount(
        name="m365",
        host="outlook.office365.example",
        user="support@example.org",
        auth="xoauth2",
        **extra,
    )


def test_a_token_command_gives_the_access_token(tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text("print('ya29.token-from-command')\n")
    assert (
        access_token(account(oauth2_token_command=f"{sys.executable} {script}"))
        == "ya29.token-from-command"
    )


def test_a_failing_token_command_is_a_clear_temporary_failure(tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text(
        "import sys; sys.stderr.write('expired for carla@customer.example'); sys.exit(3)\n"
    )
    with pytest.raises(TemporaryFailure) as failed:
        access_token(account(oauth2_token_command=f"{sys.executable} {script}"))
    assert "exited 3" in str(failed.value) and "c***@customer.example" in str(failed.value)


def test_a_rotated_refresh_token_is_saved(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = tmp_path / "refresh-token"
    stored.write_text("old-refresh-token\n")
    monkeypatch.setenv("M365_SECRET", "client-secret")
    TokenEndpoint.answers = [(200, {"access_token": "access-1", "refresh_token": "new-refresh"})]
    settings = account(
        oauth2_token_url=endpoint,
        oauth2_client_id="client-1",
        oauth2_client_secret_env="M365_SECRET",
        oauth2_refresh_token_file=str(stored),
    )
    assert access_token(settings) == "access-1"
    assert TokenEndpoint.seen == [
        {
            "grant_type": "refresh_token",
            "refresh_token": "old-refresh-token",
            "client_id": "client-1",
            "client_secret": "client-secret",
        }
    ]
    assert stored.read_text().strip() == "new-refresh"
    assert oct(stored.stat().st_mode & 0o777) == "0o600"


def test_a_refused_refresh_is_reported_not_crashed(tmp_path: Path, endpoint: str) -> None:
    stored = tmp_path / "refresh-token"
    stored.write_text("revoked\n")
    TokenEndpoint.answers = [(400, {"error": "invalid_grant"})]
    settings = account(
        oauth2_token_url=endpoint, oauth2_client_id="c", oauth2_refresh_token_file=str(stored)
    )
    with pytest.raises(TemporaryFailure) as failed:
        access_token(settings)
    assert "token refresh failed" in str(failed.value)
    assert stored.read_text().strip() == "revoked"


def test_a_token_url_must_be_https(tmp_path: Path) -> None:
    stored = tmp_path / "refresh-token"
    stored.write_text("x\n")
    settings = account(
        oauth2_token_url="http://login.example/token",
        oauth2_client_id="c",
        oauth2_refresh_token_file=str(stored),
    )
    with pytest.raises(ConfigError):
        access_token(settings)


def test_check_reports_a_failing_token_before_fetching_stops(
    tmp_path: Path, imap_user: Any
) -> None:
    from mailgate.admin.check import checks
    from tests.support import config_data, load_config, write_config

    script = tmp_path / "token.py"
    script.write_text("import sys; sys.exit(1)\n")
    data = config_data(
        tmp_path,
        f"sqlite:///{tmp_path / 'x.db'}",
        {
            "imap": [
                {
                    "name": "m365",
                    "host": imap_user.host,
                    "port": imap_user.port,
                    "security": "none",
                    "user": "support@example.org",
                    "auth": "xoauth2",
                    "oauth2_token_command": f"{sys.executable} {script}",
                }
            ]
        },
    )
    results = {c.name: c for c in checks(load_config(write_config(tmp_path / "c.toml", data)))}
    assert not results["imap m365"].ok
    assert "token command exited 1" in results["imap m365"].detail
