"""``sim run``: run an experiment script's sweep, store it, write its report (also ``python script.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sim.analysis.report import flag_failure, write_report
from sim.cli.arguments import Parser, add_run_arguments, configure_logging
from sim.core.errors import SimError, one_line
from sim.sweep.experiment import Experiment
from sim.sweep.runner import run_experiment

__all__ = ["main", "run_from_args"]


def run_from_args(exp: Experiment, args: argparse.Namespace, base_dir: Path | None) -> int:
    frame = run_experiment(
        exp,
        quick=args.quick,
        out=args.out,
        engine=args.engine,
        workers=args.workers,
        scheduler=args.scheduler,
        fresh=args.fresh,
        save_ledgers=args.save_ledgers,
        quiet=args.quiet,
        base_dir=base_dir,
    )
    folder = Path(args.out) if args.out is not None else Path("results") / exp.name
    if not frame.empty:
        write_report(folder, quiet=args.quiet)
    failed = int((frame["status"] != "ok").sum()) if not frame.empty else 0
    if not args.quiet:
        print(f"{len(frame)} runs in {folder} ({failed} failed)")  # noqa: T201  (a command's own output)
    if exp.fail_on and not frame.empty:
        message = flag_failure(frame, exp.swept(), exp.fail_on)
        if message:
            print(f"sim: {message}", file=sys.stderr)  # noqa: T201
            return 1
    return 0


def main(exp: Experiment, argv: Sequence[str] | None = None) -> int:
    """``python experiments/x.py [options]``: the same as ``sim run experiments/x.py [options]``."""
    parser = Parser(prog=Path(sys.argv[0]).name, description=exp.description or exp.name)
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    try:
        return run_from_args(exp, args, Path(sys.argv[0]).resolve().parent)
    except SimError as exc:
        print(f"sim: error: {one_line(exc)}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("sim: interrupted; finished runs are stored, run the same command again to resume\n")
        return 130
