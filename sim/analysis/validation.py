"""Validation against theory: every pattern pinned to a closed form.

Each case is a scenario, the closed form it should reproduce, and how to read the estimate from a run.
Estimates come from independent replications (each a long run after warm-up), so their mean has a Student-t
confidence interval; the theory must lie inside the 99 % interval, whose half-width must be small enough to
mean something (``precision``: 2 % of the value at full size).

``python -m sim.analysis.validation`` (or ``make validate``) runs every case at full size and writes
``docs/validation.md``; ``tests/validation/`` runs them at the size that fits the test suite.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from sim.config.scenario import Scenario
from sim.sweep.engines import run_all
from sim.sweep.experiment import replication_seeds

Summary = dict[str, float]

__all__ = [
    "CASES",
    "Case",
    "Outcome",
    "batch_wait",
    "erlang_c",
    "evaluate",
    "gated_consumer",
    "main",
    "majority_commit",
    "write_page",
]

LEVEL = 0.99


def erlang_c(c: int, lam: float, mu: float) -> float:
    """Probability of waiting in an M/M/c queue."""
    a, rho = lam / mu, lam / (c * mu)
    top = a**c / math.factorial(c) / (1 - rho)
    return top / (sum(a**n / math.factorial(n) for n in range(c)) + top)


def mm1k_blocking(lam: float, mu: float, k: int) -> float:
    """Blocking probability p_K of an M/M/1/K queue."""
    rho = lam / mu
    return (1 - rho) * rho**k / (1 - rho ** (k + 1))


@dataclass(frozen=True)
class Case:
    """A validation case: ``scenario(size)`` builds the run (size scales its length), ``estimates(summary)``
    reads the figures, ``theory`` gives their closed-form values. ``size`` is the full-size run length
    (chosen so the 99 % interval is within ``precision``); the test suite runs ``quick_size`` and asks for
    ``quick_precision``."""

    name: str
    model: str
    scenario: Callable[[float], Scenario]
    theory: Mapping[str, float]
    estimates: Callable[[Summary], dict[str, float]]
    replications: int = 10
    size: float = 1.0
    precision: float = 0.02
    quick_precision: float = 0.05
    quick_size: float = 0.2
    notes: str = ""
    exact: bool = field(default=False)


@dataclass(frozen=True)
class Outcome:
    """One quantity of one case: theory, simulated mean, 99 % CI half-width, relative error, verdicts."""

    case: str
    quantity: str
    theory: float
    mean: float
    half_width: float
    n: int

    @property
    def relative_error(self) -> float:
        return (self.mean - self.theory) / self.theory if self.theory else self.mean - self.theory

    @property
    def inside(self) -> bool:
        """The theory lies inside the interval (to rounding, for deterministic figures)."""
        return abs(self.mean - self.theory) <= self.half_width + 1e-9 * max(1.0, abs(self.theory))

    @property
    def relative_half_width(self) -> float:
        return self.half_width / abs(self.theory) if self.theory else self.half_width


def _mm(consumers: int, rate: float, service: Any, size: float, **broker: Any) -> Scenario:
    duration = 40000.0 * size
    return Scenario(
        pattern="queue",
        duration=duration,
        warmup=duration / 20,
        topology={"name": "star", "params": {"n": consumers + 1}},
        links={"latency": 0},
        nodes={"service": service},
        workload={"producers": 1, "consumers": consumers, "rate": rate},
        delivery={"guarantee": "at_most_once"},
        broker={"node": "hub", "consumer_ack": "manual", "prefetch": 1, **broker},
    )


def _queueing(s: Summary) -> dict[str, float]:
    return {"Wq": s["queue_wait_mean"], "W": s["latency_mean"], "Lq": s["backlog_mean"]}


def _line(hops: int, size: float, **kw: Any) -> Scenario:
    return Scenario(
        duration=200.0 * size,
        topology={"name": "line", "params": {"n": hops + 1}},
        workload={"rate": "50/s"},
        **kw,
    )


def _ratio(result: Summary) -> dict[str, float]:
    return {"delivery_ratio": result["delivery_ratio"]}


def _retransmission(s: Summary) -> dict[str, float]:
    return {"attempts": 1 + s["retries"] / s["offered"], "latency": s["latency_mean"]}


def majority_commit(replicas: int, latency_mean: float, append: float) -> dict[str, float]:
    """Commit latency of a publish to a replicated broker (``broker.replicas``), from the leader's append to
    the majority's: the k-th smallest of the n = N − 1 followers' round trips, k = ⌊N/2⌋ (the leader is one
    of the majority). A round trip is X + Y + ``append`` with X, Y the one-way link latencies, exponential
    with mean ``latency_mean`` (0: none), i.i.d.; with F its CDF, P(T ≤ t) = Σ_{j≥k} C(n,j) F^j (1−F)^(n−j).
    Returns ``mean`` (∫ P(T > t) dt, by quadrature), ``p50`` and ``p99`` (roots of P(T ≤ t) = q), seconds.
    """
    from scipy import integrate, optimize

    n, k = replicas - 1, replicas // 2
    if latency_mean == 0:
        return dict.fromkeys(("mean", "p50", "p99"), append)
    lam = 1.0 / latency_mean

    def below(u: float) -> float:  # P(T <= append + u)
        f = 1.0 - math.exp(-lam * u) * (1.0 + lam * u) if u > 0 else 0.0
        return float(stats.binom.sf(k - 1, n, f))

    mean = append + integrate.quad(lambda u: 1.0 - below(u), 0, math.inf)[0]
    top = 100 * latency_mean * (1 + math.log(max(n, 1)))
    p50 = append + optimize.brentq(lambda u: below(u) - 0.5, 0.0, top)
    p99 = append + optimize.brentq(lambda u: below(u) - 0.99, 0.0, top)
    return {"mean": mean, "p50": p50, "p99": p99}


def _replicated(replicas: int, size: float) -> Scenario:
    """A queue replicated on n0..n{N-1} of a full mesh (1 ms exponential links), 100 publishes/s spaced evenly
    (a follower's appends never overlap), 0.5 ms per append."""
    return Scenario(
        pattern="queue",
        duration=100.0 * size,
        warmup=1.0,
        topology={"name": "full_mesh", "params": {"n": replicas + 2}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}},
        workload={
            "producers": [f"n{replicas}"],
            "consumers": [f"n{replicas + 1}"],
            "rate": 100,
            "arrivals": "constant",
        },
        delivery={"guarantee": "at_least_once", "max_attempts": "inf"},
        broker={
            "node": "n0",
            "replicas": [f"n{i}" for i in range(replicas)],
            "durable": True,
            "persist": "0.5ms",
        },
    )


