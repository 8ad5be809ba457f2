"""The broker's queues against queueing theory, and its acks, redelivery, dead letters and overflow."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import mm_queue
from scipy import stats

from sim import Scenario, simulate


def test_bounded_queue_with_drop_new_matches_mm1k_blocking() -> None:
    lam, mu, capacity = 0.8, 1.0, 3
    k = capacity + 1  # ready messages plus the one at the consumer (prefetch 1)
    rho = lam / mu
    p_block = (1 - rho) * rho**k / (1 - rho ** (k + 1))

    def run(seed: int) -> Scenario:
        return mm_queue(1, lam, seed, capacity=capacity, overflow="drop_new")

    blocked = []
    for seed in range(8):
        s = simulate(run(seed)).summary
        blocked.append(s["lost_overflow"] / s["offered"])
    mean = float(np.mean(blocked))
    half = stats.t.ppf(0.975, 7) * np.std(blocked, ddof=1) / math.sqrt(8)
    assert abs(mean - p_block) <= half, (mean, half, p_block)


def test_reject_overflow_tells_the_producer_and_loses_as_queue_full() -> None:
    sc = mm_queue(1, 3.0, 1, duration=200, capacity=5, overflow="reject")
    s = simulate(sc).summary
    assert s["lost_queue_full"] > 0 and s["lost_overflow"] == 0
    assert s["backlog_max"] == 5


def test_block_backpressure_slows_producers_instead_of_losing() -> None:
    sc = mm_queue(1, 3.0, 2, duration=200, capacity=5, overflow="block")
    result = simulate(sc.with_updates({"drain": 1000}))
    s = result.summary
    assert s["lost"] == 0 and s["delivery_ratio"] == 1.0
    # the producer was held back: latency from the intended send time grows far beyond the service time
    assert s["latency_mean"] > 20
    # the broker holds at most a little over its capacity (messages already in flight when it blocked)
    assert 5 <= s["backlog_max"] <= 8


def test_drop_oldest_keeps_the_newest() -> None:
    s = simulate(mm_queue(1, 3.0, 3, duration=200, capacity=5, overflow="drop_oldest")).summary
    assert s["lost_overflow"] > 0
    assert s["latency_max"] < 10  # an old message never waits behind many newer ones


def test_consumer_crash_with_manual_ack_redelivers_to_another_consumer() -> None:
    from sim.core.context import SimContext
    from sim.run.build import build
    from sim.run.simulate import run_world

    sc = mm_queue(2, 1.0, 5, duration=60).with_updates({"delivery.guarantee": "at_least_once"})
    ctx = SimContext.from_seed(sc.seed)
    world = build(ctx, sc)
    victim = world.node(world.workload.consumers[0])

    held: list[tuple[int, int]] = []

    def crash_midway():  # type: ignore[no-untyped-def]
        yield ctx.env.timeout(20.0)
        held.append((victim.statistics().in_service, victim.statistics().queued))
        victim.crash()

    ctx.env.process(crash_midway())
    run_world(ctx, world)
    ctx.ledger.check()
    counts = ctx.ledger.counts()
    assert counts["lost"] == 0 and counts["in_flight"] == 0
    # prefetch 1: the victim was working on one unacknowledged message; the crash lost it there and the
    # broker redelivered exactly that one
    assert held == [(1, 0)] and victim.crash_lost == 1
    assert ctx.ledger.counters.get("redeliveries", 0) == 1
    survivor = world.workload.consumers[1]
    late = [r for r in range(len(ctx.ledger)) if ctx.ledger.created_at[r] > 21]
    assert late and all(ctx.ledger.outcome_of(r) == "delivered" for r in late)
    assert world.node(survivor).statistics().processed > victim.statistics().processed


def test_max_redeliveries_dead_letters() -> None:
    # the consumer never acknowledges in time: every message is redelivered, then dead-lettered
    sc = mm_queue(1, 1.0, 6, duration=20, ack_timeout="100ms", max_redeliveries=2).with_updates(
        {"nodes.service": 5.0}
    )
    result = simulate(sc.with_updates({"drain": 200}))
    s = result.summary
    assert s["dead_lettered"] > 0 and s["lost"] == s["lost_dead_letter"]
    assert s["redeliveries"] >= 2 * s["dead_lettered"]


def test_durable_persistence_cost_adds_to_broker_time() -> None:
    base = mm_queue(1, 0.2, 7, duration=200).with_updates({"nodes.service": 0})
    slow = base.with_updates({"broker.durable": True, "broker.persist": "10ms"})
    fast = simulate(base).summary["latency_mean"]
    assert simulate(slow).summary["latency_mean"] == pytest.approx(fast + 0.010)


def test_broker_service_saturates_like_a_server() -> None:
    sc = mm_queue(1, 0.5, 8, duration=2000).with_updates(
        {"nodes.service": 0, "broker.service": {"dist": "exponential", "mean": 1.0}}
    )
    s = simulate(sc).summary
    assert s["broker_utilization"] == pytest.approx(0.5, abs=0.05)


def test_a_durable_queue_redelivers_what_was_unacknowledged_when_the_broker_crashed() -> None:
    # the consumer (150 ms a job, prefetch 4) holds 4 unacknowledged jobs when it and the broker crash
    # together: the consumer's copies are gone, and only the durable queue's redelivery brings them back
    sc = Scenario(
        pattern="queue",
        duration="2s",
        warmup=0,
        drain="30s",
        seed=3,
        topology={"name": "star", "params": {"n": 3}},
        links={"latency": "1ms"},
        nodes={"service": "150ms"},
        workload={"producers": ["h0"], "consumers": ["h1"], "rate": "10/s", "arrivals": "constant"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "50ms", "max_attempts": "inf"},
        broker={
            "node": "hub",
            "durable": True,
            "consumer_ack": "manual",
            "prefetch": 4,
            "ack_timeout": "30s",
        },
        faults=[{"at": "1s", "action": "crash", "target": ["hub", "h1"], "for": "0.2s"}],
    )
    s = simulate(sc).summary
    assert (s["offered"], s["delivered"], s["in_flight"], s["lost"]) == (20, 20, 0, 0)
    assert s["redeliveries"] == 4  # exactly the prefetched, unacknowledged jobs
