"""What every pattern builds on: its view of the world it installs itself into, and delivery guarantees.

A pattern is a small object with a ``name`` and ``install(world)``. It reaches components only
through the :class:`WorldView` — never through globals or other patterns.

Delivery guarantees (per hop of the pattern's own traffic):

- ``at_most_once``: send once; any drop loses the obligation with the drop's reason.
- ``at_least_once``: the receiver acknowledges each copy; the sender retransmits after
  ``ack_timeout * backoff**(attempt-1)`` (capped at ``max_timeout``) until acknowledged or
  ``max_attempts`` is reached, then gives up with the last drop's reason (or ``timeout``). A copy
  that arrives when the application already has the message counts as a duplicate.
- ``effectively_once``: at-least-once plus receiver-side deduplication, so the application sees each
  message once — within the dedup *scope* (``DeliveryConfig.dedup``). ``consumer``: each receiving node
  remembers the message ids it has seen, in volatile memory (a crash forgets them), so a redelivery to
  *another* competing consumer is a duplicate. ``shared``: the consumers share one idempotency store
  keyed by obligation (for a queue, the message, whoever takes it), which survives a consumer's crash.
  The store's lookup is instantaneous: its latency is not modelled.

Every pattern also states its *operation* (:class:`Operation`), what the application asked for; the
``op_*`` figures of a run are computed from it. A pattern's own figures are raw: it records samples and
counts and declares them (:class:`Measure`); :mod:`sim.run.metrics` names and summarizes them.

Every message an application offers (a producer's message, a request, a reply, an event) takes one path,
:meth:`Outbox.offer`: a new message id, its obligation rows in the ledger, the :class:`Message`, the hand-off
to the pattern's sender (a :class:`Delivery` or a broker client) and the backpressure event it may return.
What to offer, to whom and through which sender stays the pattern's decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import simpy

from sim.core.context import SimContext
from sim.core.errors import SimError
from sim.core.message import DATA_KINDS, Message
from sim.core.scheduling import Timeouts
from sim.model.broker.broker import Broker
from sim.model.network import Network
from sim.model.node import Node
from sim.model.workload import Workload

__all__ = [
    "DEDUP_SCOPES",
    "GUARANTEES",
    "MEASURE_KINDS",
    "Delivery",
    "DeliveryConfig",
    "Measure",
    "NodeSend",
    "Operation",
    "Outbox",
    "Pattern",
    "Reporter",
    "Send",
    "WorldView",
    "check_keys",
]

Send = Callable[[Message], "simpy.Event | None"]
"""Hands a message to the network from one node: a :class:`Delivery`'s ``send`` bound to the node, or a
broker client's ``publish``; returns the event a blocked publisher waits on (backpressure), else None."""

NodeSend = Callable[[Node, Message], "simpy.Event | None"]
"""A :data:`Send` that takes the sending node first (:meth:`Delivery.send`); see :class:`Outbox`."""

Reporter = Callable[[], Mapping[str, "float | Sequence[float]"]]
"""Returns a component's raw figures after the run: a number per name, or the samples of a declared
``samples`` :class:`Measure` (summarized by :mod:`sim.run.metrics`)."""

MEASURE_KINDS = ("samples", "count")

GUARANTEES = ("at_most_once", "at_least_once", "effectively_once")
DEDUP_SCOPES = ("consumer", "shared")


@dataclass(frozen=True, slots=True)
class Operation:
    """What one operation of a pattern is: the unit the ``op_*`` figures count.

    An operation's ledger rows carry its id in the ``op`` column. Unless the pattern records how it
    ended (:class:`sim.core.ledger.Operations`), it completes when all its rows are delivered.

    Attributes
    ----------
    meaning : str
        In words, what completes it (``"a message delivered"``).
    app_kinds : tuple of str
        Row kinds whose duplicate deliveries reach the application (counted in ``op_duplicates`` and
        judged by ``no_duplicates``). A reply's duplicate is not one: the callback fires once per call.
    supersedable : tuple of str
        Row kinds that a completed operation no longer owes: after the run, such rows not delivered
        become ``superseded`` (a dropped reply whose call a retry answered).
    """

    meaning: str
    app_kinds: tuple[str, ...] = DATA_KINDS
    supersedable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Measure:
    """A raw figure a pattern records in a run, declared so that :mod:`sim.run.metrics` can name and
    summarize it; a pattern never computes a mean or a percentile itself.

    Attributes
    ----------
    name : str
        ``rtt``, ``requests`` ...
    kind : str
        ``samples``: one value per event (the pattern's reporter returns them all; the summary has
        ``<name>_mean``, ``<name>_p50``, ``<name>_p99``, NaN without samples); ``count``: one number,
        reported as is under ``name``.
    unit : str
        ``s`` for times, else what is counted (``requests``).
    meaning : str
        In words, what one sample or the count is.
    """

    name: str
    kind: str
    unit: str
    meaning: str

    def __post_init__(self) -> None:
        if self.kind not in MEASURE_KINDS:
            raise ValueError(f"measure {self.name!r}: kind {self.kind!r} is not one of {MEASURE_KINDS}")


