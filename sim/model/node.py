"""Nodes: an inbox, ``servers`` parallel workers with a service time, handlers by message kind, and the
crash / recover / pause / resume life cycle.

Semantics (see docs/architecture.md, "Faults"):

- **crash**: the node is down. Arrivals are dropped (``node_down``); the inbox, the work in service and
  the node's volatile state are lost (``crash_lost``). Nothing is sent from a down node.
- **recover**: the node is up again with an empty inbox and fresh workers; ``on_recover`` callbacks run
  (clients use them to re-establish consumers and subscriptions). ``on_crash`` callbacks run at a crash
  (a broker uses them to notice a consumer's connection dropping).
- **pause**: the process is frozen (think SIGSTOP) but its host is alive: arrivals still queue in the inbox,
  nothing is processed, work in service is suspended with its remaining time, state is kept, and what the
  node would send (its producer's messages, retransmissions) waits until it resumes.
- **resume**: processing continues where it stopped.

A node without a service time (``service=None``) hands each arrival to its handler at once; a node with one
queues arrivals for its ``servers``. Servers are driven by events, not processes: starting a service
schedules one completion event with a callback, which hands the message to its handler and starts the next
— a crash or a pause bumps a generation counter so that completions already scheduled are ignored (no ghost
worker can survive a crash). Control traffic (acks, flow
control, registrations) is handled on arrival either way: it belongs to the messaging library, not to
the application's workers.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sim.core.context import SimContext
from sim.core.distributions import Distribution
from sim.core.message import Message

__all__ = ["MessageHandler", "Node", "NodeStatistics", "Transport"]

MessageHandler = Callable[[Message], object]
"""Called with each processed message of its kind (any return value is ignored)."""


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
        self.handlers: dict[str, MessageHandler] = {}
        self.on_recover: list[Callable[[], None]] = []
        self.on_crash: list[Callable[[], None]] = []
        self.on_resume: list[Callable[[], None]] = []
        self.cost: Callable[[Message], float] | None = None
        """Optional per-message service time (seconds) used instead of sampling ``service``."""
        self.volatile: dict[str, Any] = {}
        self.up = True
        self.paused = False
        self.stream = ctx.rng.stream(f"service:{id}")
        self._inbox: deque[tuple[Message, float]] = deque()  # waiting for a server, with arrival time
        self._held: deque[Message] = deque()  # arrivals held while paused (no service time)
        self._outbox: deque[Message] = deque()  # sends held while paused
        self._serving: dict[int, tuple[Message, float]] = {}  # token -> (message, end of service)
        self._suspended: list[tuple[Message, float]] = []  # paused work: (message, remaining time)
        self._tokens = itertools.count()
        self._generation = 0  # a crash or pause invalidates the completions already scheduled
        self._done_cb: Callable[[Any], None] = self._done
        self.received = self.processed = self.dropped = self.crash_lost = self.crashes = 0
        self.wait_total = 0.0
        self.busy_time = 0.0
        """Server-seconds of service begun (a service counts in full when it starts)."""
        self.busy_undone = 0.0
        """Server-seconds of service begun but never done: the part cut off by crashes."""
        self.window_busy: tuple[float, float] | None = None
        """(server-seconds of service done, seconds) over the measured window, once it has closed."""

    def on(self, kind: str, handler: MessageHandler) -> None:
        """Call ``handler(msg)`` for each processed message of ``kind``."""
        self.handlers[kind] = handler

    def start(self) -> None:
        """Begin serving whatever waits (kept for symmetry: servers are driven by events, not processes)."""
        self._next()

    # -- traffic -------------------------------------------------------------------------------
    def send(self, msg: Message) -> None:
        """Send ``msg`` from this node (dropped as ``node_down`` while the node is down)."""
        if not self.up:
            self.ctx.drop(msg, "node_down", self.id)
            return
        if self.paused:  # a stopped process sends nothing: what it would send waits for the resume
            self._outbox.append(msg)
            return
        self.transport.send(msg)  # the network's send of the moment (cut-through or hop by hop)

    def receive(self, msg: Message) -> None:
        """An arrival from the network."""
        if not self.up:
            self.dropped += 1
            self.ctx.drop(msg, "node_down", self.id)
            return
        self.received += 1
        # acks and flow control are the client library's, not the app's workers': handled on arrival
        if not msg.control and self.service is not None:
            self._inbox.append((msg, self.ctx.env.now))
            if len(self._serving) < self.servers and not self.paused:
                self._next()
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

    # -- the servers: one scheduled completion per message in service, no process --------------------------
    def _next(self) -> None:
        """Start service for waiting messages while a server is free."""
        inbox, serving = self._inbox, self._serving
        env = self.ctx.env
        while inbox and len(serving) < self.servers and not self.paused and self.up:
            msg, arrived = inbox.popleft()
            now = env.now
            self.wait_total += now - arrived
            cost = self.cost
            duration = cost(msg) if cost is not None else self.service.sample(self.stream)  # type: ignore[union-attr]
            self.busy_time += duration
            self._begin(msg, duration)

    def _begin(self, msg: Message, duration: float) -> None:
        token = next(self._tokens)
        self._serving[token] = (msg, self.ctx.env.now + duration)
        self.ctx.call_later(duration, self._done_cb, (token, self._generation))

    def _done(self, event: Any) -> None:
        token, generation = event._value
        if generation != self._generation:
            return  # the node crashed or paused meanwhile
        msg, _ = self._serving.pop(token)
        self._dispatch(msg)
        self._next()

    # -- life cycle ----------------------------------------------------------------------------
    def crash(self) -> None:
        """Go down: drop arrivals, lose the inbox, work in service and volatile state."""
        if not self.up:
            return
        self.up = False
        self.crashes += 1
        self._generation += 1
        now = self.ctx.env.now
        self.busy_undone += sum(end - now for _, end in self._serving.values())
        self.busy_undone += sum(remaining for _, remaining in self._suspended)
        lost = [m for m, _ in self._inbox] + [m for m, _ in self._serving.values()]
        lost += [m for m, _ in self._suspended] + list(self._held) + list(self._outbox)
        self._outbox.clear()
        self._inbox.clear()
        self._serving.clear()
        self._suspended.clear()
        self._held.clear()
        for msg in lost:
            self.crash_lost += 1
            self.ctx.drop(msg, "crash_lost", self.id)
        self.volatile.clear()
        self.paused = False
        self.transport.set_node_up(self.id, False)
        for callback in list(self.on_crash):
            callback()

    def recover(self) -> None:
        """Come back up with an empty inbox, then run ``on_recover`` callbacks."""
        if self.up:
            return
        self.up = True
        self.transport.set_node_up(self.id, True)
        for callback in list(self.on_recover):
            callback()

    def pause(self) -> None:
        """Freeze processing; arrivals queue, work in service keeps its remaining time."""
        if not self.up or self.paused:
            return
        self.paused = True
        self._generation += 1
        now = self.ctx.env.now
        self._suspended = [(msg, end - now) for msg, end in self._serving.values()]
        self._serving.clear()

    def resume(self) -> None:
        """Continue processing after :meth:`pause`."""
        if not self.paused:
            return
        self.paused = False
        suspended, self._suspended = self._suspended, []
        for msg, remaining in suspended:
            self._begin(msg, remaining)
        self._next()
        while self._held and not self.paused and self.up:  # what arrived meanwhile (acks too) first
            self._dispatch(self._held.popleft())
        while self._outbox and not self.paused and self.up:
            self.transport.send(self._outbox.popleft())
        callbacks, self.on_resume = self.on_resume, []  # one-shot: each waits for this resume only
        for callback in callbacks:
            callback()

    # -- figures -------------------------------------------------------------------------------
    def busy_so_far(self) -> float:
        """Server-seconds of service done up to now: ``busy_time`` counts a service in full when it starts,
        so the part of the work in service (or suspended by a pause) not yet done, and the part a crash
        cut off, are taken off."""
        now = self.ctx.env.now
        ahead = sum(end - now for _, end in self._serving.values())
        ahead += sum(remaining for _, remaining in self._suspended)
        return self.busy_time - self.busy_undone - ahead

    def utilization(self) -> float:
        """Busy fraction of the servers: over the measured window when :attr:`window_busy` is set (by
        :class:`sim.run.stability.Window`), else from time 0 to now (0 at time 0 or without a service
        time)."""
        if self.window_busy is not None:
            busy, span = self.window_busy
            return busy / (span * self.servers)
        now = self.ctx.env.now
        return self.busy_so_far() / (now * self.servers) if now > 0 and self.service is not None else 0.0

    @property
    def backlog(self) -> int:
        """Messages waiting in the inbox for a server (or held while paused)."""
        return len(self._inbox) + len(self._held)

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
            queued=len(self._inbox) + len(self._held),
            in_service=len(self._serving) + len(self._suspended),
            crashes=self.crashes,
            wait_total=self.wait_total,
            busy_time=self.busy_time,
        )
