"""Does a broker queue cost more messages per delivery than direct sends once links lose packets?

A toy sweep that finishes in a few seconds (``sim run experiments/tiny_sweep.py --engine serial``):
point-to-point against a message queue (its broker on n1), at-least-once delivery, on a 4-node line, with
and without 5 % link loss, two replications each. Every replication shares its seed across the four
parameter points, so the pattern comparison is paired. Copy it as the starting point of a real experiment.
"""

from sim import Experiment, Scenario

BASE = Scenario(
    duration="2s",
    warmup="0.2s",
    drain="2s",
    topology={"name": "line", "params": {"n": 4}},
    links={"latency": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": 1, "consumers": 1, "rate": "50/s", "size": "1KB"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "20ms"},
    broker={"node": "n1"},  # where the queue runs (point-to-point ignores it)
)

EXPERIMENT = Experiment(
    name="tiny_sweep",
    description=__doc__.strip().splitlines()[0],
    base=BASE,
    grid={"pattern": ["point_to_point", "queue"], "links.loss": [0.0, 0.05]},
    replications=2,
    seed=7,
    quick={"duration": "1s", "warmup": "0.1s", "drain": "1s"},
)

if __name__ == "__main__":
    import sys

    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