def _commit(s: Summary) -> dict[str, float]:
    return {q: s[f"commit_latency_{q}"] for q in ("mean", "p50", "p99")}


def _tandem(size: float) -> Scenario:
    handlers = [
        {"name": "a", "emits": ["b"], "service": {"dist": "exponential", "mean": 1 / 2.0}},
        {"name": "b", "emits": ["c"], "service": {"dist": "exponential", "mean": 1 / 3.0}},
        {"name": "c", "emits": [], "service": {"dist": "exponential", "mean": 1 / 2.5}},
    ]
    duration = 20000.0 * size
    return Scenario(
        pattern="event_driven",
        duration=duration,
        warmup=duration / 20,
        topology={"name": "star", "params": {"n": 5}},
        links={"latency": 0},
        workload={"producers": 1, "consumers": 3, "rate": 1.0},
        broker={"node": "hub"},
        event_driven={"handlers": handlers},
    )


H, P, D, T = 3, 0.1, 0.002, 0.05  # hops, loss per link, one-way latency per hop, fixed retransmission timeout
A = (1 - P) ** H
CASES: tuple[Case, ...] = (
    Case(
        "mm1",
        "broker queue, 1 consumer: M/M/1, λ = 0.5, μ = 1",
        lambda s: _mm(1, 0.5, {"dist": "exponential", "mean": 1}, s),
        {"Wq": 1.0, "W": 2.0, "Lq": 0.5},
        _queueing,
        size=7.0,
        quick_precision=0.15,
        notes="Wq = ρ/(μ−λ), W = 1/(μ−λ), Lq = λWq (Little's law on the recorded backlog)",
    ),
    Case(
        "mmc",
        "broker queue, 3 competing consumers: M/M/3, λ = 2.1, μ = 1",
        lambda s: _mm(3, 2.1, {"dist": "exponential", "mean": 1}, s),
        {"Wq": erlang_c(3, 2.1, 1.0) / (3 - 2.1)},
        lambda r: {"Wq": r["queue_wait_mean"]},
        size=5.0,
        quick_precision=0.15,
        notes="Erlang C",
    ),
    Case(
        "mm1k",
        "bounded queue, drop_new: M/M/1/4, λ = 0.8, μ = 1",
        lambda s: _mm(1, 0.8, {"dist": "exponential", "mean": 1}, s, capacity=3, overflow="drop_new"),
        {"blocking": mm1k_blocking(0.8, 1.0, 4)},
        lambda r: {"blocking": r["lost_overflow"] / r["offered"]},
        size=4.0,
        quick_precision=0.08,
        notes="K = capacity 3 + the message at the consumer; blocking = p_K",
    ),
    Case(
        "md1",
        "broker queue, constant service: M/D/1, λ = 0.5, S = 1",
        lambda s: _mm(1, 0.5, 1.0, s),
        {"Wq": 0.5 * 1.0 / (2 * 0.5)},
        lambda r: {"Wq": r["queue_wait_mean"]},
        size=5.0,
        quick_precision=0.08,
        notes="Pollaczek–Khinchine, E[S²] = 1/μ²",
    ),
    Case(
        "mg1",
        "broker queue, lognormal service (mean 1, CV 1): M/G/1, λ = 0.5",
        lambda s: _mm(1, 0.5, {"dist": "lognormal", "mean": 1, "cv": 1}, s),
        {"Wq": 0.5 * 2.0 / (2 * 0.5)},
        lambda r: {"Wq": r["queue_wait_mean"]},
        size=5.0,
        quick_precision=0.15,
        notes="Pollaczek–Khinchine, E[S²] = m²(1+v²)",
    ),
    Case(
        "path",
        "point-to-point, 4 hops of constant 2 ms",
        lambda s: _line(4, s, links={"latency": "2ms"}),
        {"latency": 0.008},
        lambda r: {"latency": r["latency_max"]},
        replications=2,
        exact=True,
        notes="exact: every message takes the sum of the hop latencies",
    ),
    Case(
        "loss",
        f"point-to-point at-most-once, {H} hops, loss {P} per link",
        lambda s: _line(H, s, links={"latency": "1ms", "loss": P}),
        {"delivery_ratio": A},
        _ratio,
        notes="(1−p)^h",
    ),
    Case(
        "retransmit",
        f"at-least-once, {H} hops, loss {P} both ways, fixed timeout {T * 1000:g} ms",
        lambda s: _line(
            H,
            s,
            links={"latency": D, "loss": P},
            delivery={"guarantee": "at_least_once", "ack_timeout": T, "backoff": 1, "max_attempts": "inf"},
        ),
        {"attempts": 1 / (1 - P) ** (2 * H), "latency": H * D + T * (1 / A - 1)},
        _retransmission,
        size=1.5,
        quick_precision=0.08,
        notes="attempts: 1/q, q = (1−p)^{2h}; latency: h·d + T·(1/a − 1), a = (1−p)^h",
    ),
    Case(
        "bottleneck",
        "one link, 1 KB at 100 kB/s (s = 10 ms), Poisson λ = 50/s: M/D/1 at the link",
        lambda s: Scenario(
            duration=400.0 * s,
            warmup=20.0 * s,
            topology={"name": "line", "params": {"n": 2}},
            links={"latency": "1ms", "bandwidth": "100kB/s"},
            workload={"rate": "50/s", "size": "1KB"},
        ),
        {"latency": 0.001 + 0.01 + 50 * 0.01**2 / (2 * (1 - 0.5))},
        lambda r: {"latency": r["latency_mean"]},
        notes="latency = d + s + Wq, Wq = λs²/(2(1−ρ))",
    ),
    Case(
        "fanout",
        "pub/sub on a star, broker at the hub, 4 subscribers, loss 5 % per link",
        lambda s: Scenario(
            pattern="pubsub",
            duration=100.0 * s,
            topology={"name": "star", "params": {"n": 5}},
            links={"latency": "1ms", "loss": 0.05},
            broker={"node": "hub"},
            workload={"producers": 1, "consumers": 4, "rate": "50/s"},
        ),
        {"delivery_ratio": 0.95**2, "transmissions_per_publish": 1 + 4 * 0.95},
        lambda r: {
            "delivery_ratio": r["delivery_ratio"],
            "transmissions_per_publish": r["data_transmissions"] / (r["offered"] / 4),
        },
        notes="per subscriber (1−p)²; 1 publish + K deliveries when nothing is lost (1 + K(1−p) with loss)",
    ),
    Case(
        "rpc",
        "request/reply, client–server link 5 ms, exponential server μ = 20/s, λ = 10/s",
        lambda s: Scenario(
            pattern="request_reply",
            duration=4000.0 * s,
            warmup=200.0 * s,
            topology={
                "name": "client_server",
                "params": {"latency": "5ms", "service": {"dist": "exponential", "mean": 0.05}},
            },
            workload={"producers": ["client"], "consumers": ["server"], "rate": 10.0},
            request_reply={"timeout": "1h"},
        ),
        {"rtt": 0.005 * 2 + 1 / (20 - 10)},
        lambda r: {"rtt": r["rtt_mean"]},
        notes="RTT = 2d + 1/(μ−λ) (M/M/1 sojourn)",
    ),
    Case(
        "tandem",
        "event chain a → b → c, exponential handlers μ = 2, 3, 2.5, λ = 1",
        _tandem,
        {"chain_latency": 1 / (2 - 1) + 1 / (3 - 1) + 1 / (2.5 - 1)},
        lambda r: {"chain_latency": r["chain_latency_mean"]},
        size=1.5,
        quick_precision=0.06,
        notes="Jackson tandem: Σ 1/(μᵢ−λ)",
    ),
    Case(
        "replicated_commit",
        "queue on 3 replicas: a publish commits at the majority (1 ms exponential links, 0.5 ms appends)",
        lambda s: _replicated(3, s),
        majority_commit(3, 0.001, 0.0005),
        _commit,
        size=1.0,
        quick_precision=0.1,
        notes="the k-th smallest of the N−1 follower round trips X + Y + a, k = ⌊N/2⌋ (majority_commit)",
    ),
)


