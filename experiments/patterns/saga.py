"""A saga, written as SimPy processes: steps on several services, undone by compensations when one fails,
and carried on from a durable log when the orchestrator crashes.

A plug-in: the scenario names it as ``pattern = "../patterns/saga.py:Saga"``. The workload's producers are
orchestrators: each message of the shared workload starts a saga (``node.fork``), which asks each of the
workload's consumers in turn to do its step (``node.request``, one attempt of ``timeout``). If a step gets
no reply, the saga compensates: it asks every service it asked so far, the failed one included (it may have
done the step and lost the reply), to undo, retrying each undo until answered.

State that must survive a crash is kept on ``node.disk``: each service's applied steps, and each
orchestrator's log of the sagas under way. An orchestrator that crashes fails its sagas (``crash_lost``);
when it comes back, it compensates every saga its log still holds. A service remembers the sagas it undid
(``tombstones``), so that a step request that arrives after its compensation is refused instead of
applied; without them such a late step leaves the saga half-applied, and ``inconsistent`` counts it.

The operation is a saga: complete when every step is done, failed when it was compensated. After the run,
``inconsistent`` counts the sagas whose steps are applied at some services and not at others.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import simpy

from sim.core.distributions import Distribution, from_spec
from sim.core.errors import SimError
from sim.core.units import parse_duration
from sim.patterns.base import Measure, Operation
from sim.patterns.process import TIMEOUT, App, NodeHandle, ProcessPattern

Process = Generator[simpy.Event, Any, None]


class Saga(ProcessPattern):
    """Orchestrated sagas over the workload's consumers, with compensation and a durable saga log."""

    name = "saga"
    operation = Operation(
        "a saga whose every step was done (a compensated saga fails)", supersedable=("reply",)
    )
    measures = (
        Measure("sagas", "count", "sagas", "sagas started (whole run)"),
        Measure("committed", "count", "sagas", "sagas whose every step was done"),
        Measure("compensated", "count", "sagas", "sagas undone after a step failed"),
        Measure("resumed", "count", "sagas", "sagas compensated after their orchestrator's crash"),
        Measure("refused_steps", "count", "steps", "late step requests refused by a tombstone"),
        Measure(
            "inconsistent", "count", "sagas", "sagas applied at some services and not others, at the end"
        ),
    )
    # options: the keys of the scenario's [saga] table, with their defaults
    timeout: str | float = "50ms"  # per step request
    step_time: Any = "2ms"  # a service's time per step or undo: a duration or {dist = ...}
    undo_attempts: int = 50
    tombstones: bool = True

    wait: float  # the timeout in seconds, and the step time as a distribution (set by validate)
    step: Distribution

    def validate(self) -> None:
        self.wait = parse_duration(self.timeout, "timeout")
        if self.wait <= 0:
            raise SimError("timeout", self.timeout, "a duration > 0")
        self.step = from_spec(self.step_time, "step_time")
        if not isinstance(self.undo_attempts, int) or self.undo_attempts < 1:
            raise SimError("undo_attempts", self.undo_attempts, "a whole number >= 1")
        if not isinstance(self.tombstones, bool):
            raise SimError("tombstones", self.tombstones, "true or false")

    def start(self, app: App) -> None:
        self.app = app
        for node_id in app.consumers:
            for _ in range(app.node(node_id).servers):
                app.spawn(node_id, self.service)
        for node_id in app.producers:
            app.spawn(node_id, self.orchestrator)

    # -- the orchestrator ------------------------------------------------------------------------------
    def orchestrator(self, node: NodeHandle) -> Process:
        log: dict[int, list[str]] = node.disk.setdefault("log", {})  # saga -> services asked so far
        for saga, asked in sorted(log.items()):  # back from a crash: undo what was under way
            self.app.count("resumed")
            node.fork(self.compensate, saga, list(asked))
        while True:
            job = yield node.arrival()
            node.fork(self.run_saga, job, log)

    def run_saga(self, node: NodeHandle, job: Any, log: dict[int, list[str]]) -> Process:
        saga = node.begin()  # the operation: this process completes or fails it
        self.app.count("sagas")
        asked = log[saga] = []
        for service in self.app.consumers:
            asked.append(service)
            reply = yield node.request(
                service, ("do", saga), timeout=self.wait, size=job.size, op=saga, created_at=job.at
            )
            if reply is TIMEOUT or reply.payload != "done":
                node.fail(saga, "timeout")
                yield from self.compensate(node, saga, asked)
                return
        del log[saga]
        node.complete(saga)
        self.app.count("committed")

    def compensate(self, node: NodeHandle, saga: int, asked: list[str]) -> Process:
        for service in reversed(asked):
            for _ in range(self.undo_attempts):
                reply = yield node.request(service, ("undo", saga), timeout=self.wait, size=64, op=saga)
                if reply is not TIMEOUT:
                    break
        node.disk["log"].pop(saga, None)
        self.app.count("compensated")

    # -- a service --------------------------------------------------------------------------------------
    def service(self, node: NodeHandle) -> Process:
        applied: set[int] = node.disk.setdefault("applied", set())
        undone: set[int] = node.disk.setdefault("undone", set())
        while True:
            request = yield node.receive("request")
            action, saga = request.payload
            yield node.compute(self.step)
            if action == "undo":
                applied.discard(saga)
                if self.tombstones:
                    undone.add(saga)
                node.reply(request, "undone", size=64)
            elif saga in undone:
                self.app.count("refused_steps")
                node.reply(request, "refused", size=64)
            else:
                applied.add(saga)
                node.reply(request, "done", size=64)

    def figures(self, app: App) -> Mapping[str, float]:
        """``inconsistent``: sagas applied at some services and not at others, once the run is over."""
        services = app.consumers
        applied = [app.node(s).disk.get("applied", set()) for s in services]
        seen = set().union(*applied)
        return {"inconsistent": sum(1 for saga in seen if not all(saga in a for a in applied))}
