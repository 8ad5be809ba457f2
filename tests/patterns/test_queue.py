"""Message queue: competing consumers of one broker queue, against M/M/1 and Erlang C."""

from __future__ import annotations

import math

import numpy as np
from conftest import mm_queue
from scipy import stats

from sim import simulate


def replicate(make: object, reps: int, metric: str) -> tuple[float, float]:
    """Mean and 95 % CI half-width of ``metric`` over ``reps`` seeds."""
    values = np.array([simulate(make(seed)).summary[metric] for seed in range(reps)])  # type: ignore[operator]
    half = stats.t.ppf(0.975, reps - 1) * values.std(ddof=1) / math.sqrt(reps)
    return float(values.mean()), float(half)


def erlang_c(c: int, lam: float, mu: float) -> float:
    a, rho = lam / mu, lam / (c * mu)
    top = a**c / math.factorial(c) / (1 - rho)
    return top / (sum(a**n / math.factorial(n) for n in range(c)) + top)


def test_single_consumer_queue_wait_matches_mm1() -> None:
    lam, mu = 0.5, 1.0
    mean, half = replicate(lambda s: mm_queue(1, lam, s), 8, "queue_wait_mean")
    theory = (lam / mu) / (mu - lam)
    assert abs(mean - theory) <= half, (mean, half, theory)
    assert half < 0.15 * theory  # the check has teeth


def test_competing_consumers_queue_wait_matches_erlang_c() -> None:
    c, lam, mu = 3, 2.1, 1.0
    mean, half = replicate(lambda s: mm_queue(c, lam, s), 8, "queue_wait_mean")
    theory = erlang_c(c, lam, mu) / (c * mu - lam)
    assert abs(mean - theory) <= half, (mean, half, theory)