# -- the partitioned log (pattern "log") ------------------------------------------------------------------
# The log's rules these cases rest on (sim/model/log/cluster.py, sim/patterns/log/): a follower fetches
# every ``fetch_interval`` on a grid fixed from time 0 and takes what the leader appended until its fetch
# arrives (the answer lands even if the leader crashes meanwhile); a producer's batch leaves when it is full
# or ``linger`` after its first record; a consumer fetches again as soon as a fetch's records are processed,
# ``fetch_interval`` later after an empty fetch; periodic commits store the position (everything fetched).


def batch_wait(rate: float, linger: float, records: float = math.inf) -> float:
    """Mean wait of a record in a producer's batch, Poisson arrivals at ``rate``: a batch opens with a record,
    takes the arrivals of the next ``linger`` seconds, and leaves at ``linger`` or with its ``records``-th
    record (``batch_size`` / record size), whichever comes first. With N(t) ~ Poisson(λt) the arrivals after
    the first, the batch holds 1 + N(t) records while N(t) ≤ n − 2, so
    E[wait] = ∫₀ᴸ E[(1 + N(t))·1{N(t) ≤ n−2}] dt / (1 + E[min(N(L), n−1)]); without a size bound
    (L + λL²/2) / (1 + λL). Seconds."""
    from scipy import integrate

    lam, n = rate, records
    if n <= 1:
        return 0.0
    if math.isinf(n):
        return (linger + lam * linger**2 / 2) / (1 + lam * linger)
    k = np.arange(int(n) - 1)  # 0 .. n-2

    def held(t: float) -> float:
        return float(((1 + k) * stats.poisson.pmf(k, lam * t)).sum())

    total = integrate.quad(held, 0, linger, limit=200)[0]
    pk = stats.poisson.pmf(k, lam * linger)
    count = 1 + float((k * pk).sum()) + (n - 1) * float(stats.poisson.sf(n - 2, lam * linger))
    return float(total / count)


