"""How does a bounded work queue behave from 10 % to 150 % load, and should it block or reject when full?

Four producers feed a broker queue that four competing consumers drain. Each consumer has one worker with
an exponential service time of 10 ms mean, so together they process at most 4 × 1 / 10 ms = 400
messages/s: that is 100 % load, and the per-producer rate of every point is computed from it (``load`` ×
400 / 4), so the percentages are true. Nothing else is a bottleneck: the broker needs 20 µs per publish
(about 1 % busy at 150 % load) and the links run at 1 Gbps.

The queue is bounded (``broker.capacity = 200`` ready messages, half a second of work) and uses
at-least-once delivery with a prefetch of 5, so waiting work stays in the broker, where the bound applies
(with auto-acks the broker would push every message to a consumer at once and never fill up).
``broker.overflow`` is the second factor:

- ``reject``: a full queue refuses a publish (``queue_full``) and nacks the publisher, which does not retry:
  past 100 % the excess is dropped and latency is capped by the time to drain 200 messages (~0.5 s);
- ``block``: a full queue tells its publishers to stop until it has room (back-pressure): nothing is
  dropped, but the producers fall behind their intended send times and latency (measured from the intended
  send time) grows for as long as the overload lasts; a publisher released after a pause sends what it
  held back at once, which can overshoot the bound, delay publisher confirms past their timeout and set off
  retransmissions.

What to read against ``load``: ``throughput`` (flat at ~400/s past 100 %), ``delivery_ratio`` and
``lost_queue_full`` (drops), ``latency_p50`` / ``latency_p99`` and ``queue_wait_mean`` (time in the broker
queue), ``backlog_max`` (the largest queue depth), ``retries`` (publisher retransmissions: a retry storm
shows here) and ``redeliveries``. The report's figure ``metrics_vs_load`` plots the headline metrics with a
line per policy; for the others run ``sim report results/overload --metric throughput --metric
backlog_max --metric retries --metric lost_queue_full --metric latency_p99``.

Run it: ``sim run experiments/overload.py`` (``--quick`` for a smoke run of about half a minute).
"""

from sim import Experiment, Scenario

PRODUCERS = 4
CONSUMERS = 4
SERVERS = 1  # workers per consumer
SERVICE = 0.010  # mean service time per message, s
CAPACITY = CONSUMERS * SERVERS / SERVICE  # messages/s the consumers can process: 400
LOADS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5)  # offered load / capacity

BASE = Scenario(
    pattern="queue",
    duration="30s",
    warmup="3s",
    # a blocked producer still sends everything it intended to send before the end of the run: at 150 %
    # load it is about duration / 2 behind, so the drain must be longer than that
    drain="60s",
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
    links={"latency": {"dist": "exponential", "mean": "100us"}, "bandwidth": "1Gbps"},
    nodes={"servers": SERVERS, "service": {"dist": "exponential", "mean": SERVICE}},
    workload={"producers": PRODUCERS, "consumers": CONSUMERS, "size": "1KB"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "100ms", "max_timeout": "1s", "max_attempts": 8},
    broker={
        "node": "h1_1",  # a host that runs no producer or consumer
        "service": {"dist": "exponential", "mean": "20us"},
        "capacity": 200,
        "prefetch": 5,
        "ack_timeout": "2s",
    },
)

EXPERIMENT = Experiment(
    name="overload",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        # the first key is the line of each figure, the numeric one its x axis
        "broker.overflow": ["reject", "block"],
        # labelled variants with numeric labels: the column ``load`` holds the fraction of capacity
        "load": {load: {"workload.rate": load * CAPACITY / PRODUCERS} for load in LOADS},
    },
    replications=5,
    seed=2026,
    quick={"duration": "5s", "warmup": "1s", "drain": "10s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
