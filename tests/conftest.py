"""Shared fixtures: a fixed-seed run context, small hand-made graphs and the M/M/c queue scenario."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import networkx as nx
import numpy as np
import pytest

from sim.config.scenario import Scenario
from sim.core.context import SimContext
from sim.core.distributions import Constant, Distribution
from sim.core.message import Message
from sim.model.network import Network
from sim.model.node import Node

collect_ignore = ["mutation"]  # the mutation study's script (tests/mutation/run.py) is not a test module


@pytest.fixture
def ctx() -> SimContext:
    """A fresh context with seed 1234."""
    return SimContext.from_seed(1234)


def line_graph(
    n: int, latency: Distribution | float = 0.001, loss: float = 0.0, bandwidth: float = math.inf
) -> nx.Graph:
    """``n0 - n1 - ... - n{n-1}`` with the same (parsed) attributes on every link."""
    lat = Constant(latency) if isinstance(latency, int | float) else latency
    g = nx.path_graph([f"n{i}" for i in range(n)])
    for u, v in g.edges:
        g.edges[u, v].update(latency=lat, loss=loss, bandwidth=bandwidth)
    for node in g.nodes:
        g.nodes[node].update(role="host", servers=1, service=None)
    return g


class Recorder:
    """Attach to nodes; records (time, node, msg) of every processed message and marks delivery."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.seen: list[tuple[float, str, Message]] = []

    def attach(self, node: Node, kind: str = "data") -> None:
        def handle(msg: Message) -> None:
            self.seen.append((self.ctx.env.now, node.id, msg))
            for row in msg.obligations():
                self.ctx.ledger.deliver(row, self.ctx.env.now)

        node.on(kind, handle)


def wire(ctx: SimContext, graph: nx.Graph, **node_kw: object) -> tuple[Network, dict[str, Node], Recorder]:
    """A network over ``graph`` with a started Node on every vertex, each recording ``data``."""
    net = Network.from_graph(ctx, graph)
    rec = Recorder(ctx)
    nodes = {}
    for name in graph.nodes:
        node = Node(ctx, name, net, **node_kw)  # type: ignore[arg-type]
        net.attach(name, node)
        node.start()
        rec.attach(node)
        nodes[name] = node
    return net, nodes, rec


def send(
    ctx: SimContext, net: Network, src: str, dst: str, size: float = 100.0, *, reliable: bool = False
) -> Message:
    """Open an obligation and send one data message now."""
    mid = ctx.next_id()
    row = ctx.ledger.open(mid, "data", src, dst, "", ctx.env.now, size)
    msg = Message(mid, "data", src, dst, size, ctx.env.now, row, reliable=reliable)
    net.send(msg)
    return msg


def assert_counts_match_the_rows(
    summary: Mapping[str, float], columns: Mapping[str, np.ndarray], warmup: float
) -> None:
    """The summary's counts recounted from the ledger rows: ``offered`` is the rows created at or after
    ``warmup``; ``delivered``, ``lost`` and ``in_flight`` are those rows by outcome; delivered rows are
    exactly the ones with a delivery time; ``lost_<reason>`` splits ``lost`` by the rows' reasons."""
    kept = columns["created_at"] >= warmup
    outcome = columns["outcome"][kept]
    assert summary["offered"] == int(kept.sum())
    for name in ("delivered", "lost", "in_flight"):
        assert summary[name] == int((outcome == name).sum()), name
    assert summary["delivered"] == int(np.isfinite(columns["delivered_at"][kept]).sum())
    reasons = Counter(columns["reason"][kept][outcome == "lost"].tolist())
    assert "" not in reasons, "a lost row without a reason"
    assert {r: summary[f"lost_{r}"] for r in reasons} == reasons
    assert summary["lost"] == sum(reasons.values())


def mm_queue(consumers: int, rate: float, seed: int, duration: float = 4000.0, **broker: object) -> Scenario:
    """Producer -> broker (hub of a star) -> consumers, zero latency, exponential service of mean 1 s."""
    return Scenario(
        pattern="queue",
        duration=duration,
        warmup=duration / 20,
        seed=seed,
        topology={"name": "star", "params": {"n": consumers + 1}},
        links={"latency": 0},
        nodes={"service": {"dist": "exponential", "mean": 1}},
        workload={"producers": 1, "consumers": consumers, "rate": rate},
        delivery={"guarantee": "at_most_once"},
        broker={"node": "hub", "consumer_ack": "manual", "prefetch": 1, **broker},
    )


def interrupt_after(k: int) -> Callable[..., None]:
    """A run_all that stops like Ctrl-C once ``k`` runs have been stored."""
    import sim.sweep.runner

    real = sim.sweep.runner.run_all

    def interrupted(
        payloads: list[dict[str, Any]], on_row: Callable[[dict[str, Any]], None], **kw: Any
    ) -> None:
        stored = 0

        def then_stop(row: dict[str, Any]) -> None:
            nonlocal stored
            on_row(row)
            stored += 1
            if stored == k:
                raise KeyboardInterrupt

        real(payloads, then_stop, **kw)

    return interrupted
