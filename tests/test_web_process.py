"""The desk inside ``serve`` runs in a child process at a lower CPU priority (issue 15:
agents browsing must not slow the listener's intake), and to its users it is the same
desk: on the address serve prints (port 0 included), with serve's /metrics, stopped by
serve's SIGTERM, never outliving serve however serve ends."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from mailgate.web.process import WEB_NICE
from tests.conftest import open_gateway
from tests.relay import free_port
from tests.support import config_data, load_config, write_config
from tests.test_worker import alive, gone_within


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own test server
        return answer.status, answer.read().decode()


def serve_with_desk(tmp_path: Path, database_url: str, serve_in_thread: Any) -> Any:
    """serve in a thread, its listener and its desk on free ports."""
    data = config_data(
        tmp_path, database_url, {"listener": {"port": 0}, "web": {"listen": "127.0.0.1:0"}}
    )
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    return serve_in_thread(ctx, imap=False)


def test_the_desk_of_serve_is_a_child_process_that_yields_the_cpu_and_shows_serves_metrics(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    running = serve_with_desk(tmp_path, database_url, serve_in_thread)
    desk = running.gateway.web
    assert desk.pid != os.getpid() and alive(desk.pid)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, desk.pid) == min(19, mine + WEB_NICE)
    status, body = fetch(desk.url + "login")
    assert status == 200 and 'name="csrf"' in body
    running.gateway.metrics.received.labels("smtp", "created").inc(3)
    status, body = fetch(desk.url + "metrics")  # counted in serve, shown by the desk
    assert (
        status == 200
        and 'mailgate_mails_received_total{result="created",source="smtp"} 3.0' in body
    )
    running.stop()
    assert gone_within([desk.pid], 5) == []


def start_serve(
    tmp_path: Path, database_url: str, workers: int = 0
) -> tuple[subprocess.Popen[str], int, str]:
    """A real ``mailgate serve`` with the desk on port 0: the process, the desk's pid, its URL."""
    data = config_data(
        tmp_path,
        database_url,
        {"listener": {"port": free_port()}, "web": {"listen": "127.0.0.1:0", "workers": workers}},
    )
    path = write_config(tmp_path / "mailgate.toml", data)
    open_gateway(load_config(path))
    server = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "serve", "--no-imap"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert server.stderr is not None
    pid, url = 0, ""
    deadline = time.monotonic() + 60
    while not url and time.monotonic() < deadline:
        line = server.stderr.readline()
        assert line, "serve ended before it said where the desk is"
        if found := re.search(r"web\.process\b.*\bpid=(\d+)", line):
            pid = int(found.group(1))
        if found := re.search(r"serve\.started\b.*\bweb=(\S+)", line):
            url = found.group(1)
    assert pid and url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/")
    return server, pid, url


def policies(pid: int) -> set[int]:
    """The scheduling policy of each thread of ``pid`` (``/proc``: field 41 of stat)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            found.add(int((task / "stat").read_text().rsplit(")", 1)[1].split()[38]))
    return found


def test_the_desk_of_serve_runs_only_on_cpu_that_intake_leaves_idle(
    tmp_path: Path, database_url: str
) -> None:
    # At nice +10 the desk still took the CPU from intake's short wake-ups (issue 15):
    # every thread of the desk, those that serve pages included, runs under SCHED_IDLE;
    # serve and its ingest worker keep the normal policy.
    server, pid, url = start_serve(tmp_path, database_url)
    try:
        assert all(fetch(url + "login")[0] == 200 for _ in range(3))  # pages still answer
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert policies(pid) == {os.SCHED_IDLE}
        assert policies(server.pid) == {os.SCHED_OTHER}
        worker = [c for c in children_of(server.pid, python_only=False) if c != pid]
        assert worker and all(policies(c) == {os.SCHED_OTHER} for c in worker)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def test_sigterm_to_serve_stops_the_desk_with_it(tmp_path: Path, database_url: str) -> None:
    server, pid, url = start_serve(tmp_path, database_url)
    try:
        assert fetch(url + "login")[0] == 200
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        assert gone_within([pid], 5) == []
    finally:
        server.kill()
        server.wait(10)


def test_the_desk_does_not_outlive_serve_killed_with_kill_9(
    tmp_path: Path, database_url: str
) -> None:
    server, pid, url = start_serve(tmp_path, database_url)
    try:
        assert fetch(url + "login")[0] == 200
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        assert gone_within([pid], 8) == []
    finally:
        server.kill()
        server.wait(10)


def test_the_desk_has_a_helper_on_its_port_that_ends_with_serve_however_serve_ends(
    tmp_path: Path, database_url: str
) -> None:
    # [web] workers = 2 (inside serve the default is 1: intake first): a second process
    # serves the desk's port, so pages use both cores; it yields the CPU as the desk does.
    import threading

    server, pid, url = start_serve(tmp_path, database_url, workers=2)
    lines: list[str] = []
    assert server.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(server.stderr.readline, "")))
    reader.start()
    try:
        helpers: list[int] = []
        deadline = time.monotonic() + 60
        while not helpers and time.monotonic() < deadline:
            time.sleep(0.2)
            helpers = children_of(pid)
        assert len(helpers) == 1 and alive(helper := helpers[0])
        assert os.getpriority(os.PRIO_PROCESS, helper) == os.getpriority(os.PRIO_PROCESS, pid)
        assert policies(helper) == {os.SCHED_IDLE}  # born of the desk, it yields as it does
        assert all(fetch(url + "login")[0] == 200 for _ in range(6))
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        assert gone_within([pid, helper], 15) == []
    finally:
        server.kill()
        server.wait(10)
        reader.join(10)


def children_of(pid: int, python_only: bool = True) -> list[int]:
    """The processes ``pid`` started by multiprocessing (not the resource tracker);
    ``python_only=False``: every child."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in command or not python_only:
                found.append(int(child))
    return found


