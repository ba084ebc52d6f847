"""OAuth2 for IMAP (XOAUTH2): an access token from a command, or by refreshing a stored token.

Microsoft and Google may rotate the refresh token on every refresh; the new one
replaces the stored file atomically. Imports config, errors and logs only.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from mailgate.config import ImapAccount, read_password
from mailgate.errors import ConfigError, TemporaryFailure
from mailgate.logs import redact


def access_token(account: ImapAccount) -> str:
    """An OAuth2 access token: from a command, or by refreshing (rotated tokens are saved)."""
    if account.oauth2_token_command:
        try:
            done = subprocess.run(
                shlex.split(account.oauth2_token_command),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TemporaryFailure(f"imap[{account.name}]: token command failed: {exc}") from exc
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            raise TemporaryFailure(
                f"imap[{account.name}]: token command exited {done.returncode}: "
                f"{redact(done.stderr.strip()[:200])}"
            )
        return token
    return _refresh(account)


def _refresh(account: ImapAccount) -> str:
    path = Path(account.oauth2_refresh_token_file)
    try:
        refresh_token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"imap[{account.name}].oauth2_refresh_token_file: cannot read {path}: {exc.strerror}"
        ) from None
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": account.oauth2_client_id,
    }
    secret = read_password(
        account.oauth2_client_secret_env, "", f"imap[{account.name}].oauth2_client_secret"
    )
    if secret:
        form["client_secret"] = secret
    url = account.oauth2_token_url
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigError(f"imap[{account.name}].oauth2_token_url: must be an https:// URL")
    request = urllib.request.Request(  # noqa: S310 - https (or loopback) only, checked above
        url,
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the admin's URL
            answer = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise TemporaryFailure(f"imap[{account.name}]: token refresh failed: {exc}") from exc
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise TemporaryFailure(
            f"imap[{account.name}]: token endpoint gave no access_token "
            f"({redact(str(answer.get('error', '')))})"
        )
    rotated = answer.get("refresh_token")
    if isinstance(rotated, str) and rotated and rotated != refresh_token:
        # Microsoft and Google may rotate the refresh token: the old one stops working.
        tmp = path.with_name(path.name + ".new")
        tmp.write_text(rotated + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return token