class WorldView(Protocol):
    """What a pattern sees of the assembled model (:class:`sim.run.build.AssembledWorld` is one)."""

    ctx: SimContext
    network: Network
    workload: Workload
    delivery: DeliveryConfig
    reporters: list[Reporter]
    """Callables whose raw figures go into the run's summary (a pattern's declared measures)."""

    def node(self, node_id: str) -> Node: ...

    def broker(self, node_id: str | None = None) -> Broker:
        """The broker on ``node_id`` (default: the scenario's broker node)."""
        ...

    def broker_host(self, node_id: str, field: str = "broker.node") -> Node:
        """The node ``node_id`` with the ``[broker]`` table's processing (a cluster member of a pattern that
        runs its own brokers, such as the log); ``field`` names the setting in errors."""
        ...

    def broker_nodes(self, wanted: int | Sequence[str], field: str) -> tuple[str, ...]:
        """A cluster's node ids: ``wanted`` ids as given, or a count (the broker node first, then the
        topology's other nodes with role ``broker``); ``field`` names the setting in errors."""
        ...


class Pattern(Protocol):
    """A messaging pattern: installs producers and consumers on a built world.

    ``from_options`` builds the pattern from its scenario table (``[queue]``, ``[pubsub]`` ...), raising
    :class:`~sim.core.errors.SimError` with the key's name for a bad value.
    """

    name: ClassVar[str]
    measures: ClassVar[tuple[Measure, ...]]
    """The pattern's own raw figures (``()`` if none); its reporter in ``world.reporters`` returns them."""
    operation: ClassVar[Operation]
    """What one operation of the pattern is (for the ``op_*`` figures)."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Pattern: ...

    def install(self, world: WorldView) -> None: ...


def check_keys(options: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Raise SimError for a key that is not in ``allowed``."""
    for key in options:
        if key not in allowed:
            raise SimError(key, options[key], "one of the keys " + ", ".join(allowed))


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Plain delivery settings (validated by the scenario).

    Times are in seconds, sizes in bytes. ``max_attempts`` may be ``math.inf``. ``dedup`` is the scope of
    ``effectively_once``'s dedup memory: ``consumer`` (per receiving node) or ``shared`` (one store).
    """

    guarantee: str = "at_most_once"
    ack_timeout: float = 0.05
    backoff: float = 2.0
    max_timeout: float = math.inf
    max_attempts: float = 5
    ack_size: float = 64.0
    dedup: str = "consumer"

    @property
    def reliable(self) -> bool:
        return self.guarantee != "at_most_once"

    def timeout(self, attempt: int) -> float:
        """Retransmission timeout after attempt number ``attempt`` (1-based)."""
        if self.backoff == 1 or attempt == 1:
            return min(self.ack_timeout, self.max_timeout)
        if (attempt - 1) * math.log(self.backoff) >= math.log(self.max_timeout / self.ack_timeout):
            return self.max_timeout  # also keeps backoff ** attempt from overflowing
        return self.ack_timeout * self.backoff ** (attempt - 1)


class Delivery:
    """Sender- and receiver-side logic of one delivery guarantee, shared by a pattern's nodes.

    Parameters
    ----------
    ctx : SimContext
    config : DeliveryConfig
    reliable : bool, optional
        Whether senders retransmit until acknowledged; defaults to the guarantee's answer. Brokered
        patterns pass the publisher-confirm setting here.
    """

    def __init__(
        self,
        ctx: SimContext,
        config: DeliveryConfig,
        *,
        reliable: bool | None = None,
        dedup: bool | None = None,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.reliable = config.reliable if reliable is None else reliable
        self.dedup = config.guarantee == "effectively_once" if dedup is None else dedup
        self.store: set[Any] | None = set() if self.dedup and config.dedup == "shared" else None
        """The shared idempotency store (obligations already handed to an application), or None."""
        self.pending: dict[int, Message] = {}
        self._frozen: dict[str, list[Any]] = {}  # node -> timers that fired while it was paused
        self._timers: dict[float, Timeouts] = {}  # one FIFO of timers per retransmission timeout
        self._first: Timeouts | None = None  # the first attempt's (the common case)

    # -- sender side ---------------------------------------------------------------------------
    def send(self, node: Node, msg: Message) -> None:
        """Send the first attempt of ``msg`` from ``node``; retransmit until acknowledged if reliable."""
        attempts = self.ctx.ledger.attempts  # Ledger.attempt inlined: this runs once per message
        for row in msg.obligations():
            attempts[row] += 1
        if not self.reliable:
            node.send(msg)
            return
        msg.reliable = True
        self.pending[msg.id] = msg
        self.ctx.pending += 1
        self._transmit(node, msg)

    def _transmit(self, node: Node, msg: Message) -> None:
        node.send(msg.copy())
        attempt = msg.attempt
        value = (node, msg.id, attempt, node.crashes)
        if node.paused:  # the copy leaves when the node resumes; so does its timer
            self._freeze(node, value)
        elif attempt == 1 and self._first is not None:
            self._first.start(value)
        else:
            self._arm(attempt, value)

    def _arm(self, attempt: int, value: Any) -> None:
        delay = self.config.timeout(attempt)
        timers = self._timers.get(delay)
        if timers is None:
            timers = self._timers[delay] = self.ctx.timeouts(delay, self._expire, self._waiting)
            if attempt == 1:
                self._first = timers
        timers.start(value)

    def _freeze(self, node: Node, value: Any) -> None:
        frozen = self._frozen.setdefault(node.id, [])
        if not frozen:
            node.on_resume.append(lambda: self._thaw(node))
        frozen.append(value)

    def _waiting(self, value: Any) -> bool:
        """Whether the timer ``value`` still guards an unacknowledged attempt."""
        msg = self.pending.get(value[1])
        return msg is not None and msg.attempt == value[2]

    def _expire(self, value: Any) -> None:
        node, msg_id, attempt, crashes = value
        msg = self.pending.get(msg_id)
        if msg is None or msg.attempt != attempt:
            return  # acknowledged meanwhile
        ledger = self.ctx.ledger
        if node.paused and node.up and crashes == node.crashes:
            self._freeze(node, value)  # a frozen sender retries nothing: the timer restarts on resume
            return
        if crashes != node.crashes or not node.up:  # the sender crashed: its retransmission state is gone
            self._give_up(msg, "crash_lost")
        elif attempt >= self.config.max_attempts:
            rows = msg.obligations()
            self._give_up(msg, (ledger.last_reason(rows[0]) if rows else "") or "timeout")
        else:
            msg.attempt = attempt + 1
            for row in msg.obligations():
                ledger.attempt(row)
            ledger.count("retries")
            self._transmit(node, msg)

    def _thaw(self, node: Node) -> None:
        for value in self._frozen.pop(node.id, []):
            self._arm(value[2], value)

    def _give_up(self, msg: Message, reason: str) -> None:
        del self.pending[msg.id]
        self.ctx.pending -= 1
        for row in msg.obligations():
            self.ctx.ledger.lose(row, reason)

    def on_ack(self, ack: Message) -> None:
        """Handler for ``ack`` messages at the sender (``ack.tag`` names the acknowledged message)."""
        if self.pending.pop(ack.tag, None) is not None:
            self.ctx.pending -= 1

    def on_nack(self, nack: Message) -> None:
        """Handler for ``nack``: the receiver refused the message (its obligations are already lost)."""
        self.on_ack(nack)

    # -- receiver side -------------------------------------------------------------------------
    def receive(self, node: Node, msg: Message) -> bool:
        """The receiving application gets ``msg``; acknowledges and deduplicates per the guarantee.

        Returns True when the application should act on it: always, except for a duplicate suppressed
        by deduplication (at-least-once hands duplicates to the application, as real systems do).
        """
        ctx = self.ctx
        self.acknowledge(node, msg)
        if self.dedup:
            store = self.store
            if store is None:  # per consumer: the node's own memory of message ids
                seen: set[int] = node.volatile.setdefault("seen", set())
                if msg.id in seen:
                    ctx.ledger.count("deduplicated")
                    return False
                seen.add(msg.id)
            else:  # shared by the consumers: keyed by obligation (a queue message has one, whoever takes it)
                if msg.ob in store:
                    ctx.ledger.count("deduplicated")
                    return False
                store.add(msg.ob)
        for row in msg.obligations():
            ctx.ledger.deliver(row, ctx.env.now, node.id)
        return True

    def acknowledge(self, node: Node, msg: Message) -> None:
        """Send the ack a reliable transmission asks for (to its sender: the producer or the broker)."""
        if msg.reliable:
            ctx = self.ctx
            ob = msg.ob
            ack = Message(
                ctx.next_control_id(),
                "ack",
                node.id,
                msg.src,
                self.config.ack_size,
                ctx.env.now,
                ob if type(ob) is int else (ob[0] if ob else -1),  # type: ignore[index]
                topic=msg.topic,
                tag=msg.tag or msg.id,
            )
            node.send(ack)


class Outbox:
    """The one path by which a node's application offers messages; one per sending node of a pattern.

    Parameters
    ----------
    ctx : SimContext
    node : Node
        The sending node (its id is the messages' ``src`` and the rows' ``src``).
    send : Send
        Hands each new message to the network (the pattern's choice of :class:`Delivery` or broker client).
    with_node : bool
        ``send`` takes the node first, ``send(node, msg)`` (:meth:`Delivery.send`): called so rather than
        through ``functools.partial``, which would run every message's send in a nested interpreter call.
    """

    __slots__ = ("ctx", "node", "send", "with_node")

    def __init__(
        self, ctx: SimContext, node: Node, send: Send | NodeSend, *, with_node: bool = False
    ) -> None:
        self.ctx = ctx
        self.node = node
        self.send: Any = send
        self.with_node = with_node

    def offer(
        self,
        kind: str,
        dst: str,
        topic: str,
        created_at: float,
        size: float,
        to: str | tuple[str, ...] = "",
        *,
        op: int = -1,
        queue: str | None = None,
        reliable: bool = False,
        payload: Any = None,
    ) -> simpy.Event | None:
        """Offer one message: a new id, its obligations, the message, the hand-off to ``send``.

        Parameters
        ----------
        kind : str
            ``data``, ``request``, ``reply`` or ``event``.
        dst : str
            Where the message goes: its recipient, or the broker that takes it.
        topic : str
            The rows' ``topic`` column, and the message's topic (or queue) unless ``queue`` is given.
        created_at, size : float
            The intended send time (s) and the size (bytes).
        to : str or tuple of str
            The obligations' recipients: ``""`` one row to ``dst``; a node id, one row to it; a tuple, one
            row per recipient in that order (a publish to a topic's subscribers, carried as ``recipients``).
        op : int
            The operation the rows belong to (default: their own message).
        queue : str, optional
            The broker queue the message is published to, when it differs from the rows' ``topic``.
        reliable, payload
            As :class:`~sim.core.message.Message` has them.

        Returns
        -------
        simpy.Event or None
            The event to wait on before the next offer (backpressure), or None. A node that is down runs no
            application: it offers nothing (no id, no row) and None is returned.
        """
        node = self.node
        if not node.up:
            return None
        ctx = self.ctx
        ledger = ctx.ledger
        msg_id = ctx.next_id()
        src = node.id
        if type(to) is tuple:  # a loop, not a comprehension: a nested scope would cost every call its cells
            rows = []
            for r in to:
                rows.append(ledger.open(msg_id, kind, src, r, topic, created_at, size, op))
            msg = Message(msg_id, kind, src, dst, size, created_at, tuple(rows))
            msg.recipients = to
        else:
            row = ledger.open(msg_id, kind, src, to or dst, topic, created_at, size, op)  # type: ignore[arg-type]
            msg = Message(msg_id, kind, src, dst, size, created_at, row)
        # the message's topic and rarer fields are set only when given: keywords cost on every message
        if queue is not None:
            msg.topic = queue
        elif topic:
            msg.topic = topic
        if reliable:
            msg.reliable = True
        if payload is not None:
            msg.payload = payload
        if self.with_node:
            return self.send(node, msg)  # type: ignore[no-any-return]
        return self.send(msg)  # type: ignore[no-any-return]
