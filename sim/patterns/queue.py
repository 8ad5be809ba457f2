"""Message queue: producers → a broker queue → competing consumers; each message goes to one consumer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sim.core.errors import SimError
from sim.patterns.base import Delivery, Measure, Operation, Outbox, WorldView, check_keys
from sim.patterns.client import connect

__all__ = ["MessageQueue"]


@dataclass(frozen=True, slots=True)
class MessageQueue:
    """Producers publish to one broker queue; consumers compete for its messages (round-robin, prefetch).

    One obligation per message; its ``dst`` is the broker (any consumer may take it), ``topic`` the queue.
    Publisher confirms and consumer acks follow the ``[broker]`` settings.
    """

    name: ClassVar[str] = "queue"
    measures: ClassVar[tuple[Measure, ...]] = ()
    operation: ClassVar[Operation] = Operation("a message consumed by one of the consumers")
    queue: str = "work"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MessageQueue:
        check_keys(options, ("queue",))
        queue = options.get("queue", "work")
        if not isinstance(queue, str) or not queue or "/" in queue:
            raise SimError("queue", queue, "a non-empty queue name without '/'")
        return cls(queue)

    def install(self, world: WorldView) -> None:
        ctx, workload = world.ctx, world.workload
        broker = world.broker()
        broker.declare_queue(self.queue)
        delivery = Delivery(ctx, world.delivery, reliable=broker.config.confirms)
        clients = connect(world, broker, delivery, (*workload.producers, *workload.consumers))
        for consumer in dict.fromkeys(workload.consumers):
            clients[consumer].on_message("data")
            clients[consumer].consume(self.queue)
        outboxes = {p: Outbox(ctx, world.node(p), clients[p].publish) for p in workload.producers}
        workload.offer_through(lambda producer: outboxes[producer].offer, "data", self.queue, dst=broker.id)
