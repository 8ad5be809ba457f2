"""Links, their state, and hop-by-hop delivery.

A hop is one scheduled SimPy event with a callback — no process per message or hop. A link's FIFO
serialization is arithmetic: ``depart = max(now, free_at) + size / bandwidth``; ``arrive = depart +
latency``. Next hops come from :mod:`sim.model.routing` (shortest-path tables per destination, computed on
demand, bounded in memory), dropped whenever a link or node changes state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import networkx as nx

from sim.core.context import SimContext
from sim.core.message import Message
from sim.core.scheduling import NORMAL, queued
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


class Network(Routing):
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
        self.endpoints: dict[str, Endpoint] = {}
        self.cut_through = False
        """Take a message's hops over plain links (unbounded bandwidth, no impairment) in one event. Only
        valid while no link or node changes state: ``build`` turns it on for runs without faults or trace,
        and any state change turns it off for good (messages already under way keep their single event)."""
        Routing.__init__(self, graph, links, max_hops=max_hops, route_memory=route_memory)
        self._arrive_cb: tuple[Callable[[Any], None]] = (self._arrive,)
        self._receive_cb: dict[str, tuple[Callable[[Any], None]]] = {}  # node -> (its endpoint's receive,)

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
        self.partitioned = True
        self._invalidate()
        return cut

    def heal(self) -> None:
        """Remove every partition cut (links taken down by ``link_down`` stay down)."""
        for link in self.links.values():
            if link.cut:
                link.cut = False
                link.refresh()
        self.partitioned = False
        self._invalidate()

    def set_node_up(self, node_id: str, up: bool) -> None:
        """Mark a node down (no transit through it) or up again; routes are recomputed."""
        if up:
            self.down_nodes.discard(node_id)
        else:
            self.down_nodes.add(node_id)
        self._invalidate()

    def _invalidate(self) -> None:
        if self.cut_through:
            # messages under way that were to be handed straight to their endpoint arrive through the usual
            # checks again (link up, node up), now that state can change
            arrive = self._arrive_cb
            for event in queued(self.env):  # a message in flight is an event
                if type(event) is Message and event.callbacks is not arrive:
                    event.callbacks = arrive
        self.cut_through = False  # from now on, hops are taken one event at a time (see ``cut_through``)
        self._drop_routes()

    # -- the hot path ----------------------------------------------------------------------------
    def send(self, msg: Message, here: str | None = None) -> None:
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
        if self.cut_through:
            path = self._paths.get((here, dst))
            if path is None:
                path = self._path(here, dst)
            if path and msg.hops + len(path) <= self.max_hops:
                # the whole run of plain hops in one event: no state can change before the message gets there
                ahead = 0.0
                taken = 0
                for link in path:
                    taken += 1
                    link.transmissions += 1
                    try:
                        delay = next(link.outcomes)
                    except StopIteration:
                        delay = link.refill()
                    if delay < 0.0:
                        msg.hops += taken
                        self.ctx.drop(msg, "loss", link.u)
                        self._account(msg, taken)
                        return
                    ahead += delay
                msg.hops += taken
                msg.link = link
                env = self.env
                # a path that ends at the destination hands the message straight to its endpoint on arrival:
                # nothing changes state in a cut-through run (the first change restores the checks, see
                # ``_invalidate``)
                msg.callbacks = (
                    self._receive_cb.get(dst, self._arrive_cb)
                    if link.v == dst and self.ctx.trace is None  # a trace records the arrival in _hand_over
                    else self._arrive_cb
                )
                env.schedule(msg, NORMAL, ahead)  # type: ignore[arg-type]
                self._account(msg, taken)
                return
        ctx = self.ctx
        env = self.env
        now = env.now
        trace = ctx.trace
        table = self._routes.get(dst)
        if table is None:
            table = self._tree(dst)
        hop = table.get(here) or self._fill(table, dst, here)
        if hop is None:
            ctx.drop(msg, self._no_route_reason(here, dst), here)
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
            delay, lost = self._slow_hop(msg, link, delay, lost, now)
        if trace is not None:
            trace.append((now, "hop", msg.id, here, link.v))
        if lost:
            ctx.drop(msg, "loss", here)
        else:
            msg.link = link
            msg.callbacks = self._arrive_cb
            env.schedule(msg, NORMAL, delay)  # type: ignore[arg-type]
        self._account(msg, 1)

    def _account(self, msg: Message, taken: int) -> None:
        """The ledger's share of ``taken`` link transmissions of ``msg``."""
        ledger = self.ctx.ledger
        ob = msg.ob
        nbytes = taken * msg.size
        if msg.control:
            ledger.control_transmissions += taken
            ledger.control_bytes += nbytes
            if ob >= 0:  # type: ignore[operator]  # control carries one row
                ledger.control[ob] += taken  # type: ignore[index]
                ledger.control_bytes_row[ob] += nbytes  # type: ignore[index]
            else:
                ledger.control_unattributed += taken
                ledger.control_bytes_unattributed += nbytes
        else:
            if type(ob) is int:
                ledger.transmissions[ob] += taken
                ledger.bytes[ob] += nbytes
            elif ob:  # a shared transmission (a publish to a topic) is attributed to its first row
                ledger.transmissions[ob[0]] += taken  # type: ignore[index]
                ledger.bytes[ob[0]] += nbytes  # type: ignore[index]
            ledger.data_transmissions += taken
            ledger.data_bytes += nbytes

    def _slow_hop(self, msg: Message, link: Link, delay: float, lost: bool, now: float) -> tuple[float, bool]:
        """A hop over a link with serialization or impairments: the delay until arrival (queueing at the
        link included) and whether the transmission is lost. ``delay`` and ``lost`` are the link's own
        outcome; ``now`` is when the message reaches the link."""
        stream = (link.fault_stream or link.make_fault_stream()) if link.impaired else None
        if stream is not None:
            delay = link.impaired_delay(delay, stream)
            lost = link.impaired_loss(stream, lost)
        if link.bandwidth != math.inf:
            free = link.free_at
            depart = (free if free > now else now) + msg.size / link.bandwidth
            link.free_at = depart
            delay += depart - now
        if stream is not None and not lost and link.duplicate and stream.random() < link.duplicate:
            twin = msg.copy()
            twin.hops, twin.link, twin.callbacks = msg.hops, link, self._arrive_cb
            self.env.schedule(twin, NORMAL, delay)  # type: ignore[arg-type]
        return delay, lost

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
