"""Messages per second of sim's queue pattern against Ciw on the same M/M/1 model, in the same process.

Model: Poisson arrivals λ = 0.9, exponential service μ = 1.0, one server; N messages (default 2×10^5).
- sim: the ``queue`` pattern — producer → broker queue (zero latency) → one consumer with prefetch 1 and
  manual acks, every message in the ledger;
- Ciw: one M/M/1 node, simulated until N customers have arrived.
Prints each one's messages per second and the ratio sim/Ciw (target >= 1.0). Usage:
``python benchmarks/bench_broker.py [--messages 200000]``.
"""

from __future__ import annotations

import argparse
import time

import ciw

from sim import Scenario, simulate

LAM, MU = 0.9, 1.0


def run_sim(messages: int) -> tuple[float, float]:
    duration = messages / LAM
    sc = Scenario(
        pattern="queue",
        duration=duration,
        drain=0,
        seed=1,
        topology={"name": "star", "params": {"n": 2}},
        links={"latency": 0},
        nodes={"service": {"dist": "exponential", "mean": 1 / MU}},
        workload={"producers": 1, "consumers": 1, "rate": LAM},
        delivery={"guarantee": "at_most_once"},
        broker={"node": "hub", "consumer_ack": "manual", "prefetch": 1},
    )
    start = time.perf_counter()
    result = simulate(sc)
    return time.perf_counter() - start, result.summary["offered"]


def run_ciw(messages: int) -> tuple[float, float]:
    ciw.seed(1)
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=LAM)],
        service_distributions=[ciw.dists.Exponential(rate=MU)],
        number_of_servers=[1],
    )
    start = time.perf_counter()
    sim = ciw.Simulation(network)
    sim.simulate_until_max_time(messages / LAM)
    return time.perf_counter() - start, len(sim.get_all_records())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    ciw_wall, ciw_done = run_ciw(args.messages)
    sim_wall, sim_done = run_sim(args.messages)
    ciw_rate, sim_rate = ciw_done / ciw_wall, sim_done / sim_wall
    print(f"M/M/1, λ = {LAM}, μ = {MU}, {args.messages} messages")
    print(f"Ciw : {ciw_wall:7.2f} s  {ciw_rate:9.0f} messages/s")
    print(f"sim : {sim_wall:7.2f} s  {sim_rate:9.0f} messages/s")
    print(f"ratio sim/Ciw: {sim_rate / ciw_rate:.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
