"""Command-line options shared by ``sim run FILE`` and ``python FILE``.

Kept light: ``sim --help`` imports it, so it must not pull in the simulator.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import NoReturn

__all__ = ["ENGINES", "Parser", "add_run_arguments", "configure_logging"]

ENGINES = ("serial", "processes", "dask")  # sim.sweep.engines.ENGINES, kept here so that --help stays fast


_ARGPARSE = (  # argparse's messages, said the way every other input error is: field = value: expected ...
    (r"argument (\S+): invalid choice: (.+?) \(choose from (.+)\)", "{0} = {1}: expected one of {2}"),
    (r"argument (\S+): invalid int value: (.+)", "{0} = {1}: expected a whole number"),
    (r"argument (\S+): invalid (\w+) value: (.+)", "{0} = {2}: expected a {1} value"),
    (r"argument (\S+): expected one argument", "{0} = None: expected a value after {0}"),
    (r"the following arguments are required: (.+)", "{0} = None: expected a value (required)"),
    (r"unrecognized arguments: (.+)", "arguments = {0!r}: expected options of this command (see --help)"),
)


def _argparse_message(message: str) -> str:
    for pattern, form in _ARGPARSE:
        m = re.fullmatch(pattern, message)
        if m:
            groups = list(m.groups())
            if "choose from" in pattern:  # 'a', 'b' -> a, b
                groups[2] = groups[2].replace("'", "")
            return form.format(*groups)
    return message


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors read like every other input error: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sim: error: {_argparse_message(message)}\n")


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
