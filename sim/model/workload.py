"""The shared workload: when each producer sends, how big each message is, and to which consumer.

Defined once and reused by every pattern. Each producer draws from its own streams
(``workload:<node>`` for arrivals, ``workload:<node>:size``, ``workload:<node>:dst``), so the same seed
offers every pattern the same arrivals, sizes and destinations (common random numbers). A pattern that sends
every message to one place (a broker) draws no destinations: that stream is the producer's own, so leaving
it alone shifts no other draw.

A pattern either takes each message with an ``emit`` callback (:meth:`Workload.start`), or has the producers
offer their messages straight through its outboxes (:meth:`Workload.offer_through`): one call from the
producer's timer to the pattern's sender, the common case kept short.

``created_at`` is the *intended* send time: if a pattern makes the producer wait (backpressure), later
messages go out late but keep their intended times, so latency is free of coordinated omission.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Protocol

import simpy

from sim.core.context import SimContext
from sim.core.distributions import Distribution
from sim.core.rng import Stream

__all__ = [
    "Arrivals",
    "ConstantRate",
    "Destinations",
    "Emit",
    "Fixed",
    "Hotspot",
    "Offer",
    "OnOff",
    "Poisson",
    "UniformDestinations",
    "Workload",
    "Zipf",
]

Emit = Callable[[str, float, float, int], "simpy.Event | None"]
"""``emit(producer, created_at, size, consumer_index)``; may return an event to wait on (backpressure)."""


class Offer(Protocol):
    """A node's offer path (:meth:`sim.patterns.base.Outbox.offer`), called positionally as
    ``offer(kind, dst, topic, created_at, size, to)``; may return an event to wait on (backpressure)."""

    def __call__(
        self, kind: str, dst: str, topic: str, created_at: float, size: float, to: str | tuple[str, ...] = ""
    ) -> simpy.Event | None: ...


class Arrivals(Protocol):
    """An arrival process: intended send times in seconds, increasing."""

    def times(self, stream: Stream) -> Iterator[float]: ...


@dataclass(frozen=True, slots=True)
class Poisson:
    """Exponential gaps with the given rate (per second)."""

    rate: float

    def times(self, stream: Stream) -> Iterator[float]:
        t, mean = 0.0, 1.0 / self.rate
        while True:
            t += stream.exponential(mean)
            yield t


@dataclass(frozen=True, slots=True)
class ConstantRate:
    """Evenly spaced sends, starting at a random phase within the first gap."""

    rate: float

    def times(self, stream: Stream) -> Iterator[float]:
        gap = 1.0 / self.rate
        t = stream.random() * gap
        while True:
            yield t
            t += gap


@dataclass(frozen=True, slots=True)
class OnOff:
    """Poisson bursts at ``rate`` during exponential on-periods, silence during exponential off-periods."""

    rate: float
    on: float
    off: float

    def times(self, stream: Stream) -> Iterator[float]:
        t, mean = 0.0, 1.0 / self.rate
        end_on = stream.exponential(self.on)
        while True:
            t += stream.exponential(mean)
            while t > end_on:  # the burst ended: an off-period, then the next burst (memoryless gap)
                start_on = end_on + stream.exponential(self.off)
                t = start_on + (t - end_on)
                end_on = start_on + stream.exponential(self.on)
            yield t


class Destinations(Protocol):
    """Chooses the consumer (an index) for each message of producer ``i``."""

    def pick(self, stream: Stream, producer: int, consumers: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Producer ``i`` always sends to consumer ``i mod C``."""

    def pick(self, stream: Stream, producer: int, consumers: int) -> int:
        stream.random()  # keep the stream's position independent of the choice rule
        return producer % consumers


@dataclass(frozen=True, slots=True)
class UniformDestinations:
    """Every consumer equally likely."""

    def pick(self, stream: Stream, producer: int, consumers: int) -> int:
        return int(stream.random() * consumers)


@dataclass(frozen=True, slots=True)
class Zipf:
    """Consumer of rank ``k`` (1-based) with probability proportional to ``1 / k**s``."""

    s: float = 1.0

    def pick(self, stream: Stream, producer: int, consumers: int) -> int:
        cdf = _zipf_cdf(self.s, consumers)
        return min(bisect_right(cdf, stream.random() * cdf[-1]), consumers - 1)


_ZIPF: dict[tuple[float, int], list[float]] = {}


def _zipf_cdf(s: float, n: int) -> list[float]:
    cdf = _ZIPF.get((s, n))
    if cdf is None:  # a pure function of (s, n): caching it shares no run state
        cdf = _ZIPF[(s, n)] = list(accumulate(1.0 / k**s for k in range(1, n + 1)))
    return cdf


@dataclass(frozen=True, slots=True)
class Hotspot:
    """A ``fraction`` of messages goes to consumer 0, the rest uniformly to all."""

    fraction: float = 0.5

    def pick(self, stream: Stream, producer: int, consumers: int) -> int:
        u = stream.random()
        if u < self.fraction:
            return 0
        return min(int((u - self.fraction) / (1 - self.fraction) * consumers), consumers - 1)


