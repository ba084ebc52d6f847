"""Operating the gateway as an admin and a monitoring probe see it (issue 18).

`mailgate serve` runs as a real process on a free port; `check` and `status` run as
the commands an admin types; mail arrives over SMTP. Each test asserts what an
admin would notice: an exit status, one line saying why, a file that is or is not there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.relay import free_port
from tests.support import compose, config_data, merge, wait_for, wait_listening, write_config


def mailgate(
    path: Path, *args: str, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=cwd or path.parent,
    )


class Gateway:
    """A config, a database upgraded by `db upgrade`, and serve started and stopped at will."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp = tmp_path
        self.port = free_port()
        self.data = config_data(tmp_path, database_url, {"listener": {"port": self.port}})
        self.path = write_config(tmp_path / "mailgate.toml", self.data)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / "serve.log"

    def configure(self, extra: dict[str, Any]) -> None:
        merge(self.data, extra)
        write_config(self.path, self.data)

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return mailgate(self.path, *args, stdin=stdin)

    def upgrade(self) -> None:
        done = self.run("db", "upgrade")
        assert done.returncode == 0, done.stderr

    def popen(self, *options: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mailgate", "--config", str(self.path), *options, "serve",
                 "--no-imap"],
                stdout=log,
                stderr=log,
                cwd=self.tmp,
            )  # fmt: skip
        return self.process

    def start(self, *options: str) -> subprocess.Popen[bytes]:
        process = self.popen(*options)
        wait_listening(process, self.port, self.log)
        return process

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def send(self, raw: bytes, to: str = "support@example.org") -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.sendmail("carla@customer.example", [to], raw)


