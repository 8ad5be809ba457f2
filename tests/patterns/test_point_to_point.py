"""Point-to-point with each delivery guarantee, pinned to the algebra of loss and acked retransmission."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import line_graph, wire
from scipy import stats

from sim import Scenario, simulate
from sim.core.context import SimContext
from sim.core.message import Message
from sim.patterns.base import Delivery, DeliveryConfig


def line_scenario(hops: int, loss: float, guarantee: str, **delivery: object) -> Scenario:
    return Scenario(
        duration="20s",
        seed=11 + hops,
        drain="60s",
        topology={"name": "line", "params": {"n": hops + 1}},
        links={"latency": "1ms", "loss": loss},
        workload={"rate": "200/s", "producers": 1, "consumers": 1},
        delivery={"guarantee": guarantee, "ack_timeout": "20ms", **delivery},
    )


def test_at_most_once_loss_matches_binomial() -> None:
    result = simulate(line_scenario(3, 0.05, "at_most_once"))
    s = result.summary
    low, high = stats.binom.interval(0.99, int(s["offered"]), 0.95**3)
    assert low <= s["delivered"] <= high
    assert s["lost"] == s["lost_loss"] == s["offered"] - s["delivered"]
    assert s["duplicates"] == 0 and s["retries"] == 0 and s["control_transmissions"] == 0


@pytest.mark.parametrize(("hops", "p"), [(1, 0.2), (3, 0.1)])
def test_at_least_once_unbounded_delivers_all_with_expected_attempts(hops: int, p: float) -> None:
    result = simulate(line_scenario(hops, p, "at_least_once", max_attempts="inf", backoff=1))
    s, cols = result.summary, result.columns
    assert s["delivery_ratio"] == 1.0 and s["in_flight"] == 0
    q = (1 - p) ** (2 * hops)  # data and ack must both survive h links
    attempts = cols["attempts"]
    # geometric number of attempts: mean 1/q, variance (1-q)/q^2
    half = 2.576 * math.sqrt((1 - q) / q**2 / attempts.size)
    assert abs(attempts.mean() - 1 / q) < half
    # each attempt's data arrives with a = (1-p)^h: expected duplicates per message 1/a - 1
    a = (1 - p) ** hops
    dup = cols["duplicates"]
    dup_half = 2.576 * dup.std(ddof=1) / math.sqrt(dup.size)
    assert abs(dup.mean() - (1 / a - 1)) < dup_half


def test_at_least_once_gives_up_after_max_attempts_with_the_drop_reason() -> None:
    result = simulate(line_scenario(1, 0.5, "at_least_once", max_attempts=2, backoff=1))
    s = result.summary
    # lost only when both attempts fail to deliver data: P = (1 - 0.5)^... each attempt delivers w.p. 0.5
    assert s["lost"] == s["lost_loss"] > 0
    low, high = stats.binom.interval(0.99, int(s["offered"]), 0.25)
    assert low <= s["lost"] <= high
    assert set(np.unique(result.columns["attempts"])) == {1, 2}


def test_effectively_once_suppresses_duplicates() -> None:
    at_least = simulate(line_scenario(2, 0.2, "at_least_once", max_attempts="inf", backoff=1)).summary
    effectively = simulate(line_scenario(2, 0.2, "effectively_once", max_attempts="inf", backoff=1)).summary
    assert at_least["duplicates"] > 0
    assert effectively["duplicates"] == 0
    assert effectively["deduplicated"] == at_least["duplicates"]  # same seed, same network draws
    assert effectively["delivered"] == at_least["delivered"] == at_least["offered"]


def test_effectively_once_forgets_what_it_saw_when_the_receiver_crashes() -> None:
    # per-consumer dedup memory is volatile (docs/concepts.md): after a crash a repeat is processed again
    ctx = SimContext.from_seed(1)
    _, nodes, _ = wire(ctx, line_graph(2))
    delivery = Delivery(ctx, DeliveryConfig(guarantee="effectively_once"))
    row = ctx.ledger.open(7, "data", "n0", "n1", "", 0.0, 100.0)
    msg = Message(7, "data", "n0", "n1", 100.0, 0.0, row)
    n1 = nodes["n1"]
    assert delivery.receive(n1, msg) is True
    assert delivery.receive(n1, msg.copy()) is False  # suppressed: the application sees it once
    n1.crash()
    n1.recover()
    assert delivery.receive(n1, msg.copy()) is True  # forgotten: handed to the application again
    assert ctx.ledger.outcome_of(row) == "delivered" and ctx.ledger.duplicates[row] == 1
    assert ctx.ledger.counters["deduplicated"] == 1


def test_ack_timeout_backoff_spaces_retries() -> None:
    sc = line_scenario(1, 1.0, "at_least_once", max_attempts=4, backoff=2).with_updates(
        {"workload.rate": 1.0, "duration": 1.0, "trace": True}
    )
    result = simulate(sc)
    sends = [t for t, event, _, node, _ in result.trace or [] if event == "drop" and node == "n0"]
    # attempts at 0, +20 ms, +40 ms, +80 ms after the first send
    gaps = np.diff(sends)
    assert gaps == pytest.approx([0.02, 0.04, 0.08])
    assert result.summary["lost_loss"] == 1


def test_max_timeout_caps_the_backoff() -> None:
    config = DeliveryConfig(ack_timeout=0.02, backoff=2.0, max_timeout=0.05)
    assert [config.timeout(k) for k in range(1, 7)] == [0.02, 0.04, 0.05, 0.05, 0.05, 0.05]
    assert DeliveryConfig(ack_timeout=0.02, backoff=1.0, max_timeout=0.05).timeout(9) == 0.02
    sc = line_scenario(1, 1.0, "at_least_once", max_attempts=6, backoff=2, max_timeout="50ms").with_updates(
        {"workload.rate": 1.0, "duration": 1.0, "trace": True}
    )
    result = simulate(sc)
    sends = [t for t, event, _, node, _ in result.trace or [] if event == "drop" and node == "n0"]
    assert np.diff(sends) == pytest.approx([0.02, 0.04, 0.05, 0.05, 0.05])


def test_latency_measured_from_the_intended_send_time() -> None:
    sc = Scenario(
        duration="2s",
        topology={"name": "line", "params": {"n": 4}},
        links={"latency": "5ms", "bandwidth": "inf"},
        workload={"rate": "100/s"},
    )
    s = simulate(sc).summary
    assert s["latency_mean"] == pytest.approx(0.015) and s["latency_max"] == pytest.approx(0.015)
    assert s["msgs_per_delivery"] == 3.0 and s["control_share"] == 0.0
