"""One direction of an edge: latency, loss and bandwidth, its state, and the impairments faults put on it.

State: a link is down when an operator (``link_down``) or a partition cut it; ``down_reason`` says which.
Impairments (set by fault windows, cleared when they end): latency multiplied by ``latency_factor`` and
increased by ``extra_latency``; extra uniform ``jitter`` in [0, jitter) that lets messages overtake
(reorder); a loss model replacing the link's own loss — a Bernoulli probability, or a Gilbert–Elliott
two-state chain (per transmission: lose with the current state's probability, then move good→bad with
``p_gb`` or bad→good with ``p_bg``); and ``duplicate``, the probability that a transmission arrives twice.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from sim.core.distributions import Constant, Distribution, Exponential
from sim.core.rng import RngStreams, Stream

__all__ = ["GilbertElliott", "Link", "LinkStatistics"]

_HOP_PENALTY = 1e-9  # seconds added per hop so that equal-latency routes prefer fewer hops
_COLD = 64  # a link draws its first outcomes eight at a time, then in batches from _FIRST_OUTCOMES ...
_FIRST_OUTCOMES = 64
_MAX_OUTCOMES = 1024  # ... doubling up to this many


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Burst loss: two states with their own loss probabilities and per-transmission transitions."""

    p_gb: float
    p_bg: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    @property
    def stationary_loss(self) -> float:
        """Long-run loss probability: pi_good * loss_good + pi_bad * loss_bad."""
        bad = self.p_gb / (self.p_gb + self.p_bg) if self.p_gb + self.p_bg else 0.0
        return (1 - bad) * self.loss_good + bad * self.loss_bad

    @property
    def mean_burst(self) -> float:
        """Mean number of consecutive transmissions spent in the bad state: 1 / p_bg."""
        return 1 / self.p_bg if self.p_bg else float("inf")


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """Snapshot of one directed link."""

    u: str
    v: str
    up: bool
    transmissions: int
    busy_until: float


