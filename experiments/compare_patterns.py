"""Which messaging pattern should these services use, and with which guarantee?

All five patterns — point-to-point, message queue, pub/sub, request/reply and event-driven — carry the
same workload (same producers, arrival times and sizes for a given seed) over the same leaf-spine fabric,
with at-least-once delivery, while link loss grows and, as a second factor, the broker's host crashes for
1 s. Every replication shares its seed across patterns, so differences between patterns are paired
comparisons.

Fair to every pattern: every sender first retries after 200 ms — ``delivery.ack_timeout`` for the
publishers and point-to-point senders, ``request_reply.timeout`` for a client waiting for its reply (a
request/reply retry is a whole new call, with no backoff, up to ``delivery.max_attempts``: 8 × 200 ms of
patience against about 11 s for the backed-off senders, so a call whose eight round trips all lose a
message — about 2 in 10,000 at 5 % loss — fails where the others would still retry). The broker
crash does not apply to point-to-point and to direct request/reply, which have no broker: those points are
not run and the report shows them as n/a. The report flags points whose runs were unstable or left work
unfinished (event-driven at 5 % loss, where duplicates re-emit downstream events): their numbers say how
long the run was, not how the pattern behaves.

Run it: ``sim run experiments/compare_patterns.py`` (``--quick`` for a smoke run).
"""

from sim import Experiment, Scenario


def no_broker(scenario: Scenario) -> bool:
    """Patterns that run without a broker: point-to-point, and request/reply unless ``via_broker``."""
    if scenario.pattern == "request_reply":
        return not scenario.options.get("request_reply", {}).get("via_broker", False)
    return scenario.pattern == "point_to_point"


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
    # a client's wait for its reply before it retries, in line with delivery.ack_timeout above
    request_reply={"timeout": "200ms"},
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
            # the broker's host crashes for 1 s early in the run
            "on": {"faults": [{"at": "3.5s", "action": "crash", "target": "h1_1", "for": "1s"}]},
        },
    },
    # point-to-point and direct request/reply have no broker: a broker crash does not apply to them (their
    # "on" runs would repeat the "off" ones), so those points are not run and the report shows n/a
    not_applicable={"broker_crash": {"on": no_broker}},
    replications=5,
    seed=2026,
    quick={"duration": "6s", "warmup": "1s", "drain": "10s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
