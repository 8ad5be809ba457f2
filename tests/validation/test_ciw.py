"""Cross-check against Ciw, an established queueing simulator: the same M/M/3 model, both means inside each
other's 99 % interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.analysis.validation import CASES, evaluate

ciw = pytest.importorskip("ciw")

LAM, MU, C = 2.1, 1.0, 3


def ciw_waits(duration: float, warmup: float, reps: int) -> np.ndarray:
    means = []
    for seed in range(reps):
        ciw.seed(seed)  # Ciw's own generator, in this test only
        network = ciw.create_network(
            arrival_distributions=[ciw.dists.Exponential(rate=LAM)],
            service_distributions=[ciw.dists.Exponential(rate=MU)],
            number_of_servers=[C],
        )
        sim = ciw.Simulation(network)
        sim.simulate_until_max_time(duration)
        waits = [r.waiting_time for r in sim.get_all_records() if r.arrival_date >= warmup]
        means.append(float(np.mean(waits)))
    return np.array(means)


def interval(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(stats.t.ppf(0.995, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def test_sim_and_ciw_agree_on_mmc() -> None:
    case = next(c for c in CASES if c.name == "mmc")
    (ours,) = evaluate(case, quick=True)
    duration = case.scenario(case.quick_size).duration
    theirs_mean, theirs_half = interval(ciw_waits(duration, duration / 20, case.replications))
    assert abs(ours.mean - theirs_mean) <= ours.half_width, (ours, theirs_mean)
    assert abs(ours.mean - theirs_mean) <= theirs_half, (ours, theirs_mean, theirs_half)