class Workload:
    """Producers that emit messages until ``stop_at``.

    Parameters
    ----------
    ctx : SimContext
    producers, consumers : tuple of str
        Node ids. Consumers are addressed by index in ``emit``.
    arrivals : Arrivals
        Per-producer arrival process.
    size : Distribution
        Message size in bytes.
    destinations : Destinations
        How a producer picks a consumer.
    stop_at : float
        No message is created at or after this time (seconds).
    """

    def __init__(
        self,
        ctx: SimContext,
        producers: tuple[str, ...],
        consumers: tuple[str, ...],
        arrivals: Arrivals,
        size: Distribution,
        destinations: Destinations,
        stop_at: float,
    ) -> None:
        self.ctx = ctx
        self.producers = producers
        self.consumers = consumers
        self.arrivals = arrivals
        self.size = size
        self.destinations = destinations
        self.stop_at = stop_at
        self._producers: list[_Producer] = []

    def start(self, emit: Emit) -> None:
        """Start every producer, each calling ``emit`` per message.

        A producer is a chain of scheduled callbacks, not a process: each send schedules the next at its
        intended time. Behind schedule (after backpressure) the next send is still scheduled, with no delay,
        so that what arrived meanwhile (a broker's ``block``) is handled before it.
        """
        self._producers = [_Producer(self, i, node, emit) for i, node in enumerate(self.producers)]
        for producer in self._producers:
            producer.next()

    def offer_through(
        self,
        offers: Callable[[str], Offer],
        kind: str,
        topic: str,
        *,
        dst: str | None = None,
        to: str | tuple[str, ...] = "",
    ) -> None:
        """Start every producer, each offering its messages through ``offers(node)`` itself.

        Each message is offered as ``offer(kind, dst, topic, created_at, size, to)``: to ``dst`` when given
        (a broker; no destination is drawn), else to the consumer the destinations pick. Otherwise as
        :meth:`start`.
        """
        self._producers = []
        for i, node in enumerate(self.producers):
            producer = _Producer(self, i, node, None)
            producer.offer, producer.kind, producer.topic, producer.to = offers(node), kind, topic, to
            if dst is not None:
                producer.dst = dst
                producer._send_cb = producer._offer_to
            else:
                producer._send_cb = producer._offer_picked
            self._producers.append(producer)
        for producer in self._producers:
            producer.next()


class _Producer:
    """One producer's streams and the callback that sends its next message."""

    __slots__ = (
        "_resume_cb",
        "_send_cb",
        "ctx",
        "dst",
        "dsts",
        "emit",
        "index",
        "kind",
        "node",
        "offer",
        "sizes",
        "times",
        "to",
        "topic",
        "workload",
    )
    # set by Workload.offer_through
    offer: Offer
    kind: str
    topic: str
    to: str | tuple[str, ...]
    dst: str

    def __init__(self, workload: Workload, index: int, node: str, emit: Emit | None) -> None:
        rng = workload.ctx.rng
        self.workload = workload
        self.ctx = workload.ctx
        self.index = index
        self.node = node
        self.emit = emit
        self.times = workload.arrivals.times(rng.stream(f"workload:{node}"))
        self.sizes = rng.stream(f"workload:{node}:size")
        self.dsts = rng.stream(f"workload:{node}:dst")
        self._send_cb: Callable[[Any], None] = self._send
        self._resume_cb: Callable[[Any], None] = self._resume

    def next(self) -> None:
        """Schedule the next send at its intended time (now, if that has passed)."""
        t = next(self.times, None)
        if t is None or t >= self.workload.stop_at:
            return
        now = self.ctx.env.now
        self.ctx.call_later(t - now if t > now else 0.0, self._send_cb, t)

    def _send(self, event: Any) -> None:
        workload = self.workload
        size = workload.size.sample(self.sizes)
        n_consumers = len(workload.consumers)
        consumer = workload.destinations.pick(self.dsts, self.index, n_consumers) if n_consumers else 0
        wait = self.emit(self.node, event._value, size if size > 0.0 else 0.0, consumer)  # type: ignore[misc]
        if wait is not None and wait.callbacks is not None:  # backpressure: go on once it is released
            wait.callbacks.append(self._resume_cb)
        else:
            self.next()

    def _offer_to(self, event: Any) -> None:
        """Offer the next message to the one destination (``offer_through`` with ``dst``)."""
        size = self.workload.size.sample(self.sizes)
        wait = self.offer(self.kind, self.dst, self.topic, event._value, size if size > 0.0 else 0.0, self.to)
        if wait is not None and wait.callbacks is not None:
            wait.callbacks.append(self._resume_cb)
        else:
            self.next()

    def _offer_picked(self, event: Any) -> None:
        """Offer the next message to the consumer the destinations pick (``offer_through``, no ``dst``)."""
        workload = self.workload
        size = workload.size.sample(self.sizes)
        consumers = workload.consumers
        dst = consumers[workload.destinations.pick(self.dsts, self.index, len(consumers))]
        wait = self.offer(self.kind, dst, self.topic, event._value, size if size > 0.0 else 0.0, self.to)
        if wait is not None and wait.callbacks is not None:
            wait.callbacks.append(self._resume_cb)
        else:
            self.next()

    def _resume(self, _: Any) -> None:
        self.next()
