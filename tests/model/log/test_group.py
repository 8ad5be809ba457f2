"""The consumer group's coordinator: round-robin shares, rebalances after the session timeout and on a
join, commits only from the current holder."""

from __future__ import annotations

from sim.core.context import SimContext
from sim.model.log.group import Group


class Members:
    def __init__(self, ctx: SimContext, names: tuple[str, ...], partitions: int) -> None:
        self.group = Group(ctx, "g", names, partitions, session_timeout=0.5)
        self.up = dict.fromkeys(names, True)
        self.shares: list[tuple[float, str, int, tuple[int, ...]]] = []
        self.revoked: list[str] = []
        self.group.is_up = lambda m: self.up[m]
        for name in names:
            self.group.assign[name] = lambda gen, parts, name=name: self.shares.append(
                (ctx.env.now, name, gen, parts)
            )
            self.group.revoke[name] = lambda name=name: self.revoked.append(name)


def test_partitions_are_dealt_round_robin_over_the_live_members(ctx: SimContext) -> None:
    m = Members(ctx, ("a", "b", "c"), 5)
    m.group.start()
    assert m.shares == [(0.0, "a", 1, (0, 3)), (0.0, "b", 1, (1, 4)), (0.0, "c", 1, (2,))]
    assert m.group.rebalances == 0 and m.revoked == []


def test_a_crash_is_noticed_after_the_session_timeout_and_a_return_at_once(ctx: SimContext) -> None:
    m = Members(ctx, ("a", "b"), 4)
    m.group.start()
    m.shares.clear()
    m.up["b"] = False
    m.group.crashed("b")
    ctx.env.run(until=0.4)
    assert m.shares == []  # not noticed yet
    ctx.env.run(until=1.0)
    assert m.shares == [(0.5, "a", 2, (0, 1, 2, 3))] and m.revoked == ["a"]
    m.up["b"] = True
    m.group.joined("b")
    assert m.shares[1:] == [(1.0, "a", 3, (0, 2)), (1.0, "b", 3, (1, 3))]
    assert m.group.rebalances == 2


def test_a_member_back_before_the_timeout_is_not_dropped(ctx: SimContext) -> None:
    m = Members(ctx, ("a", "b"), 2)
    m.group.start()
    m.up["b"] = False
    m.group.crashed("b")
    ctx.call_later(0.2, lambda _: m.up.update(b=True))
    ctx.env.run(until=1.0)
    assert m.group.rebalances == 0 and m.group.live == {"a", "b"}


def test_only_the_current_holder_commits(ctx: SimContext) -> None:
    m = Members(ctx, ("a", "b"), 2)
    m.group.start()
    assert m.group.commit("a", 1, 0, 7) and m.group.committed == {0: 7}
    assert not m.group.commit("a", 1, 1, 3)  # b's partition
    m.group.joined("a")  # a rebalance: generation 2
    assert not m.group.commit("a", 1, 0, 9)  # from the old generation
    assert m.group.commit("a", 2, 0, 9) and m.group.committed == {0: 9}
    assert m.group.owner(1) == "b"


def test_the_session_timeout_runs_from_the_last_crash(ctx: SimContext) -> None:
    m = Members(ctx, ("a", "b"), 2)
    m.group.start()
    m.shares.clear()

    def down() -> None:
        m.up["b"] = False
        m.group.crashed("b")

    def up() -> None:
        m.up["b"] = True
        m.group.joined("b")

    down()  # its timer would expire at 0.5 s...
    ctx.call_later(0.2, lambda _: up())  # ... but b is back (a rebalance at 0.2 s)
    ctx.call_later(0.3, lambda _: down())  # and down again: noticed at 0.8 s
    ctx.env.run(until=2.0)
    assert m.shares == [(0.2, "a", 2, (0,)), (0.2, "b", 2, (1,)), (0.8, "a", 3, (0, 1))]
    assert m.group.rebalances == 2
