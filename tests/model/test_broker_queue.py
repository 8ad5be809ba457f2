"""A queue's depth history: changes only, one record per instant, the same time-averages and peak as a
record of every change."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.message import Message
from sim.core.rng import RngStreams
from sim.model.broker.queue import BrokerQueue, Entry


def entry() -> Entry:
    return Entry(Message(1, "data", "p", "b", 1.0, 0.0, 0), 0.0)


def test_an_instant_in_and_out_leaves_no_record_but_counts_for_the_peak() -> None:
    q = BrokerQueue("work", durable=False, capacity=float("inf"), overflow="reject")
    for t in (1.0, 2.0, 3.0):
        q.ready.append(entry())
        q.track(t)
        q.ready.popleft()
        q.track(t)
    assert list(q.depth_t) == [0.0] and list(q.depth_n) == [0]
    assert q.depth_max == 1
    assert q.time_average(0.0, 4.0) == 0.0


def test_same_time_average_and_peak_as_the_full_history() -> None:
    rng = RngStreams(7).stream("test")
    q = BrokerQueue("work", durable=False, capacity=float("inf"), overflow="reject")
    full: list[tuple[float, int]] = [(0.0, 0)]
    t = 0.0
    for _ in range(5000):
        if rng.random() < 0.6:
            t += 0.0 if rng.random() < 0.5 else rng.exponential(1.0)  # many changes share an instant
        if q.ready and rng.random() < 0.5:
            q.ready.popleft()
        else:
            q.ready.append(entry())
        q.track(t)
        full.append((t, len(q.ready)))
    end = t + 1.0

    def average(start: float, stop: float) -> float:
        total = 0.0
        for (t0, n), (t1, _) in zip(full, [*full[1:], (end, 0)], strict=True):
            lo, hi = min(max(t0, start), stop), min(max(t1, start), stop)
            total += n * (hi - lo)
        return total / (stop - start)

    assert len(q.depth_t) < len(full) / 2
    assert all(b > a for a, b in zip(q.depth_t, q.depth_t[1:], strict=False))  # one record per instant
    assert all(b != a for a, b in zip(q.depth_n, q.depth_n[1:], strict=False))  # changes only
    assert q.depth_max == max(n for _, n in full)
    for start, stop in [(0.0, end), (end / 3, end / 2), (end / 2, end)]:
        assert q.time_average(start, stop) == pytest.approx(average(start, stop), rel=1e-9, abs=1e-12)


def test_time_averages_between_edges_of_a_step_function() -> None:
    q = BrokerQueue("work", durable=False, capacity=float("inf"), overflow="reject")
    for t, depth in ((1.0, 3), (2.5, 1), (4.0, 0)):  # depth 0 on [0, 1), 3 on [1, 2.5), 1 on [2.5, 4), then 0
        while len(q.ready) < depth:
            q.ready.append(entry())
        while len(q.ready) > depth:
            q.ready.popleft()
        q.track(t)
    means = q.time_averages(np.array([0.5, 2.0, 3.0, 5.0]))
    assert means.tolist() == pytest.approx([3.0 / 1.5, (1.5 + 0.5) / 1.0, 1.0 / 2.0])
    assert q.time_average(0.0, 5.0) == pytest.approx((4.5 + 1.5) / 5.0)
