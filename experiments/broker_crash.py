"""What does a broker crash cost a work queue: durable or in-memory broker, at most or at least once?

A queue (four producers at 100 messages/s each, four competing consumers, one broker on its own host of
a leaf-spine fabric) runs a steady load. The ``crash`` factor has three variants:

- ``none``: no fault, the control every crash run is compared with;
- ``crash``: the broker's node crashes at 5 s and recovers at 7 s (``[[faults]]`` with
  ``target = "broker"``) while the consumers keep up, so its queue is nearly empty when it goes down;
- ``crash_backlog``: the same crash, but the consumers stall (``pause``: alive, not processing) from 3 s
  until 7 s, so with manual acks the queue holds about 2 s of publishes when the broker crashes.

Two settings decide what the crash costs:

- ``broker.durable``: a durable queue keeps its ready messages across the crash and queues its
  delivered-but-unacknowledged ones again; an in-memory queue loses everything it holds (``crash_lost``).
- ``delivery.guarantee``: at most once has no publisher confirms and auto-acks (the broker pushes each
  message to a consumer at once and forgets it), so what is sent to the down broker is lost
  (``node_down``); at least once retransmits unconfirmed publishes (50 ms timeout doubling to 1 s, up to
  12 attempts, enough to outlast the outage) and redelivers unacknowledged deliveries, at the price of
  retries, duplicates and a latency spike.

Clients register with the broker again 1 s after it is back (``broker.reconnect_delay``), a typical
client reconnect backoff; the delivery rate cannot recover before that.

What to read: ``delivery_ratio`` and the ``lost_*`` columns by reason (``lost_crash_lost``,
``lost_node_down``, ...) for what each combination loses; ``recovery_time`` for how long after the
broker is back the delivery rate takes to return within 10 % of its level before the fault (throughput,
not latency: a catch-up burst counts as recovered while latency is still high); ``duplicates``,
``retries``, ``redeliveries``, ``backlog_max`` and ``latency_p99`` for what the protection costs. The
report's headline table shows the common metrics; for the others run ``sim report results/broker_crash
--metric delivery_ratio --metric lost_crash_lost --metric lost_node_down --metric recovery_time --metric
retries --metric duplicates`` or read ``statistics.csv``.

Run it: ``sim run experiments/broker_crash.py`` (``--quick`` for a smoke run of about half a minute).
"""

from sim import Experiment, Scenario

BASE = Scenario(
    pattern="queue",
    duration="30s",
    warmup="2s",
    drain="20s",
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
    links={"latency": {"dist": "exponential", "mean": "200us"}, "bandwidth": "1Gbps"},
    nodes={"service": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": 4, "consumers": 4, "rate": "100/s", "size": "1KB"},
    # 50 + 100 + 200 + 400 + 800 ms and then 1 s per attempt: 12 attempts span about 8.5 s, well past
    # the 2 s outage, so an at-least-once publisher never gives up
    delivery={"ack_timeout": "50ms", "backoff": 2.0, "max_timeout": "1s", "max_attempts": 12},
    broker={
        "node": "h1_1",  # a host that runs no producer or consumer
        "service": {"dist": "exponential", "mean": "100us"},
        "persist": "100us",  # the price of durability: a disk write per publish to a durable queue
        "prefetch": 20,
        "ack_timeout": "1s",
        "reconnect_delay": "1s",  # clients re-register 1 s after the broker is back
    },
)

# after warm-up, with seconds of steady state on either side (recovery_time needs both)
CRASH = {"at": "5s", "action": "crash", "target": "broker", "for": "2s"}
# the consumers stall (alive, not processing) from 3 s until the broker is back at 7 s, so with manual
# acks the queue holds about 2 s of publishes when the broker crashes
STALL = {"at": "3s", "action": "pause", "target": "consumers", "for": "4s"}

EXPERIMENT = Experiment(
    name="broker_crash",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        "broker.durable": [False, True],
        "delivery.guarantee": ["at_most_once", "at_least_once"],
        "crash": {
            "none": {},
            "crash": {"faults": [CRASH]},
            "crash_backlog": {"faults": [CRASH, STALL]},
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

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
