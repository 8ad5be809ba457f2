"""The broker: named queues and topics on a node, with acks, redelivery, dead letters, prefetch and bounds.

A broker is an application on a topology node (its :class:`~sim.model.node.Node` gives it servers and a
service time per operation, so it saturates like a real one). Every publish costs one service time (plus
``persist`` when the queue is durable); acks and consumer registrations cost nothing.

Messages and their meaning (``msg.topic`` names the queue or topic):

- a data-bearing message (``data``, ``event``, ``request``, ``reply``) is a publish. To a queue: enqueued,
  subject to ``capacity`` and ``overflow``. To a topic: fanned out into each subscription's queue, one
  obligation per subscriber (``msg.ob`` and ``msg.recipients`` list the rows and subscribers, in order).
- ``ack`` from a consumer settles a delivery (``msg.tag`` is the delivery tag);
- ``consume`` / ``subscribe`` from a client registers a consumer (answered with ``consume_ok``).

The broker answers a publisher with ``ack`` (a publisher confirm, when the publish was sent reliably)
or ``nack`` (``reject`` overflow), and tells publishers ``block`` / ``unblock`` under ``block`` overflow.

Crash: non-durable queues lose their messages (``crash_lost``); durable queues keep theirs, and messages
delivered but unacknowledged are queued again for redelivery; all consumer registrations are dropped
(clients register again when the broker is back). A consumer's crash is noticed after ``session_timeout``:
its unacknowledged messages are queued again, and a non-durable subscription is deleted.
"""

from __future__ import annotations

import itertools
import math
from array import array
from typing import Any

from sim.core.context import SimContext
from sim.core.message import DATA_KINDS, Message
from sim.model.broker.queue import (
    OVERFLOW_POLICIES,
    BrokerConfig,
    BrokerQueue,
    BrokerStatistics,
    Entry,
    broker_service,
)
from sim.model.node import Node

__all__ = [
    "OVERFLOW_POLICIES",
    "Broker",
    "BrokerConfig",
    "BrokerQueue",
    "BrokerStatistics",
    "Entry",
    "broker_service",
]


