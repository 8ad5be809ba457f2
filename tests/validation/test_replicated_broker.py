"""Majority-commit latency of a replicated queue against the order statistic of the followers' round trips.

A publish commits when ⌊N/2⌋ of the N − 1 followers have answered (the leader is the rest of the majority):
its commit latency is the ⌊N/2⌋-th smallest follower round trip, each two link latencies plus an append
(:func:`sim.analysis.validation.majority_commit`, the closed form; docs/patterns.md, "Replicated brokers").
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import simulate
from sim.analysis.validation import CASES, Case, evaluate, majority_commit

LATENCY, APPEND = 0.001, 0.0005


def case(replicas: int, theory: dict[str, float] | None = None) -> Case:
    base = next(c for c in CASES if c.name == "replicated_commit")
    return Case(
        f"replicated_commit_{replicas}",
        base.model.replace("3 replicas", f"{replicas} replicas"),
        lambda s: base.scenario(s).with_updates(
            {
                "topology": {"name": "full_mesh", "params": {"n": replicas + 2}},
                "workload.producers": [f"n{replicas}"],
                "workload.consumers": [f"n{replicas + 1}"],
                "broker.replicas": [f"n{i}" for i in range(replicas)],
            }
        ),
        theory or majority_commit(replicas, LATENCY, APPEND),
        base.estimates,
        quick_precision=base.quick_precision,
    )


@pytest.mark.parametrize("replicas", [3, 5])
def test_commit_latency_is_the_order_statistic_of_follower_round_trips(replicas: int) -> None:
    for outcome in evaluate(case(replicas), quick=True):
        assert outcome.inside, outcome
        assert outcome.relative_half_width <= 0.1, outcome


def kth_follower(n: int, k: int) -> dict[str, float]:
    """Mean, median and 99th percentile of the k-th smallest of n follower round trips, by direct draws."""
    rng = np.random.default_rng(11)
    trips = rng.exponential(LATENCY, (400_000, n)) + rng.exponential(LATENCY, (400_000, n)) + APPEND
    kth = np.sort(trips, axis=1)[:, k - 1]
    return {"mean": kth.mean(), "p50": np.percentile(kth, 50), "p99": np.percentile(kth, 99)}


@pytest.mark.parametrize("replicas", [3, 5])
def test_leaving_the_leader_out_of_the_majority_falls_outside_the_interval(replicas: int) -> None:
    # the wrong answer: a majority of ⌊N/2⌋ + 1 followers, as if the leader's own append did not count
    # (3 replicas: both followers; 5: the 3rd of 4 instead of the 2nd)
    leader_left_out = kth_follower(replicas - 1, replicas // 2 + 1)
    assert leader_left_out["mean"] > majority_commit(replicas, LATENCY, APPEND)["mean"] * 1.2
    outcomes = evaluate(case(replicas, leader_left_out), quick=True)
    assert not any(o.inside for o in outcomes), outcomes


@pytest.mark.parametrize("replicas", [3, 5])
def test_with_fixed_link_latency_every_commit_takes_two_links_and_an_append(replicas: int) -> None:
    sc = case(replicas).scenario(0.02).with_updates({"links": {"latency": "1ms"}})
    s = simulate(sc).summary
    exact = majority_commit(replicas, 0.0, 2 * LATENCY + APPEND)
    assert exact["mean"] == pytest.approx(0.0025)
    for q in ("mean", "p50", "p99"):
        assert s[f"commit_latency_{q}"] == pytest.approx(exact[q], rel=1e-9)


@pytest.mark.parametrize("replicas", [3, 5])
def test_the_closed_form_matches_a_direct_draw_of_the_order_statistic(replicas: int) -> None:
    rng = np.random.default_rng(7)
    n, k = replicas - 1, replicas // 2
    trips = rng.exponential(LATENCY, (400_000, n)) + rng.exponential(LATENCY, (400_000, n)) + APPEND
    kth = np.sort(trips, axis=1)[:, k - 1]
    theory = majority_commit(replicas, LATENCY, APPEND)
    assert kth.mean() == pytest.approx(theory["mean"], rel=0.005)
    assert np.percentile(kth, 50) == pytest.approx(theory["p50"], rel=0.005)
    assert np.percentile(kth, 99) == pytest.approx(theory["p99"], rel=0.01)
