"""Was the run stable over its measured window, and how much work was left when it ended?

A summary is only an answer if the system reached a steady state: an overloaded run's latency and delivery
figures say how long the run was, not how the design behaves. :class:`Window` takes a few snapshots while the
run passes through the measured window ``[warmup, duration)`` — the busy time of every server pool at its two
ends, the depth of every node inbox at ``SLICES + 1`` evenly spaced instants, the obligations still open at
its end — and :meth:`Window.figures` judges the run from them and from the depth history every broker queue
keeps anyway. Nothing is added to the handling of a message.

The figures (every summary has them; see docs/concepts.md, "Stability and completeness"):

``utilization_max``
    the largest busy fraction of any broker's or node's servers over the window (``nan`` when no node has a
    service time).
``backlog_slope``
    messages/s: the least-squares slope of the total backlog — messages ready in broker queues plus messages
    waiting in node inboxes — over ``SLICES`` equal slices of the window, each slice's backlog its time
    average (broker queues, exact) or the mean of its two end samples (inboxes).
``work_left``, ``work_left_share``
    obligations created in the window and still open (neither delivered nor lost) at ``duration``, as a
    count and as a share of the obligations created in the window.
``stable``
    1.0 unless the window shows a saturated server pool (``utilization_max >= SATURATED``) or a growing
    backlog: a slope whose growth over the window exceeds ``MIN_GROWTH`` messages and ``GROWTH_SHARE`` of
    the mean backlog, and is ``SIGNIFICANCE`` standard errors above zero (the error of the slope corrected
    for the slices' lag-1 autocorrelation, so a stable queue's slow swings do not read as a trend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import simpy

from sim.core.context import SimContext
from sim.core.ledger import IN_FLIGHT
from sim.model.broker.broker import Broker
from sim.model.faults.injector import FaultInjector, fault_windows
from sim.model.node import Node

__all__ = [
    "GROWTH_SHARE",
    "MIN_GROWTH",
    "MIN_SLICES",
    "SATURATED",
    "SIGNIFICANCE",
    "SLICES",
    "STABILITY_DOCS",
    "Window",
    "judge",
    "warning",
]

SLICES = 20
"""Slices of the measured window over which the backlog trend is fitted."""
MIN_SLICES = 5
"""Slices a stretch clear of faults needs to be judged on its own."""
SATURATED = 0.98
"""A server pool busy at least this fraction of the window is saturated: it cannot keep up."""
SIGNIFICANCE = 3.0
"""Standard errors the backlog's slope must exceed to count as growth."""
MIN_GROWTH = 10.0
"""Messages the backlog must grow by over the window to count as growth (a trend of a few is no trend)."""
GROWTH_SHARE = 0.5
"""Growth over the window must also exceed this share of the window's mean backlog."""

STABILITY_DOCS: dict[str, str] = {
    "stable": "1 if the run was stable over the measured window [warmup, duration), 0 if a server pool was "
    "saturated or the backlog grew significantly (docs/concepts.md, Stability and completeness)",
    "backlog_slope": "growth of the backlog (broker queues plus node inboxes) over the measured window, "
    "messages/s (least-squares slope)",
    "utilization_max": "largest busy fraction of any broker's or node's servers over the measured window",
    "work_left": "obligations created in the measured window still open (neither delivered nor lost) at its "
    "end, duration",
    "work_left_share": "work_left / obligations created in the measured window",
}


class Window:
    """Snapshots of a run over its measured window ``[start, end)``.

    Parameters
    ----------
    ctx : SimContext
        The run's context (its ledger gives the obligations open at ``end``).
    nodes, brokers : mapping
        The world's nodes and brokers by id, read at each snapshot (nodes created during the run count from
        their creation).
    start, end : float
        The window, seconds (``warmup`` and ``duration``).
    faults : FaultInjector, optional
        The run's fault injector: the trend is judged on the stretches clear of its fault windows.
    """

    def __init__(
        self,
        ctx: SimContext,
        nodes: Mapping[str, Node],
        brokers: Mapping[str, Broker],
        start: float,
        end: float,
        faults: FaultInjector | None = None,
    ) -> None:
        self.ctx = ctx
        self.nodes = nodes
        self.brokers = brokers
        self.start = start
        self.end = end
        self.faults = faults
        self.times = np.linspace(start, end, SLICES + 1)
        self.inbox = np.zeros(SLICES + 1)
        """Messages waiting in node inboxes at each of ``times``."""
        self.busy_start: dict[str, float] = {}
        self.created = 0
        self.open = 0

    def run(self, env: simpy.Environment) -> None:
        """Run ``env`` to ``end``, taking the snapshots on the way (from ``start``, or now if later)."""
        for i, t in enumerate(self.times.tolist()):
            if t > env.now:
                env.run(until=t)
            self._sample(i)

    def _sample(self, i: int) -> None:
        serving = [n for n in self.nodes.values() if n.service is not None]
        self.inbox[i] = sum(n.backlog for n in serving)
        if i == 0:
            self.busy_start = {n.id: n.busy_so_far() for n in serving}
        elif i == SLICES:
            span = self.end - self.start
            for n in serving:
                n.window_busy = (n.busy_so_far() - self.busy_start.get(n.id, 0.0), span)
            self._count_open()

    def _count_open(self) -> None:
        ledger = self.ctx.ledger
        n = len(ledger)
        created = np.frombuffer(ledger.created_at, dtype=np.float64)[:n]
        mine = created >= self.start
        still = np.frombuffer(ledger.outcome, dtype=np.int8)[:n] == IN_FLIGHT
        self.created = int(mine.sum())
        self.open = int((mine & still).sum())
        del created  # release the view: the ledger's buffer grows again in the drain

    def backlog(self) -> np.ndarray:
        """The total backlog in each slice: broker queues' time average plus the inboxes' mean."""
        level = (self.inbox[:-1] + self.inbox[1:]) / 2
        for broker in self.brokers.values():
            for q in broker.queues.values():
                level = level + q.time_averages(self.times)
        return level

    def segments(self) -> list[slice]:
        """The stretches of slices the trend is judged on: the whole window, or, when faults struck in it,
        each run of at least ``MIN_SLICES`` slices clear of every fault window (the whole window if none)."""
        whole = [slice(0, SLICES)]
        if self.faults is None:
            return whole
        t = self.times
        clear = np.ones(SLICES, dtype=bool)
        for a, b in fault_windows(list(self.faults.log), self.end):
            clear &= (t[1:] <= a) | (t[:-1] >= b)
        if clear.all():
            return whole
        runs, begin = [], None
        for i, ok in enumerate([*clear.tolist(), False]):
            if ok and begin is None:
                begin = i
            elif not ok and begin is not None:
                if i - begin >= MIN_SLICES:
                    runs.append(slice(begin, i))
                begin = None
        return runs or whole

    def figures(self) -> dict[str, float]:
        """``stable``, ``backlog_slope``, ``utilization_max``, ``work_left``, ``work_left_share``."""
        span = self.end - self.start
        shares = [n.utilization() for n in self.nodes.values() if n.window_busy is not None]
        utilization = max(shares) if shares else math.nan
        centers, level = (self.times[:-1] + self.times[1:]) / 2, self.backlog()
        trends = [_trend(centers[part], level[part]) for part in self.segments()]
        stable = all(judge(utilization, *trend, span=span) for trend in trends)
        return {
            "stable": 1.0 if stable else 0.0,
            "backlog_slope": max(slope for slope, _, _ in trends),
            "utilization_max": utilization,
            "work_left": float(self.open),
            "work_left_share": self.open / self.created if self.created else math.nan,
        }


