"""A small user-space TCP proxy that adds latency between clients and a broker (no netem needed).

:class:`LatencyProxy` listens on a free loopback port and forwards every connection to the broker's port.
Each chunk it reads is held for ``delay`` seconds, then written in order: one way, so a request and its
answer each pay it once. ``delay`` may change while it runs (a latency window); a chunk keeps the delay it
was read with, and order is kept. It runs its own asyncio loop in a thread, so clients on any loop (or
paho's threads) go through it; :meth:`stop` closes every connection and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

from sim.real.servers import free_port

__all__ = ["LatencyProxy"]


class LatencyProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target``, each chunk ``delay`` seconds late, one way."""

    def __init__(self, target: int, delay: float = 0.0) -> None:
        self.target = target
        self.delay = delay
        self.port = free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> LatencyProxy:
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the latency proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._shutdown)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the proxy's own loop ---------------------------------------------------------------------
    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
            self._ready.set()
            loop.run_forever()
        finally:
            for task in self._tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.close()

    def _shutdown(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        assert self._loop is not None
        self._loop.call_later(0.05, self._loop.stop)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                dst.write(data)
                await dst.drain()

        writer_task = asyncio.create_task(release())
        try:
            while True:
                data = await src.read(65536)
                queue.put_nowait((time.monotonic() + self.delay, data))
                if not data:
                    break
            await writer_task
        except (OSError, asyncio.CancelledError):
            writer_task.cancel()
        finally:
            with contextlib.suppress(Exception):
                dst.close()
