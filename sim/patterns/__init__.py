"""Messaging patterns, registered by name. A new built-in pattern is one module plus one line here; a
user's own pattern is a plug-in that needs neither (:mod:`sim.patterns.registry` resolves a scenario's
``pattern``: a built-in, a ``file.py:Class`` or an installed ``sim.patterns`` entry point)."""

from __future__ import annotations

from sim.patterns.base import (
    DEDUP_SCOPES,
    GUARANTEES,
    Delivery,
    DeliveryConfig,
    Measure,
    Operation,
    Outbox,
    Pattern,
    Reporter,
    WorldView,
)
from sim.patterns.event_driven import EventDriven
from sim.patterns.log import Log
from sim.patterns.point_to_point import PointToPoint
from sim.patterns.pubsub import PubSub
from sim.patterns.queue import MessageQueue
from sim.patterns.request_reply import RequestReply

__all__ = [
    "DEDUP_SCOPES",
    "GUARANTEES",
    "PATTERNS",
    "Delivery",
    "DeliveryConfig",
    "EventDriven",
    "Log",
    "Measure",
    "MessageQueue",
    "Operation",
    "Outbox",
    "Pattern",
    "PointToPoint",
    "PubSub",
    "Reporter",
    "RequestReply",
    "WorldView",
]

PATTERNS: dict[str, type[Pattern]] = {
    PointToPoint.name: PointToPoint,
    MessageQueue.name: MessageQueue,
    PubSub.name: PubSub,
    RequestReply.name: RequestReply,
    EventDriven.name: EventDriven,
    Log.name: Log,
}
