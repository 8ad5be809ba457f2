"""The broker's queues against queueing theory, and its acks, redelivery, dead letters and overflow."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim import Scenario, simulate
from sim.core.errors import SimError


def mm_queue(consumers: int, rate: float, seed: int, duration: float = 4000.0, **broker: object) -> Scenario:
    """Producer -> broker (hub of a star) -> consumers, zero latency, exponential service of mean 1 s."""
    return Scenario(
        pattern="queue",
        duration=duration,
        warmup=duration / 20,
        seed=seed,
        topology={"name": "star", "params": {"n": consumers + 1}},
        links={"latency": 0},
        nodes={"service": {"dist": "exponential", "mean": 1}},
        workload={"producers": 1, "consumers": consumers, "rate": rate},
        delivery={"guarantee": "at_most_once"},
        broker={"node": "hub", "consumer_ack": "manual", "prefetch": 1, **broker},
    )


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


def test_pubsub_creates_k_obligations_and_one_plus_k_transmissions_on_a_star() -> None:
    k = 4
    sc = Scenario(
        pattern="pubsub",
        duration="5s",
        seed=4,
        topology={"name": "star", "params": {"n": k + 1}},
        workload={"producers": 1, "consumers": k, "rate": "20/s"},
        broker={"node": "hub"},
    )
    result = simulate(sc)
    cols = result.columns
    per_message = np.unique(cols["msg_id"], return_counts=True)[1]
    assert set(per_message.tolist()) == {k}
    assert sorted(set(cols["dst"].tolist())) == sorted(f"h{i}" for i in range(1, k + 1))
    s = result.summary
    publishes = s["offered"] / k
    assert s["data_transmissions"] == publishes * (1 + k)
    assert s["delivered"] == s["offered"]


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


def test_request_reply_round_trip_is_path_plus_service_plus_path() -> None:
    sc = Scenario(
        pattern="request_reply",
        duration="5s",
        seed=9,
        topology={"name": "line", "params": {"n": 4}},
        links={"latency": "2ms"},
        nodes={"service": "5ms"},
        workload={"producers": 1, "consumers": 1, "rate": "10/s", "arrivals": "constant"},
    )
    s = simulate(sc).summary
    # evenly spaced requests never queue: 3 hops there, 5 ms of service, 3 hops back, and the client's
    # own 5 ms service time for the reply
    assert s["rtt_mean"] == pytest.approx(0.006 + 0.005 + 0.006 + 0.005)
    assert s["rtt_p99"] == pytest.approx(s["rtt_mean"])
    assert s["answered"] == s["requests"] and s["timeouts"] == 0


def test_request_reply_timeouts_fire_and_retries_recover() -> None:
    base = Scenario(
        pattern="request_reply",
        duration="20s",
        seed=10,
        topology={"name": "line", "params": {"n": 2}},
        links={"latency": "1ms", "loss": 0.3},
        workload={"producers": 1, "consumers": 1, "rate": "20/s"},
        request_reply={"timeout": "50ms"},
    )
    once = simulate(base).summary
    answer_p = 0.7 * 0.7
    low, high = stats.binom.interval(0.99, int(once["requests"]), 1 - answer_p)
    assert low <= once["timeouts"] <= high
    retried = simulate(
        base.with_updates({"delivery.guarantee": "at_least_once", "delivery.max_attempts": 10})
    )
    assert retried.summary["timeouts"] < once["timeouts"] / 20
    assert retried.summary["retries"] > 0


def test_request_reply_via_broker() -> None:
    sc = Scenario(
        pattern="request_reply",
        duration="5s",
        seed=11,
        topology={"name": "star", "params": {"n": 4}},
        links={"latency": "1ms"},
        workload={"producers": 2, "consumers": 2, "rate": "10/s"},
        broker={"node": "hub"},
        request_reply={"via_broker": True},
    )
    s = simulate(sc).summary
    assert s["answered"] == s["requests"] > 0
    assert s["rtt_mean"] == pytest.approx(0.004)  # client -> broker -> server -> broker -> client


def test_event_chain_latency_and_fanout() -> None:
    handlers = [
        {"name": "order", "emits": ["payment", "inventory"], "service": "1ms"},
        {"name": "payment", "emits": ["shipping"], "service": "2ms"},
        {"name": "inventory", "emits": [], "service": "4ms"},
        {"name": "shipping", "emits": [], "service": "3ms"},
    ]
    sc = Scenario(
        pattern="event_driven",
        duration="5s",
        seed=12,
        topology={"name": "star", "params": {"n": 5}},
        links={"latency": "1ms"},
        workload={"producers": 1, "consumers": 4, "rate": "5/s", "arrivals": "constant"},
        broker={"node": "hub"},
        event_driven={"handlers": handlers},
    )
    s = simulate(sc).summary
    assert s["chains_completed"] == s["chains_started"] > 0
    # longest branch: publish (2 hops) + order 1 ms + 2 hops + payment 2 ms + 2 hops + shipping 3 ms = 12 ms
    assert s["chain_latency_mean"] == pytest.approx(0.012)
    assert s["offered"] == 4 * s["chains_started"]


def test_same_seed_offers_every_pattern_the_same_workload() -> None:
    base = dict(
        duration="3s",
        seed=13,
        topology={"name": "star", "params": {"n": 6}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.05},
        workload={
            "producers": ["h0", "h1"],
            "consumers": ["h3", "h4", "h5"],
            "rate": "50/s",
            "size": {"dist": "exponential", "mean": 500},
        },
        broker={"node": "hub"},
    )
    offered = {}
    for pattern in ("point_to_point", "queue", "pubsub", "request_reply", "event_driven"):
        cols = simulate(Scenario(pattern=pattern, **base)).columns  # type: ignore[arg-type]
        # what the producers offered: one (producer, intended time, size) per message, whatever fans out later
        sent = np.isin(cols["src"], ["h0", "h1"]) & np.isin(cols["kind"], ["data", "request", "event"])
        rows = zip(cols["src"][sent], cols["created_at"][sent], cols["size"][sent], strict=True)
        offered[pattern] = sorted(set(rows))
    reference = offered["point_to_point"]
    assert len(reference) > 200
    for pattern, rows in offered.items():
        assert rows == reference, pattern


@pytest.mark.parametrize(
    ("updates", "field"),
    [
        ({"pattern": "queue", "topology.name": "line"}, "broker.node"),
        (
            {
                "pattern": "event_driven",
                "event_driven": {"handlers": [{"name": "a", "emits": ["b"]}, {"name": "b", "emits": ["a"]}]},
            },
            "event_driven.handlers",
        ),
        (
            {"pattern": "event_driven", "event_driven": {"handlers": [{"name": "a", "node": "mars"}]}},
            "event_driven.handlers[0].node",
        ),
        (
            {"pattern": "event_driven", "event_driven": {"handlers": [{"name": "a", "emits": ["zz"]}]}},
            "event_driven.handlers[0].emits",
        ),
        ({"workload.consumers": 0}, "workload.consumers"),
        ({"broker.overflow": "explode"}, "broker.overflow"),
        ({"request_reply": {"timeout": "-1s"}}, "request_reply.timeout"),
        ({"queue": {"nope": 1}}, "queue.nope"),
        ({"pattern": "queue", "broker.node": "h9"}, "broker.node"),
    ],
)
def test_bad_broker_and_pattern_settings(updates: dict[str, object], field: str) -> None:
    base = Scenario(duration="1s", topology={"name": "star", "params": {"n": 3}}, broker={"node": "hub"})
    if updates.get("topology.name") == "line":
        base = Scenario(duration="1s", topology={"name": "line", "params": {"n": 3}})
        updates = {"pattern": "queue"}
    with pytest.raises(SimError) as err:
        simulate(base.with_updates(updates))
    assert str(err.value).startswith(field), str(err.value)


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
