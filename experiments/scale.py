"""How do delivery latency and the simulator's own cost grow with the topology, from 10 to 10,000 nodes?

The same modest workload — four producers and four consumers, 50 messages/s each, at least once — runs
point-to-point and through a work queue over scale-free (Barabási–Albert, m = 2) topologies of 10, 100,
1000 and 10,000 nodes. Each replication draws its own graph from its seed (both patterns of a replication
get the same graph), so the intervals include graph-to-graph variation. Links have a 1 ms mean latency and
no loss; nodes have no service time, so latency is the path: it grows with the typical distance between
nodes, which in a scale-free graph grows only about logarithmically with n. The broker runs on ``n1``, one of
the oldest and so best-connected nodes, which no producer or consumer uses at any of these sizes.

Simulator cost. Every row of ``runs.parquet`` has ``wall_time``: seconds of wall clock for the whole run —
building and validating the topology, computing routes (a shortest-path tree per destination, built when
first needed), simulating and summarizing. It is bookkeeping, not a metric, so it is not in the report
tables or ``summary.csv``; read it from the Parquet file::

    import pandas as pd
    runs = pd.read_parquet("results/scale/runs.parquet")
    runs["wall_per_delivery"] = runs["wall_time"] / runs["delivered"]   # s of wall clock per delivery
    runs["hops_per_s"] = runs["transmissions"] / runs["wall_time"]      # link transmissions per wall second
    runs.groupby(["pattern", "topology.params.n"])[["wall_time", "wall_per_delivery", "hops_per_s"]].mean()

Warm-up is 0, so ``delivered`` counts every message of the run and ``wall_time / delivered`` is the wall
clock per delivered message, all fixed costs included. With the message count fixed, its growth with n is
the per-node cost of building the world and routing (a larger graph also makes each path longer, so more
transmissions per delivery). Each transmission is one scheduled hop event, so ``transmissions /
wall_time`` approximates simulated hop events per second; there is no events/s metric. The figures depend
on the machine and on what else runs on it: compare them within one results folder, not across machines.

Run it: ``sim run experiments/scale.py`` (``--quick`` for a smoke run of well under a minute). The quick
run keeps all four sizes, 10,000 nodes included: an experiment's ``quick`` settings can shorten runs but
cannot remove grid points, and a 10,000-node run takes about a second.
"""

from sim import Experiment, Scenario

BASE = Scenario(
    duration="20s",
    warmup="0s",  # so that delivered = every message, for wall_time per delivery
    drain="10s",
    topology={"name": "barabasi_albert", "params": {"n": 100, "m": 2}},
    links={"latency": {"dist": "exponential", "mean": "1ms"}, "bandwidth": "1Gbps"},
    workload={"producers": 4, "consumers": 4, "rate": "50/s", "size": "1KB"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "100ms", "max_timeout": "1s", "max_attempts": 8},
    broker={"node": "n1", "ack_timeout": "1s", "prefetch": 50},
)

EXPERIMENT = Experiment(
    name="scale",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={
        "pattern": ["point_to_point", "queue"],
        "topology.params.n": [10, 100, 1000, 10_000],
    },
    replications=5,
    seed=2026,
    quick={"duration": "4s", "warmup": "0s", "drain": "5s"},
    quick_replications=2,
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
