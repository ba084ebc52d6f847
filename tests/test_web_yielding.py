"""While mail is arriving, serve's desk keeps to its share of one CPU (issue 15,
``[web] intake_share``): pages take turns and wait, intake keeps its rate; with no
mail arriving the desk is not held back at all."""

from __future__ import annotations

import asyncio
import multiprocessing
import smtplib
import time
from pathlib import Path
from typing import Any

import pytest

from mailgate.web.yielding import QUIET_SECONDS, MailClock, Pace
from tests.support import compose
from tests.test_web_process import serve_with_desk


class Pages:
    """An ASGI application whose requests say when they started and wait to be let go."""

    def __init__(self, cpu_seconds: float = 0.0) -> None:
        self.started: list[str] = []
        self.go: dict[str, asyncio.Event] = {}
        self.cpu_seconds = cpu_seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        name = scope["path"]
        self.started.append(name)
        if self.cpu_seconds:  # a page's Python
            until = time.process_time() + self.cpu_seconds
            while time.process_time() < until:
                pass
        if name in self.go:
            await self.go[name].wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})


async def get(app: Any, path: str) -> int:
    answers: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        answers.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    return int(answers[0]["status"])


def test_while_mail_arrives_requests_start_spaced_and_a_slow_one_holds_nobody_up() -> None:
    async def run() -> float:
        pages, clock = Pages(), MailClock()
        pages.go["/slow"] = asyncio.Event()  # an upload or a download that takes its time
        app = Pace(pages, clock, share=0.05)  # a request taken as 10 ms: one start per 0.2 s
        clock.mark()
        slow = asyncio.ensure_future(get(app, "/slow"))
        await asyncio.sleep(0)
        began = time.monotonic()
        assert await asyncio.wait_for(get(app, "/quick"), 10) == 200  # /slow still open
        waited = time.monotonic() - began
        assert not slow.done()
        pages.go["/slow"].set()
        assert await slow == 200
        return waited

    assert asyncio.run(run()) >= 0.15


def test_a_request_that_fails_or_gives_up_does_not_stop_the_next() -> None:
    class Failing(Pages):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/broken":
                raise RuntimeError("a page that fails")
            await super().__call__(scope, receive, send)

    async def run() -> int:
        pages, clock = Failing(), MailClock()
        app = Pace(pages, clock, share=0.05)
        clock.mark()
        with pytest.raises(RuntimeError):
            await get(app, "/broken")
        waiting = asyncio.ensure_future(get(app, "/gone"))  # its client leaves while it waits
        await asyncio.sleep(0.05)
        waiting.cancel()
        return await asyncio.wait_for(get(app, "/next"), 10)

    assert asyncio.run(run()) == 200


def test_beyond_the_most_waiting_a_request_is_told_to_come_back() -> None:
    async def run() -> list[int]:
        pages, clock = Pages(), MailClock()
        app = Pace(pages, clock, share=0.001)  # ten seconds between starts
        app.most_waiting = 2
        clock.mark()
        assert await get(app, "/first") == 200
        waiting = [asyncio.ensure_future(get(app, f"/{i}")) for i in range(2)]
        await asyncio.sleep(0.05)
        answers = [await asyncio.wait_for(get(app, "/third"), 5)]
        for task in waiting:
            task.cancel()
        return answers

    assert asyncio.run(run()) == [503]


def test_with_no_mail_arriving_pages_are_not_held_back() -> None:
    async def run() -> list[str]:
        pages, clock = Pages(), MailClock()  # never marked: no mail
        pages.go["/slow"] = asyncio.Event()
        app = Pace(pages, clock, share=0.05)
        slow = asyncio.ensure_future(get(app, "/slow"))
        await asyncio.sleep(0.05)
        assert await asyncio.wait_for(get(app, "/quick"), 5) == 200  # while /slow is open
        pages.go["/slow"].set()
        assert await slow == 200
        return pages.started

    assert asyncio.run(run()) == ["/slow", "/quick"]


def test_while_mail_arrives_the_desk_keeps_to_its_share_of_the_cpu() -> None:
    share, page_cpu, count = 0.25, 0.04, 12

    async def run() -> tuple[float, float]:
        pages, clock = Pages(cpu_seconds=page_cpu), MailClock()
        app = Pace(pages, clock, share=share)
        began, cpu = time.monotonic(), time.process_time()
        for _ in range(count):
            clock.mark()  # mail keeps arriving
            await get(app, "/queue")
        return time.monotonic() - began, time.process_time() - cpu

    wall, cpu = asyncio.run(run())
    # Unpaced the pages would take their CPU, 0.48 s. Paced, the first few are spaced
    # by the first guess (10 ms a page); from then on by what they cost, 40 ms ÷ 0.25:
    # the whole CPU ÷ share but for the first window, some 1.4 s. A loaded machine
    # only makes it longer.
    assert cpu >= count * page_cpu
    assert wall >= 0.5 * count * page_cpu / share


def test_the_pace_ends_a_moment_after_the_last_mail() -> None:
    async def run() -> float:
        pages, clock = Pages(cpu_seconds=0.01), MailClock()
        app = Pace(pages, clock, share=0.005)
        clock.mark()
        await get(app, "/queue")  # the next start two seconds later, if mail kept coming
        clock.value.value = time.monotonic() - QUIET_SECONDS - 0.01  # the last mail was then
        began = time.monotonic()
        await get(app, "/queue")
        return time.monotonic() - began

    assert asyncio.run(run()) < 1.0


def test_serve_tells_its_desk_when_mail_arrives(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    running = serve_with_desk(tmp_path, database_url, serve_in_thread)
    clock = running.gateway.web.clock
    assert not clock.busy(time.monotonic())
    port = int(running.gateway.server.sockets[0].getsockname()[1])
    before = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("ann@customer.example", ["support@example.org"], compose(subject="Hi"))
    assert clock.value.value >= before
    # the desk's processes read it from memory shared with serve
    context = multiprocessing.get_context("spawn")
    theirs, ours = context.Pipe()
    reader = context.Process(target=read_clock, args=(clock, ours))
    reader.start()
    assert theirs.recv() == clock.value.value
    reader.join(10)
    running.stop()


def read_clock(clock: MailClock, conn: Any) -> None:
    conn.send(clock.value.value)
