"""Publish/subscribe: publishers → a broker topic → every subscriber."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sim.core.errors import SimError
from sim.patterns.base import Delivery, Measure, Operation, Outbox, WorldView, check_keys
from sim.patterns.client import connect

__all__ = ["PubSub"]


@dataclass(frozen=True, slots=True)
class PubSub:
    """Publishers send to a broker topic; the broker fans each message out to every subscriber.

    Subscribers are the workload's consumers. Each publish creates one obligation per subscriber
    (``dst`` the subscriber, ``topic`` the topic). A durable subscription keeps a subscriber's queue while it
    is away; a non-durable one is deleted when the broker notices the subscriber gone, and what is published
    meanwhile is lost for it (``node_down``).
    """

    name: ClassVar[str] = "pubsub"
    measures: ClassVar[tuple[Measure, ...]] = ()
    operation: ClassVar[Operation] = Operation(
        "a publish delivered to every subscriber subscribed when it was published"
    )
    topic: str = "events"
    durable: bool | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PubSub:
        check_keys(options, ("topic", "durable_subscriptions"))
        topic = options.get("topic", "events")
        if not isinstance(topic, str) or not topic or "/" in topic:
            raise SimError("topic", topic, "a non-empty topic name without '/'")
        durable = options.get("durable_subscriptions")
        if durable is not None and not isinstance(durable, bool):
            raise SimError("durable_subscriptions", durable, "true or false (default: the broker's durable)")
        return cls(topic, durable)

    def install(self, world: WorldView) -> None:
        ctx, workload = world.ctx, world.workload
        broker = world.broker()
        broker.declare_topic(self.topic)
        durable = broker.config.durable if self.durable is None else self.durable
        delivery = Delivery(ctx, world.delivery, reliable=broker.config.confirms)
        clients = connect(world, broker, delivery, (*workload.producers, *workload.consumers))
        subscribers = tuple(dict.fromkeys(workload.consumers))
        for sub in subscribers:
            broker.declare_subscription(self.topic, sub, durable=durable)
            clients[sub].on_message("data")
            clients[sub].subscribe(self.topic, durable=durable)
        outboxes = {p: Outbox(ctx, world.node(p), clients[p].publish) for p in workload.producers}
        offers = workload.offer_through
        offers(lambda producer: outboxes[producer].offer, "data", self.topic, dst=broker.id, to=subscribers)