def gated_consumer(lam: float, mu: float, fetch_interval: float) -> dict[str, float]:
    """A log partition read by one consumer with exponential processing (rate ``mu``), Poisson records
    (``lam``), instant fetches, commits after processing. The consumer serves a fetch's records in order and
    fetches again at once; after an empty fetch it waits ``fetch_interval`` (F): an M/M/1 queue with multiple
    vacations of length F, so W = 1/(μ−λ) + F/2 (Fuhrmann–Cooper: Wq = ρ/(μ−λ) + F/2). The lag (high
    watermark − committed) counts a record from its append to the commit after the last record of its fetch:
    by Little, lag = λ(W + E[B]/μ), B the records behind it in its fetch. With k the records of a fetch, k' |
    k ~ Poisson(λ·Gamma(k, μ)) (Poisson(λF) after an empty one), the stationary moments satisfy
    E[k²]/E[k] = (ρ + ρ² + (1−ρ)(1+λF)) / (1−ρ²), and E[B] = (E[k²] − E[k]) / (2E[k]); with F → 0 the lag is
    L + ρ³/(1−ρ²), above M/M/1's L = ρ/(1−ρ) by the processed records not yet committed."""
    rho = lam / mu
    w = 1 / (mu - lam) + fetch_interval / 2
    ratio = (rho + rho**2 + (1 - rho) * (1 + lam * fetch_interval)) / (1 - rho**2)
    behind = (ratio - 1) / 2
    return {"W": w, "lag": lam * (w + behind / mu)}


