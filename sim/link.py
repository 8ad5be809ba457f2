"""One direction of an edge: latency, loss and bandwidth, its state, and the impairments faults put on it.

State: a link is down when an operator (``link_down``) or a partition cut it; ``down_reason`` says which.
Impairments (set by fault windows, cleared when they end): latency multiplied by ``latency_factor`` and
increased by ``extra_latency``; extra uniform ``jitter`` in [0, jitter) that lets messages overtake
(reorder); a loss model replacing the link's own loss — a Bernoulli probability, or a Gilbert–Elliott
two-state chain (per transmission: lose with the current state's probability, then move good→bad with
``p_gb`` or bad→good with ``p_bg``); and ``duplicate``, the probability that a transmission arrives twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.distributions import Distribution
from sim.rng import RngStreams, Stream

__all__ = ["GilbertElliott", "Link", "LinkStatistics"]

_HOP_PENALTY = 1e-9  # seconds added per hop so that equal-latency routes prefer fewer hops


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
        "_rng",
        "admin_down",
        "bad",
        "bandwidth",
        "cut",
        "down_reason",
        "duplicate",
        "extra_latency",
        "free_at",
        "impaired",
        "jitter",
        "latency",
        "latency_factor",
        "loss",
        "loss_model",
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

    def make_stream(self) -> Stream:
        """The link's random stream ``link:<u>-><v>``."""
        self.stream = self._rng.stream(f"link:{self.u}->{self.v}")
        return self.stream

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

    def impaired_delay(self, delay: float, stream: Stream) -> float:
        """A propagation delay under the current latency and reorder impairments."""
        delay = delay * self.latency_factor + self.extra_latency
        if self.jitter:
            delay += self.jitter * stream.random()
        return delay

    def impaired_loss(self, stream: Stream) -> bool:
        """Whether this transmission is lost under the current loss model."""
        model = self.loss_model
        if model is None:
            return bool(self.loss) and stream.random() < self.loss
        if isinstance(model, float):
            return stream.random() < model
        lost = stream.random() < (model.loss_bad if self.bad else model.loss_good)
        if self.bad:
            self.bad = stream.random() >= model.p_bg
        else:
            self.bad = stream.random() < model.p_gb
        return lost

    def statistics(self) -> LinkStatistics:
        return LinkStatistics(self.u, self.v, self.up, self.transmissions, self.free_at)

    def __repr__(self) -> str:
        return f"Link({self.u!r}->{self.v!r}, up={self.up})"
