"""Fault windows against theory: Gilbert–Elliott and Bernoulli loss, latency, reorder and duplicate windows.

Statistical checks use fixed seeds (so they cannot flake) and intervals at about 99.9 %. Loss under the
Gilbert–Elliott model comes in bursts, so a single run's losses are positively correlated and a plain
binomial interval would be too narrow: its loss ratio is checked with independent replications instead,
and the correlation itself is shown (replication variance well above the binomial one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim.config.scenario import Scenario
from sim.core.distributions import Constant
from sim.core.rng import RngStreams
from sim.model.link import GilbertElliott, Link
from sim.run.simulate import RunResult, simulate

Z = 3.29  # two-sided 99.9 % normal quantile
GE = {"p_gb": 0.05, "p_bg": 0.25, "loss_good": 0.0, "loss_bad": 0.8}


def _run(*, n: int = 2, rate: str = "1000/s", duration: str = "5s", seed: int = 0, **extra: Any) -> RunResult:
    """Constant-rate at-most-once traffic n0 -> n{n-1} over a line with constant 1 ms links."""
    data: dict[str, Any] = {
        "pattern": "point_to_point",
        "duration": duration,
        "drain": "1s",
        "seed": seed,
        "topology": {"name": "line", "params": {"n": n}},
        "links": {"latency": "1ms"},
        "workload": {"producers": ["n0"], "consumers": [f"n{n - 1}"], "rate": rate, "arrivals": "constant"},
        "delivery": {"guarantee": "at_most_once"},
    }
    data.update(extra)
    return simulate(Scenario.from_dict(data))


def _wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _latency(result: RunResult) -> tuple[np.ndarray, np.ndarray]:
    c = result.columns
    delivered = c["outcome"] == "delivered"
    return c["created_at"][delivered], (c["delivered_at"] - c["created_at"])[delivered]


# -- the model's own figures ------------------------------------------------------------------------
def test_stationary_loss_and_mean_burst_formulas() -> None:
    ge = GilbertElliott(**GE)
    assert ge.stationary_loss == pytest.approx(0.8 * 0.05 / 0.30)
    assert ge.mean_burst == pytest.approx(4.0)
    assert GilbertElliott(0.1, 0.1, 0.2, 0.6).stationary_loss == pytest.approx(0.4)
    assert GilbertElliott(0.0, 0.0, 0.3, 1.0).stationary_loss == pytest.approx(0.3)  # never leaves good
    assert GilbertElliott(0.1, 0.0).mean_burst == math.inf


def _drive(model: GilbertElliott, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """States before, and losses of, ``n`` transmissions through a bare Link under ``model``."""
    link = Link("a", "b", Constant(0.001), 0.0, math.inf, RngStreams(seed))
    link.loss_model = model
    link.refresh()
    stream = link.make_stream()
    bad = np.empty(n, dtype=bool)
    lost = np.empty(n, dtype=bool)
    for i in range(n):
        bad[i] = link.bad
        lost[i] = link.impaired_loss(stream)
    return bad, lost


def _runs(states: np.ndarray, value: bool) -> np.ndarray:
    """Lengths of the complete runs of ``value`` (a run still open at the end is censored: dropped)."""
    padded = np.concatenate(([not value], states, [not value])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded == value))
    lengths = edges[1::2] - edges[::2]
    if states[-1] == value:
        lengths = lengths[:-1]
    return lengths


def test_bad_state_runs_last_one_over_p_bg_on_average() -> None:
    model = GilbertElliott(**GE)
    bad, lost = _drive(model, 200_000, seed=11)
    for value, p_leave in ((True, model.p_bg), (False, model.p_gb)):
        runs = _runs(bad, value)
        assert runs.size > 1000
        # runs are independent geometric lengths (Markov property): the ordinary CI of a mean applies
        mean, half = runs.mean(), Z * runs.std(ddof=1) / math.sqrt(runs.size)
        assert abs(mean - 1 / p_leave) < half, (value, mean, half)
        # and geometric: a run of length 1 has probability p_leave
        low, high = _wilson(int((runs == 1).sum()), runs.size)
        assert low < p_leave < high
    assert abs(bad.mean() - 1 / 6) < 0.01
    # losses given the state are independent Bernoulli draws with the state's probability
    for state, p in ((True, model.loss_bad), (False, model.loss_good)):
        k, n = int(lost[bad == state].sum()), int((bad == state).sum())
        low, high = _wilson(k, n)
        assert low <= p <= high, (state, k / n)


# -- Gilbert–Elliott through a whole run ------------------------------------------------------------
def _loss_ratios(window: dict[str, Any], seeds: range) -> np.ndarray:
    faults = [{"at": 0, "action": "loss", "target": "n0-n1", **window}]
    ratios = []
    for seed in seeds:
        s = _run(seed=seed, faults=faults).summary
        assert s["lost"] == s["lost_loss"]
        ratios.append(s["lost"] / s["offered"])
    return np.array(ratios)


def test_gilbert_elliott_loss_ratio_matches_stationary_loss() -> None:
    expected = GilbertElliott(**GE).stationary_loss
    ratios = _loss_ratios(GE, range(20))
    mean, se = ratios.mean(), ratios.std(ddof=1) / math.sqrt(ratios.size)
    half = stats.t.ppf(0.9995, ratios.size - 1) * se
    assert abs(mean - expected) < half, (mean, half)
    assert half < 0.01  # the interval is narrow enough to mean something
    # bursts: replications vary far more than independent losses would (about 4.6 times the variance)
    binomial = expected * (1 - expected) / 5000
    assert ratios.var(ddof=1) > 2 * binomial


def test_bernoulli_loss_of_the_same_rate_is_not_overdispersed() -> None:
    p = GilbertElliott(**GE).stationary_loss
    ratios = _loss_ratios({"p": p}, range(20))
    assert ratios.var(ddof=1) < 2 * p * (1 - p) / 5000
    assert abs(ratios.mean() - p) < Z * math.sqrt(p * (1 - p) / (20 * 5000))


def test_bernoulli_loss_window_rate_and_it_replaces_the_links_own_loss() -> None:
    # links lose 50 %; from 1 s to 4 s a window sets the loss of n0 -> n1 to 20 % instead
    result = _run(
        duration="5s",
        rate="2000/s",
        links={"latency": "1ms", "loss": 0.5},
        faults=[{"at": "1s", "action": "loss", "target": "n0->n1", "p": 0.2, "for": "3s"}],
    )
    c = result.columns
    lost = c["outcome"] == "lost"
    inside = (c["created_at"] >= 1) & (c["created_at"] < 4)
    for mask, p in ((inside, 0.2), (~inside, 0.5)):
        low, high = _wilson(int(lost[mask].sum()), int(mask.sum()))
        assert low < p < high, (p, lost[mask].mean())
    assert result.fault_log == [
        (1.0, "loss", "n0->n1", "p=0.2"),
        (4.0, "loss_end", "n0->n1", "p=0.2"),
    ]


# -- latency, reorder and duplicate windows ----------------------------------------------------------
def test_latency_windows_add_and_multiply_the_link_latency() -> None:
    result = _run(
        duration="3s",
        rate="200/s",
        faults=[
            {"at": "0.5s", "action": "latency", "target": "all", "add": "5ms", "for": "0.5s"},
            {"at": "1.5s", "action": "latency", "target": "all", "factor": 3, "for": "0.5s"},
            {"at": "2.5s", "action": "latency", "target": "n0->n1", "add": "5ms", "factor": 3},
        ],
    )
    created, latency = _latency(result)
    assert result.summary["delivered"] == result.summary["offered"] == created.size
    # delay * factor + add, fixed when the message is sent: 1 ms, 6 ms, 3 ms and 8 ms
    expected = np.select(
        [created < 0.5, created < 1.0, created < 1.5, created < 2.0, created < 2.5],
        [0.001, 0.006, 0.001, 0.003, 0.001],
        0.008,
    )
    np.testing.assert_allclose(latency, expected, rtol=0, atol=1e-12)


def test_latency_window_applies_per_hop() -> None:
    result = _run(
        n=4,
        duration="1s",
        rate="100/s",
        faults=[{"at": 0, "action": "latency", "target": "all", "add": "2ms"}],
    )
    _, latency = _latency(result)
    np.testing.assert_allclose(latency, 3 * 0.003, rtol=0, atol=1e-12)


def test_reorder_window_adds_uniform_jitter_and_lets_messages_overtake() -> None:
    result = _run(
        duration="3s",
        delivery={"guarantee": "at_most_once", "ordering": "per_key"},
        faults=[{"at": "1s", "action": "reorder", "target": "all", "jitter": "5ms", "for": "1s"}],
    )
    created, latency = _latency(result)
    inside = (created >= 1) & (created < 2)
    np.testing.assert_allclose(latency[~inside], 0.001, rtol=0, atol=1e-12)
    jittered = latency[inside] - 0.001
    assert jittered.min() >= 0 and jittered.max() < 0.005
    # uniform on [0, 5 ms): mean 2.5 ms, standard deviation 5 ms / sqrt(12)
    assert abs(jittered.mean() - 0.0025) < Z * 0.005 / math.sqrt(12 * jittered.size)
    assert stats.kstest(jittered / 0.005, "uniform").pvalue > 0.001
    # messages 1 ms apart with up to 5 ms of jitter overtake one another: per-key FIFO breaks
    fifo = [v for v in result.check() if v.rule == "fifo"]
    assert len(fifo) > 100
    assert all(1 <= result.columns["created_at"][v.obligation] < 2.006 for v in fifo)


def test_jitter_smaller_than_the_gap_between_messages_does_not_reorder() -> None:
    result = _run(
        duration="2s",
        delivery={"guarantee": "at_most_once", "ordering": "per_key"},
        faults=[{"at": 0, "action": "reorder", "target": "all", "jitter": "0.5ms"}],
    )
    _, latency = _latency(result)
    assert latency.max() < 0.0015
    assert result.check() == []


def test_duplicate_window_with_probability_1_doubles_deliveries_on_one_hop() -> None:
    result = _run(
        duration="2s",
        rate="200/s",
        faults=[{"at": 0, "action": "duplicate", "target": "all", "probability": 1}],
    )
    s = result.summary
    assert s["delivered"] == s["offered"] == 400
    assert s["duplicates"] == s["delivered"]
    violations = result.check()
    assert len(violations) == s["delivered"] and {v.rule for v in violations} == {"no_duplicates"}


def test_a_duplicate_window_with_for_ends() -> None:
    # 100/s for 6 s; every message sent in [1 s, 2 s) arrives twice, and none after the window's end
    result = _run(
        duration="6s",
        rate="100/s",
        faults=[{"at": "1s", "action": "duplicate", "target": "all", "probability": 1, "for": "1s"}],
    )
    s, c = result.summary, result.columns
    assert s["delivered"] == s["offered"] == 600
    assert s["duplicates"] == 100
    twice = c["created_at"][c["duplicates"] > 0]
    assert twice.size == 100 and twice.min() >= 1.0 and twice.max() < 2.0


def test_duplicates_compound_over_hops() -> None:
    # every hop doubles every copy: 2 hops give 4 arrivals, one delivery and three duplicates
    result = _run(
        n=3,
        duration="1s",
        rate="100/s",
        faults=[{"at": 0, "action": "duplicate", "target": "all", "probability": 1}],
    )
    s = result.summary
    assert s["duplicates"] == 3 * s["delivered"] == 3 * s["offered"]


def test_duplicate_window_probability_is_per_transmission() -> None:
    result = _run(
        duration="5s", faults=[{"at": 0, "action": "duplicate", "target": "n0->n1", "probability": 0.3}]
    )
    s = result.summary
    low, high = _wilson(int(s["duplicates"]), int(s["delivered"]))
    assert low < 0.3 < high