LOG_PHASES = 10
"""Crash phases per block: the i-th crash of a block falls (i + 1/2)/10 of the period after its grid
point, so that a block averages the phase uniformly (stratified)."""


def _leader_crashes(acks: int | str, blocks: float) -> Scenario:
    """Two brokers (n0, n1) replicate one partition (1 ms links, 10 ms follower fetches, appends at once);
    100 records/s from n2. Every 0.2 s the leader crashes for 20 ms, at a phase φ after a follower's fetch
    reached it (stratified over (0, F)); the other broker is elected 10 ms later. 0.2 s lets the recovered
    broker rejoin the ISR (it needs a fetch interval without appends: e^{−λF} per fetch)."""
    count = LOG_PHASES * max(1, round(blocks))
    period, latency, cycle = 0.01, 0.001, 0.2
    faults = [
        {
            "at": 0.5 + i * cycle + latency + (i % LOG_PHASES + 0.5) * period / LOG_PHASES,
            "action": "crash",
            "target": f"n{i % 2}",
            "for": 0.02,
        }
        for i in range(count)
    ]
    reliable = acks != 1
    return Scenario(
        pattern="log",
        duration=0.5 + count * cycle,
        warmup=0.0,
        topology={"name": "full_mesh", "params": {"n": 4}},
        links={"latency": latency},
        nodes={"service": 0},
        broker={"node": "n0", "service": 0},
        workload={"producers": ["n2"], "consumers": ["n3"], "rate": 100.0},
        delivery={
            "guarantee": "at_least_once" if reliable else "at_most_once",
            "ack_timeout": "50ms" if reliable else "5ms",
            "max_attempts": "inf",
        },
        log={
            "brokers": ["n0", "n1"],
            "replication_factor": 2,
            "acks": acks,
            "min_insync_replicas": 2 if reliable else 1,
            "fetch_interval": period,
            "election_delay": "10ms",
        },
        faults=faults,
    )


def _per_crash(s: Summary) -> dict[str, float]:
    return {"unreplicated_per_crash": s["lost_unreplicated"] / s["faults"], "lost": s["lost"]}


def _consumer_crashes(blocks: float) -> Scenario:
    """One partition on n0, 500 records/s from n1, a group of n2 and n3 committing every 40 ms (periodic),
    instant links and processing, idle fetches every 2 ms. Every 0.12 s n2 (holding the partition) crashes at
    a phase φ after a commit (stratified over (0, 40 ms), each a multiple of the fetch interval, so that the
    records visible at the commit and at the crash are equally fresh: the consumer's fetches fall half an
    interval off both); n3 takes over after the 20 ms session timeout from the last commit; n2 is back 51 ms
    after its crash and takes the partition back."""
    count = LOG_PHASES * max(1, round(blocks))
    interval, cycle = 0.04, 0.12
    faults = [
        {
            "at": 0.48 + i * cycle + (i % LOG_PHASES + 0.5) * interval / LOG_PHASES,
            "action": "crash",
            "target": "n2",
            "for": 0.051,
        }
        for i in range(count)
    ]
    return Scenario(
        pattern="log",
        duration=0.48 + count * cycle,
        warmup=0.0,
        topology={"name": "full_mesh", "params": {"n": 4}},
        links={"latency": 0},
        nodes={"service": 0},
        broker={"node": "n0", "service": 0},
        workload={"producers": ["n1"], "consumers": ["n2", "n3"], "rate": 500.0},
        delivery={"guarantee": "at_most_once"},
        log={
            "brokers": ["n0"],
            "commit": "periodic",
            "commit_interval": interval,
            "session_timeout": "20ms",
            "fetch_interval": "2ms",
        },
        faults=faults,
    )


