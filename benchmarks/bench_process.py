"""What the process-style API costs: point-to-point written as processes against the built-in, in one process.

The same scenario (four producers and four consumers on a leaf-spine fabric, Poisson arrivals, 1 % link
loss, at-least-once with acks and retransmission) runs with the built-in ``point_to_point`` and with
:class:`ProcessPointToPoint` below, a plug-in loaded by path as a user's would be: a producer process takes
the workload's arrivals (``node.arrival()``) and sends each (``node.send``); a consumer process receives
(``node.receive``). Both give the same ledger (tests/patterns/test_process_api.py pins it), so the ratio is
the API's own cost: a SimPy process resume per arrival and per receive, a mailbox, zero-cost workers.

Runs alternate (built-in, plug-in, built-in, ...) ``--repeat`` times; prints each wall time, messages per
second and the median ratio plug-in / built-in (how many times as long). Usage:
``python benchmarks/bench_process.py [--messages 100000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import simpy

from sim import Scenario, simulate
from sim.patterns.process import NodeHandle, ProcessPattern

RATE = 2000.0  # per producer, per second
PRODUCERS = 4


class ProcessPointToPoint(ProcessPattern):
    """Point-to-point as processes: the built-in's behaviour, message for message."""

    name = "process_point_to_point"

    def producer(self, node: NodeHandle) -> Generator[simpy.Event, Any, None]:
        while True:
            job = yield node.arrival()
            node.send(job.consumer, size=job.size, created_at=job.at)

    def consumer(self, node: NodeHandle) -> Generator[simpy.Event, Any, None]:
        while True:
            yield node.receive("data")


def scenario(pattern: str, messages: int) -> Scenario:
    return Scenario(
        pattern=pattern,
        duration=messages / (RATE * PRODUCERS),
        seed=1,
        topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.01, "bandwidth": "inf"},
        workload={"producers": PRODUCERS, "consumers": 4, "rate": RATE, "size": "1KB"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "20ms"},
    )


def timed(sc: Scenario) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    result = simulate(sc)
    return time.perf_counter() - start, result.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    built_in = scenario("point_to_point", args.messages)
    plug_in = scenario(f"{Path(__file__).resolve()}:ProcessPointToPoint", args.messages)
    ratios = []
    for i in range(args.repeat):
        a_wall, a = timed(built_in)
        b_wall, b = timed(plug_in)
        if (a["offered"], a["delivered"], a["transmissions"]) != (
            b["offered"],
            b["delivered"],
            b["transmissions"],
        ):
            raise SystemExit("the two runs differ: the comparison would not be like for like")
        ratios.append(b_wall / a_wall)
        print(
            f"run {i + 1}: built-in {a_wall:6.2f} s ({a['offered'] / a_wall:8.0f} msg/s)   "
            f"processes {b_wall:6.2f} s ({b['offered'] / b_wall:8.0f} msg/s)   ratio {ratios[-1]:.2f}"
        )
    print(
        f"point-to-point, {int(a['offered'])} messages, at-least-once: the process API takes "
        f"{statistics.median(ratios):.2f} times as long as the built-in (median of {args.repeat})"
    )


if __name__ == "__main__":
    main()
