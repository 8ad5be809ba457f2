"""Event-driven: a chain of handlers, its end-to-end latency along the longest branch, and its fan-out."""

from __future__ import annotations

import pytest

from sim import Scenario, simulate


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
