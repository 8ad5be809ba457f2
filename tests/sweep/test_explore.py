"""Bounded exploration (``sim.sweep.explore``): every placement of up to K faults on a grid, run per pattern
and guarantee, with the broken promises and a minimal counterexample for each cell."""

from __future__ import annotations

from typing import Any

from sim.config.scenario import Scenario
from sim.sweep.engines import execute

# pub/sub with two subscribers on a star around the broker `hub`: a subscriber's crash loses what is published
# to it meanwhile, which at-least-once promises not to
TINY = Scenario(
    pattern="pubsub",
    duration="1s",
    drain="5s",
    seed=1,
    topology={"name": "star", "params": {"n": 3}},
    links={"latency": "1ms"},
    workload={"producers": ["h0"], "consumers": ["h1", "h2"], "rate": "100/s", "arrivals": "constant"},
    broker={"node": "hub"},
    delivery={"guarantee": "at_least_once"},
)


def _payload(scenario: Scenario, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario.to_dict(),
        "params": {},
        "point": 0,
        "replication": 0,
        "seed": scenario.seed,
        "config_hash": "0" * 16,
        **extra,
    }


def test_an_engine_counts_the_broken_promises_when_asked() -> None:
    crash = TINY.with_updates({"faults": [{"at": 0.3, "action": "crash", "target": "h1", "for": 0.25}]})
    row = execute(_payload(crash, check=True))
    assert row["status"] == "ok"
    assert row["_violations"] == {"no_loss": 26}
    assert execute(_payload(TINY, check=True))["_violations"] == {}
    assert "_violations" not in execute(_payload(crash))  # a sweep's rows are as before
