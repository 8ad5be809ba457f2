"""Command-line options shared by ``sim run FILE`` and ``python FILE``.

Kept light: ``sim --help`` imports it, so it must not pull in the simulator.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

__all__ = ["ENGINES", "add_run_arguments", "configure_logging"]

ENGINES = ("serial", "processes", "dask")  # sim.engines.ENGINES, kept here so that --help stays fast


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``sim run FILE`` and ``python FILE``."""
    parser.add_argument(
        "--quick", action="store_true", help="shorter runs and fewer replications (smoke test)"
    )
    # a str, not a Path: Path("") is ".", and an empty --out must be refused, not taken as the working dir
    parser.add_argument("--out", help="results folder (default: results/<experiment>)")
    parser.add_argument("--engine", choices=ENGINES, default="processes", help="where runs execute")
    parser.add_argument("--workers", type=int, help="parallel workers (default: one per core)")
    parser.add_argument("--scheduler", help="address of a dask scheduler (tcp://host:port) for --engine dask")
    parser.add_argument("--fresh", action="store_true", help="discard stored runs and start over")
    parser.add_argument("--save-ledgers", action="store_true", help="also store each run's ledger as Parquet")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def configure_logging(quiet: bool) -> None:
    """Log lines (progress off a terminal, warnings about failed runs) go to stderr."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    for chatty in ("distributed", "dask", "tornado", "bokeh"):  # the dask engine's own INFO lines
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # distributed sets its loggers' levels from its config when it is imported (after this, and again in
    # every worker process it starts): say it there too
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
