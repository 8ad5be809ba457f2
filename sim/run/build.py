"""Wire a validated scenario into a runnable model: topology → network → nodes → workload → pattern."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from sim.config.scenario import Scenario, WorkloadSettings
from sim.core.context import SimContext
from sim.core.distributions import Distribution, from_spec
from sim.core.errors import SimError
from sim.core.units import parse_size
from sim.model.broker.broker import Broker, BrokerConfig, broker_service
from sim.model.broker.replication import ReplicatedBroker
from sim.model.faults.injector import FaultInjector
from sim.model.network import Network
from sim.model.node import Node
from sim.model.workload import (
    Arrivals,
    ConstantRate,
    Destinations,
    Fixed,
    Hotspot,
    OnOff,
    Poisson,
    UniformDestinations,
    Workload,
    Zipf,
)
from sim.patterns import DeliveryConfig, Reporter
from sim.patterns.registry import pattern_class
from sim.run.fault_plan import plan
from sim.run.metrics import refuse_reserved
from sim.topology import PROJECT_TOPOLOGIES, build_topology

__all__ = ["APPLICATION_ROLES", "AssembledWorld", "build", "topology_search_path"]

APPLICATION_ROLES = ("host", "client", "server", "service")
"""Node roles that run producers and consumers when the workload gives counts, not names."""


@dataclass
class AssembledWorld:
    """The assembled model a pattern sees; nodes and brokers are created on first use."""

    ctx: SimContext
    scenario: Scenario
    graph: nx.Graph[str]
    network: Network
    workload: Workload
    delivery: DeliveryConfig
    broker_config: BrokerConfig
    reconnect_delay: float = 0.1
    nodes: dict[str, Node] = field(default_factory=dict)
    brokers: dict[str, Broker] = field(default_factory=dict)
    reporters: list[Reporter] = field(default_factory=list)
    broker_hosts: set[str] = field(default_factory=set)
    """Nodes made as brokers' hosts (:meth:`broker_host`)."""
    faults: FaultInjector | None = None

    def broker(self, node_id: str | None = None) -> Broker:
        """The broker on ``node_id`` (default: ``broker.node`` of the scenario), created on first use."""
        node_id = node_id or self._default_broker()
        broker = self.brokers.get(node_id)
        if broker is None and self.scenario.broker.replicas != 1 and node_id == self._default_broker():
            broker = self._replicated_broker(node_id)  # None for a list of one node id
        if broker is None:
            node = self.broker_host(node_id)
            broker = self.brokers[node_id] = Broker(self.ctx, node, self.broker_config, self.node)
            broker.measure_from = self.scenario.warmup
            broker.start()
            if len(self.brokers) == 1:
                self.reporters.append(self._broker_figures)
        return broker

    def _replicated_broker(self, node_id: str) -> Broker | None:
        """The default broker replicated on ``broker.replicas`` nodes (``node_id`` first, the leader)."""
        b = self.scenario.broker
        ids = self.broker_nodes(b.replicas, "broker.replicas")
        if ids[0] != node_id:
            raise SimError(
                "broker.replicas", list(ids), f"node ids beginning with the broker node {node_id!r}"
            )
        if len(ids) == 1:
            return None
        nodes = [self.broker_host(i, "broker.replicas") for i in ids]
        broker = self.brokers[node_id] = ReplicatedBroker(
            self.ctx, nodes, self.broker_config, self.node, election_delay=b.election_delay
        )
        broker.measure_from = self.scenario.warmup
        broker.start()
        self.reporters.append(self._broker_figures)
        self.reporters.append(broker.replication_figures)
        return broker

    def broker_host(self, node_id: str, field: str = "broker.node") -> Node:
        """The node ``node_id`` as a broker's host: its processing is the ``[broker]`` table's (``servers``,
        ``service``, ``persist``), not the ``[nodes]`` defaults (an application's service time) nor the
        node's own topology attributes. Created on first use; refused on a node that runs a producer or a
        consumer. ``field`` names the setting in errors."""
        node = self.nodes.get(node_id)
        if node is not None and node_id in self.broker_hosts:
            return node
        if node_id not in self.graph:
            raise SimError(field, node_id, "a node of the topology")
        if node_id in self.nodes or node_id in (*self.workload.producers, *self.workload.consumers):
            raise SimError(field, node_id, "a node that runs no producer or consumer")
        b = self.scenario.broker
        service = from_spec(b.service, "broker.service") if b.service is not None else None
        node = self._make_node(node_id, servers=b.servers, service=broker_service(service, b.persist))
        self.broker_hosts.add(node_id)
        return node

    def broker_nodes(self, wanted: int | Sequence[str], field: str) -> tuple[str, ...]:
        """The nodes of a cluster of brokers: ``wanted`` ids as given, or a count: the scenario's broker node
        first (``broker.node``, or the first node with role ``broker``), then the topology's other nodes
        with role ``broker`` in its order. ``field`` names the setting in errors."""
        if not isinstance(wanted, int):
            ids = tuple(wanted)
            for node_id in ids:
                if node_id not in self.graph:
                    raise SimError(field, node_id, "a node of the topology")
            if len(set(ids)) != len(ids) or not ids:
                raise SimError(field, list(ids), "distinct node ids, at least one")
            return ids
        first = self._default_broker()
        nodes = self.graph.nodes
        others = [str(n) for n in nodes if nodes[n]["role"] == "broker" and n != first]
        ids = (first, *others)
        if not 1 <= wanted <= len(ids):
            raise SimError(
                field,
                wanted,
                f"from 1 to {len(ids)}: the topology has {len(ids)} broker node(s) ({', '.join(ids)}); "
                "give node ids instead, or a topology with more nodes of role 'broker'",
            )
        return ids[:wanted]

    def default_broker(self) -> str:
        """The scenario's broker node (``broker.node``, or the node with role ``broker``)."""
        return self._default_broker()

    def _default_broker(self) -> str:
        wanted = self.scenario.broker.node
        if wanted != "auto":
            return wanted
        for node_id, attrs in self.graph.nodes(data=True):
            if attrs["role"] == "broker":
                return str(node_id)
        raise SimError(
            "broker.node",
            "auto",
            f"a node with role 'broker' in the topology, or broker.node naming one "
            f"(pattern '{self.scenario.pattern}' needs a broker)",
        )

    def _broker_figures(self) -> dict[str, float]:
        stats = [b.statistics() for b in self.brokers.values()]
        sc = self.scenario
        return {
            "broker_utilization": max(s.utilization for s in stats),
            "backlog_max": max(s.backlog_max for s in stats),
            "backlog_mean": sum(b.backlog_mean(sc.warmup, sc.duration) for b in self.brokers.values()),
        }

    def node(self, node_id: str) -> Node:
        """The node ``node_id`` (created, attached to the network and started on first use)."""
        node = self.nodes.get(node_id)
        if node is None:
            if node_id not in self.graph:
                raise SimError("node", node_id, "a node of the topology")
            attrs = self.graph.nodes[node_id]
            node = self._make_node(node_id, servers=attrs["servers"], service=attrs["service"])
        return node

    def _make_node(self, node_id: str, *, servers: int, service: Distribution | None) -> Node:
        role = self.graph.nodes[node_id]["role"]
        node = Node(self.ctx, node_id, self.network, servers=servers, service=service, role=role)
        self.nodes[node_id] = node
        self.network.attach(node_id, node)
        node.start()
        return node


