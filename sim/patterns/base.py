"""What every pattern builds on: the World it installs itself into, and delivery guarantees.

A pattern is a small object with a ``name`` and ``install(world)``. It reaches components only
through the :class:`World` — never through globals or other patterns.

Delivery guarantees (per hop of the pattern's own traffic):

- ``at_most_once``: send once; any drop loses the obligation with the drop's reason.
- ``at_least_once``: the receiver acknowledges each copy; the sender retransmits after
  ``ack_timeout * backoff**(attempt-1)`` (capped at ``max_timeout``) until acknowledged or
  ``max_attempts`` is reached, then gives up with the last drop's reason (or ``timeout``). A copy
  that arrives when the application already has the message counts as a duplicate.
- ``effectively_once``: at-least-once plus receiver-side deduplication by message id, so the
  application sees each message once. The dedup set is volatile: a receiver crash forgets it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from simpy.events import Timeout

from sim.context import SimContext
from sim.message import Message
from sim.network import Network
from sim.node import Node
from sim.workload import Workload

__all__ = ["GUARANTEES", "Delivery", "DeliveryConfig", "Pattern", "World"]

GUARANTEES = ("at_most_once", "at_least_once", "effectively_once")


class World(Protocol):
    """The assembled model a pattern sees."""

    ctx: SimContext
    network: Network
    workload: Workload
    delivery: DeliveryConfig
    params: Mapping[str, Any]

    def node(self, node_id: str) -> Node: ...


class Pattern(Protocol):
    """A messaging pattern: installs producers and consumers on a built world."""

    name: ClassVar[str]

    def install(self, world: World) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Plain delivery settings (validated by the scenario).

    Times are in seconds, sizes in bytes. ``max_attempts`` may be ``math.inf``.
    """

    guarantee: str = "at_most_once"
    ack_timeout: float = 0.05
    backoff: float = 2.0
    max_timeout: float = math.inf
    max_attempts: float = 5
    ack_size: float = 64.0

    @property
    def reliable(self) -> bool:
        return self.guarantee != "at_most_once"

    def timeout(self, attempt: int) -> float:
        """Retransmission timeout after attempt number ``attempt`` (1-based)."""
        return min(self.ack_timeout * self.backoff ** (attempt - 1), self.max_timeout)


class Delivery:
    """Sender- and receiver-side logic of one delivery guarantee, shared by a pattern's nodes."""

    def __init__(self, ctx: SimContext, config: DeliveryConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.pending: dict[int, Message] = {}
        self._expire_cb = self._expire

    # -- sender side ---------------------------------------------------------------------------
    def send(self, node: Node, msg: Message) -> None:
        """Send the first attempt of ``msg`` (one obligation) from ``node``."""
        ledger = self.ctx.ledger
        row = msg.ob
        assert isinstance(row, int)
        ledger.attempt(row)
        if not self.config.reliable:
            node.send(msg)
            return
        msg.reliable = True
        self.pending[row] = msg
        self.ctx.pending += 1
        self._transmit(node, msg)

    def _transmit(self, node: Node, msg: Message) -> None:
        node.send(msg.copy())
        value = (node, msg.ob, msg.attempt, node.crashes)
        ev = Timeout(self.ctx.env, self.config.timeout(msg.attempt), value)
        ev.callbacks.append(self._expire_cb)

    def _expire(self, event: Any) -> None:
        node, row, attempt, crashes = event._value
        msg = self.pending.get(row)
        if msg is None or msg.attempt != attempt:
            return  # acknowledged meanwhile
        ledger = self.ctx.ledger
        if crashes != node.crashes or not node.up:  # the sender crashed: its retransmission state is gone
            self._give_up(row, "crash_lost")
        elif attempt >= self.config.max_attempts:
            self._give_up(row, ledger.last_reason(row) or "timeout")
        else:
            msg.attempt = attempt + 1
            ledger.attempt(row)
            ledger.count("retries")
            self._transmit(node, msg)

    def _give_up(self, row: int, reason: str) -> None:
        del self.pending[row]
        self.ctx.pending -= 1
        self.ctx.ledger.lose(row, reason)

    def on_ack(self, ack: Message) -> None:
        """Handler for ``ack`` messages at the sender."""
        if self.pending.pop(ack.ob, None) is not None:  # type: ignore[arg-type]  # acks carry one row
            self.ctx.pending -= 1

    # -- receiver side -------------------------------------------------------------------------
    def receive(self, node: Node, msg: Message) -> bool:
        """The receiving application gets ``msg``; acknowledges and deduplicates per the guarantee.

        Returns True when the application should act on it (False for a suppressed duplicate).
        """
        ctx = self.ctx
        if msg.reliable:
            ack = Message(
                ctx.next_control_id(), "ack", node.id, msg.src, self.config.ack_size, ctx.env.now, msg.ob
            )
            node.send(ack)
        if self.config.guarantee == "effectively_once":
            seen: set[int] = node.volatile.setdefault("seen", set())
            if msg.id in seen:
                ctx.ledger.count("deduplicated")
                return False
            seen.add(msg.id)
        fresh = True
        for row in msg.obligations():
            fresh = ctx.ledger.deliver(row, ctx.env.now) and fresh
        return fresh
