"""What does each delivery guarantee buy, and cost, as links get lossier?

Point-to-point traffic crosses a leaf-spine fabric (host → leaf → spine → leaf → host: four links for
most pairs, two within a rack) while the loss probability of every link grows from 0 to 10 %
(0, 0.5 %, 1 %, 2 %, 5 %, 10 %). Each loss rate runs under the three guarantees:

- ``at_most_once``: one transmission; a message survives an h-hop path with probability (1 − loss)^h,
  so the delivery ratio falls to about 0.9^4 ≈ 66 % at 10 % loss on a 4-hop path, at the lowest cost;
- ``at_least_once``: end-to-end acks and retransmission (50 ms timeout doubling up to 1 s, 8 attempts):
  the delivery ratio stays near 1, paid for in tail latency (a retransmission adds at least one timeout),
  transmissions per delivery (acks, retries) and ``duplicates`` (a lost *ack* makes the sender repeat a
  message the consumer already has);
- ``effectively_once``: the same retransmissions plus consumer-side dedup, so ``duplicates`` stays 0
  while cost and latency match at-least-once (suppressed copies are counted in ``deduplicated``).

The workload is the same in every run of a replication (same seed → same arrival times, sizes and
destinations), so the guarantees and loss rates are compared on identical traffic. ``retries`` counts
retransmissions; ``lost_loss`` / ``lost_timeout`` say why at-most-once and exhausted retries lose messages.

Run it: ``sim run experiments/loss_sweep.py`` (``--quick`` for a smoke run of about half a minute).
"""

from sim import Experiment, Scenario

BASE = Scenario(
    pattern="point_to_point",
    duration="30s",
    warmup="3s",
    drain="20s",
    topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
    links={"latency": {"dist": "exponential", "mean": "500us"}, "bandwidth": "1Gbps"},
    nodes={"service": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": 4, "consumers": 4, "rate": "100/s", "size": "1KB"},
    # round trip over 4 hops is ~4 ms plus ~1 ms of processing: a 50 ms timeout rarely fires spuriously
    delivery={"ack_timeout": "50ms", "backoff": 2.0, "max_timeout": "1s", "max_attempts": 8},
)

EXPERIMENT = Experiment(
    name="loss_sweep",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        "delivery.guarantee": ["at_most_once", "at_least_once", "effectively_once"],
        "links.loss": [0.0, 0.005, 0.01, 0.02, 0.05, 0.1],
    },
    replications=5,
    seed=2026,
    quick={"duration": "6s", "warmup": "1s", "drain": "10s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
