"""The desk inside ``serve`` works on at most ``SERVE_SLOTS`` pages at once (issue 15):
8 browsers asking back to back must not take the whole process from the listener.
The others wait in the event loop, which goes on; a download gives its slot back when
its response starts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from mailgate.context import Context
from mailgate.web import server


def test_at_most_the_slots_work_at_once_and_the_loop_goes_on() -> None:
    lock = threading.Lock()
    running = [0]
    most = [0]

    def slow(request: Request) -> PlainTextResponse:  # a page: runs in the thread pool
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return PlainTextResponse("page")

    app = server.Bounded(Starlette(routes=[Route("/", slow)]), 2)

    async def main() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://desk") as http:
            answers = await asyncio.gather(*(http.get("/") for _ in range(8)))
        done.set()
        await tick
        assert [a.text for a in answers] == ["page"] * 8
        return ticks

    started = time.monotonic()
    ticks = asyncio.run(main())
    took = time.monotonic() - started
    assert most[0] == 2, most[0]
    assert took >= 0.35, took  # 8 pages of 0.1 s, two at a time
    assert ticks >= 15, ticks  # the loop ran while pages waited for a slot


def test_a_download_gives_its_slot_back_when_its_response_starts() -> None:
    finish = threading.Event()

    def body() -> Iterator[bytes]:
        yield b"first part "
        finish.wait(5)
        yield b"rest"

    def download(request: Request) -> StreamingResponse:
        return StreamingResponse(body(), media_type="application/octet-stream")

    def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("page")

    app = server.Bounded(Starlette(routes=[Route("/file", download), Route("/", page)]), 1)

    async def main() -> str:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://desk") as http,
            http.stream("GET", "/file") as stream,
        ):
            chunks = stream.aiter_bytes()
            assert (await anext(chunks)).startswith(b"first")
            # the one slot is free again while the download goes on
            answer = await asyncio.wait_for(http.get("/"), timeout=3)
            finish.set()
            async for _ in chunks:
                pass
        return answer.text

    assert asyncio.run(main()) == "page"


@pytest.mark.config({"web": {"listen": "127.0.0.1:0"}})
def test_serve_bounds_the_desk_and_the_desk_alone_does_not(ctx: Context) -> None:
    async def apps() -> list[Any]:
        found = []
        for bounded in (True, False):
            running = await server.start(ctx, bounded=bounded)
            found.append(running.server.config.app)
            await running.stop()
        return found

    in_serve, alone = asyncio.run(apps())
    assert isinstance(in_serve, server.Bounded) and in_serve.slots._value == server.SERVE_SLOTS
    assert not isinstance(alone, server.Bounded)
