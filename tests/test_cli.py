"""The admin CLI as users run it: real config files, real databases, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailgate import store
from mailgate.cli import main
from mailgate.config.blobs import POSTGRES_SCHEMES
from tests.conftest import PG_ENV
from tests.support import BASE, compose, config_data, service_missing, to_toml, write_config

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    returncode: int
    raw_stdout: bytes
    stderr: str

    @property
    def stdout(self) -> str:
        return self.raw_stdout.decode("utf-8", "replace")


def run(
    config_path: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> Result:
    """mailgate in its own process, as an admin or an MTA runs it."""
    command = [sys.executable, "-m", "mailgate", "--config", str(config_path), *args]
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=config_path.parent,
        env={**os.environ, **(env or {})},
    )
    return Result(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def upgraded(config_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, _ = cli(capsys, "--config", str(config_path), "db", "upgrade")
    assert code == 0, out
    return config_path


def test_db_upgrade_is_safe_to_run_twice(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "--config", str(config_path), "db", "upgrade")[1].startswith(
        "database schema upgraded from version 0"
    )
    code, out, _ = cli(capsys, "--config", str(config_path), "db", "upgrade")
    assert code == 0 and "up to date" in out


def test_ingest_json_and_ticket_commands(
    upgraded: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mail = tmp_path / "mail.eml"
    mail.write_bytes(compose(cc="boss@customer.example"))
    code, out, _ = cli(capsys, "--config", str(upgraded), "ingest", str(mail), "--json")
    assert code == 0
    outcome = json.loads(out)
    assert set(outcome) >= {"action", "ticket", "tag", "message_id", "reason"}
    assert outcome["action"] == "created"
    number = str(outcome["ticket"])
    assert (
        json.loads(cli(capsys, "--config", str(upgraded), "ingest", str(mail), "--json")[1])[
            "action"
        ]
        == "duplicate"
    )

    code, out, _ = cli(capsys, "--config", str(upgraded), "tickets", "list", "--json")
    (row,) = json.loads(out)
    assert set(row) >= {
        "number",
        "subject",
        "status",
        "priority",
        "requester",
        "assignee",
        "team",
        "updated_at",
    }

    assert cli(capsys, "--config", str(upgraded), "tickets", "assign", number, "jane")[0] == 0
    assert (
        cli(capsys, "--config", str(upgraded), "tickets", "priority", number, "emergency")[0] == 0
    )
    assert cli(capsys, "--config", str(upgraded), "tickets", "status", number, "pending")[0] == 0
    code, out, _ = cli(capsys, "--config", str(upgraded), "tickets", "show", number, "--json")
    detail = json.loads(out)
    assert set(detail) >= {
        "number",
        "tag",
        "subject",
        "status",
        "priority",
        "team",
        "assignee",
        "requester",
        "collaborators",
        "links",
        "created_at",
        "updated_at",
        "messages",
        "events",
    }
    assert (detail["assignee"], detail["priority"], detail["status"]) == (
        "jane",
        "emergency",
        "pending",
    )
    assert detail["tag"] == f"[EB#{number}]"
    message = detail["messages"][0]
    assert set(message) >= {
        "direction",
        "kind",
        "from",
        "to",
        "subject",
        "message_id",
        "text",
        "trace",
        "attachments",
    }
    events = [(e["kind"], e["old"], e["new"], e["actor"]) for e in detail["events"]]
    assert ("assignee", "", "jane", "admin:cli") in events
    assert ("priority", "normal", "emergency", "admin:cli") in events
    # Assigned to an agent, the new ticket became open (and was then set pending).
    assert ("status", "new", "open", "admin:cli") in events
    assert ("status", "open", "pending", "admin:cli") in events
    assert all(e["at"].endswith("Z") for e in detail["events"])

    code, out, _ = cli(capsys, "--config", str(upgraded), "tickets", "show", number)
    assert f"[EB#{number}]" in out and "events:" in out
    code, _, err = cli(capsys, "--config", str(upgraded), "tickets", "show", "999")
    assert code == 1 and err.strip() == "mailgate: no ticket #999"
    code, _, err = cli(capsys, "--config", str(upgraded), "tickets", "assign", number, "nobody")
    assert code == 1 and "no agent 'nobody'" in err


def test_explain_json_reports_what_parser_and_classifier_saw(
    upgraded: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mail = tmp_path / "mail.eml"
    mail.write_bytes(compose(attachments=[("log.txt", "text/plain", b"error 42\n")]))
    _code, out, _ = cli(capsys, "--config", str(upgraded), "explain", str(mail), "--json")
    result = json.loads(out)
    for key in (
        "from",
        "from_name",
        "to",
        "cc",
        "subject",
        "message_id",
        "class",
        "failed_recipients",
        "text",
        "full_text",
        "attachments",
        "trace",
    ):
        assert key in result
    assert result["attachments"][0]["filename"] == "log.txt"
    assert result["attachments"][0]["size"] == 9
    assert cli(capsys, "--config", str(upgraded), "tickets", "list", "--json")[1].strip() == "[]"


def test_pipe_entry_exit_codes_for_an_mta(upgraded: Path, tmp_path: Path) -> None:
    done = run(upgraded, "ingest", "-", stdin=compose())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created [EB#")
    garbage = run(upgraded, "ingest", "-", stdin=b"\x01\x02 not a mail")
    assert garbage.returncode == 0 and garbage.stdout.startswith("quarantined")


def test_database_down_means_tempfail_so_the_mta_keeps_the_mail(tmp_path: Path) -> None:
    data = config_data(tmp_path, "postgresql://127.0.0.1:1/nothing")
    path = write_config(tmp_path / "down.toml", data)
    # The key from the environment: only `db upgrade` and `serve` create a key file.
    result = run(path, "ingest", "-", stdin=compose(), env={"MAILGATE_SECRET_KEY": "k" * 32})
    assert result.returncode == 75, result.stderr
    assert "Traceback" not in result.stderr
    assert "temporary failure" in result.stderr


def test_full_or_broken_blob_store_means_tempfail(tmp_path: Path, database_url: str) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    data = config_data(tmp_path, database_url, {"storage": {"blob_dir": str(blocker / "blobs")}})
    path = write_config(tmp_path / "mailgate.toml", data)
    assert run(path, "db", "upgrade").returncode == 0
    result = run(path, "ingest", "-", stdin=compose())
    assert result.returncode == 75, result.stderr
    assert "blob store" in result.stderr and "Traceback" not in result.stderr


def test_quarantine_commands(
    upgraded: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"\x00garbage\xff")
    cli(capsys, "--config", str(upgraded), "ingest", str(bad))
    code, out, _ = cli(capsys, "--config", str(upgraded), "quarantine", "list", "--json")
    (entry,) = json.loads(out)
    assert entry["status"] == "quarantined" and entry["reason"]
    code, out, _ = cli(capsys, "--config", str(upgraded), "quarantine", "show", str(entry["id"]))
    assert "reason:" in out
    result = run(upgraded, "quarantine", "show", str(entry["id"]), "--raw")
    assert result.raw_stdout == b"\x00garbage\xff"
    code, _, _ = cli(capsys, "--config", str(upgraded), "quarantine", "retry", str(entry["id"]))
    assert code == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gateway": {"naem": "x"}}, "gateway.naem: unknown key"),
        ({"gateway": {"max_message_size": "big"}}, "gateway.max_message_size: must be an integer"),
        ({"database": {"url": "oracle://db"}}, "database.url: unsupported database 'oracle'"),
        ({"database": {"url": "sqlite://"}}, "database.url: a SQLite URL needs a path"),
        (
            {"outbound": {"smtp": {"password": "hunter2"}}},
            "outbound.smtp.password: secrets do not belong",
        ),
        ({"lifecycle": {"unknown_sender": "drop"}}, "lifecycle.unknown_sender: must be one of"),
    ],
)
def test_config_errors_are_one_line_naming_key_and_file(
    tmp_path: Path, change: dict, message: str
) -> None:
    path = write_config(tmp_path / "bad.toml", config_data(tmp_path, "sqlite:///x.db", change))
    result = run(path, "tickets", "list")
    assert result.returncode == 78
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("scheme", POSTGRES_SCHEMES)
def test_every_postgresql_scheme_the_config_accepts_also_connects(scheme: str) -> None:
    """The config check lets these through; the database must then open with them too
    (``psycopg2://`` once passed the check and failed at the first command)."""
    base = os.environ.get(PG_ENV)
    if not base:
        service_missing(f"PostgreSQL tests need {PG_ENV}")
    url = scheme + "://" + base.partition("://")[2]
    try:
        database = store.open_database(url)
        assert database.execute_sql("SELECT 41 + 1").fetchone() == (42,)
    finally:
        store.close()


def test_missing_mailbox_address_is_named(tmp_path: Path) -> None:
    data = config_data(tmp_path, "sqlite:///x.db")
    del data["mailbox"][0]["address"]
    path = write_config(tmp_path / "bad.toml", data)
    result = run(path, "tickets", "list")
    assert result.returncode == 78
    assert f"mailbox[0].address: missing (in {path})" in result.stderr


def test_pipe_with_a_broken_config_tempfails_instead_of_bouncing(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(BASE) + "\n[oops]\n")
    result = run(path, "ingest", "-", stdin=compose())
    assert result.returncode == 75
    assert "oops: unknown key" in result.stderr


def test_config_file_from_the_environment(tmp_path: Path, database_url: str) -> None:
    path = write_config(tmp_path / "env.toml", config_data(tmp_path, database_url))
    command = [sys.executable, "-m", "mailgate", "db", "upgrade"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={**os.environ, "MAILGATE_CONFIG": str(path)},
    )
    assert result.returncode == 0, result.stderr


def test_the_shipped_example_config_is_a_realistic_helpdesk(tmp_path: Path) -> None:
    from mailgate.config import load

    config = load(REPO / "config" / "mailgate.toml")
    support = config.mailbox("support")
    assert support.address == "support@example.org"
    assert config.team(support.team) is not None and config.team(support.team).name == "Level 1"
    assert {"Online Banking", "System Administrators"} <= {t.name for t in config.teams}
    assert len(config.agents) >= 3
    # Relative paths are relative to the config file: make run keeps its data in config/var/.
    var = REPO / "config" / "var"
    assert config.outbound.transport == "maildir" and config.outbound.maildir == str(var / "sent")
    assert config.database.url == f"sqlite:///{var / 'mailgate.db'}"


def test_json_logs_for_log_collectors_without_bodies_or_full_addresses(upgraded: Path) -> None:
    result = run(
        upgraded, "--log-format", "json", "ingest", "-", stdin=compose(body="my secret PIN is 1234")
    )
    assert result.returncode == 0
    (line,) = [json.loads(x) for x in result.stderr.splitlines() if "mail.ingested" in x]
    assert line["event"] == "mail.ingested" and line["action"] == "created"
    assert line["sender"] == "c***@customer.example"
    assert "1234" not in result.stderr


def test_one_mail_delivered_to_several_processes_at_once_is_one_ticket(
    upgraded: Path, tmp_path: Path
) -> None:
    """Postfix delivering support@ and help@ copies in parallel pipes, or two IMAP pollers."""
    mails = []
    for i in range(8):
        path = tmp_path / f"mail{i}.eml"
        path.write_bytes(compose(sender=f"c{i}@customer.example", subject=f"parallel {i}"))
        mails.append(path)
    command = [sys.executable, "-m", "mailgate", "--config", str(upgraded), "ingest"]
    runs = [
        subprocess.Popen(
            [*command, *["--json"], str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for p in mails
        for _ in range(3)
    ]
    codes = [r.wait(120) for r in runs]
    assert codes == [0] * len(runs)
    actions = sorted(json.loads(r.stdout.read())["action"] for r in runs)  # type: ignore[union-attr]
    assert actions.count("created") == 8 and actions.count("duplicate") == 16
    listed = run(upgraded, "tickets", "list", "--json")
    assert len(json.loads(listed.stdout)) == 8
    outbox = json.loads(run(upgraded, "outbox", "list", "--json").stdout)
    assert sum(1 for o in outbox if o["notice"] == "acknowledgement") == 8


def test_verbs_on_a_merged_ticket_point_to_where_it_lives_now(
    upgraded: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    numbers = []
    for subject in ("printer jams", "printer still jams"):
        mail = tmp_path / "mail.eml"
        mail.write_bytes(compose(subject=subject))
        out = cli(capsys, "--config", str(upgraded), "ingest", str(mail), "--json")[1]
        numbers.append(str(json.loads(out)["ticket"]))
    first, second = numbers
    assert cli(capsys, "--config", str(upgraded), "tickets", "merge", second, first)[0] == 0
    code, _, err = cli(capsys, "--config", str(upgraded), "tickets", "assign", second, "jane")
    assert code == 1
    assert err.strip() == f"mailgate: #{second} was merged into #{first}; act on #{first}"
    # Nothing changed on either ticket.
    for number in (second, first):
        detail = json.loads(
            cli(capsys, "--config", str(upgraded), "tickets", "show", number, "--json")[1]
        )
        assert detail["assignee"] in (None, "")
        assert "assignee" not in [e["kind"] for e in detail["events"]]


def test_help_starts_without_loading_the_gateway(tmp_path: Path) -> None:
    """Every mail Postfix pipes in and every admin command is a fresh process: building the
    parser must not load the store, the admin layer, the config or the bounce tables."""
    probe = (
        "import sys, contextlib, io\n"
        "from mailgate.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "heavy = ('mailgate.store', 'mailgate.admin', 'mailgate.config', 'mailgate.reports',\n"
        "         'mailgate.mail.bounces', 'peewee', 'jinja2')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
