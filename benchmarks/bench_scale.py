"""Scale: 10^6 messages over a 10,000-node Barabási–Albert topology, for point-to-point and the queue pattern.

Exponential link latency (mean 1 ms), 1 % loss per link, at-least-once delivery; 100 producers and 100
consumers. Prints wall time, simulated events per second, messages per second and peak RSS for each pattern,
beside the bare-SimPy reference of ``bench_network.py`` run in the same process at 10^5 messages, before and
after the patterns (a shared machine's speed drifts; the ratio uses the mean of the two): the ratio compares
sim's cost per hop with the reference's. Targets (issue): < 60 s per pattern, peak RSS < 2 GiB,
per-hop ratio <= 0.6. Usage: ``python benchmarks/bench_scale.py [--messages 1000000] [--nodes 10000]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_network

from sim import Scenario
from sim.core.context import SimContext
from sim.core.scheduling import events_scheduled
from sim.run.build import build
from sim.run.simulate import run_world


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scenario(pattern: str, messages: int, nodes: int) -> Scenario:
    producers = 100
    rate = 1000.0  # per producer per simulated second
    return Scenario(
        pattern=pattern,
        duration=messages / (producers * rate),
        drain="30s",
        seed=1,
        topology={"name": "barabasi_albert", "params": {"n": nodes, "m": 2}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.01},
        workload={"producers": producers, "consumers": 100, "rate": rate, "size": "1KB"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "100ms"},
        broker={"node": "n1", "prefetch": 100, "ack_timeout": "1s"},
    )


def run(pattern: str, messages: int, nodes: int) -> dict[str, float]:
    ctx = SimContext.from_seed(1)
    start = time.perf_counter()
    world = build(ctx, scenario(pattern, messages, nodes))
    built = time.perf_counter()
    run_world(ctx, world)
    wall = time.perf_counter() - start
    ctx.ledger.check()
    events = events_scheduled(ctx.env)
    hops = ctx.ledger.data_transmissions + ctx.ledger.control_transmissions
    return {
        "wall": wall,
        "build": built - start,
        "events": events,
        "messages": len(ctx.ledger),
        "hops": hops,
        "delivered": ctx.ledger.delivered_count,
    }


def reference_hop(messages: int) -> float:
    """Seconds per hop of ``bench_network``'s bare-SimPy reference at ``messages`` messages."""
    g = bench_network.make_graph(1000, 7)
    times, src, dst = bench_network.workload(g, messages, 7)
    wall, hops, _ = bench_network.run_reference(g, times, src, dst)
    return wall / hops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--reference-messages", type=int, default=100_000)
    parser.add_argument("--patterns", nargs="+", default=["point_to_point", "queue"])
    args = parser.parse_args()
    # the reference runs before and after the patterns: on a shared machine its speed drifts, and the mean of
    # the two is the fairer yardstick for runs in between
    before = reference_hop(args.reference_messages)
    print(
        f"reference (bare SimPy, {args.reference_messages} messages, 1,000 nodes): {before * 1e6:.2f} us/hop"
    )
    results = []
    for pattern in args.patterns:
        r = run(pattern, args.messages, args.nodes)
        results.append((pattern, r))
        print(
            f"{pattern:>15}: {r['wall']:7.1f} s (build {r['build']:.1f} s)  "
            f"{r['events'] / r['wall']:9.0f} events/s  "
            f"{r['messages'] / r['wall']:8.0f} messages/s  {r['delivered'] / r['messages']:.4f} delivered  "
            f"peak RSS {peak_rss_mib():6.0f} MiB  {r['wall'] / r['hops'] * 1e6:5.2f} us/hop"
        )
    after = reference_hop(args.reference_messages)
    ref_hop = (before + after) / 2
    drift = after / before - 1
    print(f"reference again: {after * 1e6:.2f} us/hop (drift {drift:+.0%}); mean {ref_hop * 1e6:.2f} us/hop")
    for pattern, r in results:
        print(f"{pattern:>15}: per-hop ratio {r['wall'] / r['hops'] / ref_hop:.2f}  (target <= 0.6)")


if __name__ == "__main__":
    main()
