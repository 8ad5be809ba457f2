"""Nodes: an inbox, ``servers`` parallel workers with a service time, handlers by message kind, and the
crash / recover / pause / resume life cycle.

Semantics (see docs/architecture.md, "Faults"):

- **crash**: the node is down. Arrivals are dropped (``node_down``); the inbox, the work in service and
  the node's volatile state are lost (``crash_lost``). Nothing is sent from a down node.
- **recover**: the node is up again with an empty inbox and fresh workers; ``on_recover`` callbacks run
  (clients use them to re-establish consumers and subscriptions). ``on_crash`` callbacks run at a crash
  (a broker uses them to notice a consumer's connection dropping).
- **pause**: the process is frozen (think SIGSTOP) but its host is alive: arrivals still queue in the inbox,
  nothing is processed, work in service is suspended with its remaining time, state is kept.
- **resume**: processing continues where it stopped.

A node without a service time (``service=None``) hands each arrival to its handler at once, with no
SimPy process involved; a node with one queues arrivals for its workers. Control traffic (acks, flow
control, registrations) is handled on arrival either way: it belongs to the messaging library, not to
the application's workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import simpy
from simpy.events import Initialize

from sim.context import SimContext
from sim.distributions import Distribution
from sim.message import Message

__all__ = ["Handler", "Node", "NodeStatistics", "Transport"]

Handler = Callable[[Message], None]


class Transport(Protocol):
    """What a node needs from the network."""

    def send(self, msg: Message) -> None: ...

    def set_node_up(self, node_id: str, up: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeStatistics:
    """Snapshot of a node."""

    id: str
    up: bool
    paused: bool
    received: int
    processed: int
    dropped: int
    crash_lost: int
    queued: int
    in_service: int
    crashes: int
    wait_total: float
    busy_time: float


class Node:
    """A host that receives, processes and sends messages.

    Parameters
    ----------
    ctx : SimContext
    id : str
        Node id in the topology.
    transport : Transport
        The network (``send``, ``set_node_up``).
    servers : int
        Parallel workers.
    service : Distribution or None
        Processing time per message (seconds); ``None`` means none (handlers run on arrival).
    role : str
        The node's role from the topology (``host``, ``broker``, ...).
    """

    def __init__(
        self,
        ctx: SimContext,
        id: str,
        transport: Transport,
        *,
        servers: int = 1,
        service: Distribution | None = None,
        role: str = "host",
    ) -> None:
        self.ctx = ctx
        self.id = id
        self.transport = transport
        self.servers = servers
        self.service = service
        self.role = role
        self.handlers: dict[str, Handler] = {}
        self.on_recover: list[Callable[[], None]] = []
        self.on_crash: list[Callable[[], None]] = []
        self.cost: Callable[[Message], float] | None = None
        """Optional per-message service time (seconds) used instead of sampling ``service``."""
        self.volatile: dict[str, Any] = {}
        self.up = True
        self.paused = False
        self.inbox = simpy.Store(ctx.env)
        self._held: deque[Message] = deque()
        self._workers: list[simpy.Process] = []
        self._serving: list[Message | None] = []
        self._resumed = ctx.env.event()
        self.stream = ctx.rng.stream(f"service:{id}")
        self._arrived: dict[int, float] = {}
        self._generation = 0
        self.received = self.processed = self.dropped = self.crash_lost = self.crashes = 0
        self.wait_total = 0.0
        self.busy_time = 0.0

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(msg)`` for each processed message of ``kind``."""
        self.handlers[kind] = handler

    def start(self) -> None:
        """Start the worker processes (nodes with a service time only)."""
        if self.service is not None and not self._workers:
            self._serving = [None] * self.servers
            self._generation += 1
            gen = self._generation
            self._workers = [self.ctx.env.process(self._serve(i, gen)) for i in range(self.servers)]

    # -- traffic -------------------------------------------------------------------------------
    def send(self, msg: Message) -> None:
        """Send ``msg`` from this node (dropped as ``node_down`` while the node is down)."""
        if not self.up:
            self.ctx.drop(msg, "node_down", self.id)
            return
        self.transport.send(msg)

    def receive(self, msg: Message) -> None:
        """An arrival from the network."""
        if not self.up:
            self.dropped += 1
            self.ctx.drop(msg, "node_down", self.id)
            return
        self.received += 1
        if msg.control and not self.paused:  # acks and flow control are the client library's, not the app's
            self._dispatch(msg)
        elif self.service is not None:
            self._arrived[id(msg)] = self.ctx.env.now
            self.inbox.put(msg)
        elif self.paused:
            self._held.append(msg)
        else:
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        self.processed += 1
        handler = self.handlers.get(msg.kind)
        if handler is None:
            self.ctx.drop(msg, "no_handler", self.id)
        else:
            handler(msg)

    def _serve(self, slot: int, gen: int) -> Any:
        env = self.ctx.env
        try:
            while True:
                if gen != self._generation:
                    return  # a crash replaced this worker before it first ran
                if self.paused:
                    yield self._resumed
                try:
                    with self.inbox.get() as req:
                        msg = yield req
                except simpy.Interrupt as irq:
                    if irq.cause != "pause":
                        raise
                    continue
                self.wait_total += env.now - self._arrived.pop(id(msg), env.now)
                self._serving[slot] = msg
                cost, service = self.cost, self.service
                remaining = cost(msg) if cost is not None else service.sample(self.stream)  # type: ignore[union-attr]
                self.busy_time += remaining
                while remaining > 0:
                    began = env.now
                    try:
                        yield env.timeout(remaining)
                        remaining = 0.0
                    except simpy.Interrupt as irq:
                        if irq.cause != "pause":
                            raise
                        remaining -= env.now - began
                        yield self._resumed
                self._serving[slot] = None
                self._dispatch(msg)
        except simpy.Interrupt:
            return  # crashed: crash() already accounted for the inbox and the work in service

    # -- life cycle ----------------------------------------------------------------------------
    def crash(self) -> None:
        """Go down: drop arrivals, lose the inbox, work in service and volatile state."""
        if not self.up:
            return
        self.up = False
        self.crashes += 1
        lost = list(self.inbox.items) + [m for m in self._serving if m is not None] + list(self._held)
        self.inbox.items.clear()
        self._held.clear()
        self._arrived.clear()
        for msg in lost:
            self.crash_lost += 1
            self.ctx.drop(msg, "crash_lost", self.id)
        self._generation += 1
        self._interrupt("crash")
        self._workers = []
        self._serving = []
        self.volatile.clear()
        self.paused = False
        self._wake()
        self.transport.set_node_up(self.id, False)
        for callback in list(self.on_crash):
            callback()

    def recover(self) -> None:
        """Come back up with an empty inbox and fresh workers, then run ``on_recover`` callbacks."""
        if self.up:
            return
        self.up = True
        self.transport.set_node_up(self.id, True)
        self.start()
        for callback in list(self.on_recover):
            callback()

    def pause(self) -> None:
        """Freeze processing; arrivals queue, work in service keeps its remaining time."""
        if not self.up or self.paused:
            return
        self.paused = True
        self._interrupt("pause")

    def _interrupt(self, cause: str) -> None:
        # A worker that has not run yet (started this instant) checks the flags itself when it starts;
        # an interrupt thrown into an unstarted generator could not be caught.
        for proc in self._workers:
            if proc.is_alive and not isinstance(proc.target, Initialize):
                proc.interrupt(cause)

    def resume(self) -> None:
        """Continue processing after :meth:`pause`."""
        if not self.paused:
            return
        self.paused = False
        self._wake()
        while self._held and not self.paused and self.up:
            self._dispatch(self._held.popleft())

    def _wake(self) -> None:
        self._resumed.succeed()
        self._resumed = self.ctx.env.event()

    def statistics(self) -> NodeStatistics:
        """A frozen snapshot of the node's counters."""
        return NodeStatistics(
            id=self.id,
            up=self.up,
            paused=self.paused,
            received=self.received,
            processed=self.processed,
            dropped=self.dropped,
            crash_lost=self.crash_lost,
            queued=len(self.inbox.items) + len(self._held),
            in_service=sum(m is not None for m in self._serving),
            crashes=self.crashes,
            wait_total=self.wait_total,
            busy_time=self.busy_time,
        )
