"""A node's connection to a broker: consumer registration, publisher confirms and flow control.

Registrations (``consume`` a queue, ``subscribe`` to a topic) are control messages; the client repeats
one every ``retry`` seconds until the broker answers ``consume_ok``, and registers everything again when
its own node recovers or ``retry`` seconds after the broker's node recovers (a client's reconnect loop).
``block`` / ``unblock`` from the broker pause and resume publishing.

With a replicated broker (:class:`~sim.model.broker.replication.ReplicatedBroker`) the client speaks to
the current leader: told of a new one, it reconnects ``retry`` seconds later (the ``reconnect_delay``),
sends its publishes not yet confirmed there (their retransmissions go to the new leader) and registers
again; its ``publish`` sets each message's destination to the leader it knows. With one broker, ``publish``
is the plain method: no work per message is added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import simpy

from sim.core.context import SimContext
from sim.core.message import Message
from sim.model.broker.broker import Broker
from sim.model.broker.replication import ReplicatedBroker
from sim.model.node import Node
from sim.patterns.base import Delivery

__all__ = ["BrokerClient", "connect"]


class BrokerClient:
    """The broker connection of one node (publisher, consumer or both)."""

    def __init__(
        self, ctx: SimContext, node: Node, broker: Broker, delivery: Delivery, *, retry: float
    ) -> None:
        self.ctx = ctx
        self.node = node
        self.broker = broker
        self.delivery = delivery
        self.retry = retry
        self.registrations: dict[str, Any] = {}  # key -> payload of the consume message
        self.confirmed: set[str] = set()
        self.unblocked: simpy.Event | None = None
        self.leader = broker.id
        """The broker node this client speaks to (a replicated broker's leader, as the client knows it)."""

    def start(self) -> None:
        """Register the client's handlers and reconnect hooks."""
        node = self.node
        node.on("ack", self.delivery.on_ack)
        node.on("nack", self.delivery.on_nack)
        node.on("consume_ok", self._ok)
        node.on("block", self._block)
        node.on("unblock", self._unblock)
        node.on_recover.append(self._reconnect)
        if isinstance(self.broker, ReplicatedBroker):
            self.broker.clients.append(self)
            self.publish = self._publish_to_leader  # type: ignore[method-assign]
        else:
            self.broker.node.on_recover.append(self._broker_back)

    # -- consuming -----------------------------------------------------------------------------
    def consume(self, queue: str) -> None:
        """Become a consumer of ``queue``."""
        self._register(queue, queue)

    def subscribe(self, topic: str, *, durable: bool) -> None:
        """Subscribe to ``topic`` (a per-subscriber queue on the broker)."""
        self._register(f"{topic}/{self.node.id}", (topic, durable))

    def on_message(self, kind: str, app: Callable[[Message], None] | None = None) -> None:
        """Deliver ``kind`` messages to the application: acknowledge, deduplicate, record, then ``app``."""
        node, delivery = self.node, self.delivery
        if app is None:  # a partial is called without a Python frame of its own
            node.on(kind, partial(delivery.receive, node))
            return

        def handle(msg: Message) -> None:
            if delivery.receive(node, msg):
                app(msg)

        node.on(kind, handle)

    def _register(self, key: str, payload: Any) -> None:
        self.registrations[key] = payload
        self.confirmed.discard(key)
        self._send_registration(key)

    def _send_registration(self, key: str) -> None:
        if key in self.confirmed or not self.node.up:
            return
        ctx = self.ctx
        self.node.send(
            Message(
                ctx.next_control_id(),
                "consume",
                self.node.id,
                self.leader,
                self.broker.config.control_size,
                ctx.env.now,
                payload=self.registrations[key],
            )
        )
        ctx.call_later(self.retry, self._registration_timeout, (key, self.node.crashes))

    def _registration_timeout(self, event: Any) -> None:
        key, crashes = event._value
        if crashes == self.node.crashes:  # after a crash, the recovery hook starts over
            self._send_registration(key)

    def _ok(self, msg: Message) -> None:
        self.confirmed.add(msg.topic)

    def _reconnect(self) -> None:
        self.confirmed.clear()
        for key in self.registrations:
            self._send_registration(key)

    def _broker_back(self) -> None:
        self.ctx.call_later(self.retry, lambda _: self._reconnect())
        if self.unblocked is not None:  # the broker forgot who it blocked
            self._unblock(None)

    def leader_changed(self, leader: str) -> None:
        """A replicated broker elected ``leader``: reconnect to it after ``retry`` seconds."""
        self.ctx.call_later(self.retry, self._to_leader, leader)

    def _to_leader(self, event: Any) -> None:
        leader = self.leader = event._value
        members = self.broker.replicas  # type: ignore[attr-defined]
        src = self.node.id
        for msg in self.delivery.pending.values():  # retransmissions go to the new leader
            if msg.src == src and msg.dst in members:
                msg.dst = leader
        self._reconnect()
        if self.unblocked is not None:  # the new leader blocks no one yet
            self._unblock(None)

    # -- publishing ----------------------------------------------------------------------------
    def publish(self, msg: Message) -> simpy.Event | None:
        """Send ``msg`` to the broker now, or once unblocked; returns the event to wait on if blocked."""
        if self.unblocked is None:
            self.delivery.send(self.node, msg)
            return None
        waiting = self.unblocked
        waiting.callbacks.append(lambda _: self.delivery.send(self.node, msg))
        return waiting

    def _publish_to_leader(self, msg: Message) -> simpy.Event | None:
        msg.dst = self.leader
        return BrokerClient.publish(self, msg)

    def _block(self, msg: Message) -> None:
        if self.unblocked is None:
            self.unblocked = self.ctx.env.event()

    def _unblock(self, msg: Message | None) -> None:
        if self.unblocked is not None:
            waiting, self.unblocked = self.unblocked, None
            waiting.succeed()


def connect(world: Any, broker: Broker, delivery: Delivery, nodes: Iterable[str]) -> dict[str, BrokerClient]:
    """One started client per node (in order, without repeats), all speaking to ``broker``."""
    clients: dict[str, BrokerClient] = {}
    for node_id in dict.fromkeys(nodes):
        client = BrokerClient(world.ctx, world.node(node_id), broker, delivery, retry=world.reconnect_delay)
        client.start()
        clients[node_id] = client
    return clients
