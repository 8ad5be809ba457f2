"""Which messaging pattern should these services use, and with which guarantee?

All five patterns — point-to-point, message queue, pub/sub, request/reply and event-driven — carry the
same workload (same producers, arrival times and sizes for a given seed) over the same leaf-spine fabric,
with at-least-once delivery, while link loss grows. Every replication shares its seed across patterns, so
differences between patterns are paired comparisons.

Run it: ``sim run experiments/compare_patterns.py`` (``--quick`` for a smoke run).
"""

from sim.experiment import Experiment
from sim.scenario import Scenario

BASE = Scenario(
    duration="30s",
    warmup="3s",
    drain="30s",
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
    links={"latency": {"dist": "exponential", "mean": "500us"}, "bandwidth": "1Gbps"},
    nodes={"service": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": 4, "consumers": 4, "rate": "100/s", "size": "1KB"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "200ms", "max_timeout": "2s", "max_attempts": 8},
    broker={
        "node": "h1_1",
        "service": {"dist": "exponential", "mean": "200us"},
        "durable": True,
        "persist": "100us",
        "prefetch": 100,
        "ack_timeout": "250ms",
    },
)

EXPERIMENT = Experiment(
    name="compare_patterns",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        "pattern": ["point_to_point", "queue", "pubsub", "request_reply", "event_driven"],
        "links.loss": [0.0, 0.01, 0.05],
        "broker_crash": {
            "off": {},
            # the broker's host crashes for 1 s early in the run (point-to-point has no broker: the same
            # host crashes, but no traffic uses it, so its rows are a no-fault control)
            "on": {"faults": [{"at": "3.5s", "action": "crash", "target": "h1_1", "for": "1s"}]},
        },
    },
    replications=5,
    seed=2026,
    quick={"duration": "6s", "warmup": "1s", "drain": "10s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.sweep import main

    sys.exit(main(EXPERIMENT))
