"""Routes: next-hop tables per destination, computed on demand and bounded in memory.

A destination's table comes from one Dijkstra run (scipy's ``csgraph.dijkstra``, on mean latency plus a tiny
per-hop penalty) over the links that are up, between nodes that are up; it maps a node to its next-hop link
and is filled per node on first use. The network (:class:`sim.model.network.Network`) owns one
:class:`Routing` and drops every table whenever a link or node changes state.
"""

from __future__ import annotations

import math
from array import array

import networkx as nx
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from sim.model.link import Link

__all__ = ["ROUTE_MEMORY", "Routing"]

ROUTE_MEMORY = 256 * 2**20
"""Default bound, in bytes, on the routing state a network keeps (route tables and cut-through paths)."""


class Routing:
    """Route tables over ``links`` (``(u, v) -> Link``) of ``graph``, keeping at most ``route_memory`` bytes.

    A destination's routes cost a predecessor entry (4 bytes) and at most one table entry (~100 bytes) per
    node: the tables of as many destinations as fit are kept, the one computed longest ago evicted first.
    ``tables`` and ``down_nodes`` are only ever changed in place, so the network's hot path may hold them.
    """

    def __init__(
        self,
        graph: nx.Graph[str],
        links: dict[tuple[str, str], Link],
        *,
        max_hops: int = 64,
        route_memory: int = ROUTE_MEMORY,
    ) -> None:
        self.graph = graph
        self.links = links
        self.max_hops = max_hops
        self.down_nodes: set[str] = set()
        self.partitioned = False
        self.tables: dict[str, dict[str, Link]] = {}
        """destination -> (node -> next-hop link), filled on first use (:meth:`tree`, :meth:`fill`)."""
        self._names: list[str] = list(graph.nodes)
        self._index = {n: i for i, n in enumerate(self._names)}
        self._costs: csr_matrix | None = None
        self._preds: dict[str, array[int]] = {}
        self.max_trees = max(16, route_memory // (104 * max(1, len(self._names))))
        self._out_index: dict[str, dict[int, Link]] = {}
        for (u, v), link in links.items():
            self._out_index.setdefault(u, {})[self._index[v]] = link

    def drop(self) -> None:
        """Forget every table (after a change of state)."""
        self.tables.clear()
        self._preds.clear()
        self._costs = None

    def _matrix(self) -> csr_matrix:
        """Costs of the links that are up, between nodes that are up, as a sparse matrix (cached)."""
        if self._costs is None:
            index, down = self._index, self.down_nodes
            rows, cols, data = [], [], []
            for (u, v), link in self.links.items():
                if link.up and u not in down and v not in down:
                    rows.append(index[u])
                    cols.append(index[v])
                    data.append(link.cost)
            n = len(self._names)
            # transposed: searching from the destination over reversed links
            self._costs = csr_matrix((data, (cols, rows)), shape=(n, n))
        return self._costs

    def tree(self, dst: str) -> dict[str, Link]:
        """The route table toward ``dst``: next-hop links, filled per node on first use.

        One Dijkstra run (on mean latency) per destination gives the predecessor array; the table maps
        a node to its next-hop link and is filled lazily, so a destination costs O(nodes it serves).
        """
        routes, preds = self.tables, self._preds
        if len(routes) >= self.max_trees:  # bounded: forget the destination computed longest ago
            oldest = next(iter(routes))
            del routes[oldest], preds[oldest]
        _, pred = dijkstra(self._matrix(), directed=True, indices=self._index[dst], return_predecessors=True)
        preds[dst] = array(
            "i", pred.astype("int32").tobytes()
        )  # 4 bytes a node; cheap to index, unlike numpy
        table: dict[str, Link] = {}
        routes[dst] = table
        return table

    def no_route_reason(self, here: str, dst: str) -> str:
        """Why there is no route: the destination is down, a partition separates the two (a route exists
        once the cuts heal), or nothing connects them (``unroutable``)."""
        if dst in self.down_nodes:
            return "node_down"
        if self.partitioned:
            index, down = self._index, self.down_nodes
            rows, cols = [], []
            for (u, v), link in self.links.items():
                if not link.admin_down and u not in down and v not in down:
                    rows.append(index[u])
                    cols.append(index[v])
            n = len(self._names)
            uncut = csr_matrix(([1.0] * len(rows), (rows, cols)), shape=(n, n))
            dist = dijkstra(uncut, directed=True, indices=index[here], unweighted=True)
            if math.isfinite(dist[index[dst]]):
                return "partition"
        return "unroutable"

    def fill(self, table: dict[str, Link], dst: str, here: str) -> Link | None:
        p = self._preds[dst][self._index[here]]
        if p < 0:
            return None
        link = table[here] = self._out_index[here][p]
        return link

    def next_hop(self, here: str, dst: str) -> str | None:
        """The next node on the current route from ``here`` to ``dst`` (None if unreachable)."""
        table = self.tables.get(dst)
        if table is None:
            table = self.tree(dst)
        link = table.get(here) or self.fill(table, dst, here)
        return None if link is None else link.v

    def route(self, src: str, dst: str) -> list[str]:
        """The current route as a node list (empty if there is none)."""
        path = [src]
        while path[-1] != dst:
            nxt = self.next_hop(path[-1], dst)
            if nxt is None or len(path) > self.max_hops:
                return []
            path.append(nxt)
        return path
