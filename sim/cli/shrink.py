"""``sim shrink SCENARIO --out FILE``: shrink a run that fails its check to the smallest scenario found that
still breaks the same rule (:mod:`sim.run.shrink`), write it as TOML, and draw the minimal run's message
flow beside it (``FILE``'s stem + ``_flow/``: ``flow.html``, ``trace.json``, :mod:`sim.analysis.flow`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.core.errors import SimError

__all__ = ["RULES", "add_parser", "flow_folder"]

RULES = ("no_duplicates", "no_loss", "no_delivery_while_down", "fifo")
"""sim.run.checks.RULES, kept here so that --help stays fast (tests hold them equal)."""

MAX_RUNS = 200
"""sim.run.shrink.MAX_RUNS, kept here for the same reason."""


def flow_folder(out: Path) -> Path:
    """Where the minimal run's flow diagram goes: beside ``out``, named after its stem (``min_flow/``)."""
    return out.with_name(f"{out.stem}_flow")


def _cmd_shrink(args: argparse.Namespace) -> int:
    from sim.cli.main import _parse_set
    from sim.config.scenario import Scenario
    from sim.config.toml import scenario_toml
    from sim.run.build import topology_search_path
    from sim.run.shrink import Step, shrink
    from sim.sweep.runner import check_out
    from sim.sweep.store import atomic_write

    out = Path(args.out)
    if out.suffix != ".toml":
        raise SimError("--out", str(out), "a .toml file for the minimal scenario")
    if out.is_dir():
        raise SimError("--out", str(out), "a .toml file for the minimal scenario, not a folder")
    try:  # before any run: where the scenario and its flow diagram go
        check_out(out.parent)
        check_out(flow_folder(out))
    except SimError as exc:
        allowed = f"a .toml file whose folder and flow folder ({flow_folder(out).name}/) can be written"
        raise SimError("--out", str(out), f"{allowed}; {exc.allowed}") from None
    if args.max_runs < 1:
        raise SimError("--max-runs", args.max_runs, "a whole number >= 1")
    scenario = Scenario.from_toml(Path(args.file))
    if args.set:
        scenario = scenario.with_updates(_parse_set(args.set))

    def progress(step: Step) -> None:
        line = f"shrink: run {step.runs}: {step.phase}: {step.change}"
        print(line, file=sys.stderr)  # noqa: T201  (a command's own progress)

    try:
        found = shrink(
            scenario, rule=args.rule, max_runs=args.max_runs, search=topology_search_path(), progress=progress
        )
    except SimError as exc:
        if exc.field == "scenario":  # the run passes its check: name the file the user gave
            raise SimError("scenario file", f"{args.file}{_sets(args.set)}", exc.allowed) from None
        raise
    v = found.violation
    header = (
        f"# The smallest scenario `sim shrink` found from {args.file}{_sets(args.set)}:\n"
        f"# it still breaks {found.rule} ({len(found.violations)} violation(s); "
        f"obligation {v.obligation}: {v.evidence}).\n"
    )
    atomic_write(out, header + scenario_toml(found.scenario))
    drawn = _draw(found.scenario, flow_folder(out))
    stop = "; the bound stopped it, a smaller one may exist" if found.bounded else ""
    lines = [f"shrunk in {found.runs} runs (at most {found.max_runs}){stop}"]
    lines += [f"  {step.phase}: {step.change}" for step in found.steps] or ["  nothing could be removed"]
    more = f" (and {len(found.violations) - 1} more)" if len(found.violations) > 1 else ""
    lines.append(f"still breaks {found.rule}: obligation {v.obligation}: {v.evidence}{more}")
    lines.append(f"minimal scenario: {out}")
    lines.append(drawn)
    print("\n".join(lines))  # noqa: T201  (a command's own output)
    return 0


def _draw(scenario: Any, folder: Path) -> str:
    """Run the minimal scenario again with tracing on (no number changes) and draw its flow views; the
    line to print about them."""
    from sim.analysis.flow import write_views
    from sim.run.build import topology_search_path
    from sim.run.simulate import simulate

    traced = simulate(scenario.with_updates({"trace": True}), search=topology_search_path())
    try:
        paths = write_views(traced, folder)
    except SimError as exc:  # too many arrows: the scenario is written, the diagram needs a filter
        return f"flow diagram: not drawn ({exc}); see sim trace --window"
    return "flow diagram: " + ", ".join(str(p) for p in paths)


def _sets(items: list[str] | None) -> str:
    return "".join(f" --set {item}" for item in items or [])


def add_parser(sub: Any) -> None:
    """Register ``sim shrink`` on the subcommands ``sub`` of the ``sim`` parser."""
    p = sub.add_parser(
        "shrink",
        help="shrink a run that fails its check to a minimal scenario that breaks the same rule",
        description="Runs the scenario; when its check fails, removes faults (nemeses made explicit first), "
        "producers, consumers, rate and duration as long as the run still breaks the same rule, and writes "
        "the smallest scenario found to FILE. Progress on stderr. See docs/shrink.md.",
    )
    p.add_argument("file", help="scenario TOML file whose run fails its check")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the minimal scenario (.toml)")
    p.add_argument(
        "--max-runs", type=int, default=MAX_RUNS, metavar="N", help=f"at most N runs (default {MAX_RUNS})"
    )
    p.add_argument("--rule", choices=RULES, help="the rule to keep broken (default: the first one broken)")
    p.set_defaults(func=_cmd_shrink)
