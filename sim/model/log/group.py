"""A consumer group's coordinator: membership, the assignment of partitions, rebalances, committed offsets.

- **Membership.** The group's members are the consumer nodes; all join at the start. A member's crash is
  noticed ``session_timeout`` after its last crash (unless it is back by then); a member that recovers joins
  again at once. Either way the group rebalances: each live member first commits what it has
  (:attr:`Group.revoke`), then the partitions are dealt round-robin over the live members in their order
  (partition ``p`` to member ``p mod n``), a new generation.
- **Offsets.** A member commits a partition's offset (the next record to read) for the generation it was
  given the partition in; a commit from an older generation, or for a partition it no longer holds, is
  ignored.

The coordinator's state is not a broker's: membership and commits take no network messages and survive
every crash (a simplification, see docs/patterns.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sim.core.context import SimContext

__all__ = ["Group"]

Assign = Callable[[int, tuple[int, ...]], None]
"""``assign(generation, partitions)``: a member's new share."""


class Group:
    """The coordinator of the group ``name`` of ``members`` over ``partitions`` partitions.

    Parameters
    ----------
    ctx : SimContext
    name : str
    members : sequence of str
        The consumer nodes, in assignment order.
    partitions : int
    session_timeout : float
        Seconds until a crashed member is noticed.
    """

    def __init__(
        self, ctx: SimContext, name: str, members: Sequence[str], partitions: int, session_timeout: float
    ) -> None:
        self.ctx = ctx
        self.name = name
        self.members = tuple(dict.fromkeys(members))
        self.partitions = partitions
        self.session_timeout = session_timeout
        self.live: set[str] = set(self.members)
        self.generation = 0
        self.assignment: dict[str, tuple[int, ...]] = {}
        self.committed: dict[int, int] = {}
        self.rebalances = 0
        self.assign: dict[str, Assign] = {}
        """Per member, how it is told its share."""
        self.revoke: dict[str, Callable[[], None]] = {}
        """Per member, its commit before a rebalance takes its partitions away."""
        self.is_up: Callable[[str], bool] = lambda member: True
        self._crashes: dict[str, int] = {}

    def start(self) -> None:
        """The first assignment (generation 1; not counted as a rebalance)."""
        self._deal()

    def owner(self, partition: int) -> str | None:
        for member, parts in self.assignment.items():
            if partition in parts:
                return member
        return None

    def commit(self, member: str, generation: int, partition: int, offset: int) -> bool:
        """Commit ``offset`` for ``partition``; False (ignored) if ``member`` does not hold it in
        ``generation``."""
        if generation != self.generation or partition not in self.assignment.get(member, ()):
            return False
        self.committed[partition] = offset
        return True

    def crashed(self, member: str) -> None:
        """``member`` crashed: noticed ``session_timeout`` later, unless it is up again by then (the timeout
        runs from its last crash)."""
        token = self._crashes[member] = self._crashes.get(member, 0) + 1
        self.ctx.call_later(self.session_timeout, self._expire, (member, token))

    def _expire(self, event: Any) -> None:
        member, token = event._value
        if token != self._crashes[member]:
            return  # it crashed again since: that crash's timer counts
        if member in self.live and not self.is_up(member):
            self.live.discard(member)
            self.rebalance()

    def joined(self, member: str) -> None:
        """``member`` (re)joins: a rebalance."""
        self.live.add(member)
        self.rebalance()

    def rebalance(self) -> None:
        self.rebalances += 1
        for member in self.members:
            if member in self.live and self.is_up(member) and member in self.revoke:
                self.revoke[member]()
        self._deal()

    def _deal(self) -> None:
        live = [m for m in self.members if m in self.live]
        self.generation += 1
        shares: dict[str, list[int]] = {m: [] for m in live}
        if live:
            for p in range(self.partitions):
                shares[live[p % len(live)]].append(p)
        self.assignment = {m: tuple(ps) for m, ps in shares.items()}
        for member in live:
            if member in self.assign:
                self.assign[member](self.generation, self.assignment[member])
