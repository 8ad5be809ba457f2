"""One run: ``simulate(scenario) -> RunResult``.

The run goes: build → ``env.run(until=duration)`` (producers stop creating messages at ``duration``) →
drain (in-flight messages settle, senders retry or give up) until nothing is open or ``duration +
drain`` is reached → ledger invariant check → summary metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.config.scenario import Scenario
from sim.core.context import SimContext, TraceRecord
from sim.core.errors import SimError
from sim.model.faults.injector import FaultRecord, down_intervals, fault_windows
from sim.patterns.registry import pattern_class, plugin_code
from sim.run.build import AssembledWorld, build
from sim.run.checks import Violation, check
from sim.run.metrics import operations, queue_wait_mean, recovery_time, summarize
from sim.run.stability import Window

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunResult", "run_world", "simulate"]


@dataclass
class RunResult:
    """What one run produced.

    Attributes
    ----------
    scenario : Scenario
    summary : dict of str to float
        Every metric of :data:`sim.run.metrics.METRICS`.
    columns : dict of str to ndarray
        The ledger, column by column (see :attr:`ledger` for a DataFrame).
    end_time : float
        Simulated time when the drain ended, in seconds.
    trace : list or None
        Hop-level records ``(time, event, msg_id, node, detail)`` in time order (ties in the order they were
        recorded) when the scenario asked for a trace; tracing changes no other figure.
    """

    scenario: Scenario
    summary: dict[str, float]
    columns: dict[str, np.ndarray] = field(repr=False)
    end_time: float
    trace: list[TraceRecord] | None = field(default=None, repr=False)
    counters: dict[str, float] = field(default_factory=dict)
    fault_log: list[FaultRecord] = field(default_factory=list)
    """What the fault injector did: (time, action, target, detail), in order."""
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    """Small curves for reports: ``backlog`` (time in s, messages ready in all broker queues), at most ~400
    points, in runs with a broker."""
    operations: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """The run's operations, one entry per operation (:func:`sim.run.metrics.operations`), warm-up
    included."""

    @property
    def seed(self) -> int:
        return self.scenario.seed

    def check(self) -> list[Violation]:
        """Violations of the scenario's delivery guarantee and ordering (empty when every promise held)."""
        d = self.scenario.delivery
        ops = self.operations
        tried = {} if not ops else dict(zip(ops["id"].tolist(), ops["attempts"].tolist(), strict=True))
        return check(
            self.columns,
            guarantee=d.guarantee,
            max_attempts=d.max_attempts,
            ordering=d.ordering,
            down=down_intervals(self.fault_log, self.end_time),
            end=self.end_time,
            app_kinds=pattern_class(self.scenario.pattern).operation.app_kinds,
            op_attempts={k: v for k, v in tried.items() if v},
        )

    @property
    def ledger(self) -> pd.DataFrame:
        """The ledger as a DataFrame, one row per delivery obligation."""
        import pandas as pd

        frame = pd.DataFrame(self.columns)
        for name in ("kind", "src", "dst", "topic", "outcome", "reason"):
            frame[name] = frame[name].astype("category")
        return frame

    def trace_frame(self) -> pd.DataFrame:
        """The trace as a DataFrame, one row per record, with each hop's end, transmission, obligation,
        attempt, retry and duplicate derived and joined from the ledger (:mod:`sim.run.trace`).

        Raises
        ------
        SimError
            If the run was not traced.
        """
        if self.trace is None:
            raise SimError("trace", False, "true to keep a trace (trace = true, or --set trace=true)")
        from sim.run.trace import frame

        return frame(self.trace, self.columns)

    def __repr__(self) -> str:
        """One line: pattern, duration and seed; obligations offered / delivered / lost; the share of
        operations that succeeded and their p50 and p99 latency; ``unstable`` and the obligations left
        unfinished at the end of the drain, when they apply."""
        s, sc = self.summary, self.scenario
        number, latency = _number(s), _latency(s)

        ratio = s.get("op_success_ratio", math.nan)
        share = f"{ratio:.1%}" if math.isfinite(ratio) else "n/a"
        flags = "; unstable" if s.get("stable") == 0.0 else ""
        if s.get("in_flight", 0.0) > 0:
            flags += f"; {number('in_flight')} unfinished"
        return (
            f"<RunResult {sc.pattern}, {sc.duration:g} s, seed {sc.seed}: offered {number('offered')}, "
            f"delivered {number('delivered')}, lost {number('lost')}; operations "
            f"{share} succeeded, p50 {latency('op_latency_p50')}, "
            f"p99 {latency('op_latency_p99')}{flags}>"
        )

    def _repr_html_(self) -> str:
        """The same figures as a small table, for notebooks (every text escaped)."""
        from html import escape

        s, sc = self.summary, self.scenario
        number, latency = _number(s), _latency(s)

        ratio = s.get("op_success_ratio", math.nan)
        rows = [
            ("pattern", str(sc.pattern)),
            ("duration", f"{sc.duration:g} s"),
            ("seed", str(sc.seed)),
            ("offered", number("offered")),
            ("delivered", number("delivered")),
            ("lost", number("lost")),
            ("operations succeeded", f"{ratio:.1%}" if math.isfinite(ratio) else "n/a"),
            ("operation latency p50", latency("op_latency_p50")),
            ("operation latency p99", latency("op_latency_p99")),
        ]
        if s.get("stable") == 0.0:
            rows.append(("unstable", "yes"))
        if s.get("in_flight", 0.0) > 0:
            rows.append(("unfinished", f"{number('in_flight')} obligations open at the end of the drain"))
        body = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
        return f"<table><caption>RunResult</caption>{body}</table>"


