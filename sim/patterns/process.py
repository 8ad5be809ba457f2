"""Patterns written as plain SimPy processes: a process-style application API on top of the fast core.

The built-in patterns are callbacks on the fast core. A user's pattern can instead be a few generator
functions, one per node role, written as SimPy users write behaviour::

    class Echo(ProcessPattern):
        name = "echo"

        def producer(self, node):
            while True:
                job = yield node.arrival()               # the shared workload's next message
                node.send(job.consumer, "hello", size=job.size, created_at=job.at)

        def consumer(self, node):
            while True:
                msg = yield node.receive("data")         # the next message for the application
                yield node.compute()                     # hold one of the node's workers for a service time

Everything a process does goes through the same paths as the built-ins: a send is an
:meth:`~sim.patterns.base.Outbox.offer` handed to a :class:`~sim.patterns.base.Delivery` (so obligations,
acknowledgements, retransmissions, deduplication, the ledger and the ``op_*`` figures work unchanged), a
publish goes through a :class:`~sim.patterns.client.BrokerClient`, and a compute is served by the node's own
workers (its inbox, ``servers``, pause and crash; it counts in the node's utilization).

Semantics, in the words of :mod:`sim.model.node`:

- A message is *delivered* (its ledger row) when a worker of the receiving node hands it to the
  application, as for the built-ins; it then waits in the node's mailbox until a process takes it with
  :meth:`NodeHandle.receive`. Arrivals and computes share the node's workers, first come first served; an
  arrival takes no time of its own (a node without a service time gets zero-cost workers).
- **crash**: the node's processes are interrupted (``simpy.Interrupt`` with cause :data:`CRASH`, which a
  process may catch to run ``finally`` blocks; one that goes on anyway gets no more messages, arrivals or
  workers, and a down node sends nothing), its mailbox, the arrivals
  waiting for it and its volatile :attr:`NodeHandle.memory` are lost; computes in service are lost with the
  node's work in service (traced as a drop of message 0). Requests it was waiting for and operations it had
  begun fail with ``crash_lost``. :attr:`NodeHandle.disk` survives.
- **recover**: every process spawned on the node starts again from the top, with an empty mailbox.
- **pause**: computes and sends wait for the resume (the node's own rules); timers (``sleep``, request
  timeouts) run on.

Operations (the ``op_*`` figures): by default every message is its own operation, complete when delivered.
:meth:`NodeHandle.group` gives an id that several messages share (complete when all are delivered, failed
if one is lost); :meth:`NodeHandle.begin` gives one that the process ends itself with
:meth:`NodeHandle.complete` or :meth:`NodeHandle.fail` (the drain waits for it). A call made with
:meth:`NodeHandle.request` is its own operation unless given ``op``. An operation appears in the figures once
one of its messages is offered.

Cost: a process-style pattern does more Python work per message than a built-in (a SimPy process resume
per step, a mailbox); benchmarks/bench_process.py measures how much, and the built-ins are untouched.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections import deque
from collections.abc import Callable, Generator, Mapping
from functools import partial
from typing import Any, ClassVar

import simpy

from sim.core.context import SimContext
from sim.core.distributions import Constant, Distribution
from sim.core.errors import SimError
from sim.core.message import DATA_KINDS, Message
from sim.model.broker.broker import Broker
from sim.model.node import Node
from sim.patterns.base import GUARANTEES, Delivery, Measure, Operation, Outbox, WorldView, check_keys
from sim.patterns.client import BrokerClient, connect

__all__ = [
    "CRASH",
    "DEFAULT_SIZE",
    "TIMEOUT",
    "App",
    "Arrival",
    "NodeHandle",
    "ProcessFn",
    "ProcessPattern",
    "Received",
]

DEFAULT_SIZE = 256.0
"""Bytes of a message sent without ``size``."""

CRASH = "crash"
"""The cause of the ``simpy.Interrupt`` a process receives when its node crashes."""

ProcessFn = Callable[..., Generator[simpy.Event, Any, Any]]
"""A generator function run as a process on a node: ``fn(node, *args)``."""

_COMPUTE = 0  # message id of a compute job: real messages have ids >= 1, control traffic < 0


class _Timeout:
    """The value a :meth:`NodeHandle.request` yields when no reply came in time (false in a test)."""

    _instance: _Timeout | None = None

    def __new__(cls) -> _Timeout:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "TIMEOUT"


TIMEOUT = _Timeout()
"""What ``yield node.request(...)`` gives when the reply did not come within ``timeout``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Arrival:
    """One message of the shared workload for a producer: its intended send time ``at`` (s), ``size``
    (bytes) and the ``consumer`` node the workload picked."""

    at: float
    size: float
    consumer: str


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """A message handed to a process: who sent it, what it carries, and the operation it belongs to.

    ``topic`` is the queue or topic of a message from the broker (``""`` for a direct one); ``op`` is the
    operation id of its ledger row (pass it on with ``op=`` to make a reply or a next step part of it).
    """

    id: int
    kind: str
    src: str
    payload: Any
    size: float
    topic: str
    op: int
    created_at: float
    message: Message = dataclasses.field(repr=False, compare=False)


