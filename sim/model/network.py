"""The network: links, their state, and hop-by-hop delivery of messages between endpoints.

A hop is one scheduled SimPy event with a callback — no process per message or hop. A link's FIFO
serialization is arithmetic: ``depart = max(now, free_at) + size / bandwidth``; ``arrive = depart +
latency``. Next hops come from :mod:`sim.model.routing` (shortest-path tables per destination, computed on
demand, bounded in memory), dropped whenever a link or node changes state. Until the first change of state,
runs of plain links are taken in one event (:mod:`sim.model.cut_through`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heappush
from typing import Any, Protocol

import networkx as nx

from sim.core.context import SimContext
from sim.core.message import Message
from sim.core.scheduling import NORMAL, heap
from sim.model.cut_through import CutThrough
from sim.model.link import Link, LinkStatistics
from sim.model.routing import ROUTE_MEMORY, Routing

__all__ = [
    "ROUTE_MEMORY",
    "Endpoint",
    "Link",
    "LinkStatistics",
    "Network",
]  # re-exported: Link(Statistics), ROUTE_MEMORY


class Endpoint(Protocol):
    """What the network hands arriving messages to (a :class:`sim.model.node.Node`)."""

    def receive(self, msg: Message) -> None: ...


class Network:
    """The topology's links and the hop-by-hop delivery of messages between endpoints.

    Build it with :meth:`from_graph`; attach endpoints (nodes) with :meth:`attach`.
    """

    def __init__(
        self,
        ctx: SimContext,
        graph: nx.Graph[str],
        links: dict[tuple[str, str], Link],
        *,
        max_hops: int = 64,
        route_memory: int = ROUTE_MEMORY,
    ) -> None:
        self.ctx = ctx
        self.env = ctx.env
        self.graph = graph
        self.links = links
        self.max_hops = max_hops
        self.endpoints: dict[str, Endpoint] = {}
        self.routing = Routing(graph, links, max_hops=max_hops, route_memory=route_memory)
        self.down_nodes = self.routing.down_nodes  # the same set: routing avoids these nodes
        self._tables = self.routing.tables  # the same dict, read on every hop
        self._heap, self._event_ids = heap(ctx.env)  # trick 2 of sim.core.scheduling
        self._arrive_cb: tuple[Callable[[Any], None]] = (self._arrive,)
        self._receive_cb: dict[str, tuple[Callable[[Any], None]]] = {}  # node -> (its endpoint's receive,)
        self.fast = CutThrough(
            ctx,
            self.routing,
            self._arrive_cb,
            self._receive_cb,
            self.hop,
            self._hand_over,
            max_paths=max(1024, route_memory // 400),
        )
        self._cut_through = False
        self.send: Callable[..., None] = self.hop
        """``send(msg, here=None)`` injects ``msg`` at ``msg.src`` (or goes on from ``here``) toward
        ``msg.dst``: :meth:`hop` (hop by hop), or :meth:`sim.model.cut_through.CutThrough.send` while
        :attr:`cut_through` is on (one call either way)."""
        for link in links.values():
            link.on_change = self._link_changed

    @classmethod
    def from_graph(
        cls, ctx: SimContext, graph: nx.Graph[str], *, max_hops: int = 64, route_memory: int = ROUTE_MEMORY
    ) -> Network:
        """Links for every edge of a normalized graph (both directions when it is undirected)."""
        links: dict[tuple[str, str], Link] = {}
        directed = graph.is_directed()
        for u, v, data in graph.edges(data=True):
            pairs = [(u, v)] if directed else [(u, v), (v, u)]
            for a, b in pairs:
                links[(a, b)] = Link(
                    a, b, data["latency"], float(data["loss"]), float(data["bandwidth"]), ctx.rng
                )
        return cls(ctx, graph, links, max_hops=max_hops, route_memory=route_memory)

    # -- wiring and state ----------------------------------------------------------------------
    def attach(self, node_id: str, endpoint: Endpoint) -> None:
        """Arrivals for ``node_id`` go to ``endpoint.receive``."""
        if node_id not in self.graph:
            raise KeyError(node_id)
        self.endpoints[node_id] = endpoint
        self._receive_cb[node_id] = (endpoint.receive,)

    def link(self, u: str, v: str) -> Link:
        """The directed link ``u -> v``."""
        return self.links[(u, v)]

    def edge_links(self, u: str, v: str) -> Iterator[Link]:
        """Both directions of an undirected edge (one for a directed graph)."""
        for key in ((u, v), (v, u)):
            if key in self.links:
                yield self.links[key]

    def set_link_up(self, u: str, v: str, up: bool, *, both: bool = True) -> None:
        """Bring ``u -> v`` (and ``v -> u`` when ``both``) down or up; routes are recomputed."""
        targets = list(self.edge_links(u, v)) if both else [self.links[(u, v)]]
        for link in targets:
            link.admin_down = not up
            link.refresh()
        self._invalidate()

    def partition(self, groups: list[list[str]], *, one_way: bool = False) -> list[Link]:
        """Cut every link between different groups; nodes in no group form one more group.

        With ``one_way``, only links from a group to a later one are cut (``groups[0]`` cannot reach
        ``groups[1]``, which still reaches it). Returns the links cut.
        """
        where = {n: i for i, group in enumerate(groups) for n in group}
        rest = len(groups)
        cut = []
        for (u, v), link in self.links.items():
            gu, gv = where.get(u, rest), where.get(v, rest)
            if gu != gv and (not one_way or gu < gv):
                link.cut = True
                link.refresh()
                cut.append(link)
        self.routing.partitioned = True
        self._invalidate()
        return cut

    def heal(self) -> None:
        """Remove every partition cut (links taken down by ``link_down`` stay down)."""
        for link in self.links.values():
            if link.cut:
                link.cut = False
                link.refresh()
        self.routing.partitioned = False
        self._invalidate()

    def set_node_up(self, node_id: str, up: bool) -> None:
        """Mark a node down (no transit through it) or up again; routes are recomputed."""
        if up:
            self.down_nodes.discard(node_id)
        else:
            self.down_nodes.add(node_id)
        self._invalidate()

    @property
    def cut_through(self) -> bool:
        """Take runs of plain links in one event (:mod:`sim.model.cut_through`). ``build`` turns it on for
        every run; the first change of a link's or node's state turns it off for good."""
        return self._cut_through

    @cut_through.setter
    def cut_through(self, on: bool) -> None:
        self._cut_through = bool(on)
        self.send = self.fast.send if on else self.hop

    @property
    def partitioned(self) -> bool:
        """Whether a partition is in force."""
        return self.routing.partitioned

    def next_hop(self, here: str, dst: str) -> str | None:
        """The next node on the current route from ``here`` to ``dst`` (None if unreachable)."""
        return self.routing.next_hop(here, dst)

    def route(self, src: str, dst: str) -> list[str]:
        """The current route as a node list (empty if there is none)."""
        return self.routing.route(src, dst)

    def _link_changed(self) -> None:
        """A link's state changed (``Link.refresh``): impairments do not reroute, but cut-through stops."""
        if self.cut_through:
            self.cut_through = False
            self.fast.stop()

    def _invalidate(self) -> None:
        """A link or node went down or up: cut-through stops for good and every route is recomputed."""
        self._link_changed()
        self.routing.drop()

    # -- the hot path ----------------------------------------------------------------------------
    def hop(self, msg: Message, here: str | None = None) -> None:
        """Inject ``msg`` at ``msg.src`` (or go on from ``here``); it travels hop by hop to ``msg.dst``.

        A message in flight is its own SimPy event: it goes onto the event queue with ``callbacks`` set to
        the network's arrival callback, which saves an event object per hop.
        """
        if here is None:
            here = msg.src
        dst = msg.dst
        if here == dst:
            self._hand_over(msg, here)
            return
        ctx = self.ctx
        now = self.env.now
        trace = ctx.trace
        table = self._tables.get(dst)
        if table is None:
            table = self.routing.tree(dst)
        hop = table.get(here) or self.routing.fill(table, dst, here)
        if hop is None:
            ctx.drop(msg, self.routing.no_route_reason(here, dst), here)
            return
        link = hop
        hops = msg.hops + 1
        if hops > self.max_hops:
            ctx.drop(msg, "ttl", here)
            return
        msg.hops = hops
        link.transmissions += 1
        try:
            delay = next(link.outcomes)
        except StopIteration:
            delay = link.refill()
        lost = delay < 0.0
        if lost:
            delay = -1.0 - delay
        if not link.plain:
            delay, lost, twin = link.slow_hop(delay, lost, msg.size, now)
            if twin:
                self._duplicate(msg, link, delay)
        if trace is not None:
            trace.append((now, "hop", msg.id, here, link.v))
        if lost:
            ctx.drop(msg, "loss", here)
        else:
            msg.link = link
            msg.callbacks = self._arrive_cb
            heappush(self._heap, (now + delay, NORMAL, next(self._event_ids), msg))
        ctx.ledger.charge(msg.ob, msg.size, 1, msg.control)

    def _duplicate(self, msg: Message, link: Link, delay: float) -> None:
        """A duplicating link delivers a second copy of ``msg`` after the same ``delay``."""
        twin = msg.copy()
        twin.hops, twin.link, twin.callbacks = msg.hops, link, self._arrive_cb
        self.env.schedule(twin, NORMAL, delay)  # type: ignore[arg-type]

    def _arrive(self, msg: Message) -> None:
        link: Link = msg.link
        if not link.up:
            self.ctx.drop(msg, link.down_reason, link.v)
            return
        here = link.v
        if here in self.down_nodes:
            self.ctx.drop(msg, "node_down", here)
            return
        if here != msg.dst:
            self.send(msg, here)
        else:
            endpoint = self.endpoints.get(here)
            if endpoint is not None and self.ctx.trace is None:
                endpoint.receive(msg)
            else:
                self._hand_over(msg, here)

    def _hand_over(self, msg: Message, here: str) -> None:
        endpoint = self.endpoints.get(here)
        if endpoint is None:
            self.ctx.drop(msg, "no_handler", here)
        else:
            if self.ctx.trace is not None:
                self.ctx.trace.append((self.ctx.env.now, "arrive", msg.id, here, ""))
            endpoint.receive(msg)