@pytest.fixture
def gateway(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    made = Gateway(tmp_path, database_url)
    yield made
    if made.process is not None and made.process.poll() is None:
        made.process.kill()
        made.process.wait(15)


def line(output: str, name: str) -> str:
    (found,) = [x for x in output.splitlines() if x.split(":")[0].split()[-1:] == [name]]
    return found


# --- check and the heartbeat ------------------------------------------------------------------


def test_check_fails_while_serve_is_not_running_and_passes_while_it_is(gateway: Gateway) -> None:
    gateway.upgrade()
    before = gateway.run("check")
    assert before.returncode == 1
    assert line(before.stdout, "serve").startswith("FAIL  serve: not running")
    gateway.start()
    running = gateway.run("check")
    assert line(running.stdout, "serve").startswith("PASS  serve: running since")
    assert running.returncode == 0, running.stdout
    assert gateway.stop() == 0
    after = gateway.run("check")  # a clean stop removes the heartbeat at once
    assert after.returncode == 1
    assert line(after.stdout, "serve").startswith("FAIL  serve: not running")


def test_a_serve_killed_without_a_word_is_not_running_once_its_heartbeat_is_30_s_old(
    gateway: Gateway,
) -> None:
    gateway.upgrade()
    process = gateway.start()
    assert gateway.run("status").returncode == 0
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    # The row stays behind; its age says the truth. Age it instead of waiting 30 s.
    from mailgate import store
    from mailgate.config import load
    from mailgate.store import sql

    store.open_database(load(gateway.path).database.url)
    with store.write_transaction():
        old = store.utcnow() - dt.timedelta(seconds=31)
        sql.run("UPDATE serve_heartbeat SET beat_at = ?", sql.ts(old))
    store.close()
    done = gateway.run("status")
    assert done.returncode == 1
    assert re.match(r"mailgate: serve: not running \(last heartbeat 3\d s ago", done.stderr)
    assert f"pid {process.pid}" in done.stderr


# --- status -----------------------------------------------------------------------------------


def test_status_shows_intake_and_exits_0_when_all_is_well(gateway: Gateway) -> None:
    gateway.upgrade()
    gateway.configure({"spam": {"block": ["spam.example"]}})
    gateway.start()
    gateway.send(compose(sender="seo@spam.example", subject="Rank first on Google"))
    gateway.send(compose(subject="Online banking is down"))
    wait_for(lambda: list((gateway.tmp / "sent" / "new").glob("*")))
    done = gateway.run("status", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is True and data["problems"] == []
    (process,) = data["serve"]["processes"]
    assert data["serve"]["running"] and process["worker"] == "running"
    assert process["pid"] == gateway.process.pid if gateway.process else False
    assert process["listener"] == f"127.0.0.1:{gateway.port}"
    assert data["received_last_hour"] == 2 and data["tickets_last_hour"] == 1
    assert data["last_received_at"].endswith("Z")
    assert data["quarantined"] == 0 and data["breaker"]["open"] is False
    assert data["suspended"] == 1  # the blocked sender's mail: counted, not a problem
    text = gateway.run("status")
    assert text.returncode == 0 and text.stderr == ""
    assert "serve      running since" in text.stdout
    assert "2 mail(s) received, 1 ticket(s) made in the last hour" in text.stdout
    assert "suspended  1 mail(s)" in text.stdout


def test_status_exits_1_with_one_line_per_problem(gateway: Gateway) -> None:
    gateway.upgrade()
    # Notices go to a relay that refuses everyone: the acknowledgement fails for good.
    gateway.configure(
        {"outbound": {"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": free_port(),
                                                     "security": "none", "timeout": 2},
                      "max_attempts": 1}}
    )  # fmt: skip
    gateway.start()
    gateway.send(b"\x01\x02 not a mail at all")  # quarantined, stored
    gateway.send(compose(subject="Please help"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = gateway.run("status")
        if "outbox:" in done.stderr:
            break
        time.sleep(0.5)
    assert done.returncode == 1
    problems = done.stderr.splitlines()
    assert any(p.startswith("mailgate: quarantine: 1 mail(s) not retried or deleted") for p in problems)
    assert any(p.startswith("mailgate: outbox: ") and "failed" in p for p in problems), problems
    assert not any("serve:" in p for p in problems)
    assert "Traceback" not in done.stderr


def test_a_full_overall_window_is_an_open_breaker(gateway: Gateway) -> None:
    gateway.configure(
        {"outbound": {"limits": {"overall": ["1/1h"]}}, "metrics": {"listen": "127.0.0.1:0"}}
    )
    gateway.upgrade()
    gateway.start()
    gateway.send(compose(subject="First", message_id="<first@customer.example>"))
    wait_for(lambda: "breaker: open" in gateway.run("status").stderr, timeout=30)
    done = gateway.run("status", "--json")
    data = json.loads(done.stdout)
    assert done.returncode == 1 and data["breaker"]["open"] is True
    assert data["breaker"]["limit"] == 1
    # The acknowledgement took the window; the team notice was held back: a trip.
    (started,) = wait_for(
        lambda: [x for x in gateway.log.read_text().splitlines() if "serve.started" in x]
    )
    address = re.search(r"metrics=(127\.0\.0\.1:\d+)", started)
    assert address, started
    values = scrape(f"http://{address.group(1)}/metrics")
    assert values["mailgate_breaker_open"] == 1
    assert values["mailgate_breaker_trips_total"] >= 1


# --- serve refuses to start on what would fail later -------------------------------------------


def test_serve_refuses_a_port_in_use_with_one_line_and_exit_78(gateway: Gateway) -> None:
    gateway.upgrade()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", gateway.port))
        taken.listen()
        process = gateway.popen()
        assert process.wait(60) == 78
    err = gateway.log.read_text()
    assert err.count("\n") == 1, err
    assert f"mailgate: cannot start: listener: listener.port: 127.0.0.1:{gateway.port} is in use" in err
    assert f"(in {gateway.path})" in err


def test_serve_refuses_a_database_without_its_schema_and_a_broken_template(
    gateway: Gateway,
) -> None:
    site = gateway.tmp / "templates"
    (site / "acknowledgement").mkdir(parents=True)
    (site / "acknowledgement" / "body.txt").write_text("Hello {{ ticket.subject \n")
    gateway.configure({"templates": {"dir": str(site)}})
    process = gateway.popen()
    assert process.wait(60) == 78
    lines = gateway.log.read_text().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("mailgate: cannot start: database: ")
    assert "mailgate db upgrade" in lines[0] or "not created" in lines[0] or "migrations" in lines[0]
    assert lines[1].startswith("mailgate: cannot start: templates: error: ")
    assert "acknowledgement/body.txt" in lines[1]
    assert not (gateway.tmp / "sent").exists()


def test_serve_refuses_an_unreadable_secret(gateway: Gateway) -> None:
    gateway.upgrade()
    key = Path(gateway.data["gateway"]["secret_key_file"])
    key.write_bytes(b"short")
    process = gateway.popen()
    assert process.wait(60) == 78
    (err,) = gateway.log.read_text().splitlines()
    assert err.startswith("mailgate: cannot start: secret key: gateway.secret_key_file: ")
    assert "fewer than 16 bytes" in err


# --- the secret key ---------------------------------------------------------------------------


def test_only_db_upgrade_creates_the_secret_key(gateway: Gateway, tmp_path: Path) -> None:
    key = Path(gateway.data["gateway"]["secret_key_file"])
    listing = gateway.run("tickets", "list")
    assert listing.returncode == 78
    assert not key.exists()
    assert "gateway.secret_key_file" in listing.stderr and "mailgate db upgrade" in listing.stderr
    ingest = gateway.run("ingest", "-", stdin=compose().decode())
    assert ingest.returncode == 75 and not key.exists()  # the MTA keeps the mail
    gateway.upgrade()
    assert key.exists() and os.stat(key).st_mode & 0o777 == 0o600


# --- SIGHUP -----------------------------------------------------------------------------------


def acknowledgement_bodies(gateway: Gateway) -> list[str]:
    sent = sorted((gateway.tmp / "sent" / "new").glob("*"), key=lambda p: p.stat().st_mtime_ns)
    return [p.read_text(errors="replace") for p in sent]


def test_sighup_switches_to_new_templates_and_config_that_pass_and_keeps_the_old_otherwise(
    gateway: Gateway,
) -> None:
    site = gateway.tmp / "site-templates"
    body = site / "acknowledgement" / "body.txt"
    body.parent.mkdir(parents=True)
    body.write_text("Version one of our answer about {{ ticket.subject }}.\n")
    gateway.configure({"templates": {"dir": str(site)}})
    gateway.upgrade()
    gateway.start()

    def ack_for(subject: str) -> str:
        gateway.send(compose(subject=subject))
        found = wait_for(lambda: [b for b in acknowledgement_bodies(gateway) if subject in b])
        return str(found[0])

    assert "Version one" in ack_for("First mail")
    # Saved on disk but not yet reloaded: templates are not re-read on each render.
    body.write_text("Version two of our answer about {{ ticket.subject }}.\n")
    assert "Version one" in ack_for("Second mail")
    # A new alias in the config: unknown to the listener until the reload.
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        gateway.send(compose(subject="To the new alias"), to="hilfe@example.org")
    gateway.data["mailbox"][0]["aliases"] = ["help@example.org", "hilfe@example.org"]
    write_config(gateway.path, gateway.data)
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "serve.reloaded" in gateway.log.read_text())
    assert "Version two" in ack_for("Third mail")
    gateway.send(compose(subject="To the new alias"), to="hilfe@example.org")

    # A broken template: the reload is refused with the reason, the old files stay.
    body.write_text("Version three {{ ticket.subject \n")
    gateway.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "serve.reload_failed" in gateway.log.read_text())
    (failed,) = [x for x in gateway.log.read_text().splitlines() if "serve.reload_failed" in x]
    assert "templates: error: " in failed and "acknowledgement/body.txt" in failed
    assert "Version two" in ack_for("Fourth mail")
    # A broken config: refused with the key and the file, serve goes on.
    gateway.path.write_text(gateway.path.read_text() + "\n[gateway.nonsense]\n")
    body.write_text("Version four about {{ ticket.subject }}.\n")
    gateway.process.send_signal(signal.SIGHUP)
    wait_for(lambda: gateway.log.read_text().count("serve.reload_failed") == 2)
    failures = [x for x in gateway.log.read_text().splitlines() if "serve.reload_failed" in x]
    assert "gateway.nonsense: unknown key" in failures[-1]
    assert "Version two" in ack_for("Fifth mail")
    assert gateway.process.poll() is None
    write_config(gateway.path, gateway.data)
    assert gateway.run("status").returncode == 0
    assert gateway.stop() == 0


# --- recipients -------------------------------------------------------------------------------


def test_recipients_lists_an_address_a_bounce_marked_and_clear_frees_it(gateway: Gateway) -> None:
    from tests.test_ingest import dsn_for

    gateway.upgrade()
    created = gateway.run("ingest", "-", stdin=compose(sender="carla@customer.example").decode())
    assert created.returncode == 0, created.stderr
    assert gateway.run("outbox", "flush").returncode == 0
    (ack,) = [m for m in acknowledgement_bodies(gateway) if "To: carla@customer.example" in m]
    bounce = dsn_for(ack.encode(), "carla@customer.example").decode()
    assert gateway.run("ingest", "-", stdin=bounce).stdout.startswith("bounce")
    done = gateway.run("recipients", "list", "--undeliverable", "--json")
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)
    assert entry["address"] == "carla@customer.example"
    assert entry["status"] == "5.1.1" and "User unknown" in entry["diagnostic"]
    assert f"[EB#{entry['ticket']}]" in created.stdout
    assert entry["undeliverable_until"].endswith("Z")
    text = gateway.run("recipients", "list")
    assert "carla@customer.example" in text.stdout and "5.1.1" in text.stdout
    cleared = gateway.run("recipients", "clear", "Carla@Customer.example")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(gateway.run("recipients", "list", "--undeliverable", "--json").stdout) == []
    again = gateway.run("recipients", "clear", "carla@customer.example")
    assert again.returncode == 1
    assert again.stderr == "mailgate: carla@customer.example is not marked undeliverable\n"


