"""The log's validation cases (``log_*`` in :data:`sim.analysis.validation.CASES`; tests/validation/
test_theory.py runs them at test size): the rules their closed forms rest on, checked record by record, and
the closed forms themselves checked against a direct computation.

- A leader's crash under ``acks = 1`` loses exactly the records it appended after its follower's last fetch
  arrived (the fetch's answer lands even when the leader crashed meanwhile): λ·F/2 per crash on average.
- A consumer's crash with periodic commits makes duplicates of exactly the records it processed after its
  last commit: λ·C/2 per crash on average.
- A record's wait in a lingering batch: :func:`sim.analysis.validation.batch_wait`.
- A partition's consumer, an M/M/1 queue with vacations: :func:`sim.analysis.validation.gated_consumer`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim import simulate
from sim.analysis.validation import CASES, Case, batch_wait, evaluate, gated_consumer
from sim.core.units import parse_duration

LATENCY, FETCH = 0.001, 0.01


def log_case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def one_leader_crash(phase: float, case: str = "log_unreplicated", acks: int | str = 0) -> tuple[float, Any]:
    """``case``'s two brokers, 1000 records/s spaced evenly, n0 (the leader) crashes ``phase`` after a
    follower's fetch reached it (a fetch leaves at 1.0 s, arrives at 1.001 s)."""
    crash = 1.0 + LATENCY + phase
    sc = (
        log_case(case)
        .scenario(1)
        .with_updates(
            {
                "duration": 1.5,
                "workload.rate": 1000.0,
                "workload.arrivals": "constant",
                "log.acks": acks,
                "faults": [{"at": crash, "action": "crash", "target": "n0", "for": 0.02}],
            }
        )
    )
    return crash, simulate(sc)


@pytest.mark.parametrize("phase", [0.0003, 0.0012, 0.0047, 0.0093])
def test_a_leader_crash_loses_what_it_appended_since_the_last_fetch_reached_it(phase: float) -> None:
    # acks = 0: every record is its own batch, appended at the leader LATENCY after it was created
    crash, result = one_leader_crash(phase)
    frame = result.ledger
    appended = frame.created_at + LATENCY
    since_fetch = (appended > 1.0 + LATENCY) & (appended < crash)
    lost = frame.reason == "unreplicated"
    assert since_fetch.sum() == round(1000 * phase)  # the window, so the test is not vacuous
    assert (lost == since_fetch).all()  # a 0.3 ms phase: the fetch's answer was in flight, and landed
    assert result.summary["elections"] == 1


def test_under_acks_all_the_same_crash_loses_nothing() -> None:
    _, result = one_leader_crash(0.0093, "log_acks_all", "all")
    s = result.summary
    assert s["elections"] == 1
    assert s["lost"] == 0
    assert s["offered"] > 1000


def test_acks_all_crashes_elect_every_time_and_lose_nothing() -> None:
    # what the exact case log_acks_all rests on: each of its crashes moved the leadership
    acks1, acks_all = (
        simulate(log_case(n).scenario(1)).summary for n in ("log_unreplicated", "log_acks_all")
    )
    assert acks_all["faults"] == acks_all["elections"] == 10
    assert acks_all["lost"] == 0
    assert acks1["faults"] == acks1["elections"] == 10
    assert acks1["lost_unreplicated"] > 0


def test_a_consumer_crash_duplicates_what_it_processed_since_its_last_commit() -> None:
    case = log_case("log_duplicates")
    sc = case.scenario(1)
    result = simulate(sc)
    frame = result.ledger
    data = sc.to_dict()
    interval = parse_duration(data["log"]["commit_interval"], "commit_interval")
    crashes = np.array([parse_duration(f["at"], "at") for f in data["faults"]])
    first = frame.delivered_at.to_numpy()
    after = np.searchsorted(crashes, first)  # the crash following the record's processing
    inside = after < crashes.size
    next_crash = np.where(inside, crashes[np.minimum(after, crashes.size - 1)], np.inf)
    last_commit = np.floor(next_crash / interval + 1e-9) * interval
    expected = inside & (first > last_commit) & (first < next_crash)
    dup = frame.duplicates.to_numpy() > 0
    assert expected.sum() > 50
    assert (dup == expected).all()
    assert frame.duplicates.max() == 1
    assert result.summary["duplicates"] == pytest.approx(expected.sum())


