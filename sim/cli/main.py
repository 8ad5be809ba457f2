"""The ``sim`` command.

Errors in what the user gave (a config value, a file, an argument) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sim
from sim.cli.arguments import ENGINES, Parser, add_run_arguments, configure_logging
from sim.core.errors import SimError, one_line

__all__ = ["main"]


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SimError("--set", item, "key=value, e.g. links.loss=0.01")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word such as at_least_once or 5ms
        updates[key.strip()] = value
    return updates


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _fmt(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return f"{int(value)}" if math.isfinite(value) else str(value)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from sim.config.scenario import Scenario
    from sim.core.units import metric_unit
    from sim.run.build import topology_search_path
    from sim.run.simulate import simulate

    path = Path(args.file)
    scenario = Scenario.from_toml(path)
    if args.set:
        scenario = scenario.with_updates(_parse_set(args.set))
    result = simulate(scenario, search=topology_search_path())
    violations = result.check() if args.check else []
    if args.json:  # strict JSON: nan and inf (not applicable, unbounded) are written as null
        data = _finite({"scenario": scenario.to_dict(), "summary": result.summary})
        if args.check:
            data["violations"] = [
                {"obligation": v.obligation, "rule": v.rule, "evidence": v.evidence} for v in violations
            ]
        print(json.dumps(data, default=str, indent=2, allow_nan=False))
        _warn(result.summary, scenario, result.end_time)
        return 1 if violations else 0
    print(
        f"{scenario.pattern} on {scenario.topology.name}, seed {scenario.seed}, "
        f"{scenario.duration:g} s (+ drain to {result.end_time:g} s), guarantee {scenario.delivery.guarantee}"
    )
    from sim.run.metrics import PATTERN_METRICS

    own = _measure_units(scenario.pattern)  # shown under its own names, even where a built-in has them too
    others = {m for name, names in PATTERN_METRICS.items() if name != scenario.pattern for m in names}
    others -= set(own)
    width = max(len(k) for k in result.summary)
    for key, value in result.summary.items():
        if (key.startswith(("lost_", "op_failed_")) and value == 0) or (key in others and value != value):
            continue  # another pattern's figure shows when the run has one (a replicated broker's elections)
        print(f"  {key:<{width}}  {_fmt(value):>12}  {metric_unit(key, own)}")
    _warn(result.summary, scenario, result.end_time)
    if args.check:
        _print_violations(violations, scenario.delivery.guarantee)
    return 1 if violations else 0


def _measure_units(ref: str) -> dict[str, str]:
    """The summary names of the measures the pattern ``ref`` declares, each with its declared unit."""
    from sim.patterns.registry import pattern_class
    from sim.run.metrics import measure_docs

    return {name: m.unit for m in pattern_class(ref).measures for name in measure_docs(m)}


def _warn(summary: dict[str, float], scenario: Any, end: float) -> None:
    """The stability and completeness warning, one line on stderr (stdout stays the summary)."""
    from sim.run.stability import warning

    line = warning(summary, warmup=scenario.warmup, duration=scenario.duration, end=end)
    if line:
        print(line, file=sys.stderr)


def _print_violations(violations: list[Any], guarantee: str) -> None:
    if not violations:
        print(f"check: every {guarantee} promise held")
        return
    rules = sorted({v.rule for v in violations})
    print(f"check: {len(violations)} violation(s) of {', '.join(rules)}; the first ones:")
    for v in violations[:5]:
        print(f"  obligation {v.obligation}: {v.rule}: {v.evidence}")


def _cmd_list(args: argparse.Namespace) -> int:
    from sim.patterns import PATTERNS, registry
    from sim.run.build import topology_search_path
    from sim.run.metrics import METRIC_DOCS
    from sim.topology import available

    what = args.what
    ref = None  # the pattern the scenario file names
    if args.scenario:
        from sim.config.scenario import Scenario

        ref = Scenario.from_toml(Path(args.scenario)).pattern
    if what in (None, "patterns"):
        # built-ins, installed plug-ins (entry points) and the scenario's own, each with where it comes from
        found = registry.available()
        if ref is not None and registry.is_file_ref(ref):
            cls = registry.pattern_class(ref)
            found.append((cls.name, registry.source(ref), registry.describe(cls)))
        print("patterns:")
        width = max(len(where.origin) for _, where, _ in found)
        for name, where, doc in found:
            print(f"  {name:<16} {where.origin:<{width}}  {doc}")
    if what in (None, "topologies"):
        print("topologies:")
        for name in available(topology_search_path()):
            print(f"  {name}")
    if what in (None, "metrics"):
        print("metrics:")
        for name, doc in METRIC_DOCS.items():
            print(f"  {name:<22} {doc}")
        if ref is not None and ref not in PATTERNS:  # a plug-in's own figures, with their units
            from sim.run.metrics import measure_docs

            cls = registry.pattern_class(ref)
            print(f"metrics of {cls.name} ({registry.source(ref).origin}):")
            for measure in cls.measures:  # a count's unit after its meaning, as samples' docs have it
                unit = "" if measure.kind == "samples" else f", {measure.unit}"
                for name, doc in measure_docs(measure).items():
                    print(f"  {name:<22} {doc}{unit}")
    return 0


def _cmd_topology_show(args: argparse.Namespace) -> int:
    from sim.run.build import topology_search_path
    from sim.topology import build_topology, format_description

    params = _parse_set(args.param or [])
    graph = build_topology(args.name, params, seed=args.seed, search=topology_search_path())
    print(format_description(args.name, graph))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sim.cli.run import run_from_args
    from sim.sweep.runner import load_experiment

    path = Path(args.file)
    exp = load_experiment(path)
    configure_logging(args.quiet)
    try:
        return run_from_args(exp, args, path.resolve().parent)
    except KeyboardInterrupt:
        print(
            "sim: interrupted; finished runs are stored, run the same command again to resume",
            file=sys.stderr,
        )
        return 130


def _cmd_report(args: argparse.Namespace) -> int:
    from sim.analysis.report import write_report

    write_report(Path(args.folder), reference=args.reference, metrics=args.metric or None)
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from sim.analysis.regression import BASELINES, check_baseline, stored, update_baseline

    configure_logging(args.quiet)
    folder = args.baselines or BASELINES
    if args.all == bool(args.experiment):
        raise SimError(
            "experiment", " ".join(args.experiment), f"names or paths, or --all (every baseline in {folder})"
        )
    names = args.experiment or stored(folder)
    if not names:
        raise SimError("--all", str(folder), "a folder with at least one baseline (<experiment>.csv)")
    if args.limit < 0:
        raise SimError("--limit", args.limit, "a whole number >= 0 (0: every row)")
    failed = 0
    for name in names:
        if args.action == "update":
            path = update_baseline(name, baselines=folder, engine=args.engine, quiet=args.quiet)
            print(f"baseline written: {path}")
            continue
        result = check_baseline(name, baselines=folder, engine=args.engine, quiet=args.quiet)
        print(f"{name}: {result.describe(limit=args.limit or None)}")
        failed += not result.ok
    return 1 if failed else 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from sim.analysis.flow import write_views
    from sim.config.scenario import Scenario
    from sim.core.units import parse_duration
    from sim.run.build import topology_search_path
    from sim.sweep.explore import explore, plan, split_names

    scenario = Scenario.from_toml(Path(args.file))
    if args.set:
        scenario = scenario.with_updates(_parse_set(args.set))
    configure_logging(args.quiet)
    search = topology_search_path()
    todo = plan(
        scenario,
        most=args.faults,
        grid=args.grid,
        targets=split_names(args.targets),
        patterns=split_names(args.patterns),
        guarantees=split_names(args.guarantees),
        length=None if args.length is None else parse_duration(args.length, "--length"),
        search=search,
    )
    print(f"explore: {todo.describe()}", flush=True)
    try:
        found = explore(
            todo,
            args.out,
            engine=args.engine,
            workers=args.workers,
            scheduler=args.scheduler,
            max_runs=args.max_runs,
            quiet=args.quiet,
            views=write_views,
            search=search,
        )
    except KeyboardInterrupt:
        print("sim: interrupted; nothing written (the tables come when every run is done)", file=sys.stderr)
        return 130
    for r in found.table.to_dict("records"):
        verdict = "every promise held" if r["held"] else f"broken ({r['rules'] or 'failed runs'})"
        shown = r["counterexample"] or "no fault"
        minimal = f"; minimal: {shown} -> {r['scenario_file']}" if r["broken"] else ""
        print(f"  {r['pattern']}/{r['guarantee']}: {r['runs']} runs, {verdict}{minimal}")
    print(f"written: {Path(args.out) / 'explore.md'}")
    return 1 if args.check and not found.held else 0


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sim", description="Discrete-event simulator for messaging patterns.")
    parser.add_argument("--version", action="version", version=f"sim {sim.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("simulate", help="run one scenario from a TOML file and print its summary")
    p.add_argument("file", help="scenario TOML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--json", action="store_true", help="print the scenario and summary as JSON")
    p.add_argument(
        "--check",
        action="store_true",
        help="check the delivery guarantee and ordering; exit 1 on a violation",
    )
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("run", help="run an experiment script (a sweep) and store its results")
    p.add_argument("file", help="experiment script defining EXPERIMENT")
    add_run_arguments(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("report", help="write report.md, report.html and figures for a results folder")
    p.add_argument("folder", help="results folder written by 'sim run' (results/<experiment>)")
    p.add_argument("--reference", help="pattern the others are compared with (default: point_to_point)")
    p.add_argument("--metric", action="append", help="headline metric (repeatable; default: a standard set)")
    p.set_defaults(func=_cmd_report)

    from sim.cli import replay

    p = sub.add_parser("replay", help="rerun one run of a results folder exactly; exit 1 if it differs")
    replay.add_arguments(p)
    p.set_defaults(func=replay.cmd_replay)

    p = sub.add_parser(
        "baseline",
        help="regression baselines of an experiment's quick run",
        description="update: run the experiment --quick and store its figures as the baseline; "
        "check: run it again and compare (exit 1 if a figure is out of tolerance). See docs/regression.md.",
    )
    p.add_argument("action", choices=["update", "check"])
    p.add_argument("experiment", nargs="*", help="experiment script(s) or name(s) in experiments/")
    p.add_argument("--all", action="store_true", help="every experiment with a baseline in the folder")
    p.add_argument("--baselines", type=Path, metavar="DIR", help="folder (default: results/baselines)")
    p.add_argument("--engine", choices=ENGINES, default="processes", help="where runs execute (same results)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="failure rows shown (0: all)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_baseline)

    p = sub.add_parser(
        "explore",
        help="run a scenario under every placement of up to K faults; a minimal counterexample per cell",
        description="Place up to K crash, pause and partition faults of the targets on a grid of N instants, "
        "run every placement for each pattern x guarantee, and write explore.parquet and explore.md with a "
        "minimal counterexample for each broken cell. See docs/explore.md.",
    )
    p.add_argument("file", help="scenario TOML file (its own faults and nemeses are replaced)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--faults", type=int, required=True, metavar="K", help="at most K faults per run")
    p.add_argument("--grid", type=int, required=True, metavar="N", help="N start instants over the run")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder")
    p.add_argument("--targets", action="append", help="nodes or selectors, a,b (default: the broker)")
    p.add_argument("--patterns", action="append", help="patterns, a,b (default: the scenario's)")
    p.add_argument("--guarantees", action="append", help="guarantees, a,b (default: all three)")
    p.add_argument("--length", help="how long each fault lasts (default: half a grid step)")
    p.add_argument("--max-runs", type=int, default=2000, help="refuse a bigger exploration (default 2000)")
    p.add_argument("--engine", choices=ENGINES, default="processes", help="where runs execute (same results)")
    p.add_argument("--workers", type=int, help="parallel workers (default: one per core)")
    p.add_argument("--scheduler", help="address of a dask scheduler (tcp://host:port) for --engine dask")
    p.add_argument("--check", action="store_true", help="exit 1 if a promise broke in some cell")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_explore)

    from sim.cli.trace import add_parser as add_trace

    add_trace(sub)

    from sim.cli.real import add_parsers as add_real

    add_real(sub)

    p = sub.add_parser("list", help="list patterns, topologies and metrics")
    p.add_argument("what", nargs="?", choices=["patterns", "topologies", "metrics"])
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="also the plug-in pattern this scenario file names, and its metrics",
    )
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("topology", help="inspect topologies")
    tsub = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    show = tsub.add_parser("show", help="print nodes, edges, degrees and latencies of a topology")
    show.add_argument("name", help="builtin name, name in topologies/, or a .py/.graphml/.json file")
    show.add_argument("--param", action="append", metavar="KEY=VALUE", help="generator parameter")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(func=_cmd_topology_show)

    from sim.cli import shrink

    shrink.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SimError as exc:
        print(f"sim: error: {one_line(exc)}", file=sys.stderr)
        for line in getattr(exc, "describe_frames", list)():  # a plug-in's failure: where in its code
            print(line, file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
