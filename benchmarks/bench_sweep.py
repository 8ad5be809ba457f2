"""Speed-up of a sweep on the ``processes`` engine over ``serial``, in the same process tree.

Workload: 40 short runs (5 link-loss values × 8 replications) of point-to-point messaging with
at-least-once delivery over a leaf-spine fabric (2 spines, 4 leaves, 4 hosts each), 4 producers at
500 messages/s each for 5 simulated seconds — about 0.3-0.5 s of work per run. Each engine writes to its
own temporary results folder through :func:`sim.sweep.runner.run_experiment` (no report), so the figures
include
everything a sweep does: expansion, payloads, the journal, consolidation; for ``processes`` also starting
the worker pool (spawn).

Prints both wall times and the speed-up serial / processes (target >= 1.8 with 2 workers on 2 cores),
and checks that both engines stored identical rows. Usage:
``python benchmarks/bench_sweep.py [--workers 2] [--replications 8] [--duration 5s] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: spawned workers import this module, and need none of it
    import pandas as pd

    from sim.sweep.experiment import Experiment

LOSS = [0.0, 0.005, 0.01, 0.02, 0.05]


def experiment(replications: int, duration: str) -> Experiment:
    from sim.config.scenario import Scenario
    from sim.sweep.experiment import Experiment

    base = Scenario(
        pattern="point_to_point",
        duration=duration,
        drain="2s",
        topology={"name": "leaf_spine", "params": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}},
        links={"latency": {"dist": "exponential", "mean": "500us"}, "bandwidth": "1Gbps"},
        workload={"producers": 4, "consumers": 4, "rate": "500/s", "size": "1KB"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "50ms"},
    )
    return Experiment("bench_sweep", base=base, grid={"links.loss": LOSS}, replications=replications, seed=1)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system  # pool workers count once joined


def timed(exp: Experiment, engine: str, workers: int | None) -> tuple[float, float, pd.DataFrame]:
    """Wall time, CPU time (this process and its finished children) and rows of one sweep."""
    from sim.sweep.runner import run_experiment

    with tempfile.TemporaryDirectory(prefix=f"bench-sweep-{engine}-") as out:
        started, cpu = time.perf_counter(), _cpu()
        frame = run_experiment(exp, out=Path(out), engine=engine, workers=workers, quiet=True)
        return time.perf_counter() - started, _cpu() - cpu, frame


def best(exp: Experiment, engine: str, workers: int | None, repeat: int) -> tuple[float, float, pd.DataFrame]:
    """The fastest of ``repeat`` sweeps (other processes on the machine only ever slow a sweep down)."""
    return min((timed(exp, engine, workers) for _ in range(max(1, repeat))), key=lambda t: t[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replications", type=int, default=8)
    parser.add_argument("--duration", default="5s", help="simulated seconds per run")
    parser.add_argument("--repeat", type=int, default=1, help="timings per engine; the best counts")
    args = parser.parse_args()

    exp = experiment(args.replications, args.duration)
    runs = len(exp.runs())
    load = os.getloadavg()[0]
    print(f"{runs} runs, {os.cpu_count()} cores, {args.workers} workers, load average {load:.2f} at start")
    serial, serial_cpu, serial_rows = best(exp, "serial", None, args.repeat)
    work = float(serial_rows["wall_time"].sum())
    print(
        f"serial:    {serial:6.2f} s  ({work / runs:.2f} s per run; "
        f"CPU {serial_cpu:.1f} s = {serial_cpu / serial:.0%} of one core)"
    )
    pool, pool_cpu, pool_rows = best(exp, "processes", args.workers, args.repeat)
    pool_work = float(pool_rows["wall_time"].sum())
    print(
        f"processes: {pool:6.2f} s  ({pool_work / runs:.2f} s per run; "
        f"CPU {pool_cpu:.1f} s = {pool_cpu / pool:.0%} of one core; pool start-up included)"
    )
    print(f"speed-up:  {serial / pool:6.2f}x  (target >= 1.8x with 2 workers on 2 cores)")
    if pool_cpu / pool < 0.85 * args.workers:
        print(
            f"note: the workers got {pool_cpu / pool:.2f} of the {args.workers} cores they wanted "
            "(other processes were competing for them, or the pool was starting); the speed-up is understated"
        )

    same = serial_rows.drop(columns="wall_time").equals(pool_rows.drop(columns="wall_time"))
    failed = int((serial_rows["status"] != "ok").sum() + (pool_rows["status"] != "ok").sum())
    print(f"identical rows: {'yes' if same else 'NO'}; failed runs: {failed}")
    if not same or failed:
        raise SystemExit(1)


if __name__ == "__main__":  # the processes engine spawns workers that import this module
    main()