def topology_search_path() -> list[Path]:
    """Folders searched for a topology given by name: the project's own ``topologies/`` only.

    Never a ``topologies/`` folder of the working directory or near a scenario file: a name must not run
    a Python file the user did not point at. Any other topology file is named by its path.
    """
    return [PROJECT_TOPOLOGIES] if PROJECT_TOPOLOGIES.is_dir() else []


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
        "uniform": UniformDestinations(),
        "zipf": Zipf(w.zipf_s),
        "hotspot": Hotspot(w.hotspot_fraction),
    }
    return table[w.destinations]


def build(ctx: SimContext, scenario: Scenario, *, search: Sequence[Path] = ()) -> AssembledWorld:
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
    settings = scenario.network
    network = Network.from_graph(
        ctx, graph, max_hops=settings.max_hops, route_memory=int(settings.route_memory)
    )
    w = scenario.workload
    producers = _place(graph, w.producers, "producers", from_end=False)
    consumers = _place(graph, w.consumers, "consumers", from_end=True)
    size = from_spec(w.size, "workload.size", parse_size)
    workload = Workload(ctx, producers, consumers, _arrivals(w), size, _destinations(w), scenario.duration)
    d = scenario.delivery
    delivery = DeliveryConfig(
        d.guarantee, d.ack_timeout, d.backoff, d.max_timeout, d.max_attempts, d.ack_size, d.dedup
    )
    b = scenario.broker
    reliable = d.guarantee != "at_most_once"
    broker_config = BrokerConfig(
        durable=b.durable,
        confirms=reliable if b.confirms == "guarantee" else bool(b.confirms),
        persist=b.persist,
        capacity=b.capacity,
        overflow=b.overflow,
        manual_ack=reliable if b.consumer_ack == "guarantee" else b.consumer_ack == "manual",
        ack_timeout=b.ack_timeout,
        max_redeliveries=b.max_redeliveries,
        prefetch=b.prefetch,
        session_timeout=b.session_timeout,
        control_size=d.ack_size,
    )
    world = AssembledWorld(
        ctx, scenario, graph, network, workload, delivery, broker_config, b.reconnect_delay
    )
    cls = pattern_class(scenario.pattern)  # a built-in, or a plug-in (a file, an entry point)
    refuse_reserved(cls, scenario.pattern)
    pattern = cls.from_options(scenario.options.get(cls.name, {}))
    pattern.install(world)
    schedule = plan(
        scenario, graph, ctx.rng, broker=world.default_broker, producers=producers, consumers=consumers
    )
    world.faults = FaultInjector(ctx, network, world.node, schedule)
    world.faults.start()
    # runs of plain links take one event until the first change of a link's or node's state (a fault, or a
    # crash made from outside); traced or not, so that a trace never changes a number. Without a planned
    # change, nothing can stop it: its runs need not be remembered
    network.fast.remember = bool(schedule)
    network.cut_through = True
    return world
