"""Bounded exploration: run a small scenario under every placement of up to K faults on a grid of instants.

A *fault* here is a ``crash``, ``pause`` or ``partition`` (the target alone on one side) of one target node,
starting at one of N instants ``0, D/N, ..., (N-1)·D/N`` of the run's duration D and lasting half a grid
step, ``D/(2N)``, unless told otherwise. Half a step keeps two faults on one target at neighbouring
instants apart: they never touch, so whether they clash does not hang on the last bit of a float. A
*placement* is a set of up to K distinct faults: the order of faults does not matter, and a set the
fault-kind registry refuses (a pause of a crashed node, two partitions at once: the clash check of
:func:`sim.model.faults.injector.validate`) is skipped. Placements come by increasing number of faults,
so the first that breaks a promise has the fewest faults.

Each placement replaces the scenario's own ``[[faults]]`` and ``[[nemesis]]`` and runs once per pattern ×
guarantee (a *cell*) on an experiment engine; :meth:`RunResult.check` says which promises broke. The
results folder holds

- ``explore.parquet``: one row per cell: runs tried, runs that broke a promise, failed runs, the rules
  broken, whether every promise held, and the minimal counterexample (its faults, its file);
- ``explore_runs.parquet``: one row per run: cell, placement, its faults, status, violations per rule;
- ``explore.md``: the cell table in words;
- for each broken cell, ``<pattern>-<guarantee>.toml``, the counterexample as a scenario file
  (``sim simulate FILE --check`` reruns it), and, when a ``views`` writer is given, its flow diagram in
  ``<pattern>-<guarantee>_flow/``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from sim.config.scenario import Scenario
from sim.config.toml import scenario_toml
from sim.core.context import SimContext
from sim.core.errors import SimError
from sim.model.faults.injector import FaultAction, validate
from sim.model.faults.kinds import NETWORK, kind
from sim.patterns import GUARANTEES
from sim.patterns.registry import pattern_class
from sim.run.build import build
from sim.run.checks import RULES, Violation
from sim.run.fault_plan import as_faults, resolve_nodes
from sim.run.simulate import RunResult, simulate
from sim.sweep.engines import ENGINES, run_all
from sim.sweep.progress import Progress
from sim.sweep.runner import check_out
from sim.sweep.store import atomic_write, write_parquet

__all__ = [
    "ACTIONS",
    "COUNTED",
    "FOCUS",
    "MAX_RUNS",
    "Exploration",
    "Fault",
    "Plan",
    "Views",
    "explore",
    "placements",
    "plan",
    "split_names",
]

log = logging.getLogger("sim.sweep.explore")

ACTIONS = ("crash", "pause", "partition")
"""The faults placed, in the order they are enumerated at each instant."""
MAX_RUNS = 2000
"""The most runs an exploration makes unless told it may make more (``--max-runs``)."""
COUNTED = 100_000
"""The most placements counted one by one: beyond, a plan is refused with an upper bound (enumerating every
set of, say, 5 of 180 faults would take longer than any run)."""

FOCUS = 20
"""The most broken obligations a counterexample's diagram shows when the whole run is too big to draw."""


