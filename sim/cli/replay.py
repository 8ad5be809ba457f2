"""``sim replay RESULTS RUN_ID``: rerun one run of a results folder and say whether it gives the stored row.

Exit status 0 when every metric equals the stored one, 1 when one differs, 2 for a bad argument (an unknown
folder or run id, another ``sim`` version).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sim.core.errors import SimError

__all__ = ["add_arguments", "cmd_replay"]

_SHOWN = 5  # differing metrics named on the verdict line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder written by 'sim run' (results/<experiment>)")
    p.add_argument("run_id", help="a run id (the run_id column of runs.parquet, the report's run ids)")
    p.add_argument("--json", action="store_true", help="print the scenario, summary and verdict as JSON")
    p.add_argument(
        "--trace",
        action="store_true",
        help="record the hop-level trace and write flow.html and trace.json to --out",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="where --trace writes its views")
    # the filters of `sim trace`, for a run too large for one diagram
    p.add_argument("--window", metavar="START:END", help="with --trace: only what is under way then (s)")
    p.add_argument("--nodes", metavar="A,B", help="with --trace: only transmissions from or to these nodes")
    p.add_argument("--obligations", metavar="ROWS", help="with --trace: only these ledger rows")


def cmd_replay(args: argparse.Namespace) -> int:
    from sim.cli.main import _finite, _fmt, _warn
    from sim.cli.trace import parse_nodes, parse_obligations, parse_window
    from sim.core.units import metric_unit
    from sim.run.metrics import PATTERN_METRICS
    from sim.sweep.replay import differences, replay, stored_run

    if args.trace != (args.out is not None):
        if args.trace:
            raise SimError(
                "--trace", "without --out", "--trace --out DIR (where flow.html and trace.json go)"
            )
        raise SimError("--out", str(args.out), "only with --trace")
    for name in ("window", "nodes", "obligations"):
        if getattr(args, name) is not None and not args.trace:
            raise SimError(f"--{name}", getattr(args, name), "only with --trace --out DIR")
    window, nodes = parse_window(args.window), parse_nodes(args.nodes)
    obligations = parse_obligations(args.obligations)
    folder = Path(args.results)
    stored = stored_run(folder, args.run_id)  # the folder's tables, read once
    result = replay(folder, args.run_id, trace=args.trace, stored=stored)
    diffs = differences(result.summary, stored.row, stored.swept)
    views: list[Path] = []
    if args.trace:
        from sim.analysis.flow import write_views

        views = write_views(result, args.out, window=window, nodes=nodes, obligations=obligations)
    scenario = result.scenario
    if args.json:  # strict JSON, as `sim simulate --json`: nan and inf are written as null
        verdict: dict[str, Any] = {
            "run_id": stored.run_id,
            "results": str(folder),
            "equal": not diffs,
            "differences": [{"metric": m, "stored": s, "now": n} for m, s, n in diffs],
        }
        if views:
            verdict["views"] = [str(p) for p in views]
        data = _finite({"scenario": scenario.to_dict(), "summary": result.summary, "replay": verdict})
        print(json.dumps(data, default=str, indent=2, allow_nan=False))  # noqa: T201
        _warn(result.summary, scenario, result.end_time)
        return 1 if diffs else 0
    print(  # noqa: T201
        f"run {stored.run_id} of {folder}: {scenario.pattern} on {scenario.topology.name}, "
        f"seed {scenario.seed}, {scenario.duration:g} s (+ drain to {result.end_time:g} s), "
        f"guarantee {scenario.delivery.guarantee}"
    )
    others = {m for name, names in PATTERN_METRICS.items() if name != scenario.pattern for m in names}
    width = max(len(k) for k in result.summary)
    for key, value in result.summary.items():
        if (key.startswith(("lost_", "op_failed_")) and value == 0) or (key in others and value != value):
            continue  # another pattern's figure shows when the run has one (a replicated broker's elections)
        print(f"  {key:<{width}}  {_fmt(value):>12}  {metric_unit(key)}")  # noqa: T201
    _warn(result.summary, scenario, result.end_time)
    for path in views:
        print(f"wrote {path}")  # noqa: T201
    print(verdict_line(diffs))  # noqa: T201
    return 1 if diffs else 0


def verdict_line(diffs: list[tuple[str, Any, Any]]) -> str:
    """One line: the replay equals the stored row, or which metrics differ (stored, then now).

    >>> verdict_line([])
    'replay: equal to the stored row (every metric)'
    >>> verdict_line([("lost", 3.0, 2.0), ("retries", 9.0, None)])
    'replay: 2 metrics differ from the stored row: lost (stored 3, now 2), retries (stored 9, now absent)'
    """
    if not diffs:
        return "replay: equal to the stored row (every metric)"
    shown = ", ".join(f"{m} (stored {_value(s)}, now {_value(n)})" for m, s, n in diffs[:_SHOWN])
    more = f" and {len(diffs) - _SHOWN} more" if len(diffs) > _SHOWN else ""
    count = f"{len(diffs)} metrics differ" if len(diffs) > 1 else "1 metric differs"
    return f"replay: {count} from the stored row: {shown}{more}"


def _value(value: Any) -> str:
    from sim.cli.main import _fmt

    return "absent" if value is None else _fmt(float(value))
