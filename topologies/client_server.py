"""A client and a server on one link: the smallest request/reply (or producer/consumer) setup.

Only the server does modelled processing (``service``), so a request's round trip is the link both ways plus
the server's sojourn — which makes it the topology of the request/reply validation case (an M/M/1 server).

    >>> g = build(service={"dist": "exponential", "mean": "10ms"})
    >>> sorted(g.nodes), g.nodes["server"]["role"], g.nodes["client"].get("service")
    (['client', 'server'], 'server', None)
"""

from __future__ import annotations

import networkx as nx


def build(latency: object = "1ms", service: object = None, servers: int = 1) -> nx.Graph:
    """Build the pair.

    Parameters
    ----------
    latency : duration or distribution table
        One-way latency of the link (default 1 ms).
    service : duration or distribution table, optional
        The server's processing time per message (default none).
    servers : int
        The server's parallel workers.
    """
    g = nx.Graph(name="client_server")
    g.add_node("client", role="client")
    g.add_node("server", role="server", servers=servers, service=service)
    g.add_edge("client", "server", latency=latency)
    return g
