"""Queue or log, how many replicas, which acks: what does each lose and cost under crashes and link loss?

One workload — three producers at 200 messages/s each (600/s in all, 1 KB), three consumers with two
workers of about 1 ms each (about 10 % busy; 30 % for the one reader of a single partition) — on a
datacenter leaf-spine fabric with three broker nodes (``leaf_spine_dc``, brokers ``broker0`` ..
``broker2``), at least once throughout: publisher confirms or producer acknowledgements with retries (200 ms
timeout doubling to 1 s, up to 20 attempts: about 18 s of patience), manual consumer acks or commits after
processing. Fair to both: whatever a lost message holds up is asked for again after 200 ms (about a TCP
retransmission timeout) — a publish or a produce request, a queue's delivery, a log consumer's fetch (a
follower fetches every 5 ms anyway).

The ``setup`` factor names seven ways to carry it, each a variant of its own so that no setting is shown
where it does not apply:

- ``queue_r1``: a durable work queue on one broker (``broker0``), manual acks, prefetch 100, unacknowledged
  deliveries sent again after 200 ms;
- ``queue_r3``: the same queue replicated on the three brokers (``broker.replicas = 3``: a publish is
  enqueued and confirmed once two of three have it);
- ``log_r1_p3``: a log of 3 partitions (records keyed uniformly over 60 keys, a follower or idle
  consumer fetching every 5 ms, ``max_in_flight = 1``, no linger), one replica each (``acks`` 1 and
  ``"all"`` are the same thing with one replica);
- ``log_r3_acks1_p3``: 3 partitions, 3 replicas, the leader acknowledges on its own append (``acks = 1``);
- ``log_r3_all_p1``, ``log_r3_all_p3``, ``log_r3_all_p6``: 3 replicas, ``acks = "all"`` with
  ``min_insync_replicas = 2``, on 1, 3 or 6 partitions (one partition is read by one consumer only).

The ``fault`` factor: ``none`` (the control); ``broker_crash``: ``broker0`` — the queue's broker, the
leader of the log's partition 0 (and 3) — crashes at 4 s for 2 s; ``consumer_crash``: the consumer
``h1_3`` crashes at 4 s for 2 s (the broker or the group notices after a 500 ms session timeout);
``link_loss``: every link drops 1 % of what it carries for the whole run. A replicated leader's crash is
noticed and a new leader elected after 100 ms, clients reconnect 100 ms after that; a single broker's
clients reconnect 100 ms after it is back.

What to read: the opening paragraph ranks the setups under each fault on lost operations first and then on
latency, saying which are equal within their 95 % intervals; ``op_failed`` counts lost operations (their
reasons: ``op_failed_unreplicated``, ``op_failed_node_down``, ... in ``statistics.csv``);
``op_duplicates_per_op`` the extra deliveries a crash or a lost ack causes; ``op_latency_p50`` and
``_p99`` are end to end (intended send to processing); ``produce_latency_p99`` is the log's intended send to
its batch's acknowledgement (the queue has none: –). The cost figure counts link transmissions per
operation; the log's commits and group coordination take no messages in the model (docs/patterns.md,
``log``, "Simplified"), so its bars are a lower bound next to the queue's acks. For the rest: ``sim
report results/queue_vs_log --metric op_failed_unreplicated --metric elections --metric rebalances
--metric redeliveries`` or read ``statistics.csv``.

Run it: ``sim run experiments/queue_vs_log.py`` (140 runs: about 10 minutes on two busy cores;
``--quick``: 56 shorter runs, about 40 s of CPU, a minute or two on busy cores).
"""

from sim import Experiment, Scenario

BASE = Scenario(
    pattern="queue",
    duration="12s",
    warmup="1s",
    drain="15s",
    topology={
        "name": "leaf_spine_dc",
        "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4, "brokers": 3},
    },
    nodes={"servers": 2, "service": {"dist": "exponential", "mean": "1ms"}},
    workload={
        "producers": ["h0_0", "h1_0", "h2_0"],
        "consumers": ["h1_3", "h2_3", "h3_3"],
        "rate": "200/s",
        "size": "1KB",
    },
    # fair to both: every sender first retries after 200 ms (about a TCP retransmission timeout): a
    # publisher without its confirm, a producer without its acknowledgement, and a log consumer whose
    # fetch went unanswered; then 400, 800 ms and 1 s per attempt, 20 attempts: about 18 s,
    # well past every outage below, so a publisher never gives up
    delivery={"guarantee": "at_least_once", "ack_timeout": "200ms", "max_timeout": "1s", "max_attempts": 20},
    broker={
        "servers": 4,
        "service": {"dist": "exponential", "mean": "50us"},  # every broker node's processing, queue or log
        "durable": True,
        "persist": "50us",
        "consumer_ack": "manual",
        # a delivery or an ack lost on a link holds its consumer's slot until the ack timeout: a large
        # prefetch keeps 1 % loss from starving the consumers
        "prefetch": 100,
        "ack_timeout": "200ms",  # redeliver what a consumer has not acknowledged within 200 ms, as above
        "session_timeout": "500ms",  # a consumer's crash noticed after 500 ms (the log group's too)
        "election_delay": "100ms",
        "reconnect_delay": "100ms",
    },
)

# records keyed uniformly over 60 keys, so that every partition gets a share of every producer (with one
# key per producer, the default, 3 producers would use at most 3 partitions, maybe fewer)
LOG = {
    "brokers": 3,
    "keys": "uniform",
    "key_count": 60,
    "election_delay": "100ms",
    "session_timeout": "500ms",
}

SETUPS = {
    "queue_r1": {"pattern": "queue"},
    "queue_r3": {"pattern": "queue", "broker.replicas": 3},
    "log_r1_p3": {"pattern": "log", "log": {**LOG, "partitions": 3, "replication_factor": 1}},
    "log_r3_acks1_p3": {
        "pattern": "log",
        "log": {**LOG, "partitions": 3, "replication_factor": 3, "acks": 1},
    },
    **{
        f"log_r3_all_p{p}": {
            "pattern": "log",
            "log": {**LOG, "partitions": p, "replication_factor": 3, "acks": "all", "min_insync_replicas": 2},
        }
        for p in (1, 3, 6)
    },
}

FAULTS = {
    "none": {},
    # the queue's broker, and the preferred leader of the log's partitions 0 (and 3 with 6 partitions)
    "broker_crash": {"faults": [{"at": "4s", "action": "crash", "target": "broker0", "for": "2s"}]},
    "consumer_crash": {"faults": [{"at": "4s", "action": "crash", "target": "h1_3", "for": "2s"}]},
    "link_loss": {"links.loss": 0.01},
}

EXPERIMENT = Experiment(
    name="queue_vs_log",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={"setup": SETUPS, "fault": FAULTS},
    headline=[
        "op_success_ratio",
        "op_failed",
        "op_latency_p50",
        "op_latency_p99",
        "produce_latency_p99",
        "op_duplicates_per_op",
        "op_unfinished",
    ],
    # the report's answer: at each fault, the setups that lose least, and of those the lowest tail latency
    rank_by=["op_failed", "op_latency_p99"],
    replications=5,
    seed=2026,
    # the crashes (4 s → 6 s) stay inside the shorter run
    quick={"duration": "6s", "warmup": "1s", "drain": "5s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
