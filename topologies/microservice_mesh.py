"""A microservice back end: clients → API gateway → service mesh switch → services and a broker.

Nodes: ``client{i}`` (role ``client``), ``gateway`` (role ``gateway``), ``mesh`` (the in-cluster
network, role ``switch``), ``replicas`` instances of each service named ``<service>-<k>`` (role
``service``, with an ``app`` attribute naming the service and an exponential processing time),
and ``broker`` (role ``broker``). Everything inside the cluster is one hop from ``mesh``, so any two
services are two hops apart, as in a sidecar mesh on one network.

Latencies (one-way): client–gateway about 5 ms over the internet (lognormal, cv 0.2); in-cluster
links about 100 µs (lognormal, cv 0.3). In-cluster links run at 10 Gbps; client links are left to
the scenario's ``[links]`` table.

>>> g = build(replicas=2, clients=1)
>>> sorted(n for n, role in g.nodes(data="role") if role == "service")[:4]
['catalog-0', 'catalog-1', 'inventory-0', 'inventory-1']
>>> g.nodes["payments-0"]["servers"], g.nodes["broker"]["role"]
(4, 'broker')
"""

from __future__ import annotations

import networkx as nx

#: Mean processing time per request for each service.
SERVICE_TIMES = {
    "orders": "2ms",
    "payments": "5ms",
    "inventory": "1ms",
    "shipping": "3ms",
    "users": "0.5ms",
    "catalog": "1ms",
    "search": "4ms",
    "notifications": "0.5ms",
}


def _lognormal(mean: str, cv: float) -> dict[str, object]:
    return {"dist": "lognormal", "mean": mean, "cv": cv}


def build(
    replicas: int = 1,
    clients: int = 2,
    services: tuple[str, ...] = tuple(SERVICE_TIMES),
    servers: int = 4,
    broker_servers: int = 8,
    mesh_latency: str = "100us",
    client_latency: str = "5ms",
    bandwidth: str = "10Gbps",
    brokers: int = 1,
) -> nx.Graph:
    """Build the mesh.

    Parameters
    ----------
    replicas : int
        Instances of each service.
    clients : int
        External clients in front of the gateway.
    services : tuple of str
        Which services to include (names from ``SERVICE_TIMES``; others get 1 ms).
    servers : int
        Worker threads per service instance.
    broker_servers : int
        Worker threads of the broker.
    mesh_latency, client_latency : str
        Mean one-way latency inside the cluster and between clients and the gateway.
    bandwidth : str
        In-cluster link bandwidth.
    brokers : int
        Broker nodes (role ``broker``): ``broker``, then ``broker-1``, ``broker-2`` ... (a replicated
        broker's or a log's cluster), each one hop from ``mesh``.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, not {replicas}")
    g = nx.Graph(name="microservice_mesh")
    inside = {"latency": _lognormal(mesh_latency, 0.3), "bandwidth": bandwidth}
    g.add_node("gateway", role="gateway", servers=servers, service={"dist": "exponential", "mean": "0.2ms"})
    g.add_node("mesh", role="switch")
    g.add_edge("gateway", "mesh", **inside)
    for i in range(clients):
        g.add_node(f"client{i}", role="client")
        g.add_edge(f"client{i}", "gateway", latency=_lognormal(client_latency, 0.2))
    for name in services:
        mean = SERVICE_TIMES.get(name, "1ms")
        for k in range(replicas):
            node = f"{name}-{k}"
            g.add_node(
                node, role="service", app=name, servers=servers, service={"dist": "exponential", "mean": mean}
            )
            g.add_edge("mesh", node, **inside)
    if brokers < 1:
        raise ValueError(f"brokers must be >= 1, not {brokers}")
    for b in range(brokers):
        name = f"broker-{b}" if b else "broker"
        g.add_node(
            name, role="broker", servers=broker_servers, service={"dist": "exponential", "mean": "0.1ms"}
        )
        g.add_edge("mesh", name, **inside)
    return g