class _Call:
    """An outstanding :meth:`NodeHandle.request`."""

    __slots__ = ("done", "event", "op", "owns_op", "row")

    def __init__(self, event: simpy.Event, row: int, op: int, owns_op: bool) -> None:
        self.event = event
        self.row = row
        self.op = op
        self.owns_op = owns_op
        self.done = False


class NodeHandle:
    """What a process sees of its node: receive, compute, send, request, sleep, broker clients, operations.

    One per node of a run (``app.node(id)``); the first argument of every process function.
    """

    def __init__(self, app: App, node: Node) -> None:
        self.app = app
        self.node = node
        self.id = node.id
        self.env = app.ctx.env
        self.disk: dict[str, Any] = {}
        """The node's durable state: survives a crash (a database, a transaction log)."""
        self._ctx = app.ctx
        self._service = node.service  # the node's service time, the default of compute()
        self._roles: list[tuple[ProcessFn, tuple[Any, ...]]] = []
        self._procs: dict[simpy.Process, None] = {}  # live processes, in the order they started
        self._dead: set[simpy.Process] = set()  # processes a crash interrupted (they may catch it)
        self._generation = 0  # a crash ends the processes of the generation before it
        self._box: deque[Received] = deque()
        self._getters: list[tuple[simpy.Event, str | None, str | None]] = []
        self._arrivals: deque[Arrival] = deque()
        self._arrival_getter: simpy.Event | None = None
        self._calls: dict[int, _Call] = {}  # request message id -> call
        self._open_ops: set[int] = set()
        self._outboxes: dict[str, Outbox] = {}
        self._client: BrokerClient | None = None
        self._manual: set[str] = set()  # queues and topics consumed with manual acks
        self._last: Message | None = None
        if node.cost is not None:
            raise SimError("node", node.id, "a node that runs no broker (it already has a cost rule)")
        node.cost = _cost
        if node.service is None:  # zero-cost workers hand arrivals over and serve computes
            node.service = Constant(0.0)
        for kind in DATA_KINDS:
            node.on(kind, self._arrive)
        node.on("ack", app._on_ack)
        node.on("nack", app._on_nack)
        node.on_crash.append(self._crashed)
        node.on_recover.append(self._recovered)

    # -- state -----------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Simulated time, in seconds."""
        return float(self.env.now)

    @property
    def up(self) -> bool:
        """Whether the node is up (not crashed)."""
        return self.node.up

    @property
    def service(self) -> Distribution | None:
        """The node's own service time (None if it has none): what :meth:`compute` takes by default."""
        return self._service

    @property
    def servers(self) -> int:
        """The node's workers (parallel computes)."""
        return self.node.servers

    @property
    def memory(self) -> dict[str, Any]:
        """The node's volatile state: lost at a crash."""
        memory: dict[str, Any] = self.node.volatile.setdefault("process", {})
        return memory

    # -- processes -------------------------------------------------------------------------------
    def spawn(self, fn: ProcessFn, *args: Any) -> None:
        """Run ``fn(self, *args)`` as a process on this node now, and again after every recovery."""
        self._roles.append((fn, args))
        if self.node.up:
            self._start(fn, args)

    def fork(self, fn: ProcessFn, *args: Any) -> simpy.Process:
        """Run ``fn(self, *args)`` as a one-off process on this node (a crash interrupts it; a recovery
        does not start it again). Use it for work that runs alongside, such as one call of many."""
        proc = self.env.process(self._drive(fn, args, self._generation))
        self._procs[proc] = None
        return proc

    def _start(self, fn: ProcessFn, args: tuple[Any, ...]) -> None:
        self._procs[self.env.process(self._drive(fn, args, self._generation))] = None

    def _drive(
        self, fn: ProcessFn, args: tuple[Any, ...], generation: int
    ) -> Generator[simpy.Event, Any, None]:
        if generation != self._generation:  # the node crashed before the process took its first step
            return
        body = fn(self, *args)
        if not inspect.isgenerator(body):
            raise SimError(
                "process", getattr(fn, "__qualname__", repr(fn)), "a generator function (a def with yield)"
            )
        me = self.env.active_process
        try:
            yield from body
        except simpy.Interrupt as exc:
            if exc.cause is not CRASH:
                raise
        finally:
            self._procs.pop(me, None)  # type: ignore[arg-type]

    def _crashed(self) -> None:
        self._generation += 1
        self._box.clear()
        self._getters.clear()
        self._arrivals.clear()
        self._arrival_getter = None
        procs, self._procs = self._procs, {}
        for proc in procs:
            if proc.is_alive and not isinstance(proc.target, simpy.events.Initialize):
                proc.interrupt(CRASH)
                self._dead.add(proc)
        ctx = self._ctx
        calls, self._calls = self._calls, {}
        for call in calls.values():
            ctx.pending -= 1
            if call.owns_op:
                ctx.ledger.ops.fail(call.op, "crash_lost", 1)
        ops, self._open_ops = self._open_ops, set()
        for op in sorted(ops):
            ctx.pending -= 1
            ctx.ledger.ops.fail(op, "crash_lost")

    def _recovered(self) -> None:
        for fn, args in self._roles:
            self._start(fn, args)

    # -- waiting ---------------------------------------------------------------------------------
    def _ghost(self) -> bool:
        """Whether the calling process is one a crash interrupted and that caught the interrupt: it must
        not take messages, arrivals or workers from the processes of the recovered node (the events it
        gets never fire)."""
        return self.env.active_process in self._dead

    def sleep(self, delay: float) -> simpy.Event:
        """An event ``delay`` seconds from now."""
        return self.env.timeout(delay)

    def compute(self, duration: float | Distribution | None = None) -> simpy.Event:
        """An event that fires when one of the node's workers has worked ``duration`` seconds for this
        process: a number, a :class:`~sim.core.distributions.Distribution` (sampled from the node's
        ``service:<node>`` stream), or by default the node's own service time. It waits for a free worker
        first (first come first served with arrivals), stops while the node is paused, and never fires if
        the node crashes."""
        if duration is None:
            if self._service is None:
                raise ValueError(f"node {self.id} has no service time: give compute() a duration")
            duration = self._service
        seconds = duration if isinstance(duration, int | float) else duration.sample(self.node.stream)
        if seconds < 0:
            raise ValueError(f"compute({seconds!r}): a duration >= 0")
        done = self.env.event()
        if self._ghost():
            return done
        job = Message(_COMPUTE, "event", self.id, self.id, 0.0, self.env.now, payload=(done, float(seconds)))
        self.node.receive(job)
        return done

    def arrival(self) -> simpy.Event:
        """An event yielding the shared workload's next :class:`Arrival` for this node (a producer), at its
        intended send time; arrivals a busy process has not taken yet wait, in order. After the workload's
        last message it never fires."""
        self.app._start_workload()
        event = self.env.event()
        if self._ghost():
            return event
        if self._arrivals:
            event.succeed(self._arrivals.popleft())
        else:
            self._arrival_getter = event
        return event

    def _arrive_job(self, job: Arrival) -> None:
        getter = self._arrival_getter
        if getter is not None:
            self._arrival_getter = None
            getter.succeed(job)
        else:
            self._arrivals.append(job)

    def receive(self, kind: str | None = None, *, topic: str | None = None) -> simpy.Event:
        """An event yielding the next :class:`Received` message of ``kind`` (``data``, ``event``,
        ``request``; any by default) and, from a broker, of queue or topic ``topic``. Replies go to the
        :meth:`request` that waits for them, never here."""
        event = self.env.event()
        if self._ghost():
            return event
        box = self._box
        for i, got in enumerate(box):
            if (kind is None or got.kind == kind) and (topic is None or got.topic == topic):
                del box[i]
                event.succeed(got)
                return event
        self._getters.append((event, kind, topic))
        return event

    def _hand(self, got: Received) -> None:
        getters = self._getters
        for i, (event, kind, topic) in enumerate(getters):
            if (kind is None or got.kind == kind) and (topic is None or got.topic == topic):
                del getters[i]
                event.succeed(got)
                return
        self._box.append(got)

    def _arrive(self, msg: Message) -> None:
        """A worker hands a message to the application (or a compute job is done)."""
        if msg.id == _COMPUTE:
            done = msg.payload[0]
            if not done.triggered:
                done.succeed()
            return
        app, ctx = self.app, self._ctx
        payload = msg.payload
        if msg.kind == "reply":
            ctx.ledger.deliver(msg.ob, ctx.env.now, self.id)  # type: ignore[arg-type]
            self._answer(msg)
            return
        if msg.kind == "request":
            ctx.ledger.deliver(msg.ob, ctx.env.now, self.id)  # type: ignore[arg-type]
        elif self._client is not None and msg.src == self._client.broker.id:
            delivery = app.broker_delivery()
            if msg.topic in self._manual and msg.reliable:  # the process acknowledges it: ack()
                msg.reliable = False
                fresh = delivery.receive(self.node, msg)
                msg.reliable = True
            else:
                fresh = delivery.receive(self.node, msg)
            if not fresh:
                return
        elif not app._delivery_of(msg).receive(self.node, msg):
            return  # a duplicate suppressed by deduplication
        ob = msg.ob
        op = int(ctx.ledger.op[ob]) if type(ob) is int and ob >= 0 else -1
        self._hand(Received(msg.id, msg.kind, msg.src, payload, msg.size, msg.topic, op, msg.created_at, msg))

    # -- sending ---------------------------------------------------------------------------------
    def _outbox(self, guarantee: str) -> Outbox:
        outbox = self._outboxes.get(guarantee)
        if outbox is None:
            delivery = self.app._delivery(guarantee)
            outbox = self._outboxes[guarantee] = Outbox(self._ctx, self.node, partial(self._via, delivery))
        return outbox

    def _via(self, delivery: Delivery, msg: Message) -> None:
        self._last = msg
        delivery.send(self.node, msg)

    def _offer(self, outbox: Outbox, kind: str, dst: str, topic: str, **kw: Any) -> Message | None:
        self._last = None
        wait = outbox.offer(kind, dst, topic, **kw)
        if wait is not None:  # only a broker client blocks; direct sends never do
            raise RuntimeError("a direct send was asked to wait")
        return self._last

    def send(
        self,
        dst: str,
        payload: Any = None,
        *,
        size: float | None = None,
        kind: str = "data",
        guarantee: str | None = None,
        op: int = -1,
        created_at: float | None = None,
    ) -> int | None:
        """Send ``payload`` to node ``dst`` (one obligation) under ``guarantee`` (default: the scenario's
        ``delivery.guarantee``); returns the message id, or None from a down node (it sends nothing).

        ``kind`` is ``data`` or ``event``; ``op`` makes the row part of an operation (:meth:`group`,
        :meth:`begin`); ``created_at`` is the intended send time (default: now), from which latency counts.
        """
        if kind not in ("data", "event"):
            raise ValueError(f"send(kind={kind!r}): data or event (requests go through request())")
        outbox = self._outbox(guarantee or self.app.guarantee)
        msg = self._offer(
            outbox,
            kind,
            dst,
            "",
            created_at=self.env.now if created_at is None else created_at,
            size=DEFAULT_SIZE if size is None else size,
            op=op,
            payload=payload,
        )
        if msg is None:
            return None
        if guarantee is not None and guarantee != self.app.guarantee:
            self.app._sent_with[msg.id] = guarantee
        return msg.id

    def request(
        self,
        dst: str,
        payload: Any = None,
        *,
        timeout: float,
        size: float | None = None,
        op: int = -1,
        created_at: float | None = None,
    ) -> simpy.Event:
        """Send a request to ``dst``; the event yields the :class:`Received` reply, or :data:`TIMEOUT` if
        none came within ``timeout`` seconds (a later reply is delivered but goes to nobody).

        A request is sent once (a retry is another request); a drop loses it. Without ``op`` the call is
        its own operation: complete when the reply comes, failed when it times out (with the request's
        loss reason, or ``timeout``). With ``op`` the request and its reply join that operation and the
        process decides its end.
        """
        if timeout <= 0:
            raise ValueError(f"request(timeout={timeout!r}): a duration > 0")
        event = self.env.event()
        msg = self._offer(
            self._outbox("request"),
            "request",
            dst,
            "",
            created_at=self.env.now if created_at is None else created_at,
            size=DEFAULT_SIZE if size is None else size,
            op=op,
            payload=payload,
        )
        if msg is None:  # a down node asks nothing (its process is being interrupted)
            return event
        ctx = self._ctx
        row = msg.ob
        assert type(row) is int
        self._calls[msg.id] = _Call(event, row, int(ctx.ledger.op[row]), op < 0)
        ctx.pending += 1
        ctx.call_later(timeout, self._expire, msg.id)
        return event

    def _expire(self, timer: Any) -> None:
        call = self._calls.pop(timer._value, None)
        if call is None:
            return  # answered, or the node crashed meanwhile
        ledger = self._ctx.ledger
        self._ctx.pending -= 1
        reason = ledger.last_reason(call.row) or "timeout"
        ledger.lose(call.row, reason)
        if call.owns_op:
            ledger.ops.fail(call.op, reason, 1)
        call.event.succeed(TIMEOUT)

    def _answer(self, reply: Message) -> None:
        request_id, payload = reply.payload
        call = self._calls.pop(request_id, None)
        if call is None:
            return  # late: the request timed out (or its node crashed) before
        ctx = self._ctx
        ctx.pending -= 1
        if call.owns_op:
            ctx.ledger.ops.complete(call.op, ctx.env.now)
        got = Received(
            reply.id, "reply", reply.src, payload, reply.size, "", call.op, reply.created_at, reply
        )
        call.event.succeed(got)

    def reply(self, request: Received, payload: Any = None, *, size: float | None = None) -> int | None:
        """Answer ``request`` (sent once, part of the request's operation); returns the message id."""
        if request.kind != "request":
            raise ValueError(f"reply() answers a request, not a {request.kind}")
        msg = self._offer(
            self._outbox("request"),
            "reply",
            request.src,
            "",
            created_at=self.env.now,
            size=DEFAULT_SIZE if size is None else size,
            op=request.op,
            payload=(request.id, payload),
        )
        return None if msg is None else msg.id

    # -- broker clients --------------------------------------------------------------------------
    def _broker_client(self) -> BrokerClient:
        client = self._client
        if client is None:
            app = self.app
            client = self._client = connect(app.world, app.broker(), app.broker_delivery(), (self.id,))[
                self.id
            ]
            self.node.on("ack", app._on_ack)  # acks of direct sends and publisher confirms alike
            self.node.on("nack", app._on_nack)
        return client

    def publish(
        self,
        name: str,
        payload: Any = None,
        *,
        size: float | None = None,
        op: int = -1,
        created_at: float | None = None,
    ) -> simpy.Event:
        """Publish to the broker's topic ``name`` (one obligation per subscriber at publish time) or, if no
        one subscribed to such a topic, its queue ``name`` (one obligation). The event fires at once, or
        when the broker unblocks a publisher it blocked (``broker.overflow = "block"``): yield it."""
        client = self._broker_client()
        broker = client.broker
        subscribers = broker.topics.get(name)
        if subscribers is None:
            broker.declare_queue(name)
        outbox = Outbox(self._ctx, self.node, client.publish)
        wait = outbox.offer(
            "data",
            broker.id,
            name,
            self.env.now if created_at is None else created_at,
            DEFAULT_SIZE if size is None else size,
            to="" if subscribers is None else tuple(subscribers),
            op=op,
            payload=payload,
        )
        if wait is None:
            wait = self.env.event()
            wait.succeed()
        return wait

    def consume(self, queue: str, *, manual_ack: bool = False) -> simpy.Event:
        """An event yielding the next message of broker queue ``queue`` (this node becomes one of its
        competing consumers on the first call). With ``manual_ack`` the broker waits for :meth:`ack`
        (``broker.consumer_ack`` decides whether it waits at all)."""
        client = self._broker_client()
        if queue not in client.registrations:
            client.broker.declare_queue(queue)
            if manual_ack:
                self._manual.add(queue)
            client.consume(queue)
        return self.receive(topic=queue)

    def subscribe(self, topic: str, *, manual_ack: bool = False) -> simpy.Event:
        """An event yielding the next message published to ``topic`` (subscribed on the first call, with
        the broker's ``durable`` setting; the subscription exists from that moment)."""
        client = self._broker_client()
        key = f"{topic}/{self.id}"
        if key not in client.registrations:
            durable = client.broker.config.durable
            client.broker.declare_subscription(topic, self.id, durable=durable)
            if manual_ack:
                self._manual.add(topic)
            client.subscribe(topic, durable=durable)
        return self.receive(topic=topic)

    def ack(self, got: Received) -> None:
        """Acknowledge a message taken with ``manual_ack`` (the broker then forgets it)."""
        if got.message.reliable and self.node.up:
            self.app.broker_delivery().acknowledge(self.node, got.message)

    # -- operations ------------------------------------------------------------------------------
    def group(self) -> int:
        """A new operation id for messages sent with ``op=``: complete when all its rows are delivered,
        failed if one is lost."""
        return self._ctx.next_id()

    def begin(self) -> int:
        """A new operation that this node ends with :meth:`complete` or :meth:`fail` (the drain waits
        for it; a crash of the node fails it with ``crash_lost``)."""
        op = self._ctx.next_id()
        self._open_ops.add(op)
        self._ctx.pending += 1
        return op

    def complete(self, op: int) -> None:
        """Operation ``op`` (from :meth:`begin`) did what was asked, now."""
        if op in self._open_ops:
            self._open_ops.discard(op)
            self._ctx.pending -= 1
            self._ctx.ledger.ops.complete(op, self.env.now)

    def fail(self, op: int, reason: str = "timeout", attempts: int = 0) -> None:
        """Operation ``op`` (from :meth:`begin`) is given up for ``reason`` (a ledger reason) after
        ``attempts`` tries (0: not counted)."""
        if op in self._open_ops:
            self._open_ops.discard(op)
            self._ctx.pending -= 1
            self._ctx.ledger.ops.fail(op, reason, attempts)