def _trend(x: np.ndarray, level: np.ndarray) -> tuple[float, float, float]:
    """(slope, its standard error corrected for lag-1 autocorrelation, mean) of ``level`` at times ``x``."""
    x = x - x.mean()
    sxx = float(np.sum(x * x))
    mean = float(level.mean())
    slope = float(np.sum(x * (level - mean)) / sxx)
    residual = level - mean - slope * x
    sse = float(np.sum(residual * residual))
    if sse <= 0.0:
        return slope, 0.0, mean
    r1 = float(np.sum(residual[1:] * residual[:-1]) / sse)
    r1 = min(max(r1, 0.0), 0.9)
    error = math.sqrt(sse / (len(level) - 2) / sxx * (1 + r1) / (1 - r1))
    return slope, error, mean


def judge(utilization: float, slope: float, error: float, mean: float, *, span: float) -> bool:
    """The stability rule: no saturated server pool and no significant growth of the backlog.

    ``slope`` (messages/s), its standard ``error`` and the ``mean`` backlog come from a stretch of the
    window; growth is judged over the whole window's length ``span`` (s), the rate the stretch shows.

    >>> judge(0.5, 0.0, 0.1, 3.0, span=10.0)
    True
    >>> judge(0.99, 0.0, 0.1, 3.0, span=10.0)  # saturated
    False
    >>> judge(0.9, 20.0, 1.0, 100.0, span=10.0)  # grows 200 messages over the window, 20 standard errors
    False
    >>> judge(0.9, 0.5, 0.01, 2.0, span=10.0)  # 5 messages: too few to call it growth
    True
    >>> judge(0.9, 20.0, 10.0, 100.0, span=10.0)  # 2 standard errors: noise
    True
    """
    if utilization >= SATURATED:
        return False
    growth = slope * span
    grows = growth > MIN_GROWTH and growth > GROWTH_SHARE * mean and slope > SIGNIFICANCE * error
    return not grows


def warning(summary: Mapping[str, float], *, warmup: float, duration: float, end: float) -> str | None:
    """One line saying why a run's figures need care: unstable over the window, or work unfinished when the
    drain ended at ``end`` (s); ``None`` when neither.

    >>> summary = {"stable": 0.0, "backlog_slope": 493.4, "utilization_max": 0.994, "work_left": 2320,
    ...            "work_left_share": 0.166, "in_flight": 12}
    >>> print(warning(summary, warmup=1, duration=6, end=16))  # doctest: +NORMALIZE_WHITESPACE
    warning: unstable over [1, 6) s: backlog grows 493 msg/s, utilization max 0.99 (saturated);
    2,320 obligations (16.6%) open at 6 s; 12 obligations unfinished at the end of the drain (16 s)
    >>> warning({"stable": 1.0, "in_flight": 0}, warmup=1, duration=6, end=7) is None
    True
    """
    parts = []
    if summary.get("stable") == 0.0:
        growth = summary.get("backlog_slope", math.nan)
        busy = summary.get("utilization_max", math.nan)
        left = summary.get("work_left", math.nan)
        share = summary.get("work_left_share", math.nan)
        text = f"unstable over [{warmup:g}, {duration:g}) s: backlog grows {growth:,.0f} msg/s"
        if not math.isnan(busy):
            text += f", utilization max {busy:.2f}" + (" (saturated)" if busy >= SATURATED else "")
        if left == left and left > 0:
            text += f"; {left:,.0f} obligations" + (f" ({share:.1%})" if share == share else "")
            text += f" open at {duration:g} s"
        parts.append(text)
    unfinished = summary.get("in_flight", 0.0)
    if unfinished == unfinished and unfinished > 0:
        parts.append(f"{unfinished:,.0f} obligations unfinished at the end of the drain ({end:g} s)")
    return "warning: " + "; ".join(parts) if parts else None