class Views(Protocol):
    """Writes a traced run's flow diagram into a folder, optionally only some obligations (ledger rows),
    and returns the files: ``sim.analysis.flow.write_views``. A SimError says it cannot (too many arrows)."""

    def __call__(
        self, result: RunResult, out: Path, *, obligations: Collection[int] | None = None
    ) -> Sequence[Path]: ...


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault of a placement: ``action`` on node ``target`` from ``at`` for ``length`` seconds."""

    at: float
    action: str
    target: str
    length: float

    def table(self) -> dict[str, Any]:
        """The fault as a ``[[faults]]`` table: :meth:`scheduled` as a scenario writes it (one encoding of
        the fault, :func:`sim.run.fault_plan.as_faults`); a partition puts the target alone in a group."""
        (entry,) = as_faults([self.scheduled()])
        return entry

    def scheduled(self) -> FaultAction:
        """The fault as the injector schedules it (for the registry's clash check)."""
        if kind(self.action).targets == NETWORK:
            params = {"groups": [[self.target]], "one_way": False}
            return FaultAction(self.at, self.action, (), params, self.length)
        return FaultAction(self.at, self.action, (self.target,), {}, self.length)

    def describe(self) -> str:
        return f"{self.action} {self.target} at {self.at:g} s for {self.length:g} s"


def placements(
    faults: Sequence[Fault], most: int, duration: float, *, limit: int | None = None
) -> list[tuple[Fault, ...]]:
    """Every set of up to ``most`` of ``faults`` that the fault-kind registry accepts, by increasing size
    (then in the order of ``faults``); the empty placement (no fault) comes first. With ``limit``, the
    enumeration stops at ``limit + 1`` placements (enough to tell that there are more)."""
    out: list[tuple[Fault, ...]] = []
    for size in range(most + 1):
        for chosen in itertools.combinations(faults, size):
            try:
                validate([f.scheduled() for f in chosen], duration)
            except SimError:  # a clash: the registry refuses this schedule
                continue
            out.append(chosen)
            if limit is not None and len(out) > limit:
                return out
    return out


@dataclass(frozen=True)
class Plan:
    """What an exploration will run: its cells (pattern × guarantee) and its placements."""

    scenario: Scenario
    """The scenario explored, without its own faults and nemeses."""
    cells: tuple[tuple[str, str], ...]
    targets: tuple[str, ...]
    instants: tuple[float, ...]
    length: float
    most: int
    actions: tuple[str, ...]
    placements: tuple[tuple[Fault, ...], ...]
    names: dict[str, str] = field(default_factory=dict)
    """Each cell's pattern by its name, when that differs from the scenario's ``pattern`` (a plug-in's
    ``file.py:Class``)."""

    def name(self, pattern: str) -> str:
        """A pattern's short name: a plug-in's own ``name``, a built-in's as is."""
        return self.names.get(pattern, pattern)

    @property
    def runs(self) -> int:
        return len(self.placements) * len(self.cells)

    def describe(self) -> str:
        """One line: how many placements of what, times how many cells."""
        cells = ", ".join(f"{self.name(p)}/{g}" for p, g in self.cells)
        return (
            f"{len(self.placements):,} placements of up to {self.most} fault(s) ({', '.join(self.actions)} "
            f"of {', '.join(self.targets)}; {len(self.instants)} instant(s) {self.step:g} s apart, each "
            f"fault {self.length:g} s) x {len(self.cells)} cell(s) ({cells}) = {self.runs:,} runs"
        )

    @property
    def step(self) -> float:
        return self.scenario.duration / len(self.instants)

    def scenario_for(self, cell: tuple[str, str], placement: Sequence[Fault]) -> Scenario:
        """The scenario of one run: the cell's pattern and guarantee, the placement's faults."""
        pattern, guarantee = cell
        return self.scenario.with_updates(
            {
                "pattern": pattern,
                "delivery.guarantee": guarantee,
                "faults": [f.table() for f in placement],
                "nemesis": [],
            }
        )


def plan(
    scenario: Scenario,
    *,
    most: int,
    grid: int,
    targets: Sequence[str] | None = None,
    patterns: Sequence[str] | None = None,
    guarantees: Sequence[str] | None = None,
    length: float | None = None,
    actions: Sequence[str] = ACTIONS,
    search: Sequence[Path] = (),
) -> Plan:
    """Every placement of up to ``most`` faults on ``grid`` instants, and the cells to run them in.

    ``targets`` are node ids or selectors (``broker``, ``consumers``, ``role:<role>`` ...; default: the
    broker, or the consumers when the scenario has no broker); ``patterns`` default to the scenario's,
    ``guarantees`` to every guarantee; ``length`` (seconds) to half a grid step.
    """
    if isinstance(most, bool) or not isinstance(most, int) or most < 0:
        raise SimError("--faults", most, "a whole number >= 0")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise SimError("--grid", grid, "a whole number >= 1")
    for a in actions:
        if a not in ACTIONS:
            raise SimError("actions", a, "one of " + ", ".join(ACTIONS))
    gars = tuple(dict.fromkeys(guarantees or GUARANTEES))
    for g in gars:
        if g not in GUARANTEES:
            raise SimError("--guarantees", g, "one of " + ", ".join(GUARANTEES))
    base = scenario.with_updates({"faults": [], "nemesis": [], "trace": False})
    step = base.duration / grid
    span = step / 2 if length is None else float(length)
    if not 0 < span < math.inf:
        raise SimError("--length", length, "a duration > 0")
    instants = tuple(i * step for i in range(grid))
    pats = tuple(dict.fromkeys(_pattern(base, p) for p in patterns or (scenario.pattern,)))
    cells = tuple(itertools.product(pats, gars))
    for p, g in cells:  # a cell the scenario cannot take is refused now, not in every run
        base.with_updates({"pattern": p, "delivery.guarantee": g})
    names = {p: pattern_class(p).name for p in pats if pattern_class(p).name != p}
    nodes = _targets(base, targets, search)
    faults = [Fault(t, a, n, span) for t in instants for a in actions for n in nodes]
    chosen = placements(faults, most, base.duration, limit=COUNTED)
    if len(chosen) > COUNTED:
        bound = sum(math.comb(len(faults), k) for k in range(most + 1))
        raise SimError(
            "--faults",
            most,
            f"fewer placements than {bound:,} sets of up to {most} of {len(faults)} faults "
            f"(more than {COUNTED:,} even without the clashing ones); lower --faults or --grid, or name "
            f"fewer --targets",
        )
    return Plan(base, cells, nodes, instants, span, most, tuple(actions), tuple(chosen), names)


def _pattern(scenario: Scenario, given: str) -> str:
    """The pattern as the scenario holds it (a plug-in's path made absolute); SimError naming --patterns."""
    try:
        return scenario.with_updates({"pattern": given}).pattern
    except SimError as exc:
        if exc.field != "pattern":
            raise
        raise SimError("--patterns", given, exc.allowed) from None


def _targets(scenario: Scenario, targets: Sequence[str] | None, search: Sequence[Path]) -> tuple[str, ...]:
    """Node ids named by ``targets`` in the scenario's world (built, never run)."""
    world = build(SimContext.from_seed(scenario.seed), scenario, search=search)

    def resolve(names: Sequence[str]) -> tuple[str, ...]:
        return resolve_nodes(
            list(names),
            world.graph,
            "--targets",
            broker=world.default_broker,
            producers=world.workload.producers,
            consumers=world.workload.consumers,
        )

    if targets:
        return resolve(targets)
    try:
        return resolve(["broker"])
    except SimError:  # no broker in this scenario: its consumers
        return resolve(["consumers"])


@dataclass
class Exploration:
    """What :func:`explore` found and wrote."""

    plan: Plan
    table: pd.DataFrame
    """One row per cell (``explore.parquet``)."""
    runs: pd.DataFrame = field(repr=False)
    """One row per run (``explore_runs.parquet``)."""
    files: list[Path] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """Whether every promise held in every cell."""
        return bool(self.table["held"].all())


def explore(
    exploration: Plan,
    out: Path | str,
    *,
    engine: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    max_runs: int = MAX_RUNS,
    quiet: bool = False,
    views: Views | None = None,
    search: Sequence[Path] = (),
) -> Exploration:
    """Run every placement of ``exploration`` in every cell and write the results folder ``out``.

    Raises SimError before anything runs when the plan has more than ``max_runs`` runs, or the engine or
    the folder cannot be used.
    """
    p = exploration
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise SimError("--max-runs", max_runs, "a whole number >= 1")
    if p.runs > max_runs:
        raise SimError(
            "--max-runs",
            max_runs,
            f"at least {p.runs:,} to run every placement ({len(p.placements):,} placements x "
            f"{len(p.cells)} cell(s)); raise --max-runs, or lower --faults or --grid",
        )
    if engine not in ENGINES:
        raise SimError("--engine", engine, "one of " + ", ".join(ENGINES))
    folder = check_out(out)
    runs = [(c, i) for c in p.cells for i in range(len(p.placements))]
    paths = [str(s) for s in search]
    payloads = [
        {
            "scenario": p.scenario_for(cell, p.placements[i]).to_dict(),
            "params": {},
            "point": n,
            "replication": 0,
            "seed": p.scenario.seed,
            "config_hash": f"{n:016x}",
            "search": paths,
            "check": True,
        }
        for n, (cell, i) in enumerate(runs)
    ]
    progress = Progress(len(payloads), quiet=quiet)
    rows: dict[int, dict[str, Any]] = {}

    def on_row(row: dict[str, Any]) -> None:
        rows[int(row["point"])] = row
        progress.update(row["status"] == "ok")
        if row["status"] != "ok":
            log.warning("run %d failed: %s", row["point"], row["error"])

    run_all(payloads, on_row, engine=engine, workers=workers, scheduler=scheduler)
    frame = _runs_frame(p, runs, rows)
    cells = _cells(p, frame)
    files = [folder / "explore_runs.parquet", folder / "explore.parquet"]
    _forget(folder)
    write_parquet(frame, files[0])
    for cell, record in zip(p.cells, cells, strict=True):
        if not record["broken"]:
            continue
        stem = f"{record['pattern']}-{cell[1]}"
        scenario = p.scenario_for(cell, p.placements[record["placement"]])
        path = folder / f"{stem}.toml"
        head = (
            f"# sim explore: the smallest fault schedule found under which {record['pattern']} with "
            f"{cell[1]} breaks {record['counterexample_rules']}.\n"
            f"# Rerun it:  sim simulate {path.name} --check\n\n"
        )
        atomic_write(path, head + scenario_toml(scenario))
        record["scenario_file"] = path.name
        files.append(path)
        if views is not None:  # rerun with a trace (which changes no number) for the diagram
            result = simulate(scenario.with_updates({"trace": True}), search=search)
            drawn, record["flow_shows"] = _draw(views, result, folder / f"{stem}_flow", result.check())
            if drawn:
                files += drawn
                record["flow"] = f"{stem}_flow"
    table = pd.DataFrame.from_records(cells)
    write_parquet(table, files[1])
    markdown = folder / "explore.md"
    atomic_write(markdown, _markdown(p, cells))
    files.append(markdown)
    return Exploration(p, table, frame, files)


def _forget(folder: Path) -> None:
    """Remove the counterexamples an earlier exploration wrote into ``folder`` (as its table lists them), so
    that none outlives a cell that now holds; nothing else is touched."""
    table = folder / "explore.parquet"
    if not table.is_file():
        return
    try:
        old = pd.read_parquet(table, columns=["scenario_file", "flow"])
    except Exception:  # not a table this module wrote: leave everything as it is
        return
    for name in old["scenario_file"]:
        if name and Path(name).name == name:
            (folder / name).unlink(missing_ok=True)
    for name in old["flow"]:
        where = folder / name
        if name and Path(name).name == name and where.is_dir():
            for view in ("flow.html", "trace.json"):
                (where / view).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # something else is in it: it stays
                where.rmdir()


def _draw(
    views: Views, result: RunResult, out: Path, violations: Sequence[Violation]
) -> tuple[list[Path], str]:
    """The diagram of the whole run or, when that is too big, of its first broken obligations; and what it
    shows (or why there is none)."""
    try:
        return list(views(result, out)), "the whole run"
    except SimError:  # too many arrows for one diagram
        pass
    rows = sorted({v.obligation for v in violations})[:FOCUS]
    try:
        drawn = list(views(result, out, obligations=rows))
    except SimError as exc:
        log.warning("no flow diagram for %s: %s", out.name, exc)
        return [], f"nothing ({exc})"
    return drawn, "broken obligations " + ", ".join(map(str, rows))


def _runs_frame(
    p: Plan, runs: Sequence[tuple[tuple[str, str], int]], rows: dict[int, dict[str, Any]]
) -> pd.DataFrame:
    records = []
    index = {cell: n for n, cell in enumerate(p.cells)}
    for n, (cell, i) in enumerate(runs):
        row = rows.get(n, {"status": "missing", "error": "no row came back"})
        broken = row.get("_violations") or {}
        placement = p.placements[i]
        records.append(
            {
                "cell": index[cell],
                "pattern": p.name(cell[0]),
                "guarantee": cell[1],
                "placement": i,
                "faults": len(placement),
                "schedule": "; ".join(f.describe() for f in placement),
                "status": row["status"],
                "error": row["error"],
                "violations": int(sum(broken.values())),
                **{rule: int(broken.get(rule, 0)) for rule in RULES},
                **{m: row.get(m, math.nan) for m in ("offered", "delivered", "lost", "duplicates")},
            }
        )
    return pd.DataFrame.from_records(records)


def _cells(p: Plan, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per cell: its runs, what broke, and the first breaking placement with the fewest faults."""
    records: list[dict[str, Any]] = []
    for n, (pattern, guarantee) in enumerate(p.cells):
        mine = frame[frame["cell"] == n]
        ok = mine[mine["status"] == "ok"]
        broken = ok[ok["violations"] > 0]
        first = broken.sort_values(["faults", "placement"], kind="stable").head(1)
        rules = [r for r in RULES if (broken[r] > 0).any()]
        records.append(
            {
                "pattern": p.name(pattern),
                "guarantee": guarantee,
                "runs": len(mine),
                "broken": len(broken),
                "failed": int((mine["status"] != "ok").sum()),
                "held": broken.empty and len(ok) == len(mine),
                "rules": ",".join(rules),
                "min_faults": int(first["faults"].iloc[0]) if len(first) else -1,
                "placement": int(first["placement"].iloc[0]) if len(first) else -1,
                "counterexample": str(first["schedule"].iloc[0]) if len(first) else "",
                "counterexample_rules": (
                    ",".join(r for r in RULES if first[r].iloc[0] > 0) if len(first) else ""
                ),
                "scenario_file": "",
                "flow": "",
                "flow_shows": "",
            }
        )
    return records


def _markdown(p: Plan, cells: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"# Exploration of {p.name(p.scenario.pattern)} on {p.scenario.topology.name}, "
        f"seed {p.scenario.seed}",
        "",
        p.describe() + ".",
        "",
        "| pattern | guarantee | runs | broken | failed | every promise held | rules broken "
        "| minimal counterexample | faults | files |",
        "|---|---|---:|---:|---:|---|---|---|---:|---|",
    ]
    for r in cells:
        files = ", ".join(f"`{name}`" for name in (r["scenario_file"], r["flow"]) if name)
        shown = r["counterexample"] or ("(no fault)" if r["min_faults"] == 0 else "-")
        lines.append(
            f"| {r['pattern']} | {r['guarantee']} | {r['runs']} | {r['broken']} | {r['failed']} | "
            f"{'yes' if r['held'] else 'no'} | {r['rules'] or '-'} | {shown} | "
            f"{r['min_faults'] if r['min_faults'] >= 0 else '-'} | {files or '-'} |"
        )
    drawn = [f"- `{r['flow']}/flow.html`: {r['flow_shows']}" for r in cells if r["flow"]]
    if drawn:
        lines += [
            "",
            "Flow diagrams of the counterexamples (`trace.json` beside each opens in Perfetto):",
            *drawn,
        ]
    lines += [
        "",
        "A counterexample is the breaking placement with the fewest faults (the earliest of those); "
        "`sim simulate <file> --check` reruns it.",
    ]
    return "\n".join(lines) + "\n"


def split_names(names: Collection[str] | None) -> tuple[str, ...] | None:
    """Names given as ``a,b`` (repeatable) on the command line, without blanks (``None`` when none are)."""
    if not names:
        return None
    out = tuple(n.strip() for item in names for n in item.split(",") if n.strip())
    return out or None