def _batching(size: float, batch_size: str = "1GB") -> Scenario:
    """One producer, 200 records/s of 100 B, ``linger`` 20 ms; instant links and appends, acks 1: a record's
    produce latency is its wait in the batch."""
    return Scenario(
        pattern="log",
        duration=100.0 * size,
        warmup=1.0,
        topology={"name": "star", "params": {"n": 3}},
        links={"latency": 0},
        nodes={"service": 0},
        broker={"node": "hub", "service": 0},
        workload={"producers": 1, "consumers": 1, "rate": 200.0, "size": "100B"},
        delivery={"guarantee": "at_most_once"},
        log={"brokers": 1, "linger": "20ms", "batch_size": batch_size},
    )


def _partition_consumer(size: float) -> Scenario:
    """One partition, Poisson λ = 50/s, one consumer with exponential processing μ = 100/s, instant links and
    appends, idle fetches every 2 ms, commits after processing."""
    duration = 100.0 * size
    return Scenario(
        pattern="log",
        duration=duration,
        warmup=duration / 20,
        topology={"name": "star", "params": {"n": 3}},
        links={"latency": 0},
        nodes={"service": {"dist": "exponential", "mean": 0.01}},
        broker={"node": "hub", "service": 0},
        workload={"producers": 1, "consumers": 1, "rate": 50.0},
        delivery={"guarantee": "at_least_once"},
        log={"brokers": 1, "fetch_interval": "2ms", "lag_interval": "50ms"},
    )


