"""A datacenter leaf-spine fabric with a pair of message brokers.

Every leaf (top-of-rack) switch links to every spine switch; hosts hang off the leaves, and the brokers
sit on their own racks' leaves with faster NICs. Defaults: 4 spines, 8 leaves, 8 hosts per leaf
(64 hosts ``h{leaf}_{i}``) and 2 brokers (``broker0`` on ``leaf0``, ``broker1`` on ``leaf1``).

Figures are typical of a modern single-site fabric (one-way, per hop, including switch forwarding):

- host ↔ leaf: about 5 µs, 10 Gbps (brokers: 25 Gbps),
- leaf ↔ spine: about 10 µs, 100 Gbps,

each a truncated normal with small jitter. Brokers have ``servers = 4`` workers and an exponential
service time of 20 µs mean; hosts do no modelled processing.

Use it from a scenario as ``topology = "leaf_spine_dc"`` (with ``topologies/`` on the search path), or::

    >>> g = build(spines=2, leaves=2, hosts_per_leaf=2, brokers=1)
    >>> sorted(g["leaf0"])
    ['broker0', 'h0_0', 'h0_1', 'spine0', 'spine1']
"""

from __future__ import annotations

import networkx as nx


def _jittered(mean_us: float) -> dict[str, object]:
    return {"dist": "normal", "mean": f"{mean_us}us", "std": f"{mean_us / 10}us"}


def build(
    spines: int = 4,
    leaves: int = 8,
    hosts_per_leaf: int = 8,
    brokers: int = 2,
    host_latency_us: float = 5.0,
    fabric_latency_us: float = 10.0,
    host_bandwidth: str = "10Gbps",
    broker_bandwidth: str = "25Gbps",
    fabric_bandwidth: str = "100Gbps",
) -> nx.Graph:
    """Build the fabric.

    Parameters
    ----------
    spines, leaves : int
        Spine and leaf switch counts (>= 1).
    hosts_per_leaf : int
        Hosts on each leaf (>= 0).
    brokers : int
        Broker nodes (role ``broker``), placed on leaves ``0, 1, ...`` in turn.
    host_latency_us, fabric_latency_us : float
        Mean one-way latency of host/broker–leaf and leaf–spine links, in microseconds.
    host_bandwidth, broker_bandwidth, fabric_bandwidth : str
        Link bandwidths (``"10Gbps"`` etc.).
    """
    g = nx.Graph(name="leaf_spine_dc")
    fabric = {"latency": _jittered(fabric_latency_us), "bandwidth": fabric_bandwidth}
    for s in range(spines):
        g.add_node(f"spine{s}", role="switch", layer="spine")
    for leaf in range(leaves):
        g.add_node(f"leaf{leaf}", role="switch", layer="leaf")
        for s in range(spines):
            g.add_edge(f"leaf{leaf}", f"spine{s}", **fabric)
        for i in range(hosts_per_leaf):
            g.add_node(f"h{leaf}_{i}", role="host")
            g.add_edge(
                f"leaf{leaf}", f"h{leaf}_{i}", latency=_jittered(host_latency_us), bandwidth=host_bandwidth
            )
    for b in range(brokers):
        name = f"broker{b}"
        g.add_node(name, role="broker", servers=4, service={"dist": "exponential", "mean": "20us"})
        g.add_edge(f"leaf{b % leaves}", name, latency=_jittered(host_latency_us), bandwidth=broker_bandwidth)
    return g