def _cost(msg: Message) -> float:
    """The service time of what a process-pattern node's workers take: a compute job's duration; an
    arrival takes none of its own."""
    if msg.id == _COMPUTE:
        seconds: float = msg.payload[1]
        return seconds
    return 0.0


class App:
    """One run of a :class:`ProcessPattern`: its nodes, deliveries, workload and counts.

    Parameters
    ----------
    pattern : ProcessPattern
    world : WorldView
    """

    def __init__(self, pattern: ProcessPattern, world: WorldView) -> None:
        self.pattern = pattern
        self.world = world
        self.ctx: SimContext = world.ctx
        self.env = world.ctx.env
        self.producers: tuple[str, ...] = tuple(dict.fromkeys(world.workload.producers))
        """The workload's producers, without repeats."""
        self.consumers: tuple[str, ...] = tuple(dict.fromkeys(world.workload.consumers))
        """The workload's consumers, without repeats."""
        self.guarantee = world.delivery.guarantee
        self.counts: dict[str, float] = {m.name: 0.0 for m in pattern.measures}
        self._handles: dict[str, NodeHandle] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._broker_delivery: Delivery | None = None
        self._sent_with: dict[int, str] = {}  # message id -> guarantee, for sends off the default
        self._workload_started = False
        world.reporters.append(self.report)

    def node(self, node_id: str) -> NodeHandle:
        """The handle of node ``node_id`` (made on first use)."""
        handle = self._handles.get(node_id)
        if handle is None:
            handle = self._handles[node_id] = NodeHandle(self, self.world.node(node_id))
        return handle

    def spawn(self, node_id: str, fn: ProcessFn, *args: Any) -> None:
        """Run ``fn(handle, *args)`` as a process on node ``node_id``, again after each recovery."""
        self.node(node_id).spawn(fn, *args)

    def count(self, name: str, amount: float = 1) -> None:
        """Add to the pattern's ``count`` measure ``name``."""
        if name not in self.counts:
            raise KeyError(f"{name!r} is not one of the pattern's measures {tuple(self.counts)}")
        self.counts[name] += amount

    def report(self) -> dict[str, float]:
        """The raw figures of the pattern's measures: its counts, then :meth:`ProcessPattern.figures`."""
        figures = dict(self.counts)
        figures.update(self.pattern.figures(self))
        return figures

    def broker(self) -> Broker:
        """The scenario's broker (made on first use)."""
        return self.world.broker()

    # -- deliveries ------------------------------------------------------------------------------
    def _delivery(self, guarantee: str) -> Delivery:
        """The sender for ``guarantee``; ``request``: requests and replies, sent once (no ack, no dedup)."""
        delivery = self._deliveries.get(guarantee)
        if delivery is None:
            if guarantee == "request":
                delivery = Delivery(self.ctx, self.world.delivery, reliable=False, dedup=False)
            elif guarantee in GUARANTEES:
                config = dataclasses.replace(self.world.delivery, guarantee=guarantee)
                delivery = Delivery(self.ctx, config)
            else:
                raise ValueError(f"guarantee {guarantee!r}: one of {', '.join(GUARANTEES)}")
            self._deliveries[guarantee] = delivery
        return delivery

    def _delivery_of(self, msg: Message) -> Delivery:
        return self._delivery(self._sent_with.get(msg.id, self.guarantee))

    def broker_delivery(self) -> Delivery:
        """The delivery of every publish and broker delivery (publisher confirms per ``[broker]``)."""
        if self._broker_delivery is None:
            confirms = self.broker().config.confirms
            self._broker_delivery = Delivery(self.ctx, self.world.delivery, reliable=confirms)
        return self._broker_delivery

    def _on_ack(self, ack: Message) -> None:
        for delivery in self._deliveries.values():
            delivery.on_ack(ack)
        if self._broker_delivery is not None:
            self._broker_delivery.on_ack(ack)

    def _on_nack(self, nack: Message) -> None:
        self._on_ack(nack)

    # -- workload --------------------------------------------------------------------------------
    def _start_workload(self) -> None:
        if not self._workload_started:
            self._workload_started = True
            self.world.workload.start(self._emit)

    def _emit(self, producer: str, created_at: float, size: float, consumer: int) -> None:
        handle = self._handles.get(producer)
        if handle is not None and handle.node.up:  # a down node runs no application
            handle._arrive_job(Arrival(created_at, size, self.world.workload.consumers[consumer]))


