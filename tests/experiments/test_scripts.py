"""Every experiment script in ``experiments/`` loads, validates in quick mode, and runs end to end at toy
size (a second of simulated time, or just past its last scheduled fault; one replication; the first value
of each grid key, but the first two patterns where the script compares patterns and the first and last of
labelled variants), producing a report. New scripts are picked up by the glob."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.analysis.report import write_report
from sim.config.scenario import FaultSettings
from sim.run.metrics import METRICS
from sim.sweep.experiment import Experiment, check_metrics
from sim.sweep.runner import load_experiment, run_experiment

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "experiments").glob("*.py"))
TOY_DURATION = 1.0  # s of simulated time per run, unless a scheduled fault needs longer
TOY_DRAIN = 2.0


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_there_are_experiment_scripts() -> None:
    assert len(SCRIPTS) >= 6, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_script_is_shaped_like_an_experiment(script: Path) -> None:
    """A module docstring opening with the question and naming the run command; EXPERIMENT named after
    the file (so results/<name>/ and ``sim baseline update <name>`` find it); a ``__main__`` entry point."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc, f"{script.name}: no module docstring"
    assert doc.splitlines()[0].rstrip().endswith("?"), "the first line should be the question it answers"
    assert f"sim run experiments/{script.name}" in doc, "the docstring should say how to run it"
    exp = load_experiment(script)
    assert exp.name == script.stem
    assert exp.description == doc.splitlines()[0]
    assert "__main__" in script.read_text(encoding="utf-8")


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_quick_runs_validate(script: Path) -> None:
    exp = load_experiment(script)
    quick = exp.runs(quick=True)  # raises SimError naming a bad point
    assert quick
    assert len({r.config_hash for r in quick}) == len(quick), "two runs with the same configuration"
    assert {r.replication for r in quick} == set(range(min(exp.replications, exp.quick_replications)))
    full = exp.runs()
    assert len(full) >= len(quick)


def _shrink(key: str, values: Any) -> Any:
    """The first value of a grid key; the first two patterns; the first and the last labelled variant
    (so that a variant adding faults or other settings runs too)."""
    if isinstance(values, Mapping):
        labels = list(values)
        return {label: values[label] for label in dict.fromkeys([labels[0], labels[-1]])}
    return list(values)[: 2 if key == "pattern" else 1]


def _fault_end(faults: Any) -> float:
    """Latest time a scheduled fault (or its end) happens, in seconds; 0 without faults."""
    parsed = [f if isinstance(f, FaultSettings) else FaultSettings.model_validate(f) for f in faults or ()]
    return max((f.at + (f.for_ or 0.0) for f in parsed), default=0.0)


def toy(exp: Experiment) -> Experiment:
    """``exp`` shrunk to a handful of one-second runs that still exercise its machinery."""
    grid = {key: _shrink(key, values) for key, values in exp.grid.items()}
    shrunk = dataclasses.replace(
        exp,
        grid=grid,
        points=None if exp.points is None else [dict(exp.points[0])],
        sample=None if exp.sample is None else dataclasses.replace(exp.sample, n=1),
        replications=1,
        quick=None,
        headline=None,
    )
    if exp.headline is not None:  # less the measures of a plug-in the shrunk grid no longer runs
        known = {*METRICS, *check_metrics(), *shrunk.plugin_units()}
        shrunk = dataclasses.replace(shrunk, headline=[m for m in exp.headline if m in known])
    latest = _fault_end(exp.base.faults)
    for point in shrunk.parameter_points():
        latest = max(latest, _fault_end(shrunk.settings(point).get("faults")))
    duration = max(TOY_DURATION, latest + 0.5)
    base = exp.base.with_updates({"duration": duration, "warmup": 0, "drain": TOY_DRAIN})
    return dataclasses.replace(shrunk, base=base)


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_script_runs_at_toy_size(script: Path, tmp_path: Path) -> None:
    original = load_experiment(script)
    exp = toy(original)
    if len(original.grid.get("pattern", ())) > 1:  # a comparison of patterns stays one
        assert len({p["pattern"] for p in exp.parameter_points()}) == 2
    frame = run_experiment(exp, engine="serial", out=tmp_path, quiet=True, base_dir=script.resolve().parent)
    write_report(tmp_path, quiet=True)
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(exp.runs())
    failed = frame[frame["status"] != "ok"]
    assert failed.empty, failed[["point", "error"]].to_string()
    assert (frame["offered"] > 0).all()
    points = exp.parameter_points()
    for row in frame.itertuples(index=False):  # a scheduled fault happened where one was asked for
        scheduled = exp.settings(points[row.point]).get("faults", exp.base.faults)
        if scheduled:
            assert row.faults >= 1, f"point {row.point}: {len(scheduled)} faults scheduled, none recorded"
    for name in ("runs.parquet", "summary.csv", "meta.json", "statistics.csv", "report.md", "report.html"):
        assert (tmp_path / name).is_file(), name
    assert exp.description in (tmp_path / "report.md").read_text(encoding="utf-8")