class Link:
    """One direction of an edge: latency sampler, Bernoulli loss, bandwidth (bytes/s), state, impairments."""

    __slots__ = (
        "_batch",
        "_drawn",
        "_rng",
        "admin_down",
        "bad",
        "bandwidth",
        "cut",
        "down_reason",
        "duplicate",
        "extra_latency",
        "fault_stream",
        "free_at",
        "impaired",
        "jitter",
        "latency",
        "latency_factor",
        "loss",
        "loss_model",
        "on_change",
        "outcomes",
        "plain",
        "stream",
        "transmissions",
        "u",
        "up",
        "v",
    )

    def __init__(
        self, u: str, v: str, latency: Distribution, loss: float, bandwidth: float, rng: RngStreams
    ) -> None:
        self.u = u
        self.v = v
        self.latency = latency
        self.loss = loss
        self.bandwidth = bandwidth
        self._rng = rng
        self.stream: Stream | None = None  # created on first use: most links of a big graph stay idle
        self.fault_stream: Stream | None = None  # impairments draw here, so they never shift ``stream``
        self.outcomes: Iterator[float] = iter(())
        """Pre-drawn outcomes of the next transmissions (see :meth:`refill`): one per hop."""
        self._batch = _FIRST_OUTCOMES
        self._drawn = 0
        self.free_at = 0.0
        self.transmissions = 0
        self.admin_down = False
        self.cut = False
        self.up = True
        self.down_reason = "link_down"
        self.extra_latency = 0.0
        self.latency_factor = 1.0
        self.jitter = 0.0
        self.loss_model: float | GilbertElliott | None = None
        self.bad = False
        self.duplicate = 0.0
        self.impaired = False
        self.plain = bandwidth == math.inf
        """Neither serialization nor an impairment: a hop over it needs nothing but its outcome."""
        self.on_change: Callable[[], None] | None = None
        """Called by :meth:`refresh` (the network stops cut-through on any change of a link's state)."""

    def make_stream(self) -> Stream:
        """The link's random stream ``link:<u>-><v>``."""
        self.stream = self._rng.stream(f"link:{self.u}->{self.v}")
        return self.stream

    def make_fault_stream(self) -> Stream:
        """The stream impairments draw from, ``link:<u>-><v>:impairment`` (jitter, loss, duplicates)."""
        self.fault_stream = self._rng.stream(f"link:{self.u}->{self.v}:impairment")
        return self.fault_stream

    def refill(self) -> float:
        """The outcome of the next transmission, drawing a batch of outcomes ahead once the link is busy
        (the rest wait in :attr:`outcomes`).

        An outcome is the propagation delay ``d`` (seconds) of a transmission that gets through, or
        ``-1 - d`` for one the link's own Bernoulli loss drops. Transmission ``i`` draws its latency and
        then (when ``loss > 0``) one uniform from :attr:`stream`, so the outcomes are the same however they
        are drawn. The first ``_COLD`` transmissions draw eight at a time: most links of a large graph carry
        few messages. After that, batches double up to ``_MAX_OUTCOMES``; exponential and constant
        latencies are drawn as numpy vectors (their draws never interleave with the uniforms), any other
        distribution one transmission at a time.
        """
        stream = self.stream or self.make_stream()
        latency, loss = self.latency, self.loss
        if self._drawn < _COLD and type(latency) in (Exponential, Constant):
            # cold: eight at a time from Python lists (one counter-based hash gives eight draws)
            self._drawn += 8
            small = (
                stream.exponentials(8, latency.mean)
                if isinstance(latency, Exponential)
                else [latency.value] * 8  # type: ignore[attr-defined]
            )
            if loss:
                small = [d if u >= loss else -1.0 - d for d, u in zip(small, stream.uniforms(8), strict=True)]
            self.outcomes = iter(small)
            return next(self.outcomes)
        n = self._batch
        self._batch = min(2 * n, _MAX_OUTCOMES)
        self._drawn += n
        if type(latency) is Exponential:
            delays = stream.exponential_array(n, latency.mean)
        elif type(latency) is Constant:
            delays = np.full(n, latency.value, dtype=np.float64)
        else:
            drawn = []
            for _ in range(n):
                d = latency.sample(stream)
                drawn.append(-1.0 - d if loss and stream.random() < loss else d)
            delays = np.array(drawn, dtype=np.float64)
            loss = 0.0  # applied already
        if loss:
            delays = np.where(stream.uniform_array(n) >= loss, delays, -1.0 - delays)
        outcomes = array("d", delays.tobytes())  # 8 bytes an outcome
        self.outcomes = iter(outcomes)
        return next(self.outcomes)

    @property
    def cost(self) -> float:
        """Routing weight: mean latency plus a tiny per-hop penalty (impairments do not reroute)."""
        return self.latency.mean + _HOP_PENALTY

    def refresh(self) -> None:
        """Recompute ``up``, ``down_reason`` and ``impaired`` after a change of state."""
        self.up = not (self.admin_down or self.cut)
        self.down_reason = "partition" if self.cut else "link_down"
        self.impaired = bool(
            self.extra_latency
            or self.latency_factor != 1.0
            or self.jitter
            or self.duplicate
            or self.loss_model is not None
        )
        self.plain = self.bandwidth == math.inf and not self.impaired
        if self.on_change is not None:
            self.on_change()

    def impaired_delay(self, delay: float, stream: Stream) -> float:
        """A propagation delay under the current latency and reorder impairments."""
        delay = delay * self.latency_factor + self.extra_latency
        if self.jitter:
            delay += self.jitter * stream.random()
        return delay

    def impaired_loss(self, stream: Stream, lost: bool = False) -> bool:
        """Whether this transmission is lost under the current loss model (``lost``: the link's own loss
        outcome, which stands when no loss model replaces it)."""
        model = self.loss_model
        if model is None:
            return lost
        if isinstance(model, float):
            return stream.random() < model
        lost = stream.random() < (model.loss_bad if self.bad else model.loss_good)
        if self.bad:
            self.bad = stream.random() >= model.p_bg
        else:
            self.bad = stream.random() < model.p_gb
        return lost

    def slow_hop(self, delay: float, lost: bool, size: float, now: float) -> tuple[float, bool, bool]:
        """A transmission of ``size`` bytes over this link, which serializes or is impaired, reaching it at
        ``now``: the delay until arrival (queueing behind earlier transmissions included), whether it is
        lost, and whether it is duplicated. ``delay`` and ``lost`` are the link's own outcome."""
        stream = (self.fault_stream or self.make_fault_stream()) if self.impaired else None
        if stream is not None:
            delay = self.impaired_delay(delay, stream)
            lost = self.impaired_loss(stream, lost)
        if self.bandwidth != math.inf:
            free = self.free_at
            depart = (free if free > now else now) + size / self.bandwidth
            self.free_at = depart
            delay += depart - now
        twin = stream is not None and not lost and bool(self.duplicate) and stream.random() < self.duplicate
        return delay, lost, twin

    def statistics(self) -> LinkStatistics:
        return LinkStatistics(self.u, self.v, self.up, self.transmissions, self.free_at)

    def __repr__(self) -> str:
        return f"Link({self.u!r}->{self.v!r}, up={self.up})"
