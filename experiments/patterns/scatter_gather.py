"""Scatter-gather, written as SimPy processes: a caller asks ``n`` workers and waits for the first ``k``
replies, or gives up after ``timeout``.

A plug-in: the scenario names it as ``pattern = "../patterns/scatter_gather.py:ScatterGather"``. Callers
are the workload's producers; each message of the shared workload starts a call (in a process of its own,
``node.fork``), which sends a request to ``n`` of the workload's consumers (taking turns, from the one the
workload picked) and waits for replies with ``simpy.AnyOf``. A worker computes its node's service time (or
``work``) per request on one of its workers and replies.

The operation is a call: complete at the ``k``-th reply, failed (``timeout``) if fewer came in time. The
requests and replies it did not need are *superseded* once it completed (``Operation.supersedable``): a
request lost to a crashed worker is no loss when the other workers answered.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from sim.core.distributions import Distribution, from_spec
from sim.core.errors import SimError
from sim.core.units import parse_duration
from sim.patterns.base import Measure, Operation
from sim.patterns.process import TIMEOUT, App, NodeHandle, ProcessPattern

Process = Generator[simpy.Event, Any, None]


class ScatterGather(ProcessPattern):
    """Each call asks ``n`` workers (0: all the consumers) and completes with the first ``k`` replies."""

    name = "scatter_gather"
    operation = Operation(
        "a call that got k replies within its timeout",
        app_kinds=("request",),
        supersedable=("request", "reply"),
    )
    measures = (
        Measure("calls", "count", "calls", "calls started (whole run)"),
        Measure("gathered", "count", "calls", "calls that got k replies in time"),
        Measure("spare_replies", "count", "replies", "replies that came after their call had ended"),
    )
    # options: the keys of the scenario's [scatter_gather] table, with their defaults
    n: int = 0  # workers asked per call (0: every consumer)
    k: int = 1  # replies a call waits for
    timeout: str | float = "100ms"
    work: Any = None  # a time per request ("2ms", {dist = ...}); default: the worker node's service time

    wait: float  # the timeout in seconds, and the work as a distribution (set by validate)
    work_time: Distribution | None

    def validate(self) -> None:
        for key, least in (("n", 0), ("k", 1)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise SimError(key, value, f"a whole number >= {least}")
        if self.n and self.k > self.n:
            raise SimError("k", self.k, f"at most n ({self.n})")
        self.wait = parse_duration(self.timeout, "timeout")
        if self.wait <= 0:
            raise SimError("timeout", self.timeout, "a duration > 0")
        self.work_time = None if self.work is None else from_spec(self.work, "work")

    def start(self, app: App) -> None:
        self.app = app
        n = self.n or len(app.consumers)
        if n > len(app.consumers) or self.k > n:
            raise SimError(f"{self.name}.n", n, f"at most the {len(app.consumers)} consumers, and >= k")
        for node_id in app.producers:
            app.spawn(node_id, self.caller)
        for node_id in app.consumers:
            for _ in range(app.node(node_id).servers):
                app.spawn(node_id, self.worker)

    def caller(self, node: NodeHandle) -> Process:
        while True:
            job = yield node.arrival()
            node.fork(self.call, job)  # calls overlap: each waits in its own process

    def call(self, node: NodeHandle, job: Any) -> Process:
        workers = self.app.consumers
        n = self.n or len(workers)
        first = workers.index(job.consumer)
        asked = [workers[(first + i) % len(workers)] for i in range(n)]
        op = node.begin()
        self.app.count("calls")
        waiting = [
            node.request(w, job.at, timeout=self.wait, size=job.size, op=op, created_at=job.at) for w in asked
        ]
        replies = 0
        while waiting and replies < self.k:
            fired = yield simpy.AnyOf(node.env, waiting)
            for event in fired:
                waiting.remove(event)
                replies += fired[event] is not TIMEOUT
        if replies >= self.k:
            node.complete(op)
            self.app.count("gathered")
        else:
            node.fail(op, "timeout")
        for event in waiting:  # replies still due go to nobody: count those that come
            if event.callbacks is None:  # came at the same instant as the k-th, after it
                self._late(event)
            else:
                event.callbacks.append(self._late)

    def _late(self, event: simpy.Event) -> None:
        if event.value is not TIMEOUT:
            self.app.count("spare_replies")

    def worker(self, node: NodeHandle) -> Process:
        while True:
            request = yield node.receive("request")
            if self.work_time is not None:
                yield node.compute(self.work_time)
            elif node.service is not None:
                yield node.compute()
            node.reply(request, node.id, size=64)
