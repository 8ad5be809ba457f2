"""Point-to-point: each producer sends straight to a consumer over the network, no broker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sim.core.message import Message
from sim.model.node import MessageHandler, Node
from sim.patterns.base import Delivery, Measure, Operation, Outbox, WorldView, check_keys

__all__ = ["PointToPoint"]


@dataclass(frozen=True, slots=True)
class PointToPoint:
    """Producers address consumers directly; the workload picks each message's consumer.

    One obligation per message (producer -> consumer). Under ``at_least_once`` and
    ``effectively_once`` the consumer acknowledges end to end and the producer retransmits.
    """

    name: ClassVar[str] = "point_to_point"
    measures: ClassVar[tuple[Measure, ...]] = ()
    operation: ClassVar[Operation] = Operation("a message delivered to its consumer")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PointToPoint:
        check_keys(options, ())
        return cls()

    def install(self, world: WorldView) -> None:
        ctx, workload = world.ctx, world.workload
        delivery = Delivery(ctx, world.delivery)
        for consumer in dict.fromkeys(workload.consumers):
            world.node(consumer).on("data", _receiver(delivery, world.node(consumer)))
        for producer in dict.fromkeys(workload.producers):
            world.node(producer).on("ack", delivery.on_ack)
        outboxes: dict[str, Outbox] = {}
        for producer in workload.producers:
            node = world.node(producer)
            outboxes[producer] = Outbox(ctx, node, delivery.send, with_node=True)
        workload.offer_through(lambda producer: outboxes[producer].offer, "data", "")


def _receiver(delivery: Delivery, node: Node) -> MessageHandler:
    def handle(msg: Message) -> None:
        delivery.receive(node, msg)

    return handle
