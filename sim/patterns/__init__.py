"""Messaging patterns, registered by name. A new pattern is one module plus one line here."""

from __future__ import annotations

from sim.patterns.base import GUARANTEES, Delivery, DeliveryConfig, Pattern, World
from sim.patterns.point_to_point import PointToPoint

__all__ = ["GUARANTEES", "PATTERNS", "Delivery", "DeliveryConfig", "Pattern", "PointToPoint", "World"]

PATTERNS: dict[str, type[Pattern]] = {
    PointToPoint.name: PointToPoint,
}
