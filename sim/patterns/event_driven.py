"""Event-driven: an event bus (broker topics) carrying a chain or DAG of handlers.

Each handler consumes events of its own type (a topic named after it), spends its service time, and emits
the event types it lists in ``emits``; producers emit the root events. The default is the chain
``order → payment → inventory → shipping``. An event published to a topic is one obligation per
subscribed handler. A root event's chain completes when every handler downstream of it has processed its
event; ``chain_latency_*`` runs from the root's intended send time to that moment. The root event is the
pattern's operation: every event row of its graph carries the root's id (column ``op``), and its completion
is recorded in the ledger's operation table.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import simpy

from sim.core.distributions import Constant, Distribution, from_spec
from sim.core.errors import SimError
from sim.core.message import Message
from sim.model.node import Node
from sim.patterns.base import Delivery, Measure, Operation, Outbox, WorldView, check_keys
from sim.patterns.client import connect

__all__ = ["EventDriven", "EventHandler"]

DEFAULT_CHAIN = (
    {"name": "order", "emits": ["payment"]},
    {"name": "payment", "emits": ["inventory"]},
    {"name": "inventory", "emits": ["shipping"]},
    {"name": "shipping", "emits": []},
)


@dataclass(frozen=True, slots=True)
class EventHandler:
    """One handler: its event type (``name``), host node (``""``: assigned from the consumers), service
    time (``None``: its node's), and the event types it emits."""

    name: str
    node: str = ""
    service: Distribution | None = None
    emits: tuple[str, ...] = ()


def _handler(spec: object, i: int) -> EventHandler:
    where = f"handlers[{i}]"
    if not isinstance(spec, Mapping):
        raise SimError(where, spec, "a table with name, emits and optionally node and service")
    for key in spec:
        if key not in ("name", "node", "service", "emits"):
            raise SimError(f"{where}.{key}", spec[key], "one of the keys name, node, service, emits")
    name = spec.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise SimError(f"{where}.name", name, "a non-empty handler name without '/'")
    node = spec.get("node", "")
    if not isinstance(node, str):
        raise SimError(f"{where}.node", node, "a node id")
    emits = spec.get("emits", [])
    if (
        not isinstance(emits, Sequence)
        or isinstance(emits, str)
        or not all(isinstance(e, str) for e in emits)
    ):
        raise SimError(f"{where}.emits", emits, "a list of handler names")
    service = spec.get("service")
    dist = None if service is None else from_spec(service, f"{where}.service")
    return EventHandler(name, node, dist, tuple(emits))


@dataclass(frozen=True, slots=True)
class EventDriven:
    """Handlers react to events on a bus and emit further events: a chain or a DAG with fan-out."""

    name: ClassVar[str] = "event_driven"
    measures: ClassVar[tuple[Measure, ...]] = (
        Measure("chains_started", "count", "chains", "root events emitted (whole run)"),
        Measure("chains_completed", "count", "chains", "root events whose every downstream handler finished"),
        Measure(
            "chain_latency",
            "samples",
            "s",
            "time from a root event's intended send to its chain's end",
        ),
    )
    operation: ClassVar[Operation] = Operation(
        "a root event whose whole handler graph completed (every downstream handler processed its event)"
    )
    handlers: tuple[EventHandler, ...] = field(
        default_factory=lambda: tuple(_handler(h, i) for i, h in enumerate(DEFAULT_CHAIN))
    )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> EventDriven:
        check_keys(options, ("handlers",))
        specs = options.get("handlers", DEFAULT_CHAIN)
        if not isinstance(specs, Sequence) or isinstance(specs, str) or not specs:
            raise SimError("handlers", specs, "a non-empty list of handler tables")
        handlers = tuple(_handler(h, i) for i, h in enumerate(specs))
        names = [h.name for h in handlers]
        for i, h in enumerate(handlers):
            if names.count(h.name) > 1:
                raise SimError(f"handlers[{i}].name", h.name, "a name used by one handler only")
            for e in h.emits:
                if e not in names:
                    raise SimError(f"handlers[{i}].emits", e, "names of handlers in this list")
        _check_acyclic(handlers)
        return cls(handlers)

    @property
    def roots(self) -> tuple[str, ...]:
        """Handlers no other handler emits to: the producers' events go to these."""
        emitted = {e for h in self.handlers for e in h.emits}
        return tuple(h.name for h in self.handlers if h.name not in emitted)

    def install(self, world: WorldView) -> None:
        _EventRun(self, world).install()


def _check_acyclic(handlers: tuple[EventHandler, ...]) -> None:
    graph = {h.name: h.emits for h in handlers}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 1:
            cycle = " → ".join([*path[path.index(name) :], name])
            raise SimError("handlers", cycle, "a chain or DAG without cycles")
        if state.get(name) == 2:
            return
        state[name] = 1
        for nxt in graph[name]:
            visit(nxt, [*path, name])
        state[name] = 2

    for name in graph:
        visit(name, [])


class _EventRun:
    def __init__(self, pattern: EventDriven, world: WorldView) -> None:
        self.p = pattern
        self.world = world
        self.ctx = world.ctx
        self.delivery = Delivery(world.ctx, world.delivery, reliable=None)
        self.open: dict[int, list[Any]] = {}  # root id -> [created_at, pending deliveries, events seen]
        self.latencies = array("d")
        self.started = 0

    def install(self) -> None:
        world, workload = self.world, self.world.workload
        broker = world.broker()
        self.delivery = Delivery(self.ctx, world.delivery, reliable=broker.config.confirms)
        consumers = list(dict.fromkeys(workload.consumers))
        hosts: dict[str, str] = {}
        for i, h in enumerate(self.p.handlers):
            hosts[h.name] = h.node or consumers[i % len(consumers)]
            if h.node and h.node not in world.network.graph:
                raise SimError(f"event_driven.handlers[{i}].node", h.node, "a node of the topology")
            if hosts[h.name] == broker.id:
                raise SimError(
                    f"event_driven.handlers[{i}].node", hosts[h.name], "a node other than the broker's"
                )
        self.hosts = hosts
        self.subscribers = {h.name: (hosts[h.name],) for h in self.p.handlers}
        self.fanout = {h.name: sum(len(self.subscribers[e]) for e in h.emits) for h in self.p.handlers}
        nodes = [*workload.producers, *hosts.values()]
        self.clients = connect(world, broker, self.delivery, nodes)
        self.broker_id = broker.id
        self.outboxes = {
            n: Outbox(self.ctx, world.node(n), client.publish) for n, client in self.clients.items()
        }
        durable = broker.config.durable
        for h in self.p.handlers:
            node = world.node(hosts[h.name])
            self._service(node, h)
            client = self.clients[node.id]
            client.on_message("event", self._handle(node))
            broker.declare_subscription(h.name, node.id, durable=durable)
            client.subscribe(h.name, durable=durable)
        self.emits = {h.name: h.emits for h in self.p.handlers}
        world.reporters.append(self.report)
        workload.start(self._emit)

    def _service(self, node: Node, handler: EventHandler) -> None:
        if handler.service is None:
            return
        services: dict[str, Distribution] = node.volatile.setdefault("_event_services", {})
        services[handler.name] = handler.service
        fallback = node.service

        def cost(msg: Message) -> float:
            d = services.get(msg.topic, fallback)
            return d.sample(node.stream) if d is not None else 0.0

        node.cost = cost
        if node.service is None:
            node.service = Constant(0.0)
            node.start()

    def _publish(
        self, node_id: str, topic: str, created_at: float, root: int, size: float
    ) -> simpy.Event | None:
        return self.outboxes[node_id].offer(
            "event",
            self.broker_id,
            topic,
            created_at,
            size,
            to=self.subscribers[topic],
            op=root,
            payload=(root, size),
        )

    def _emit(self, producer: str, created_at: float, size: float, consumer: int) -> simpy.Event | None:
        if not self.world.node(producer).up:
            return None
        roots = self.p.roots
        root_id = self.ctx.next_id()
        self.started += 1
        # [intended send time, handler deliveries still to come, events already counted]
        self.open[root_id] = [created_at, sum(len(self.subscribers[r]) for r in roots), set()]
        wait = None
        for r in roots:
            wait = self._publish(producer, r, created_at, root_id, size) or wait
        return wait

    def _handle(self, node: Node) -> Any:
        def process(msg: Message) -> None:
            root, size = msg.payload
            state = self.open.get(root)
            for nxt in self.emits[msg.topic]:  # a handler that runs twice (at-least-once) emits twice
                self._publish(node.id, nxt, self.ctx.env.now, root, size)
            if state is not None and msg.id not in state[2]:  # ...but its chain counts each event once
                state[2].add(msg.id)
                state[1] += self.fanout[msg.topic] - 1
                if state[1] <= 0:
                    del self.open[root]
                    self.latencies.append(self.ctx.env.now - state[0])
                    self.ctx.ledger.ops.complete(root, self.ctx.env.now)

        return process

    def report(self) -> dict[str, float | Sequence[float]]:
        """The raw figures of :attr:`EventDriven.measures`."""
        return {
            "chains_started": self.started,
            "chains_completed": len(self.latencies),
            "chain_latency": self.latencies,
        }
