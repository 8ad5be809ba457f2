"""One run: ``simulate(scenario) -> RunResult``.

The run goes: build → ``env.run(until=duration)`` (producers stop creating messages at ``duration``) →
drain (in-flight messages settle, senders retry or give up) until nothing is open or ``duration +
drain`` is reached → ledger invariant check → summary metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.build import World, build
from sim.checks import Violation, check
from sim.context import SimContext, TraceRecord
from sim.faults import FaultRecord, down_intervals, fault_windows
from sim.metrics import recovery_time, summarize
from sim.scenario import Scenario

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
        Every metric of :data:`sim.metrics.METRICS`.
    columns : dict of str to ndarray
        The ledger, column by column (see :attr:`ledger` for a DataFrame).
    end_time : float
        Simulated time when the drain ended, in seconds.
    trace : list or None
        Hop-level records ``(time, event, msg_id, node, detail)`` when the scenario asked for a trace.
    """

    scenario: Scenario
    summary: dict[str, float]
    columns: dict[str, np.ndarray] = field(repr=False)
    end_time: float
    trace: list[TraceRecord] | None = field(default=None, repr=False)
    counters: dict[str, float] = field(default_factory=dict)
    fault_log: list[FaultRecord] = field(default_factory=list)
    """What the fault injector did: (time, action, target, detail), in order."""

    @property
    def seed(self) -> int:
        return self.scenario.seed

    def check(self) -> list[Violation]:
        """Violations of the scenario's delivery guarantee and ordering (empty when every promise held)."""
        d = self.scenario.delivery
        return check(
            self.columns,
            guarantee=d.guarantee,
            max_attempts=d.max_attempts,
            ordering=d.ordering,
            down=down_intervals(self.fault_log, self.end_time),
            end=self.end_time,
        )

    @property
    def ledger(self) -> pd.DataFrame:
        """The ledger as a DataFrame, one row per delivery obligation."""
        import pandas as pd

        frame = pd.DataFrame(self.columns)
        for name in ("kind", "src", "dst", "topic", "outcome", "reason"):
            frame[name] = frame[name].astype("category")
        return frame


def run_world(ctx: SimContext, world: World) -> float:
    """Run a built world through ``duration`` and the drain; returns the end time."""
    env, scenario = ctx.env, world.scenario
    env.run(until=scenario.duration)
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
    world = build(ctx, scenario, search=search)
    end = run_world(ctx, world)
    ledger = ctx.ledger
    ledger.check()
    columns = ledger.columns()
    extra: dict[str, Any] = {}
    waits = [n.statistics() for n in world.nodes.values() if n.service is not None]
    processed = sum(s.processed for s in waits)
    if processed:  # the nodes' inbox wait; a broker reports its queues' wait below instead
        extra["queue_wait_mean"] = sum(s.wait_total for s in waits) / processed
    counters = dict(ledger.counters)
    extra["deduplicated"] = counters.get("deduplicated", 0.0)
    extra["redeliveries"] = counters.get("redeliveries", 0.0)
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
        control_unattributed=ledger.control_transmissions - float(columns["control"].sum()),
        control_bytes_unattributed=ledger.control_bytes - float(columns["control_bytes"].sum()),
        extra=extra,
    )
    counters.update(control_dropped=ledger.control_dropped, offered_total=len(ledger))
    return RunResult(scenario, summary, columns, end, ctx.trace, counters, log)