class Broker:
    """Queues and topics served by ``node``.

    Parameters
    ----------
    ctx : SimContext
    node : Node
        The broker's host; its ``servers`` and ``service`` model the broker's processing.
    config : BrokerConfig
    consumer_nodes : callable
        Looks up a client's node (``AssembledWorld.node``), to notice its crash as a dropped connection.
    """

    def __init__(self, ctx: SimContext, node: Node, config: BrokerConfig, consumer_nodes: Any) -> None:
        self.ctx = ctx
        self.node = node
        self.id = node.id
        self.config = config
        self.queues: dict[str, BrokerQueue] = {}
        self.topics: dict[str, dict[str, str]] = {}  # topic -> subscriber -> queue name
        self._lookup = consumer_nodes
        self._tags = itertools.count(1)
        self._watched: set[str] = set()
        self._by_tag: dict[int, BrokerQueue] = {}  # delivery tag -> its queue (acks name only the tag)
        self._service = node.service
        self._ack_timers = ctx.timeouts(config.ack_timeout, self._ack_timeout, self._unacked)
        self.measure_from = 0.0
        """Queue waits of messages enqueued before this time (the warm-up) are not counted."""

    def start(self) -> None:
        """Register the broker's handlers on its node."""
        node = self.node
        for kind in DATA_KINDS:
            node.on(kind, self._publish)
        node.on("ack", self._ack)
        node.on("consume", self._consume)
        node.cost = self._cost
        node.on_crash.append(self._crashed)
        node.on_recover.append(self._recovered)

    def _cost(self, msg: Message) -> float:
        if msg.control:
            return 0.0
        cost = self._service.sample(self.node.stream) if self._service is not None else 0.0
        q = self.queues.get(msg.topic)
        durable = q.durable if q is not None else self.config.durable
        return cost + (self.config.persist if durable else 0.0)

    # -- declarations ----------------------------------------------------------------------------
    def declare_queue(self, name: str, *, durable: bool | None = None) -> BrokerQueue:
        """Create (or return) the queue ``name``."""
        q = self.queues.get(name)
        if q is None:
            c = self.config
            q = self.queues[name] = BrokerQueue(
                name,
                durable=c.durable if durable is None else durable,
                capacity=c.capacity,
                overflow=c.overflow,
            )
        return q

    def declare_topic(self, name: str) -> None:
        """Create the topic ``name`` (subscriptions are added by ``subscribe`` messages)."""
        self.topics.setdefault(name, {})

    def declare_subscription(self, topic: str, subscriber: str, *, durable: bool) -> BrokerQueue:
        """Create ``subscriber``'s queue on ``topic`` ahead of its first registration (configuration, as a
        deployment declares its queues), so that nothing published before the subscriber connects is lost."""
        self.declare_topic(topic)
        qname = self.topics[topic].setdefault(subscriber, f"{topic}/{subscriber}")
        return self.declare_queue(qname, durable=durable)

    # -- publishing ------------------------------------------------------------------------------
    def _publish(self, msg: Message) -> None:
        ctx = self.ctx
        if msg.topic in self.topics:
            subs = self.topics[msg.topic]
            for row, subscriber in zip(msg.obligations(), msg.recipients, strict=True):
                qname = subs.get(subscriber)
                if qname is None:  # a non-durable subscriber is away: nothing holds its copy
                    ctx.ledger.lose(row, "node_down")
                else:
                    self._enqueue(self.queues[qname], msg.copy(ob=row, reliable=False), msg.src)
            self._reply(msg, "ack")
            return
        q = self.queues.get(msg.topic)
        if q is None:
            for row in msg.obligations():
                ctx.ledger.lose(row, "unroutable")
            self._reply(msg, "nack")
            return
        held = msg.copy()
        held.reliable = False
        accepted = self._enqueue(q, held, msg.src)
        self._reply(msg, "ack" if accepted else "nack")

    def _reply(self, msg: Message, kind: str) -> None:
        if msg.reliable or kind == "nack":
            ob = msg.ob
            self.node.send(
                Message(
                    self.ctx.next_control_id(),
                    kind,
                    self.id,
                    msg.src,
                    self.config.control_size,
                    self.ctx.env.now,
                    ob if type(ob) is int else (ob[0] if ob else -1),  # type: ignore[index]
                    topic=msg.topic,
                    tag=msg.id,
                )
            )

    def _enqueue(self, q: BrokerQueue, msg: Message, publisher: str) -> bool:
        ledger, now = self.ctx.ledger, self.ctx.env.now
        q.publishers.add(publisher)
        if len(q.ready) >= q.capacity:
            if q.overflow == "reject":
                q.dropped += 1
                ledger.lose(msg.ob, "queue_full")  # type: ignore[arg-type]
                return False
            if q.overflow == "drop_new":
                q.dropped += 1
                ledger.lose(msg.ob, "overflow")  # type: ignore[arg-type]
                return True
            if q.overflow == "drop_oldest":
                q.dropped += 1
                ledger.lose(q.ready.popleft().row, "overflow")
            elif not q.blocked:  # block: keep what arrives, tell publishers to stop
                q.blocked = True
                self._tell(q, "block")
        ready = q.ready
        ready.append(Entry(msg, now))
        q.enqueued += 1
        if len(ready) > q.depth_max:
            q.depth_max = len(ready)
        if not self._dispatch(q):  # a dispatch that moved messages has recorded the depth already
            q.track(now)
        return True

    def _tell(self, q: BrokerQueue, kind: str) -> None:
        for publisher in sorted(q.publishers):
            self.node.send(
                Message(
                    self.ctx.next_control_id(),
                    kind,
                    self.id,
                    publisher,
                    self.config.control_size,
                    self.ctx.env.now,
                    topic=q.name,
                )
            )

    # -- delivery --------------------------------------------------------------------------------
    def _dispatch(self, q: BrokerQueue) -> bool:
        """Deliver ready messages while a consumer has credit; True if any moved (the depth is recorded)."""
        if not self.node.up:
            return False
        moved = False
        ready, consumers = q.ready, q.consumers
        while ready and consumers:
            consumer = self._pick(q)
            if consumer is None:
                break
            self._deliver(q, ready.popleft(), consumer)
            moved = True
        if moved:
            q.track(self.ctx.env.now)
        if q.blocked and len(ready) < q.capacity:
            q.blocked = False
            self._tell(q, "unblock")
        return moved

    def _pick(self, q: BrokerQueue) -> str | None:
        """Next consumer in round-robin order that has credit left."""
        consumers, limit = q.consumers, self.config.prefetch
        n, start = len(consumers), q.next_consumer
        if limit == 0 or not self.config.manual_ack:  # no credit to check: the next in turn
            q.next_consumer = (start + 1) % n
            return consumers[start % n]
        inflight = q.inflight
        for i in range(n):
            consumer = consumers[(start + i) % n]
            if inflight[consumer] < limit:
                q.next_consumer = (start + i + 1) % n
                return consumer
        return None

    def _deliver(self, q: BrokerQueue, entry: Entry, consumer: str) -> None:
        now = self.ctx.env.now
        if entry.deliveries == 0 and entry.enqueued_at >= self.measure_from:
            q.wait_total += now - entry.enqueued_at
            q.waits += 1
        entry.deliveries += 1
        q.delivered += 1
        manual = self.config.manual_ack
        entry.tag = next(self._tags)
        if manual:
            entry.consumer = consumer
            q.unacked[entry.tag] = entry
            self._by_tag[entry.tag] = q
            q.inflight[consumer] += 1
            self._ack_timers.start((q, entry.tag))
        msg = entry.msg.copy()
        msg.src, msg.dst, msg.reliable, msg.tag = self.id, consumer, manual, entry.tag
        self.node.send(msg)

    def _ack(self, msg: Message) -> None:
        q = self._by_tag.pop(msg.tag, None)
        entry = q.unacked.pop(msg.tag, None) if q is not None else None
        if q is None or entry is None:
            return  # late ack of a message already redelivered, or after a crash
        q.inflight[entry.consumer] = max(0, q.inflight.get(entry.consumer, 0) - 1)
        q.acked += 1
        self._dispatch(q)

    def _unacked(self, value: tuple[BrokerQueue, int]) -> bool:
        return value[1] in value[0].unacked  # (queue, delivery tag) still waits for its ack

    def _ack_timeout(self, value: tuple[BrokerQueue, int]) -> None:
        q, tag = value
        entry = q.unacked.get(tag)
        if entry is not None and self.node.up:
            self._requeue(q, entry)
            self._dispatch(q)

    def _requeue(self, q: BrokerQueue, entry: Entry) -> None:
        """Take an unacknowledged delivery back: redeliver it, or dead-letter it past the limit."""
        q.unacked.pop(entry.tag, None)
        self._by_tag.pop(entry.tag, None)
        if entry.consumer in q.inflight:
            q.inflight[entry.consumer] = max(0, q.inflight[entry.consumer] - 1)
        if entry.deliveries > self.config.max_redeliveries:
            q.dead.append(entry)
            self.ctx.ledger.lose(entry.row, "dead_letter")
            return
        q.redelivered += 1
        self.ctx.ledger.count("redeliveries")
        q.ready.appendleft(entry)
        q.track(self.ctx.env.now)

    # -- consumers and sessions ------------------------------------------------------------------
    def _consume(self, msg: Message) -> None:
        """``consume`` (payload: queue name) or subscription (payload: (topic, durable))."""
        client = msg.src
        if isinstance(msg.payload, tuple):
            topic, durable = msg.payload
            self.declare_topic(topic)
            qname = self.topics[topic].get(client) or f"{topic}/{client}"
            self.topics[topic][client] = qname
            q = self.declare_queue(qname, durable=durable)
        else:
            q = self.declare_queue(msg.payload)
        if client not in q.consumers:
            q.consumers.append(client)
            q.inflight.setdefault(client, 0)
        if client not in self._watched:
            self._watched.add(client)
            self._lookup(client).on_crash.append(lambda: self._client_crashed(client))
        self.node.send(
            Message(
                self.ctx.next_control_id(),
                "consume_ok",
                self.id,
                client,
                self.config.control_size,
                self.ctx.env.now,
                topic=q.name,
                tag=msg.id,
            )
        )
        self._dispatch(q)

    def _client_crashed(self, client: str) -> None:
        self.ctx.call_later(self.config.session_timeout, lambda e: self._disconnect(e._value), client)

    def _disconnect(self, client: str) -> None:
        """The client's connection is gone: requeue what it held; drop non-durable subscriptions."""
        if not self.node.up:
            return
        for q in list(self.queues.values()):
            if client not in q.consumers:
                continue
            q.consumers.remove(client)
            q.inflight.pop(client, None)
            for entry in [e for e in q.unacked.values() if e.consumer == client]:
                self._requeue(q, entry)
            self._dispatch(q)
        for subs in self.topics.values():
            qname = subs.get(client)
            if qname is not None and not self.queues[qname].durable:
                self._delete(subs.pop(client), "node_down")

    def _delete(self, qname: str, reason: str) -> None:
        q = self.queues.pop(qname)
        for entry in [*q.ready, *q.unacked.values()]:
            self.ctx.ledger.lose(entry.row, reason)

    def _crashed(self) -> None:
        self._by_tag.clear()
        for name, q in list(self.queues.items()):
            q.consumers.clear()
            q.inflight.clear()
            q.blocked = False
            if q.durable:
                for entry in sorted(q.unacked.values(), key=lambda e: e.enqueued_at, reverse=True):
                    q.redelivered += 1
                    self.ctx.ledger.count("redeliveries")
                    q.ready.appendleft(entry)
                q.unacked.clear()
            else:
                for entry in [*q.ready, *q.unacked.values()]:
                    self.ctx.ledger.lose(entry.row, "crash_lost")
                q.ready.clear()
                q.unacked.clear()
                if any(name in subs.values() for subs in self.topics.values()):
                    del self.queues[name]  # a non-durable subscription dies with the broker
                    for subs in self.topics.values():
                        for sub in [s for s, qn in subs.items() if qn == name]:
                            del subs[sub]
            q.track(self.ctx.env.now)
        self._watched.clear()

    def _recovered(self) -> None:
        for q in self.queues.values():
            q.publishers.clear()

    # -- figures ---------------------------------------------------------------------------------
    def statistics(self) -> BrokerStatistics:
        """Per-queue counters, utilization of the broker's servers (over the measured window once it has
        closed, see :meth:`sim.model.node.Node.utilization`), backlog and mean queue wait."""
        node = self.node
        return BrokerStatistics.of(self.id, node.up, self.queues, node.utilization())

    def backlog_mean(self, start: float, end: float) -> float:
        """Time-average of the messages ready in all queues over ``[start, end)`` (Little's L_q)."""
        return sum(q.time_average(start, end) for q in self.queues.values()) if end > start else math.nan

    def depth_series(self, queue: str) -> tuple[array[float], array[int]]:
        """(times, ready depths) of ``queue``: a step function, each depth holding until the next time."""
        q = self.queues[queue]
        return q.depth_t, q.depth_n
