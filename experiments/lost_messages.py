"""Which messages does a broker crash lose, and why?

A small work queue to look at message by message (docs/replay.md walks through it): two producers send 10
jobs/s each through an in-memory broker on the hub of a star to two slow consumers (90 ms a job, one job
in hand at a time), for 2 seconds; the broker crashes at 0.8 s and is back at 1.1 s. At most once, what the
producers send to the down broker is lost (``node_down``). At least once, the producers retransmit until
the broker confirms, so no publish is lost, at the price of retries; but a job the broker had confirmed and
still held when it crashed dies with it (``crash_lost``): the queue is not durable. Small enough (about 40
jobs a run) for ``sim replay ... --trace --out DIR`` to draw every message of a run.

Run it: ``sim run experiments/lost_messages.py --engine serial`` (a few seconds), then replay a run by the
id the report lists.
"""

from sim import Experiment, Scenario

BASE = Scenario(
    pattern="queue",
    duration="2s",
    drain="3s",
    topology={"name": "star", "params": {"n": 4}},  # hub (the broker) and hosts h0 .. h3
    links={"latency": "2ms"},
    nodes={"service": "90ms"},  # slow consumers: the broker may hold a job when it crashes
    workload={"producers": ["h0", "h1"], "consumers": ["h2", "h3"], "rate": "10/s"},
    delivery={"ack_timeout": "50ms", "max_timeout": "200ms", "max_attempts": 20},
    broker={"node": "hub", "reconnect_delay": "50ms", "prefetch": 1},  # in memory (durable = false)
    faults=[{"at": "0.8s", "action": "crash", "target": "broker", "for": "300ms"}],
)

EXPERIMENT = Experiment(
    name="lost_messages",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={"delivery.guarantee": ["at_most_once", "at_least_once"]},
    replications=2,
    seed=15,
    quick={},  # already small
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
