"""The broker's data: its settings, a queue with its messages, consumers and depth history, and statistics."""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass

import numpy as np

from sim.core.distributions import Constant, Distribution
from sim.core.message import Message

__all__ = ["OVERFLOW_POLICIES", "BrokerConfig", "BrokerQueue", "BrokerStatistics", "Entry", "broker_service"]

OVERFLOW_POLICIES = ("reject", "drop_oldest", "drop_new", "block")


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Plain broker settings (validated by the scenario). Times in seconds, sizes in bytes.

    ``confirms``: publishers send reliably and the broker acknowledges each publish (publisher confirms).
    ``capacity`` bounds the *ready* messages of each queue (those not yet delivered); ``prefetch`` bounds
    the unacknowledged messages per consumer (0: no bound). ``manual_ack`` makes consumers acknowledge
    after processing; otherwise a message is settled when sent (auto ack, prefetch does not apply).
    """

    durable: bool = False
    confirms: bool = False
    persist: float = 0.0
    capacity: float = math.inf
    overflow: str = "reject"
    manual_ack: bool = False
    ack_timeout: float = 30.0
    max_redeliveries: float = math.inf
    prefetch: int = 0
    session_timeout: float = 0.0
    control_size: float = 64.0


class Entry:
    """One message held by a queue."""

    __slots__ = ("consumer", "deliveries", "enqueued_at", "msg", "tag")

    def __init__(self, msg: Message, enqueued_at: float) -> None:
        self.msg = msg
        self.enqueued_at = enqueued_at
        self.deliveries = 0
        self.consumer = ""
        self.tag = 0

    @property
    def row(self) -> int:
        return self.msg.ob  # type: ignore[return-value]  # queue entries carry one obligation


class BrokerQueue:
    """A named queue: ready messages, unacknowledged deliveries, consumers, and its history of depth."""

    def __init__(self, name: str, *, durable: bool, capacity: float, overflow: str) -> None:
        self.name = name
        self.durable = durable
        self.capacity = capacity
        self.overflow = overflow
        self.ready: deque[Entry] = deque()
        self.unacked: dict[int, Entry] = {}
        self.consumers: list[str] = []
        self.inflight: dict[str, int] = {}
        self.next_consumer = 0
        self.publishers: set[str] = set()
        self.blocked = False
        self.dead: list[Entry] = []
        self.depth_t = array("d", [0.0])
        self.depth_n = array("l", [0])
        self.depth_max = 0
        """The largest ready depth ever reached (even for an instant)."""
        self.enqueued = self.delivered = self.acked = self.redelivered = self.dropped = 0
        self.wait_total = 0.0
        self.waits = 0

    def time_average(self, start: float, end: float) -> float:
        """Time-average of the ready depth over ``[start, end)``: each recorded depth holds until the next."""
        return float(self.time_averages(np.array([start, end]))[0])

    def time_averages(self, edges: np.ndarray) -> np.ndarray:
        """Time-averages of the ready depth between consecutive ``edges`` (increasing), in one pass over
        the history (it starts with depth 0 at time 0)."""
        t = np.asarray(self.depth_t, dtype=np.float64)
        n = np.asarray(self.depth_n, dtype=np.float64)
        area = np.concatenate(([0.0], np.cumsum(n[:-1] * np.diff(t))))  # the integral up to each change
        at = (np.searchsorted(t, edges, side="right") - 1).clip(0)  # the change in force at each edge
        covered = area[at] + n[at] * (edges - t[at])
        out: np.ndarray = np.diff(covered) / np.diff(edges)
        return out

    def figures(self) -> dict[str, float]:
        """The queue's counters, peak backlog and mean wait (``nan`` before any delivery)."""
        return {
            "ready": len(self.ready),
            "unacked": len(self.unacked),
            "enqueued": self.enqueued,
            "delivered": self.delivered,
            "acked": self.acked,
            "redelivered": self.redelivered,
            "dead_lettered": len(self.dead),
            "dropped": self.dropped,
            "backlog_max": self.depth_max,
            "wait_mean": self.wait_total / self.waits if self.waits else math.nan,
        }

    def track(self, now: float) -> None:
        """Record the ready depth at ``now`` (for backlog and Little's-law figures).

        The history keeps changes only, one record per instant (the depth an instant ends with), so a queue
        that never backs up costs nothing however many messages pass; ``depth_max`` keeps the peak.
        """
        n = len(self.ready)
        if n > self.depth_max:
            self.depth_max = n
        times, depths = self.depth_t, self.depth_n
        if times[-1] == now:
            depths[-1] = n
            if len(depths) > 1 and depths[-2] == n:  # back where the previous instant left it
                del times[-1], depths[-1]
        elif depths[-1] != n:
            times.append(now)
            depths.append(n)


@dataclass(frozen=True, slots=True)
class BrokerStatistics:
    """A snapshot of a broker."""

    node: str
    up: bool
    queues: dict[str, dict[str, float]]
    utilization: float
    backlog_max: int
    queue_wait_mean: float

    @classmethod
    def of(cls, node: str, up: bool, queues: dict[str, BrokerQueue], busy: float) -> BrokerStatistics:
        """A broker's snapshot: its node, whether it is up, its queues, its servers' busy fraction."""
        waits = sum(q.waits for q in queues.values())
        wait_total = sum(q.wait_total for q in queues.values())
        return cls(
            node=node,
            up=up,
            queues={name: q.figures() for name, q in queues.items()},
            utilization=min(busy, 1.0),
            backlog_max=max((q.depth_max for q in queues.values()), default=0),
            queue_wait_mean=wait_total / waits if waits else math.nan,
        )


def broker_service(service: Distribution | None, persist: float) -> Distribution | None:
    """The service time to give the broker's node: workers are needed for a service time or a persistence
    cost (the broker's ``cost`` hook then decides each message's time); neither means none."""
    if service is None and persist > 0:
        return Constant(0.0)
    return service
