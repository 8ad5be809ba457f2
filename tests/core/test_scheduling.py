"""Timers of one fixed delay kept in a FIFO: exact expiry times, start order, and dead timers skipped."""

from __future__ import annotations

from typing import Any

import pytest

from sim.core.context import SimContext
from sim.core.scheduling import events_scheduled


def test_each_timer_expires_exactly_delay_after_its_start() -> None:
    ctx = SimContext.from_seed(1)
    fired: list[tuple[float, Any]] = []
    timers = ctx.timeouts(0.3, lambda v: fired.append((ctx.env.now, v)))
    for t, v in [(0.0, "a"), (0.1, "b"), (0.1, "c"), (0.25, "d")]:
        ctx.call_later(t, lambda e: timers.start(e._value), v)
    ctx.env.run()
    assert fired == [(0.3, "a"), (0.1 + 0.3, "b"), (0.1 + 0.3, "c"), (0.25 + 0.3, "d")]
    assert len(timers) == 0


def test_timers_interleave_with_other_events_in_time_order() -> None:
    ctx = SimContext.from_seed(1)
    log: list[tuple[float, str]] = []
    timers = ctx.timeouts(1.0, lambda v: log.append((ctx.env.now, v)))
    timers.start("t0")
    ctx.call_later(0.5, lambda e: log.append((ctx.env.now, "event")))
    ctx.call_later(0.7, lambda e: timers.start("t1"))
    ctx.call_later(1.2, lambda e: log.append((ctx.env.now, "event")))
    ctx.env.run()
    assert log == [(0.5, "event"), (1.0, "t0"), (1.2, "event"), (1.7, "t1")]


def test_a_callback_may_start_the_next_timer() -> None:
    ctx = SimContext.from_seed(1)
    fired: list[float] = []

    def again(n: int) -> None:
        fired.append(ctx.env.now)
        if n:
            timers.start(n - 1)

    timers = ctx.timeouts(0.5, again)
    timers.start(3)
    ctx.env.run()
    assert fired == [0.5, 1.0, 1.5, 2.0]


def test_dead_timers_are_skipped_without_an_event() -> None:
    ctx = SimContext.from_seed(1)
    live = {0, 5, 9}
    fired: list[int] = []
    timers = ctx.timeouts(1.0, fired.append, lambda v: v in live)
    for i in range(10):
        ctx.call_later(i * 0.01, lambda e: timers.start(e._value), i)
    ctx.env.run()
    # timer 0 had its event before anything was known about it; after it only live ones get one
    assert fired == [0, 5, 9]
    assert ctx.env.now == pytest.approx(1.09)
    events = events_scheduled(ctx.env)
    assert events == 10 + 3  # ten starts, three expiries: the seven dead timers cost no event


@pytest.mark.parametrize("delay", [-1.0, float("nan")])
def test_a_negative_or_nan_delay_is_refused(delay: float) -> None:
    with pytest.raises(ValueError, match="delay"):
        SimContext.from_seed(1).timeouts(delay, print)
