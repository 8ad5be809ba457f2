"""Wire a validated scenario into a runnable model: topology → network → nodes → workload → pattern."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from sim.context import SimContext
from sim.distributions import from_spec
from sim.errors import SimError
from sim.network import Network
from sim.node import Node
from sim.patterns import PATTERNS, DeliveryConfig
from sim.scenario import Scenario, WorkloadSettings
from sim.topology import build_topology
from sim.units import parse_size
from sim.workload import (
    Arrivals,
    ConstantRate,
    Destinations,
    Fixed,
    Hotspot,
    OnOff,
    Poisson,
    Uniform,
    Workload,
    Zipf,
)

__all__ = ["APPLICATION_ROLES", "World", "build", "topology_search_path"]

APPLICATION_ROLES = ("host", "client", "server", "service")
"""Node roles that run producers and consumers when the workload gives counts, not names."""


@dataclass
class World:
    """The assembled model a pattern sees; nodes are created on first use."""

    ctx: SimContext
    scenario: Scenario
    graph: nx.Graph[str]
    network: Network
    workload: Workload
    delivery: DeliveryConfig
    params: Mapping[str, Any]
    nodes: dict[str, Node] = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        """The node ``node_id`` (created, attached to the network and started on first use)."""
        node = self.nodes.get(node_id)
        if node is None:
            if node_id not in self.graph:
                raise SimError("node", node_id, "a node of the topology")
            attrs = self.graph.nodes[node_id]
            node = Node(
                self.ctx,
                node_id,
                self.network,
                servers=attrs["servers"],
                service=attrs["service"],
                role=attrs["role"],
            )
            self.nodes[node_id] = node
            self.network.attach(node_id, node)
            node.start()
        return node


def topology_search_path(base: Path | None = None) -> list[Path]:
    """Folders searched for named topologies: ``./topologies``, the nearest ``topologies/`` above
    ``base`` (a scenario or experiment file's folder), and the project checkout's ``topologies/``."""
    found: list[Path] = [Path.cwd() / "topologies"]
    if base is not None:
        for parent in [base, *base.parents][:4]:
            if (parent / "topologies").is_dir():
                found.append(parent / "topologies")
                break
    found.append(Path(__file__).resolve().parents[1] / "topologies")
    unique: list[Path] = []
    for p in found:
        if p.is_dir() and p.resolve() not in [u.resolve() for u in unique]:
            unique.append(p)
    return unique


def _place(graph: nx.Graph[str], who: int | list[str], field_name: str, *, from_end: bool) -> tuple[str, ...]:
    if isinstance(who, list):
        missing = [n for n in who if n not in graph]
        if missing:
            raise SimError(f"workload.{field_name}", missing[0], "node ids of the topology")
        return tuple(who)
    hosts = [n for n, attrs in graph.nodes(data=True) if attrs["role"] in APPLICATION_ROLES]
    hosts = hosts or list(graph.nodes)
    if who > len(hosts):
        raise SimError(f"workload.{field_name}", who, f"at most {len(hosts)} (the topology's hosts)")
    # spread evenly over the hosts: producers from the front, consumers from the back
    picks = [hosts[(i * len(hosts)) // who] for i in range(who)]
    if from_end:
        picks = [hosts[len(hosts) - 1 - (i * len(hosts)) // who] for i in range(who)]
    return tuple(picks)


def _arrivals(w: WorkloadSettings) -> Arrivals:
    if w.arrivals == "poisson":
        return Poisson(w.rate)
    if w.arrivals == "constant":
        return ConstantRate(w.rate)
    return OnOff(w.rate, w.on, w.off)


def _destinations(w: WorkloadSettings) -> Destinations:
    table: dict[str, Destinations] = {
        "fixed": Fixed(),
        "uniform": Uniform(),
        "zipf": Zipf(w.zipf_s),
        "hotspot": Hotspot(w.hotspot_fraction),
    }
    return table[w.destinations]


def build(ctx: SimContext, scenario: Scenario, *, search: Sequence[Path] = ()) -> World:
    """Assemble the world for ``scenario`` in ``ctx`` and install its pattern.

    Nothing runs until ``ctx.env.run``.
    """
    topo = scenario.topology
    graph = build_topology(
        topo.name,
        topo.params,
        seed=scenario.seed,
        search=list(search) or topology_search_path(),
        links=scenario.links.model_dump(),
        nodes=scenario.nodes.model_dump(),
    )
    network = Network.from_graph(ctx, graph, max_hops=scenario.network.max_hops)
    w = scenario.workload
    producers = _place(graph, w.producers, "producers", from_end=False)
    consumers = _place(graph, w.consumers, "consumers", from_end=True)
    size = from_spec(w.size, "workload.size", parse_size)
    workload = Workload(ctx, producers, consumers, _arrivals(w), size, _destinations(w), scenario.duration)
    d = scenario.delivery
    delivery = DeliveryConfig(
        d.guarantee, d.ack_timeout, d.backoff, d.max_timeout, d.max_attempts, d.ack_size
    )
    world = World(ctx, scenario, graph, network, workload, delivery, scenario.params)
    pattern = PATTERNS[scenario.pattern]()
    pattern.install(world)
    return world
