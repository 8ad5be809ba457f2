"""The shared workload: the same arrivals, sizes and destinations whichever way a pattern takes them."""

from __future__ import annotations

from typing import Any

import simpy

from sim.core.context import SimContext
from sim.core.distributions import Constant
from sim.model.workload import ConstantRate, UniformDestinations, Workload


def _workload(ctx: SimContext) -> Workload:
    return Workload(
        ctx, ("p0", "p1"), ("c0", "c1", "c2"), ConstantRate(10.0), Constant(100.0), UniformDestinations(), 0.5
    )


def _emitted(seed: int) -> list[tuple[str, float, float, str]]:
    """What ``start`` hands a pattern: (producer, created_at, size, consumer)."""
    ctx = SimContext.from_seed(seed)
    workload = _workload(ctx)
    out: list[tuple[str, float, float, str]] = []

    def emit(producer: str, created_at: float, size: float, consumer: int) -> None:
        out.append((producer, created_at, size, workload.consumers[consumer]))

    workload.start(emit)
    ctx.env.run()
    return out


def _offered(seed: int, **where: Any) -> list[tuple[Any, ...]]:
    """What ``offer_through`` offers: (node, kind, dst, topic, created_at, size, to, now)."""
    ctx = SimContext.from_seed(seed)
    workload = _workload(ctx)
    out: list[tuple[Any, ...]] = []

    def offers(node: str) -> Any:
        def offer(
            kind: str, dst: str, topic: str, created_at: float, size: float, to: Any = ""
        ) -> simpy.Event | None:
            out.append((node, kind, dst, topic, created_at, size, to, ctx.env.now))
            return None

        return offer

    workload.offer_through(offers, "data", "jobs", **where)
    ctx.env.run()
    return out


def test_offering_through_outboxes_picks_the_same_consumers_as_emit() -> None:
    emitted = _emitted(5)
    offered = _offered(5)
    assert len(emitted) == 10  # 2 producers × 5 messages in [0, 0.5)
    assert [(o[0], o[4], o[5], o[2]) for o in offered] == emitted
    assert {o[2] for o in offered} == {"c0", "c1", "c2"}  # the uniform picks reach every consumer
    assert all(o[1:4:2] == ("data", "jobs") and o[6] == "" for o in offered)
    assert all(o[7] == o[4] for o in offered)  # offered at the intended time


def test_a_fixed_destination_is_offered_every_message_with_its_recipients() -> None:
    offered = _offered(5, dst="broker", to=("c0", "c2"))
    assert [o[2] for o in offered] == ["broker"] * 10
    assert all(o[6] == ("c0", "c2") for o in offered)
    assert [(o[0], o[4]) for o in offered] == [(e[0], e[1]) for e in _emitted(5)]


def test_backpressure_holds_the_producer_until_released() -> None:
    ctx = SimContext.from_seed(1)
    workload = _workload(ctx)
    gate = ctx.env.event()
    sent: list[tuple[str, float, float]] = []

    def offers(node: str) -> Any:
        def offer(kind: str, dst: str, topic: str, created_at: float, size: float, to: Any = "") -> Any:
            sent.append((node, created_at, ctx.env.now))
            return gate if node == "p0" and not gate.triggered else None  # p0's first offer blocks

        return offer

    workload.offer_through(offers, "data", "", dst="broker")
    ctx.call_later(0.25, lambda _: gate.succeed())
    ctx.env.run()
    p0 = [(t, now) for node, t, now in sent if node == "p0"]
    assert len(p0) == 5
    # held from its first offer to the release at 0.25: what was due meanwhile goes out then, late, keeping
    # its intended time; the rest on time
    assert p0[0][1] == p0[0][0]
    assert [now for t, now in p0[1:]] == [max(t, 0.25) for t, _ in p0[1:]]
    assert sum(now == 0.25 for _, now in p0) >= 1
    assert all(now == t for node, t, now in sent if node == "p1")  # the other producer never waits
