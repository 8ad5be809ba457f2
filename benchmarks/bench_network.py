"""Per-hop cost of sim's network against a bare-SimPy reference, in the same process.

Workload: N messages between uniformly random pairs of a connected 1,000-node random graph
(Erdős–Rényi), exponential link latency (mean 1 ms), 1 % loss per link, Poisson sends.

- ``sim``: :class:`sim.model.network.Network` with :class:`sim.model.node.Node` endpoints — hop events with
  callbacks (consecutive hops over plain links in one event, as in any run without faults), batched draws,
  ledger accounting, cached shortest-path trees.
- reference: the textbook SimPy model — a process per message, a ``simpy.Store`` inbox per node with a
  consumer process, a ``timeout`` per hop; routes from the same Dijkstra routine, cached per
  destination, and random numbers drawn in advance, so only the event mechanics differ.

Prints the per-hop cost of each and the ratio sim/reference (target <= 1.0). Usage:
``python benchmarks/bench_network.py [--messages 100000] [--nodes 1000]``.
"""

from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np
import simpy
from scipy.sparse.csgraph import dijkstra

from sim.core.context import SimContext
from sim.core.distributions import Exponential
from sim.core.message import Message
from sim.model.network import Network
from sim.model.node import Node

LATENCY = 0.001
LOSS = 0.01
RATE = 10_000.0  # messages per simulated second, all sources together


def make_graph(nodes: int, seed: int) -> nx.Graph:
    p = 2.5 * np.log(nodes) / nodes
    for attempt in range(100):
        g = nx.gnp_random_graph(nodes, p, seed=seed + attempt)
        if nx.is_connected(g):
            break
    g = nx.relabel_nodes(g, {n: f"n{n}" for n in g})
    for u, v in g.edges:
        g.edges[u, v].update(latency=Exponential(LATENCY), loss=LOSS, bandwidth=float("inf"))
    return g


def workload(g: nx.Graph, messages: int, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    names = list(g.nodes)
    times = np.cumsum(rng.exponential(1 / RATE, messages))
    src = rng.integers(0, len(names), messages)
    dst = (src + rng.integers(1, len(names), messages)) % len(names)
    return times, [names[i] for i in src], [names[i] for i in dst]


def run_sim(g: nx.Graph, times: np.ndarray, src: list[str], dst: list[str]) -> tuple[float, int, int]:
    ctx = SimContext.from_seed(1)
    net = Network.from_graph(ctx, g, max_hops=64)
    # as ``build`` sets it for a run without faults: plain hops in one event, runs not remembered (nothing
    # can stop cut-through)
    net.fast.remember = False
    net.cut_through = True
    delivered = [0]

    def handle(msg: Message) -> None:
        ctx.ledger.deliver(msg.ob, ctx.env.now)  # type: ignore[arg-type]
        delivered[0] += 1

    for name in g.nodes:
        node = Node(ctx, name, net)
        node.on("data", handle)
        net.attach(name, node)

    def produce(env: simpy.Environment):  # type: ignore[no-untyped-def]
        ledger = ctx.ledger
        for t, s, d in zip(times.tolist(), src, dst, strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            mid = ctx.next_id()
            row = ledger.open(mid, "data", s, d, "", t, 100.0)
            net.send(Message(mid, "data", s, d, 100.0, t, row))

    ctx.env.process(produce(ctx.env))
    start = time.perf_counter()
    ctx.env.run()
    wall = time.perf_counter() - start
    ctx.ledger.check()
    hops = ctx.ledger.data_transmissions
    return wall, hops, delivered[0]


def run_reference(g: nx.Graph, times: np.ndarray, src: list[str], dst: list[str]) -> tuple[float, int, int]:
    env = simpy.Environment()
    rng = np.random.default_rng(2)
    lat = iter(rng.exponential(LATENCY, 64 * len(times)).tolist())
    lose = iter((rng.random(64 * len(times)) < LOSS).tolist())
    trees: dict[str, dict[str, str]] = {}
    inbox = {n: simpy.Store(env) for n in g.nodes}
    counts = {"hops": 0, "delivered": 0}

    names = list(g.nodes)
    index = {n: i for i, n in enumerate(names)}
    costs = nx.to_scipy_sparse_array(g, nodelist=names, weight=None, format="csr") * LATENCY

    def next_hop(here: str, to: str) -> str:
        tree = trees.get(to)
        if tree is None:  # the same Dijkstra routine sim uses, so only event mechanics differ
            _, pred = dijkstra(costs, directed=True, indices=index[to], return_predecessors=True)
            tree = trees[to] = {names[i]: names[p] for i, p in enumerate(pred.tolist()) if p >= 0}
        return tree[here]

    def consumer(store: simpy.Store):  # type: ignore[no-untyped-def]
        while True:
            yield store.get()
            counts["delivered"] += 1

    def message(env: simpy.Environment, s: str, d: str):  # type: ignore[no-untyped-def]
        here = s
        while here != d:
            here = next_hop(here, d)
            counts["hops"] += 1
            yield env.timeout(next(lat))
            if next(lose):
                return
        yield inbox[d].put((s, d))

    def produce(env: simpy.Environment):  # type: ignore[no-untyped-def]
        for t, s, d in zip(times.tolist(), src, dst, strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(message(env, s, d))

    for store in inbox.values():
        env.process(consumer(store))
    env.process(produce(env))
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start, counts["hops"], counts["delivered"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    g = make_graph(args.nodes, args.seed)
    times, src, dst = workload(g, args.messages, args.seed)
    ref_wall, ref_hops, ref_done = run_reference(g, times, src, dst)
    sim_wall, sim_hops, sim_done = run_sim(g, times, src, dst)
    ref_hop = ref_wall / ref_hops
    sim_hop = sim_wall / sim_hops
    print(f"graph: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges; {args.messages} messages")
    print(
        f"reference (bare SimPy): {ref_wall:7.2f} s  {ref_hops:8d} hops  {ref_hop * 1e6:6.2f} us/hop  "
        f"delivered {ref_done / args.messages:.3f}"
    )
    print(
        f"sim                   : {sim_wall:7.2f} s  {sim_hops:8d} hops  {sim_hop * 1e6:6.2f} us/hop  "
        f"delivered {sim_done / args.messages:.3f}"
    )
    print(f"ratio sim/reference per hop: {sim_hop / ref_hop:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