class ProcessPattern:
    """Base class of a pattern written as processes (it satisfies :class:`~sim.patterns.base.Pattern`).

    Subclasses set ``name`` and, if they like, ``operation`` and ``measures`` (``count`` measures), declare
    their options as annotated class attributes with defaults (``fanout: int = 3``, as in a dataclass: the
    keys the pattern's table accepts; :meth:`validate` checks the values), and write generator methods
    ``producer(node)`` and ``consumer(node)``, which :meth:`start` runs on the workload's producers and
    consumers, or override :meth:`start` to place processes themselves (``app.spawn(node_id, fn, *args)``).
    """

    name: ClassVar[str] = ""
    measures: ClassVar[tuple[Measure, ...]] = ()
    operation: ClassVar[Operation] = Operation("a message delivered to its recipient")

    def __init__(self, **options: Any) -> None:
        defaults = self.option_defaults()
        check_keys(options, tuple(defaults))
        self.options = {**copy.deepcopy(defaults), **options}
        for key, value in self.options.items():
            setattr(self, key, value)

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """The options the subclasses declare (annotated class attributes with a value, ``ClassVar`` ones
        aside) and their defaults, base classes first."""
        found: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if not issubclass(klass, ProcessPattern) or klass is ProcessPattern:
                continue
            own = vars(klass)
            for key, note in own.get("__annotations__", {}).items():
                text = note if isinstance(note, str) else repr(note)
                if key in own and not text.replace("typing.", "").startswith("ClassVar"):
                    found[key] = own[key]
        return found

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ProcessPattern:
        """The pattern from its scenario table: unknown keys refused, then :meth:`validate`."""
        pattern = cls(**dict(options))
        pattern.validate()
        return pattern

    def validate(self) -> None:
        """Raise :class:`~sim.core.errors.SimError` (the key, its value, what is allowed) for a bad option."""

    def install(self, world: WorldView) -> None:
        """Make the run's :class:`App` and :meth:`start` the processes."""
        for measure in self.measures:
            if measure.kind != "count":
                raise SimError(f"{self.name}.measures", measure.name, "count measures (app.count)")
        self.start(App(self, world))

    def start(self, app: App) -> None:
        """Spawn ``producer`` on each of the workload's producers and ``consumer`` on each consumer
        (either may be left out)."""
        producer = getattr(self, "producer", None)
        consumer = getattr(self, "consumer", None)
        if producer is not None:
            for node_id in app.producers:
                app.spawn(node_id, producer)
        if consumer is not None:
            for node_id in app.consumers:
                app.spawn(node_id, consumer)

    def figures(self, app: App) -> Mapping[str, float]:
        """Counts computed after the run (say, from the nodes' ``disk``), for declared ``count`` measures."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({args})"
