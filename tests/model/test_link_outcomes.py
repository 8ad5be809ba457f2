"""A link's pre-drawn hop outcomes: the same numbers, in the same order, as drawing per transmission."""

from __future__ import annotations

import math

import pytest

from sim.core.distributions import Constant, Exponential, LogNormal, Uniform
from sim.core.rng import RngStreams, Stream
from sim.model.link import Link


def per_transmission(latency: object, loss: float, stream: Stream, n: int) -> list[float]:
    """The reference: for each transmission, draw its latency, then (if loss > 0) one uniform."""
    out = []
    for _ in range(n):
        d = latency.sample(stream)  # type: ignore[attr-defined]
        out.append(-1.0 - d if loss and stream.random() < loss else d)
    return out


def outcomes(link: Link, n: int) -> list[float]:
    out = []
    for _ in range(n):
        try:
            out.append(next(link.outcomes))
        except StopIteration:
            out.append(link.refill())
    return out


@pytest.mark.parametrize(
    "latency",
    [Exponential(0.002), Constant(0.001), Uniform(0.001, 0.003), LogNormal(0.002, 0.5)],
    ids=["exponential", "constant", "uniform", "lognormal"],
)
@pytest.mark.parametrize("loss", [0.0, 0.3])
def test_batched_outcomes_equal_per_transmission_draws(latency: object, loss: float) -> None:
    n = 2000  # through several batch doublings and past the counter-based first draws
    link = Link("a", "b", latency, loss, math.inf, RngStreams(4))  # type: ignore[arg-type]
    reference = per_transmission(latency, loss, RngStreams(4).stream("link:a->b"), n)
    got = outcomes(link, n)
    assert got == reference
    lost = sum(v < 0 for v in got)
    if loss:
        assert abs(lost / n - loss) < 5 * math.sqrt(loss * (1 - loss) / n)
    else:
        assert lost == 0


def test_impairments_draw_from_their_own_stream() -> None:
    rng = RngStreams(4)
    link = Link("a", "b", Exponential(0.002), 0.1, math.inf, rng)
    first = outcomes(link, 10)
    link.jitter = 0.01
    link.refresh()
    assert link.impaired and not link.plain
    stream = link.make_fault_stream()
    assert stream.name == "link:a->b:impairment"
    link.impaired_delay(0.0, stream)
    # jitter draws leave the link's own outcomes where they were
    reference = per_transmission(Exponential(0.002), 0.1, RngStreams(4).stream("link:a->b"), 20)
    assert first + outcomes(link, 10) == reference


def test_plain_means_no_serialization_and_no_impairment() -> None:
    rng = RngStreams(1)
    assert Link("a", "b", Constant(0.0), 0.0, math.inf, rng).plain
    assert not Link("a", "b", Constant(0.0), 0.0, 1e6, rng).plain
    link = Link("a", "b", Constant(0.0), 0.0, math.inf, rng)
    link.duplicate = 0.5
    link.refresh()
    assert not link.plain
    link.duplicate = 0.0
    link.refresh()
    assert link.plain