def monte_carlo_batch_wait(rate: float, linger: float, records: float, n: int = 60_000) -> float:
    """The batching rule played directly on Poisson arrivals."""
    t = np.cumsum(np.random.default_rng(11).exponential(1 / rate, n))
    waits = np.empty(n)
    i = 0
    while i < n:
        close = t[i] + linger
        j = int(np.searchsorted(t, close, side="left"))
        if not math.isinf(records):
            j = min(j, i + int(records))
        end = close if j - i < records else t[j - 1]
        waits[i:j] = end - t[i:j]
        i = j
    return float(waits[: n - 100].mean())


@pytest.mark.parametrize("records", [math.inf, 4, 2])
def test_batch_wait_is_the_batching_rule_played_on_poisson_arrivals(records: float) -> None:
    direct = monte_carlo_batch_wait(200.0, 0.02, records)
    assert batch_wait(200.0, 0.02, records) == pytest.approx(direct, rel=0.01)


def test_batch_wait_without_a_size_bound() -> None:
    # the first record waits L, the λL others L/2 on average
    assert batch_wait(200.0, 0.02) == pytest.approx((0.02 + 4 * 0.01) / 5)
    assert batch_wait(200.0, 0.02, 10_000) == pytest.approx(batch_wait(200.0, 0.02), rel=1e-9)
    assert batch_wait(200.0, 0.02, 1) == 0.0  # a record fills its batch: sent at once


def fetch_chain(lam: float, mu: float, fetch: float, top: int = 300) -> tuple[float, float]:
    """E[k], E[k²] of the records k per fetch, from the truncated chain k -> Poisson(λ·Gamma(k, μ))."""
    j = np.arange(top + 1)
    p = np.empty((top + 1, top + 1))
    p[0] = stats.poisson.pmf(j, lam * fetch)
    for k in range(1, top + 1):
        p[k] = stats.nbinom.pmf(j, k, mu / (lam + mu))
    p /= p.sum(axis=1, keepdims=True)
    w, v = np.linalg.eig(p.T)
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi /= pi.sum()
    return float((j * pi).sum()), float((j * j * pi).sum())


@pytest.mark.parametrize(
    ("lam", "mu", "fetch"), [(50.0, 100.0, 0.002), (80.0, 100.0, 0.01), (5.0, 10.0, 0.3)]
)
def test_gated_consumer_lag_matches_the_fetch_chain(lam: float, mu: float, fetch: float) -> None:
    m1, m2 = fetch_chain(lam, mu, fetch)
    w = 1 / (mu - lam) + fetch / 2
    lag = lam * (w + (m2 - m1) / (2 * m1) / mu)
    theory = gated_consumer(lam, mu, fetch)
    assert theory["W"] == pytest.approx(w)
    assert theory["lag"] == pytest.approx(lag, rel=1e-6)


def test_gated_consumer_without_fetch_overhead_is_mm1_plus_the_uncommitted() -> None:
    rho = 0.5
    theory = gated_consumer(50.0, 100.0, 0.0)
    assert theory["W"] == pytest.approx(1 / (100 - 50))  # M/M/1's W = Wq + 1/μ
    assert theory["lag"] == pytest.approx(rho / (1 - rho) + rho**3 / (1 - rho**2))


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("log_linger", 0.02 / 2),  # every record waiting L/2
        ("log_batch_size", batch_wait(200.0, 0.02)),  # the size bound ignored
    ],
)
def test_a_wrong_batch_wait_falls_outside_the_interval(name: str, wrong: float) -> None:
    case = log_case(name)
    bad = Case(
        name, case.model, case.scenario, {"batch_wait": wrong}, case.estimates, quick_size=case.quick_size
    )
    (outcome,) = evaluate(bad, quick=True)
    assert not outcome.inside, outcome