def test_quarantine_delete_ends_the_alarm_and_keeps_the_mail(gateway: Gateway) -> None:
    gateway.upgrade()
    garbage = "\x01\x02 not a mail at all"
    assert gateway.run("ingest", "-", stdin=garbage).stdout.startswith("quarantined")
    (entry,) = json.loads(gateway.run("quarantine", "list", "--json").stdout)
    assert f"ids {entry['id']})" in gateway.run("status").stderr
    done = gateway.run("quarantine", "delete", str(entry["id"]))
    assert done.returncode == 0, done.stderr
    assert "quarantine:" not in gateway.run("status").stderr
    assert json.loads(gateway.run("quarantine", "list", "--json").stdout) == []
    assert gateway.run("quarantine", "show", str(entry["id"]), "--raw").stdout == garbage
    # The same mail again is a duplicate, not a new alarm.
    assert gateway.run("ingest", "-", stdin=garbage).stdout.startswith("duplicate")
    again = gateway.run("quarantine", "delete", str(entry["id"]))
    assert again.returncode == 1
    assert again.stderr == f"mailgate: no quarantined mail {entry['id']}\n"


# --- which config, which files ----------------------------------------------------------------


def test_the_working_directory_never_picks_the_config_nor_the_files(
    gateway: Gateway, tmp_path: Path
) -> None:
    if Path("/etc/mailgate/mailgate.toml").exists():
        pytest.skip("this machine has /etc/mailgate/mailgate.toml, the default")
    # A directory that looks like a checkout: its config/mailgate.toml is not read.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "config").mkdir(parents=True)
    (elsewhere / "config" / "mailgate.toml").write_text(gateway.path.read_text())
    env = {k: v for k, v in os.environ.items() if k != "MAILGATE_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "tickets", "list"],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 78
    assert done.stderr == (
        "mailgate: config error: no config file: pass --config PATH or set MAILGATE_CONFIG"
        " (looked for /etc/mailgate/mailgate.toml)\n"
    )
    # Relative paths in a config are relative to its directory, from wherever it is used.
    relative = dict(gateway.data)
    relative["gateway"] = {**gateway.data["gateway"], "secret_key_file": "var/secret.key"}
    relative["storage"] = {"blob_dir": "var/blobs"}
    relative["outbound"] = {"transport": "maildir", "maildir": "var/sent"}
    if gateway.data["database"]["url"].startswith("sqlite"):
        relative["database"] = {"url": "sqlite:///var/mailgate.db"}
    etc = tmp_path / "etc"
    etc.mkdir()
    path = write_config(etc / "mailgate.toml", relative)
    for args in (("db", "upgrade"), ("ingest", "-"), ("outbox", "flush")):
        done = mailgate(path, *args, cwd=elsewhere, stdin=compose().decode())
        assert done.returncode == 0, done.stderr
    assert (etc / "var" / "secret.key").is_file() and list((etc / "var" / "sent" / "new").iterdir())
    assert list((etc / "var" / "blobs").rglob("*"))
    assert sorted(p.name for p in elsewhere.iterdir()) == ["config"]


# --- metrics ----------------------------------------------------------------------------------


def scrape(url: str) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own test server
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    values = {}
    for row in text.splitlines():
        if row and not row.startswith("#"):
            name, _, value = row.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_count_intake_and_notices_and_show_what_waits(gateway: Gateway) -> None:
    gateway.configure({"metrics": {"listen": "127.0.0.1:0"}})
    gateway.upgrade()
    gateway.start()
    (started,) = wait_for(
        lambda: [x for x in gateway.log.read_text().splitlines() if "serve.started" in x]
    )
    address = re.search(r"metrics=(127\.0\.0\.1:\d+)", started)
    assert address, started
    url = f"http://{address.group(1)}/metrics"
    gateway.send(compose(subject="Counted"))
    gateway.send(b"\x01\x02 not a mail at all")
    wait_for(lambda: scrape(url).get('mailgate_notices_total{result="sent"}', 0) >= 1)
    values = scrape(url)
    assert values['mailgate_mails_received_total{result="created",source="smtp"}'] == 1
    assert values['mailgate_mails_received_total{result="quarantined",source="smtp"}'] == 1
    assert values['mailgate_ingest_seconds_count{source="smtp"}'] == 2
    assert values["mailgate_quarantine_items"] == 1
    assert values['mailgate_outbox_items{state="failed"}'] == 0
    assert values["mailgate_breaker_open"] == 0
    assert "mailgate_outbox_oldest_age_seconds" in values


def test_metrics_listen_must_be_host_and_port(gateway: Gateway) -> None:
    gateway.configure({"metrics": {"listen": "9464"}})
    done = gateway.run("check")
    assert done.returncode == 78
    assert done.stderr == (
        f'mailgate: config error: metrics.listen: "host:port" like "127.0.0.1:9464",'
        f" not '9464' (in {gateway.path})\n"
    )


# --- JSON logs ----------------------------------------------------------------------------------


def test_json_logs_name_ticket_and_receipt_of_every_mail_with_utc_times(gateway: Gateway) -> None:
    gateway.upgrade()
    gateway.start("--log-format", "json")
    gateway.send(compose(subject="Logged"))
    gateway.send(b"\x01\x02 not a mail at all")
    wait_for(lambda: "notice.sent" in gateway.log.read_text())
    assert gateway.stop() == 0
    lines = [json.loads(x) for x in gateway.log.read_text().splitlines()]  # every line JSON
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", x["time"]) for x in lines)
    mails = [x for x in lines if x["event"] == "mail.ingested"]
    assert [m["action"] for m in mails] == ["created", "quarantined"]
    assert all(isinstance(m["receipt"], int) for m in mails)
    assert isinstance(mails[0]["ticket"], int) and mails[1]["ticket"] is None
    assert {x["event"] for x in lines} >= {"serve.started", "serve.stopped", "notice.sent"}


def test_a_killed_serve_is_forgotten_after_a_day_and_a_running_one_is_what_counts(
    gateway: Gateway,
) -> None:
    from mailgate import store
    from mailgate.config import load
    from mailgate.store import sql

    gateway.upgrade()
    store.open_database(load(gateway.path).database.url)
    with store.write_transaction():
        for pid, age in ((1111, dt.timedelta(hours=2)), (2222, dt.timedelta(days=2))):
            at = sql.ts(store.utcnow() - age)
            sql.run(
                "INSERT INTO serve_heartbeat (host, pid, started_at, beat_at, worker, listener)"
                " VALUES ('old-host', ?, ?, ?, 'running', 'x')",
                pid, at, at,
            )  # fmt: skip
    store.close()
    assert re.search(r"last heartbeat 720\d s ago, pid 1111 on old-host", gateway.run("status").stderr)
    gateway.start()
    done = gateway.run("status", "--json")
    assert done.returncode == 0, done.stderr
    processes = json.loads(done.stdout)["serve"]["processes"]
    assert gateway.process is not None
    assert [(p["pid"], p["alive"]) for p in processes] == [(gateway.process.pid, True), (1111, False)]
