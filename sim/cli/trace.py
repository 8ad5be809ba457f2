"""``sim trace SCENARIO --out DIR``: run a scenario with tracing on and write its message-flow views
(:mod:`sim.analysis.flow`: ``flow.html``, ``trace.json``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.core.errors import SimError

ARROW_LIMIT = (
    20_000  # sim.analysis.flow.ARROW_LIMIT, kept here so that --help stays fast (tests hold them equal)
)

__all__ = ["add_parser", "parse_nodes", "parse_obligations", "parse_window"]


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``START:END`` (seconds, or with units: ``0.2s:300ms``) as a pair of seconds."""
    if text is None:
        return None
    from sim.core.units import parse_duration

    start, sep, end = text.partition(":")
    allowed = "START:END in seconds or with units (0.2:0.3, 200ms:300ms) with START < END"
    if not sep:
        raise SimError("--window", text, allowed)
    try:
        window = (parse_duration(start.strip()), parse_duration(end.strip()))
    except (SimError, ValueError, TypeError):
        raise SimError("--window", text, allowed) from None
    if not window[0] < window[1]:
        raise SimError("--window", text, allowed)
    return window


def parse_nodes(text: str | None) -> list[str] | None:
    """``a,b`` as a list of node ids."""
    if text is None:
        return None
    nodes = [n.strip() for n in text.split(",") if n.strip()]
    if not nodes:
        raise SimError("--nodes", text, "node ids separated by commas (h0,hub)")
    return nodes


def parse_obligations(text: str | None) -> list[int] | None:
    """``1,2`` as a list of ledger rows."""
    if text is None:
        return None
    try:
        rows = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        rows = []
    if not rows or min(rows) < 0:
        raise SimError("--obligations", text, "ledger rows (whole numbers >= 0) separated by commas (3,17)")
    return rows


def _cmd_trace(args: argparse.Namespace) -> int:
    from sim.analysis.flow import flow_view, write_view
    from sim.cli.main import _parse_set
    from sim.config.scenario import Scenario
    from sim.run.build import topology_search_path
    from sim.run.simulate import simulate
    from sim.sweep.runner import check_out

    if not args.out:
        raise SimError("--out", args.out, "a folder for flow.html and trace.json")
    check_out(args.out)  # before the run
    window, nodes = parse_window(args.window), parse_nodes(args.nodes)
    obligations = parse_obligations(args.obligations)
    if args.limit < 1:
        raise SimError("--limit", args.limit, "a whole number >= 1")
    scenario = Scenario.from_toml(Path(args.file))
    updates: dict[str, Any] = _parse_set(args.set or [])
    updates["trace"] = True
    scenario = scenario.with_updates(updates)
    result = simulate(scenario, search=topology_search_path())
    view = flow_view(result, window=window, nodes=nodes, obligations=obligations)
    for path in write_view(result, view, Path(args.out), limit=args.limit):
        print(path)  # noqa: T201  (a command's own output)
    n = view.counts()
    print(f"{n['lanes']} lanes, {n['arrows']} arrows, {n['drops']} drops, {n['faults']} fault windows")  # noqa: T201
    return 0


def add_parser(sub: Any) -> None:
    """Register ``sim trace`` on the subcommands ``sub`` of the ``sim`` parser."""
    p = sub.add_parser(
        "trace",
        help="run a scenario with tracing on and write its message-flow diagram and Perfetto trace",
        description="Writes DIR/flow.html (a space-time diagram: one lane per node, an arrow per "
        "transmission) and DIR/trace.json (Chrome/Perfetto trace-event format). See docs/trace.md.",
    )
    p.add_argument("file", help="scenario TOML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for flow.html and trace.json")
    p.add_argument("--window", metavar="START:END", help="only what is under way in this time window (s)")
    p.add_argument("--nodes", metavar="A,B", help="only transmissions from or to these nodes")
    p.add_argument(
        "--obligations", metavar="ROWS", help="only these ledger rows (and the acks answering them)"
    )
    p.add_argument(
        "--limit", type=int, default=ARROW_LIMIT, metavar="N", help="most arrows drawn (default 20000)"
    )
    p.set_defaults(func=_cmd_trace)