def run_world(ctx: SimContext, world: AssembledWorld) -> float:
    """Run a built world through ``duration`` and the drain; returns the end time."""
    env, scenario = ctx.env, world.scenario
    window = Window(ctx, world.nodes, world.brokers, scenario.warmup, scenario.duration, world.faults)
    window.run(env)  # to duration, with snapshots of the measured window on the way
    world.reporters.append(window.figures)
    deadline = scenario.duration + scenario.drain
    step, peek = env.step, env.peek
    while not ctx.quiet():
        t = peek()
        if t > deadline or t == math.inf:
            break
        step()
    return float(env.now) if ctx.quiet() else float(deadline)


def simulate(scenario: Scenario, *, search: Sequence[Path] = ()) -> RunResult:
    """Run ``scenario`` once and summarize it.

    Raises
    ------
    SimError
        If the scenario cannot be built (unknown topology, node, ...).
    InvariantError
        If the ledger's accounting does not add up (a bug in ``sim``).
    """
    ctx = SimContext.from_seed(scenario.seed, trace=scenario.trace)
    pattern = pattern_class(scenario.pattern)
    with plugin_code(scenario.pattern):  # a plug-in's failure names it, with its own frames
        world = build(ctx, scenario, search=search)
        end = run_world(ctx, world)
    ledger = ctx.ledger
    operation = pattern.operation
    ledger.supersede(operation.supersedable)  # undelivered copies whose operation another copy completed
    ledger.check()
    columns = ledger.columns()
    ops = operations(columns, ledger.ops.columns(), app_kinds=operation.app_kinds)
    extra: dict[str, Any] = {}
    extra["queue_wait_mean"] = queue_wait_mean(
        [n.statistics() for n in world.nodes.values() if n.service is not None],
        [b.statistics() for b in world.brokers.values()],
    )
    counters = dict(ledger.counters)
    extra["deduplicated"] = counters.get("deduplicated", 0.0)
    extra["redeliveries"] = counters.get("redeliveries", 0.0)
    with plugin_code(scenario.pattern):
        for report in world.reporters:
            extra.update(report())
    log = list(world.faults.log) if world.faults is not None else []
    windows = fault_windows(log, end)
    extra["faults"] = len(windows)
    extra["recovery_time"] = recovery_time(
        columns["delivered_at"], windows, warmup=scenario.warmup, duration=scenario.duration
    )
    summary = summarize(
        columns,
        warmup=scenario.warmup,
        duration=scenario.duration,
        control_unattributed=ledger.control_unattributed,
        control_bytes_unattributed=ledger.control_bytes_unattributed,
        extra=extra,
        ops=ops,
        measures=pattern.measures,
    )
    counters.update(control_dropped=ledger.control_dropped, offered_total=len(ledger))
    series: dict[str, tuple[list[float], list[float]]] = {}
    if world.brokers:
        series["backlog"] = _backlog(
            [b.depth_series(q) for b in world.brokers.values() for q in b.queues], end
        )
    if ctx.trace is not None:  # cut-through records a run's hops at the send, ahead of time
        ctx.trace.sort(key=_time)
    return RunResult(scenario, summary, columns, end, ctx.trace, counters, log, series, operations=ops)


def _time(record: TraceRecord) -> float:
    return record[0]


def _backlog(curves: list[tuple[Any, Any]], end: float, points: int = 400) -> tuple[list[float], list[float]]:
    """The sum of step functions (times, depths), as the largest depth in each of ``points`` time bins."""
    times, deltas = [], []
    for t, n in curves:
        depth = np.asarray(n, dtype=np.float64)
        times.append(np.asarray(t, dtype=np.float64))
        deltas.append(np.diff(depth, prepend=0.0))
    if not times:
        return [], []
    t_all = np.concatenate(times)
    order = np.argsort(t_all, kind="stable")
    t_all, level = t_all[order], np.cumsum(np.concatenate(deltas)[order])
    edges = np.linspace(0.0, max(end, float(t_all[-1])), points + 1)
    which = np.clip(np.searchsorted(edges, t_all, side="right") - 1, 0, points - 1)
    peak = np.full(points, np.nan)
    np.fmax.at(peak, which, level)
    # bins with no change hold the level reached before them
    filled = np.copy(peak)
    last = 0.0
    for i in range(points):
        if np.isnan(filled[i]):
            filled[i] = last
        last = (
            float(level[np.searchsorted(t_all, edges[i + 1], side="right") - 1])
            if t_all[0] <= edges[i + 1]
            else 0.0
        )
    return edges[:-1].tolist(), filled.tolist()


def _number(summary: dict[str, float]) -> Callable[[str], str]:
    """A count from ``summary`` for the reprs: ``1,234``, or ``n/a``."""

    def number(name: str) -> str:
        value = summary.get(name, math.nan)
        return f"{value:,.0f}" if math.isfinite(value) else "n/a"

    return number


def _latency(summary: dict[str, float]) -> Callable[[str], str]:
    """A latency from ``summary`` for the reprs, in ms below a second: ``5.3 ms``, ``10.40 s`` or ``n/a``."""

    def latency(name: str) -> str:
        value = summary.get(name, math.nan)
        if not math.isfinite(value):
            return "n/a"
        return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:,.2f} s"

    return latency