def test_a_desk_that_dies_is_started_again_and_a_reload_renews_it_with_the_new_config(
    tmp_path: Path, database_url: str
) -> None:
    import threading
    import tomllib
    import urllib.parse

    from mailgate.admin import logins

    server, pid, url = start_serve(tmp_path, database_url)
    lines: list[str] = []
    assert server.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(server.stderr.readline, "")))
    reader.start()

    def new_desk(after: int, within: float) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in lines[after:]:
                if found := re.search(r"web\.renewed\b.*\bpid=(\d+)", line):
                    return int(found.group(1))
            time.sleep(0.2)
        raise AssertionError("no new desk:\n" + "".join(lines))

    def log_in(account: str) -> str:
        import http.cookiejar

        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        with browser.open(url + "login", timeout=10) as answer:
            token = re.search(r'name="csrf" value="([^"]+)"', answer.read().decode())
        assert token
        form = urllib.parse.urlencode(
            {"account": account, "password": "pw", "csrf": token.group(1)}
        ).encode()
        with browser.open(url + "login", data=form, timeout=10) as answer:
            return str(answer.read().decode())

    try:
        config_path = tmp_path / "mailgate.toml"
        ctx = open_gateway(load_config(config_path))
        logins.set_password(ctx.config, "bob", "pw")
        os.kill(pid, signal.SIGKILL)  # the desk dies (the OOM killer); serve lives on
        revived = new_desk(0, 30)
        assert revived != pid and alive(revived)
        assert fetch(url + "login")[0] == 200  # the same address
        seen = len(lines)
        data = tomllib.loads(config_path.read_text())
        data["agent"] = [a for a in data["agent"] if a["key"] != "bob"]
        for team in data["team"]:
            team["members"] = [k for k in team.get("members", []) if k != "bob"]
        write_config(config_path, data)
        server.send_signal(signal.SIGHUP)
        renewed = new_desk(seen, 60)
        assert renewed != revived and gone_within([revived], 15) == []
        assert "That account and password do not match." in log_in("bob")  # the new config
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        reader.join(10)


def test_mailgate_web_serves_from_two_processes_and_spreads_keep_alive_connections(
    tmp_path: Path, database_url: str
) -> None:
    # `mailgate web` with [web] workers = 2 (its default): a helper beside it, and a keep-alive
    # connection ends after its first answer past a second, so that clients which never
    # pause (a proxy's pool) spread over both processes instead of staying on one.
    import http.client

    port = free_port()
    data = config_data(tmp_path, database_url, {"web": {"listen": f"127.0.0.1:{port}"}})
    path = write_config(tmp_path / "mailgate.toml", data)
    open_gateway(load_config(path))
    server = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(path), "web"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "the desk is on" in server.stdout.readline()
        (helper,) = children_of(server.pid)
        assert policies(helper) == {os.SCHED_OTHER}  # no listener to give way to
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        started, closed = time.monotonic(), []
        while time.monotonic() - started < 3 and not closed:
            connection.request("GET", "/login")
            answer = connection.getresponse()
            assert answer.status == 200
            answer.read()
            if answer.getheader("connection", "").lower() == "close":
                closed.append(time.monotonic() - started)
        assert closed and 1.0 <= closed[0] < 3
        server.terminate()
        assert server.wait(30) == 0
        assert gone_within([helper], 5) == []
    finally:
        server.kill()
        server.wait(10)
