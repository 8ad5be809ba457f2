"""Run one measurement: the open-loop publisher, an adapter's consumers, an optional fault schedule.

:func:`measure` drives any :class:`Adapter` (``rabbitmq``, ``mqtt``, ``nats``) on one asyncio loop: the
publisher sleeps until each message's due time (:func:`sim.real.load.schedule`), stamps it, hands it to the
adapter and never waits for the broker (a publish that returns an awaitable, a confirm, is awaited in its own
task); consumers stamp deliveries from the adapter's callbacks. After the last message it waits until every
sent message is delivered or ``drain`` seconds pass. Faults (``kill``, ``restart``, ``pause``, ``resume``)
run at their times on the :class:`~sim.real.servers.Server`, off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from sim.core.errors import SimError
from sim.real.load import CpuWatch, LoadSpec, Measurement, Recorder, load_average, schedule
from sim.real.servers import Server

__all__ = ["FAULT_ACTIONS", "Adapter", "adapter_for", "measure"]

FAULT_ACTIONS = ("kill", "restart", "bounce", "pause", "resume")


class Adapter(Protocol):
    """A broker client: connects, declares, consumes into the recorder, publishes."""

    version: str

    async def open(self, rec: Recorder) -> None: ...

    def publish(self, i: int, body: bytes) -> Awaitable[Any] | None: ...

    async def close(self) -> None: ...


def adapter_for(spec: LoadSpec) -> Adapter:
    """The adapter of ``spec.broker`` (its client library is imported here, from the ``[real]`` extra)."""
    try:
        if spec.broker == "rabbitmq":
            from sim.real.rabbitmq import RabbitMQ

            return RabbitMQ(spec)
        if spec.broker == "mosquitto":
            from sim.real.mqtt import Mqtt

            return Mqtt(spec)
        if spec.broker == "nats":
            from sim.real.nats import JetStream

            return JetStream(spec)
    except ImportError as exc:
        raise SimError(
            "broker", spec.broker, f"a client library installed: pip install 'sim[real]' ({exc})"
        ) from None
    raise SimError("broker", spec.broker, "rabbitmq, mosquitto or nats")


def measure(
    spec: LoadSpec,
    *,
    version: str = "unknown",
    server: Server | None = None,
    faults: Sequence[tuple[float, str]] = (),
) -> Measurement:
    """Run ``spec`` against the broker at ``spec.url``; ``faults`` are ``(seconds from start, action)`` on
    ``server``. Returns the :class:`Measurement` (not yet written)."""
    for at, action in faults:
        if action not in FAULT_ACTIONS or server is None:
            raise SimError(
                "fault", action, "kill, restart, bounce, pause or resume, with a server this run started"
            )
        if not 0 <= at <= spec.duration:
            raise SimError("fault.at", at, f"a time within the run (0 to {spec.duration:g} s)")
    adapter = adapter_for(spec)
    due = schedule(spec)
    rec = Recorder(len(due), int(len(due) - spec.train))
    applied: list[tuple[str, float, float]] = []
    load_start = load_average()
    watch = CpuWatch(server.pids if server is not None else tuple)  # the broker's CPU is not another's
    watch.start()
    errors = asyncio.run(_drive(adapter, spec, rec, due, server, list(faults), applied))
    extra: dict[str, Any] = {
        "others_cpu": watch.stop(),  # cores other processes used meanwhile: see load.busy
        "load_average": {"start": load_start, "end": load_average()},  # 1 min, information only
        "faults": [list(f) for f in faults],
        "faults_applied": [list(f) for f in sorted(applied, key=lambda a: a[1])],
        "publish_errors": errors,
        "stray": rec.stray,
    }
    return Measurement.from_run(spec, rec, version or adapter.version, **extra)


async def _drive(
    adapter: Adapter,
    spec: LoadSpec,
    rec: Recorder,
    due: Any,
    server: Server | None,
    faults: list[Any],
    applied: list[Any],
) -> int:
    await adapter.open(rec)
    errors = 0
    tasks: set[asyncio.Task[Any]] = set()
    pad = bytes(spec.size - 8)

    async def confirm(i: int, waiting: Awaitable[Any]) -> None:
        nonlocal errors
        try:
            await waiting
        except Exception:  # a nack, a closed channel, a broker down: the publisher knows it failed
            errors += 1
            return
        if spec.confirms or spec.qos > 0:  # otherwise the awaitable is only the write to the socket
            rec.confirmed(i)

    loop = asyncio.get_running_loop()
    rec.start_ns = start = time.monotonic_ns() + 50_000_000
    fault_tasks = [
        asyncio.create_task(_fault(loop, server, start, start + int(at * 1e9), a, applied))
        for at, a in faults
    ]
    try:
        for i, d in enumerate(due.tolist()):
            target = start + int(d * 1e9)
            wait = target - time.monotonic_ns()
            if wait > 0:
                await asyncio.sleep(wait / 1e9)
            elif i % 32 == 0:
                await asyncio.sleep(0)  # behind schedule: still let the consumers run now and then
            rec.sent(i, target)
            try:
                waiting = adapter.publish(i, i.to_bytes(8, "big") + pad)
            except Exception:
                errors += 1
                continue
            if waiting is not None:
                task = asyncio.create_task(confirm(i, waiting))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        deadline = time.monotonic() + spec.drain
        while (rec.pending() or tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.gather(*fault_tasks)
    finally:
        for t in (*tasks, *fault_tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(adapter.close(), 10)
    return errors


async def _fault(
    loop: asyncio.AbstractEventLoop,
    server: Server | None,
    start: int,
    at_ns: int,
    action: str,
    done: list[Any],
) -> None:
    await asyncio.sleep(max(0, at_ns - time.monotonic_ns()) / 1e9)
    assert server is not None
    began = time.monotonic_ns()
    await loop.run_in_executor(None, getattr(server, action))
    done.append((action, (began - start) / 1e9, (time.monotonic_ns() - start) / 1e9))