CASES += (
    Case(
        "log_unreplicated",
        "log, acks = 1, 2 replicas: the leader crashes (10 ms follower fetches, 100 records/s)",
        lambda s: _leader_crashes(1, s),
        {"unreplicated_per_crash": 100.0 * 0.01 / 2},
        _per_crash,
        size=58.0,
        quick_size=10.0,
        precision=0.05,
        quick_precision=0.2,
        notes="lost (`unreplicated`) per crash = λ·E[φ] = λF/2: a follower's fetch, sent every F on a fixed "
        "grid, reaches the leader d later and takes every record appended until then; its answer lands even "
        "if the leader crashes meanwhile, so a crash loses what the leader appended in the φ = (t − d) mod F "
        "since the last fetch arrived (not F/2 plus a round trip). Crashes at 10 phases φ = (i + ½)F/10 "
        "(a uniform phase, stratified); λF = 1 so that the recovered broker rejoins the ISR between crashes. "
        "Full size: 5 800 crashes (a crash loses 0.5 records on average, so 2 % would take 36 000)",
    ),
    Case(
        "log_acks_all",
        'log, acks = "all", min_insync_replicas = 2, 2 replicas: the same leader crashes',
        lambda s: _leader_crashes("all", s),
        {"unreplicated_per_crash": 0.0, "lost": 0.0},
        _per_crash,
        replications=2,
        size=10.0,
        quick_size=5.0,
        exact=True,
        notes="exact: a batch is acknowledged once the follower has it (the high watermark passed it); what "
        "the leader had alone is cut at the clean election and appended again by the producer's retry",
    ),
    Case(
        "log_duplicates",
        "log, periodic commits every 40 ms, 500 records/s: the consumer holding the partition crashes",
        lambda s: _consumer_crashes(s),
        {"duplicates_per_crash": 500.0 * 0.04 / 2},
        lambda r: {"duplicates_per_crash": r["duplicates"] / r["faults"]},
        size=40.0,
        quick_size=3.0,
        quick_precision=0.1,
        notes="duplicates per crash = λ·E[φ] = λC/2: the next holder reads from the last commit, which "
        "stored everything fetched by then, so the records fetched (and processed, at once) in the φ "
        "between the commit and the crash are processed twice. Crashes at 10 phases φ = (i + ½)C/10 "
        "(uniform, stratified), multiples of the idle fetch interval",
    ),
    Case(
        "log_linger",
        "log producer, linger 20 ms, Poisson λ = 200/s: the wait of a record in its batch",
        lambda s: _batching(s),
        {"batch_wait": batch_wait(200.0, 0.02)},
        lambda r: {"batch_wait": r["produce_latency_mean"]},
        quick_size=0.1,
        notes="E[wait] = (L + λL²/2)/(1 + λL) (batch_wait): the first record waits L, the λL others "
        "arrive uniformly in the linger and wait L/2 on average; produce latency is the wait (instant "
        "links and appends)",
    ),
    Case(
        "log_batch_size",
        "log producer, linger 20 ms, batches of 4 records (400 B of 100 B), Poisson λ = 200/s",
        lambda s: _batching(s, "400B"),
        {"batch_wait": batch_wait(200.0, 0.02, 4)},
        lambda r: {"batch_wait": r["produce_latency_mean"]},
        quick_size=0.1,
        notes="a batch leaves at L or with its n-th record: E[wait] = ∫₀ᴸ E[(1+N(t))·1{N(t) ≤ n−2}] dt / "
        "(1 + E[min(N(L), n−1)]), N(t) ~ Poisson(λt) (batch_wait)",
    ),
    Case(
        "log_consumer",
        "log partition, one consumer: M/M/1 with idle fetches, λ = 50/s, μ = 100/s, F = 2 ms",
        _partition_consumer,
        gated_consumer(50.0, 100.0, 0.002),
        lambda r: {"W": r["latency_mean"], "lag": r["partition_lag_mean"]},
        size=16.0,
        quick_size=0.4,
        quick_precision=0.15,
        notes="W = Wq + 1/μ with Wq = ρ/(μ−λ) + F/2 (M/M/1 with multiple vacations F: an empty fetch waits "
        "F); lag = λ(W + E[B]/μ) (gated_consumer), the lag counting processed records until their fetch's "
        "commit, so it exceeds M/M/1's L = λW",
    ),
)


