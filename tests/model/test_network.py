"""Hop-by-hop delivery: exact times, FIFO serialization, loss, routing around failures, drop reasons."""

from __future__ import annotations

import math

import networkx as nx
import pytest
from conftest import line_graph, send, wire
from scipy import stats

from sim.core.context import SimContext
from sim.core.distributions import Constant


def test_exact_delivery_times_on_a_three_node_line(ctx: SimContext) -> None:
    # 100 B at 10 kB/s = 10 ms of serialization per hop, plus 10 ms of propagation
    net, _, rec = wire(ctx, line_graph(3, latency=0.01, bandwidth=10_000.0))
    send(ctx, net, "n0", "n2")
    send(ctx, net, "n0", "n2")
    ctx.env.run()
    times = [(round(t, 9), node) for t, node, _ in rec.seen]
    # first: a->b departs 0.01, arrives 0.02; b->c departs 0.03, arrives 0.04
    # second waits behind the first on each link: a->b departs 0.02, arrives 0.03; b->c departs 0.04 -> 0.05
    assert times == [(0.04, "n2"), (0.05, "n2")]
    assert ctx.ledger.data_transmissions == 4
    assert net.link("n0", "n1").free_at == pytest.approx(0.02)


def test_link_serialization_is_per_direction(ctx: SimContext) -> None:
    net, _, rec = wire(ctx, line_graph(2, latency=0.0, bandwidth=1000.0))
    send(ctx, net, "n0", "n1", size=500)
    send(ctx, net, "n1", "n0", size=500)
    ctx.env.run()
    assert sorted(round(t, 9) for t, _, _ in rec.seen) == [0.5, 0.5]


def test_trace_records_every_hop() -> None:
    ctx = SimContext.from_seed(1, trace=True)
    net, _, _ = wire(ctx, line_graph(3, latency=0.001))
    msg = send(ctx, net, "n0", "n2")
    ctx.env.run()
    assert ctx.trace == [
        (0.0, "hop", msg.id, "n0", "n1"),
        (0.001, "hop", msg.id, "n1", "n2"),
        (0.002, "arrive", msg.id, "n2", ""),
    ]


@pytest.mark.parametrize(("hops", "p"), [(1, 0.1), (3, 0.05), (5, 0.2)])
def test_end_to_end_loss_matches_binomial(hops: int, p: float) -> None:
    ctx = SimContext.from_seed(hops * 100 + int(p * 100))
    net, _, rec = wire(ctx, line_graph(hops + 1, latency=0.001, loss=p))
    n = 4000
    for _ in range(n):
        send(ctx, net, "n0", f"n{hops}")
    ctx.env.run()
    delivered = len(rec.seen)
    low, high = stats.binom.interval(0.99, n, (1 - p) ** hops)
    assert low <= delivered <= high
    counts = {"delivered": delivered, "lost": n - delivered, "in_flight": 0, "superseded": 0}
    assert ctx.ledger.counts() == counts
    reasons = {ctx.ledger.last_reason(r) for r in range(n) if ctx.ledger.outcome_of(r) == "lost"}
    assert reasons == {"loss"}
    ctx.ledger.check()


def test_routes_prefer_low_latency_and_reroute_when_a_link_fails(ctx: SimContext) -> None:
    g = nx.Graph()
    g.add_edge("a", "b", latency=Constant(0.001))
    g.add_edge("b", "d", latency=Constant(0.001))
    g.add_edge("a", "c", latency=Constant(0.005))
    g.add_edge("c", "d", latency=Constant(0.005))
    for u, v in g.edges:
        g.edges[u, v].update(loss=0.0, bandwidth=math.inf)
    net, _, rec = wire(ctx, g)
    assert net.route("a", "d") == ["a", "b", "d"]
    net.set_link_up("b", "d", False)
    assert net.route("a", "d") == ["a", "c", "d"]
    send(ctx, net, "a", "d")
    ctx.env.run()
    assert [(round(t, 9), n) for t, n, _ in rec.seen] == [(0.01, "d")]
    net.set_link_up("b", "d", True)
    assert net.route("a", "d") == ["a", "b", "d"]


def test_unroutable_on_a_disconnected_graph(ctx: SimContext) -> None:
    g = line_graph(2)
    g.add_node("island", role="host", servers=1, service=None)
    net, _, rec = wire(ctx, g)
    send(ctx, net, "n0", "island")
    ctx.env.run()
    assert rec.seen == []
    assert ctx.ledger.outcome_of(0) == "lost"
    assert ctx.ledger.last_reason(0) == "unroutable"


def test_transit_node_down_reroutes_or_drops(ctx: SimContext) -> None:
    net, nodes, _ = wire(ctx, line_graph(3))
    nodes["n1"].crash()
    send(ctx, net, "n0", "n2")
    nodes["n2"].crash()
    send(ctx, net, "n0", "n2")
    ctx.env.run()
    assert [ctx.ledger.last_reason(r) for r in range(2)] == ["unroutable", "node_down"]


def test_link_failing_mid_flight_drops_with_link_down(ctx: SimContext) -> None:
    net, _, rec = wire(ctx, line_graph(2, latency=0.01))
    send(ctx, net, "n0", "n1")
    ctx.env.run(until=0.005)
    net.partition([["n0"], ["n1"]])
    ctx.env.run()
    assert rec.seen == []
    assert ctx.ledger.last_reason(0) == "partition"


@pytest.mark.parametrize("n", [2, 3], ids=["destination", "transit"])
def test_a_message_in_flight_to_a_node_that_goes_down_is_dropped_node_down(ctx: SimContext, n: int) -> None:
    # the message is on the link n0 -> n1 (10 ms) when n1 crashes at 5 ms; the link itself stays up
    net, nodes, rec = wire(ctx, line_graph(n, latency=0.01))
    send(ctx, net, "n0", f"n{n - 1}")
    ctx.env.run(until=0.005)
    nodes["n1"].crash()
    ctx.env.run()
    assert rec.seen == []
    assert ctx.ledger.outcome_of(0) == "lost" and ctx.ledger.last_reason(0) == "node_down"


def test_hop_limit_drops_with_ttl() -> None:
    ctx = SimContext.from_seed(3)
    g = line_graph(6)
    from sim.model.network import Network
    from sim.model.node import Node

    net = Network.from_graph(ctx, g, max_hops=3)
    for n in g.nodes:
        net.attach(n, Node(ctx, n, net))
    send(ctx, net, "n0", "n5")
    ctx.env.run()
    assert ctx.ledger.last_reason(0) == "ttl"


def test_reliable_drop_only_notes_the_reason(ctx: SimContext) -> None:
    net, _, _ = wire(ctx, line_graph(2, loss=1.0))
    send(ctx, net, "n0", "n1", reliable=True)
    ctx.env.run()
    assert ctx.ledger.outcome_of(0) == "in_flight"
    assert ctx.ledger.last_reason(0) == "loss"
