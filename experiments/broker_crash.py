"""What does a broker crash cost a work queue: durable or in-memory broker, at most or at least once?

A queue (four producers, four competing consumers, one broker on its own host of a leaf-spine fabric)
runs a steady load. In the ``crash`` variants the broker's node crashes at 5 s and recovers 2 s later
(``[[faults]]`` with ``target = "broker"``); ``none`` is the same run without the fault, the control
each crash run is compared with. Two settings decide what the crash costs:

- ``broker.durable``: a durable queue keeps its ready messages across the crash and queues its
  delivered-but-unacknowledged ones again; an in-memory queue loses everything it holds (``crash_lost``).
- ``delivery.guarantee``: at most once has no publisher confirms and auto-acks, so what is on its way to
  the down broker (``node_down``) or held by it is gone; at least once retransmits unconfirmed publishes
  (50 ms timeout doubling to 1 s, up to 12 attempts, enough to outlast the outage) and redelivers
  unacknowledged deliveries, at the price of duplicates, retries and a latency spike.

What to read: ``delivery_ratio`` and the ``lost_*`` columns by reason (``lost_crash_lost``,
``lost_node_down``, ``lost_unroutable``, ...) for what each combination loses; ``recovery_time`` for how
long after the broker is back the delivery rate needs to return within 10 % of its level before the crash;
``duplicates``, ``retries``, ``redeliveries`` and ``latency_p99`` for what the protection costs. The
headline table of the report shows the first group; for the rest run
``sim report results/broker_crash --metric lost_crash_lost --metric lost_node_down --metric
recovery_time --metric retries`` or read ``statistics.csv``.

Run it: ``sim run experiments/broker_crash.py`` (``--quick`` for a smoke run of about ten seconds).
"""

from sim.experiment import Experiment
from sim.scenario import Scenario

BASE = Scenario(
    pattern="queue",
    duration="30s",
    warmup="2s",
    drain="20s",
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
    links={"latency": {"dist": "exponential", "mean": "200us"}, "bandwidth": "1Gbps"},
    nodes={"service": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": 4, "consumers": 4, "rate": "200/s", "size": "1KB"},
    # 50 + 100 + 200 + 400 + 800 ms and then 1 s per attempt: 12 attempts span about 8.5 s, well past
    # the 2 s outage, so an at-least-once publisher never gives up
    delivery={"ack_timeout": "50ms", "backoff": 2.0, "max_timeout": "1s", "max_attempts": 12},
    broker={
        "node": "h1_1",  # a host that runs no producer or consumer
        "service": {"dist": "exponential", "mean": "100us"},
        "persist": "100us",  # the price of durability: a disk write per publish to a durable queue
        "prefetch": 20,
        "ack_timeout": "1s",
        "reconnect_delay": "100ms",
    },
)

EXPERIMENT = Experiment(
    name="broker_crash",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        "broker.durable": [False, True],
        "delivery.guarantee": ["at_most_once", "at_least_once"],
        "crash": {
            "none": {},
            # after warm-up, with seconds of steady state on either side (recovery_time needs both)
            "crash": {"faults": [{"at": "5s", "action": "crash", "target": "broker", "for": "2s"}]},
        },
    },
    replications=5,
    seed=2026,
    # the crash (5 s → 7 s) stays inside the shorter run, with 3 s after it to measure the recovery
    quick={"duration": "10s", "warmup": "1s", "drain": "10s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.sweep import main

    sys.exit(main(EXPERIMENT))