def evaluate(case: Case, *, quick: bool = False, seed: int = 2026, engine: str = "serial") -> list[Outcome]:
    """Run ``case`` (replications × one long run) and compare each estimate with its closed form."""
    size = case.quick_size if quick else case.size
    payloads = [
        {
            "scenario": case.scenario(size).with_updates({"seed": s}).to_dict(),
            "params": {},
            "point": 0,
            "replication": i,
            "seed": s,
            "config_hash": f"{case.name}-{i}",
        }
        for i, s in enumerate(replication_seeds(seed, case.replications))
    ]
    rows: list[dict[str, Any]] = []
    run_all(payloads, rows.append, engine=engine)
    failed = [r["error"] for r in rows if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"validation case {case.name} failed to run: {failed[0]}")
    samples: dict[str, list[float]] = {name: [] for name in case.theory}
    for row in sorted(rows, key=lambda r: r["replication"]):
        for name, value in case.estimates(row).items():
            if name in samples:
                samples[name].append(value)
    out = []
    for name, theory in case.theory.items():
        x = np.asarray(samples[name], dtype=np.float64)
        n = x.size
        half = (
            0.0
            if case.exact
            else float(stats.t.ppf(1 - (1 - LEVEL) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
        )
        out.append(Outcome(case.name, name, theory, float(x.mean()), half, n))
    return out


def _existing_sections(path: Path) -> dict[str, str]:
    """The page's current section per case name (to keep cases not rerun by ``--case``)."""
    if not path.exists():
        return {}
    out = {}
    for block in path.read_text().split("\n## ")[1:]:
        name = block.split(":", 1)[0]
        out[name] = "## " + block.rstrip("\n") + "\n"
    return out


CALIBRATION = Path(__file__).resolve().parents[2] / "experiments" / "calibration" / "comparison.csv"
"""The committed prediction-vs-measurement table of real brokers (``make calibrate``, docs/calibrate.md)."""


def real_brokers_section(table: Path) -> list[str]:
    """The page's "against real brokers" section: the p50 errors below 70 % of saturation, from ``table``
    (none if it does not exist)."""
    import csv

    if not table.is_file():
        return []
    with table.open(newline="") as fh:  # busy: the table's own verdict (sim.real.report.machine_state)
        rows = [r for r in csv.DictReader(fh) if float(r["load"]) < 0.7 and r.get("machine") != "busy"]
    lines = [
        "## against real brokers: RabbitMQ, Mosquitto, NATS on loopback, fitted at low load",
        "",
        "Each setting's broker profile is fitted from one low-load run; the p50 at other loads is predicted "
        "from it alone ([calibrate.md](calibrate.md); the curves, p99, throughput, the faults and where the "
        "model is off: [experiments/calibration/report.md](../experiments/calibration/report.md)). Points "
        "measured on a busy machine (other processes using more than a tenth of the cores) are left out; the "
        "report says which points have no record of it."
        + (
            " Each row is one 3-second sample: the report's top (its notes) says how much a second campaign "
            "on the same machine moved the fit and the measurements."
            if (table.parent / "notes.md").is_file()
            else ""
        ),
        "",
        "| setting | load (of saturation) | offered /s | p50 measured ms | p50 sim ms | relative error |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        measured, predicted = float(r["p50_ms"]), float(r["p50_sim_ms"])
        lines.append(
            f"| {r['setting']} | {float(r['load']):.0%} | {float(r['offered']):.0f} | {measured:.3g} | "
            f"{predicted:.3g} | {(predicted - measured) / measured:+.0%} |"
        )
    return [*lines, ""]


def write_page(outcomes: list[Outcome], path: Path, *, quick: bool, keep_others: bool = False) -> None:
    """Write docs/validation.md: one table per case (with ``keep_others``, cases without outcomes keep their
    current section)."""
    kept = _existing_sections(path) if keep_others else {}
    lines = [
        "# Validation against theory",
        "",
        "Generated by `python -m sim.analysis.validation` (`make validate`); do not edit by hand. "
        "Each case runs "
        "independent replications and compares the mean with its closed form: the theory must lie inside the "
        f"{LEVEL:.0%} Student-t confidence interval, whose half-width is reported relative to the value.",
        "" if not quick else "\n*This page was generated in quick mode (shorter runs, wider intervals).*",
        "",
    ]
    for case in CASES:
        rows = [o for o in outcomes if o.case == case.name]
        if not rows:
            if case.name in kept:
                lines += [kept[case.name]]
            continue
        lines += [
            f"## {case.name}: {case.model}",
            "",
            case.notes,
            "",
            "| quantity | theory | simulation mean | 99 % CI | relative error | CI half-width / value "
            "| inside |",
            "|---|---|---|---|---|---|---|",
        ]
        for o in rows:
            lines.append(
                f"| {o.quantity} | {o.theory:.6g} | {o.mean:.6g} | ± {o.half_width:.3g} | "
                f"{o.relative_error:+.2%} | {o.relative_half_width:.2%} | {'yes' if o.inside else 'NO'} |"
            )
        lines.append("")
    lines += real_brokers_section(CALIBRATION)
    text = "\n".join(lines)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.analysis.validation [--quick] [--out docs/validation.md] [--case NAME ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.analysis.validation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="the shorter runs of the test suite")
    parser.add_argument("--out", type=Path, default=Path("docs") / "validation.md")
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES])
    parser.add_argument("--engine", default="processes", choices=["serial", "processes"])
    args = parser.parse_args(argv)
    outcomes: list[Outcome] = []
    failed = 0
    for case in CASES:
        if args.case and case.name not in args.case:
            continue
        for o in evaluate(case, quick=args.quick, engine=args.engine):
            limit = case.quick_precision if args.quick else case.precision
            ok = o.inside and o.relative_half_width <= limit
            failed += not ok
            outcomes.append(o)
            print(  # noqa: T201  (the command's own output)
                f"{o.case:>10} {o.quantity:<26} theory {o.theory:<10.5g} sim {o.mean:<10.5g} "
                f"± {o.half_width:<9.3g} ({o.relative_half_width:.2%}) {'ok' if ok else 'FAIL'}"
            )
    write_page(outcomes, args.out, quick=args.quick, keep_others=bool(args.case))
    print(f"wrote {args.out}; {failed} quantities outside their interval or too imprecise")  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
