"""Cut-through: the fast variant of hop-by-hop delivery, which changes no number.

While no link or node has changed state, a message's run of *plain* links toward its destination (unbounded
bandwidth, no impairment) is taken in one event: at the send, each link of the run draws its outcome (the
link's next delay, or a loss) and counts its transmission, and the message is scheduled once, at its arrival
at the end of the run. A hop-by-hop delivery would make the same draws in a different order (a link's draw
when the message reaches it, interleaved with other messages), so the two variants are not interchangeable
within a run; every run therefore uses cut-through from its start, traced or not, and stops it for good at
the first change of state (a link or node going down or up, a partition, a link impairment starting or
ending). Hence:

- the same run gives the same ledger with ``trace`` on or off (a trace records each hop of a run at the
  time the message reaches it, computed at the send);
- a fault schedule whose first action is at time T leaves every obligation settled before T exactly as in
  the fault-free run (actions that change no link or node state, such as a pause, do not stop cut-through).

When it stops, every message under way goes back to the network's checks: one carried over several links
goes back to the end of the link it is on, and travels hop by hop from there, so that a node or link that
fails ahead of it stops it (:meth:`CutThrough.stop`). A loss drawn for a later link of a run is applied at the
send, as in any cut-through run. Paths are cached per (node, destination); the cache starts over when full.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

from sim.core.message import Message
from sim.core.scheduling import NORMAL, heap, queued, reschedule
from sim.model.link import Link
from sim.model.routing import Routing

if TYPE_CHECKING:
    from sim.core.context import SimContext

__all__ = ["CutThrough"]


class CutThrough:
    """Runs of plain links taken in one event, for the network of ``routing`` (see the module's text).

    ``arrive`` is the network's arrival callback (one-element tuple) and ``receive`` maps a node to its
    endpoint's ``receive`` (same form), for runs that end at the destination; ``hop`` sends hop by hop
    (where there is no run to take) and ``hand_over`` gives a message to the endpoint it is at.
    """

    __slots__ = (
        "_arrive",
        "_ctx",
        "_event_ids",
        "_hand_over",
        "_heap",
        "_hop",
        "_max_hops",
        "_paths",
        "_receive",
        "_record",
        "_remember",
        "_routing",
        "max_paths",
    )

    def __init__(
        self,
        ctx: SimContext,
        routing: Routing,
        arrive: tuple[Callable[[Any], None]],
        receive: dict[str, tuple[Callable[[Any], None]]],
        hop: Callable[[Message, str], None],
        hand_over: Callable[[Message, str], None],
        *,
        max_paths: int,
    ) -> None:
        self._ctx = ctx
        self._routing = routing
        self._arrive = arrive
        self._receive = receive
        self._hop = hop
        self._hand_over = hand_over
        self._heap, self._event_ids = heap(ctx.env)  # trick 2 of sim.core.scheduling
        self._paths: dict[tuple[str, str], tuple[Link, ...]] = {}
        self._max_hops = routing.max_hops
        self.max_paths = max_paths
        self._record = True
        self.remember = True

    @property
    def remember(self) -> bool:
        """Keep each multi-link run's arrival times, so that :meth:`stop` can bring its message back to the
        link it is on. ``build`` turns it off when no fault is planned: a change made from outside then lets a
        message already on a multi-link run finish it, as if the run were one link."""
        return self._remember

    @remember.setter
    def remember(self, on: bool) -> None:
        self._remember = bool(on)
        self._record = self._remember or self._ctx.trace is not None

    def __len__(self) -> int:
        """Paths cached."""
        return len(self._paths)

    def path(self, here: str, dst: str) -> tuple[Link, ...]:
        """The links from ``here`` toward ``dst`` up to the first that is not plain (or has no route),
        cached per pair (bounded: the cache starts over when full)."""
        path = self._paths.get((here, dst))
        if path is None:
            path = self._find(here, dst)
        return path

    def _find(self, here: str, dst: str) -> tuple[Link, ...]:
        """:meth:`path` for a pair not in the cache."""
        routing = self._routing
        table = routing.tables.get(dst)
        if table is None:
            table = routing.tree(dst)
        links: list[Link] = []
        at = here
        max_hops = self._max_hops
        while at != dst and len(links) <= max_hops:
            link = table.get(at) or routing.fill(table, dst, at)
            if link is None or not link.plain:
                break
            links.append(link)
            at = link.v
        if len(self._paths) >= self.max_paths:
            self._paths.clear()
        path = self._paths[(here, dst)] = tuple(links)
        return path

    def send(self, msg: Message, here: str | None = None) -> None:
        """The network's ``send`` while cut-through is on: ``msg`` goes from ``msg.src`` (or ``here``) over
        the run of plain links toward its destination in one event, or hop by hop where there is no such run
        or it would exceed the hop limit."""
        if here is None:
            here = msg.src
        dst = msg.dst
        if here == dst:
            self._hand_over(msg, here)
            return
        path = self._paths.get((here, dst))
        if path is None:
            path = self._find(here, dst)
        n = len(path)
        if not n or msg.hops + n > self._max_hops:
            self._hop(msg, here)
            return
        ctx = self._ctx
        if self._record:  # a trace to write, or a run's arrival times to remember (for ``stop``)
            ahead = self._carry_recorded(msg, path, ctx)
            if ahead < 0.0:
                return
            link = path[-1]
        else:  # the hot path: nothing to record
            ahead = 0.0
            for link in path:
                link.transmissions += 1
                try:
                    delay = next(link.outcomes)
                except StopIteration:
                    delay = link.refill()
                if delay < 0.0:
                    taken = path.index(link) + 1  # a path's links are distinct
                    msg.hops += taken
                    ctx.drop(msg, "loss", link.u)
                    ctx.ledger.charge(msg.ob, msg.size, taken, msg.control)
                    return
                ahead += delay
            msg.hops += n
        msg.link = link
        # a run that ends at the destination hands the message straight to its endpoint on arrival; a trace
        # records the arrival through the network's checks (which nothing can fail before ``stop``)
        msg.callbacks = (
            self._receive.get(dst, self._arrive) if link.v == dst and ctx.trace is None else self._arrive
        )
        heappush(self._heap, (ctx.env.now + ahead, NORMAL, next(self._event_ids), msg))  # tricks 1 and 2
        ctx.ledger.charge(msg.ob, msg.size, n, msg.control)

    def _carry_recorded(self, msg: Message, path: tuple[Link, ...], ctx: SimContext) -> float:
        """:meth:`send`'s run over ``path`` when it records: each hop in the trace, at the time the message
        reaches it, and (with :attr:`remember`, for a run of several links) the arrival times at the end of
        each link. Returns the run's delay, or -1 when a link lost the message (dropped and charged)."""
        trace = ctx.trace
        now = ctx.env.now
        ahead = 0.0
        taken = 0
        # when the message reaches the end of each link, from now (for ``stop``, if it can happen)
        ends: list[float] | None = [] if self.remember and len(path) > 1 else None
        for link in path:
            taken += 1
            link.transmissions += 1
            if trace is not None:
                trace.append((now + ahead, "hop", msg.id, link.u, link.v))
            try:
                delay = next(link.outcomes)
            except StopIteration:
                delay = link.refill()
            if delay < 0.0:
                msg.hops += taken
                ctx.drop(msg, "loss", link.u, now + ahead)
                ctx.ledger.charge(msg.ob, msg.size, taken, msg.control)
                return -1.0
            ahead += delay
            if ends is not None:
                ends.append(ahead)
        msg.hops += taken
        msg.run = None if ends is None else (path, now, ends)
        return ahead

    def stop(self) -> None:
        """State can change from now on: forget the paths, and bring every message under way back to the
        network's checks. A message carried over several links in one event goes back to the end of the link
        it is on now (its event moves there; trick 4 of :mod:`sim.core.scheduling`): from there it travels
        hop by hop, so a node or link that fails ahead of it stops it. The links it will no longer take in
        one go are given back (their transmissions, its hop count, the ledger's charge, their trace records);
        their outcomes were drawn at the send and are not reused."""
        self._paths.clear()
        ctx, arrive = self._ctx, self._arrive
        now = ctx.env.now
        moves: dict[Message, float] = {}
        stale: Counter[tuple[float, str, int, str, str]] = Counter()
        for at, event in queued(ctx.env):
            if type(event) is not Message:
                continue
            run = event.run
            if run is not None:
                event.run = None
                path, start, ends = run
                if start + ends[-1] == at:  # the event is this run's arrival
                    k = next(i for i, end in enumerate(ends) if start + end >= now)
                    skipped = path[k + 1 :]
                    if skipped:
                        for link in skipped:
                            link.transmissions -= 1
                        event.hops -= len(skipped)
                        ctx.ledger.charge(event.ob, event.size, -len(skipped), event.control)
                        event.link = path[k]
                        moves[event] = start + ends[k]
                        for i in range(k + 1, len(path)):
                            stale[(start + ends[i - 1], "hop", event.id, path[i].u, path[i].v)] += 1
            if event.callbacks is not arrive:
                event.callbacks = arrive
        if moves:
            reschedule(ctx.env, moves)
        if stale and ctx.trace is not None:
            kept = []
            for record in ctx.trace:
                if stale[record] > 0:
                    stale[record] -= 1
                else:
                    kept.append(record)
            ctx.trace[:] = kept
