"""Regression tests on metrics: compare a fresh quick run of an experiment against a stored baseline.

A baseline is ``results/baselines/<experiment>.csv``: one row per parameter point and metric with the mean,
its 95 % CI half-width, the number of replications and a tolerance:

- ``ci`` (default): the fresh mean may differ by up to the larger of the two CI half-widths;
- ``rel:0.05``: by up to 5 % of the baseline value;
- ``abs:0.002``: by up to 0.002 in the metric's unit.

Edit the ``tolerance`` column to tighten or loosen one metric. Runs are deterministic for a seed, so an
unchanged simulator reproduces its baseline exactly; a tolerance says how much an intended change may move.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim.errors import SimError
from sim.report import HEADLINE, _swept, aggregate, load_runs
from sim.store import atomic_write
from sim.sweep import load_experiment, run_experiment

__all__ = ["BASELINES", "Comparison", "assert_no_regression", "check_baseline", "resolve", "update_baseline"]

BASELINES = Path("results") / "baselines"
DEFAULT_METRICS = (*HEADLINE, "latency_mean", "throughput", "transmissions")


@dataclass(frozen=True)
class Comparison:
    """The outcome of a baseline check: every compared row, and the ones out of tolerance."""

    table: pd.DataFrame
    failures: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.failures.empty

    def describe(self, limit: int = 20) -> str:
        if self.ok:
            return f"{len(self.table)} figures within tolerance"
        shown = self.failures.head(limit).to_string(index=False)
        more = f"\n... and {len(self.failures) - limit} more" if len(self.failures) > limit else ""
        return f"{len(self.failures)} of {len(self.table)} figures out of tolerance:\n{shown}{more}"


def resolve(experiment: str | Path) -> Path:
    """An experiment script: a path, or a name found as ``experiments/<name>.py``."""
    path = Path(experiment)
    if path.suffix == ".py":
        return path
    candidate = Path("experiments") / f"{experiment}.py"
    if candidate.is_file():
        return candidate
    raise SimError("experiment", str(experiment), "an experiment script path or a name in experiments/")


def _fresh(script: Path, folder: Path, engine: str) -> tuple[str, pd.DataFrame]:
    exp = load_experiment(script)
    run_experiment(
        exp, quick=True, out=folder, engine=engine, quiet=True, report=False, base_dir=script.resolve().parent
    )
    frame, meta = load_runs(folder)
    swept = _swept(frame, meta)
    metrics = [m for m in DEFAULT_METRICS if m in frame.columns and frame[m].notna().any()]
    agg = aggregate(frame, swept, metrics)
    return exp.name, agg.drop(columns=["std"])


def update_baseline(
    experiment: str | Path, *, baselines: Path = BASELINES, engine: str = "processes"
) -> Path:
    """Run the experiment in quick mode and store its figures as the new baseline; returns the file."""
    script = resolve(experiment)
    with tempfile.TemporaryDirectory() as tmp:
        name, agg = _fresh(script, Path(tmp), engine)
    old = baselines / f"{name}.csv"
    agg["tolerance"] = "ci"
    if old.exists():  # keep tolerances someone edited
        previous = pd.read_csv(old)
        keys = [c for c in previous.columns if c not in ("n", "mean", "ci95", "tolerance")]
        kept = previous[[*keys, "tolerance"]].astype({k: str for k in keys})
        merged = agg.astype({k: str for k in keys if k in agg}).merge(
            kept, on=keys, how="left", suffixes=("", "_old")
        )
        agg["tolerance"] = merged["tolerance_old"].fillna("ci").to_numpy()
    atomic_write(old, agg.to_csv(index=False))
    return old


def _allowed(tolerance: str, base: pd.Series, fresh: pd.Series) -> float:
    kind, _, amount = str(tolerance).partition(":")
    if kind == "ci":
        widths = [w for w in (base["ci95"], fresh["ci95"]) if isinstance(w, float) and math.isfinite(w)]
        return max([*widths, 1e-12])
    try:
        value = float(amount)
    except ValueError:
        raise SimError("tolerance", tolerance, "ci, rel:<fraction> or abs:<amount>") from None
    if kind == "rel":
        return abs(float(base["mean"])) * value
    if kind == "abs":
        return value
    raise SimError("tolerance", tolerance, "ci, rel:<fraction> or abs:<amount>")


def check_baseline(
    experiment: str | Path,
    *,
    baselines: Path = BASELINES,
    engine: str = "processes",
    metrics: Sequence[str] | None = None,
) -> Comparison:
    """Run the experiment in quick mode and compare it with its baseline."""
    script = resolve(experiment)
    name = load_experiment(script).name
    path = baselines / f"{name}.csv"
    if not path.exists():
        raise SimError(
            "baseline", str(path), f"an existing baseline (create it: sim baseline update {experiment})"
        )
    base = pd.read_csv(path)
    with tempfile.TemporaryDirectory() as tmp:
        _, fresh = _fresh(script, Path(tmp), engine)
    return compare(base, fresh, metrics)


def compare(base: pd.DataFrame, fresh: pd.DataFrame, metrics: Sequence[str] | None = None) -> Comparison:
    """Compare two aggregated tables (columns: parameters..., metric, n, mean, ci95[, tolerance])."""
    gone = sorted(set(base["metric"]) - set(fresh["metric"]))
    if gone:
        raise SimError(
            "baseline metric", gone[0], "a metric the simulator still reports (update the baseline)"
        )
    if metrics is not None:
        base = base[base["metric"].isin(metrics)]
    keys = [c for c in base.columns if c not in ("n", "mean", "ci95", "tolerance")]
    fresh_index = {tuple(str(r[k]) for k in keys): r for _, r in fresh.iterrows()}
    rows = []
    for _, b in base.iterrows():
        key = tuple(str(b[k]) for k in keys)
        f = fresh_index.get(key)
        if f is None:
            rows.append(
                {
                    **{k: b[k] for k in keys},
                    "baseline": b["mean"],
                    "fresh": math.nan,
                    "delta": math.nan,
                    "allowed": math.nan,
                    "status": "missing",
                }
            )
            continue
        allowed = _allowed(b.get("tolerance", "ci"), b, f)
        both_nan = not math.isfinite(b["mean"]) and not math.isfinite(f["mean"])
        delta = 0.0 if both_nan else float(f["mean"]) - float(b["mean"])
        ok = both_nan or (math.isfinite(delta) and abs(delta) <= allowed)
        rows.append(
            {
                **{k: b[k] for k in keys},
                "baseline": b["mean"],
                "fresh": f["mean"],
                "delta": delta,
                "allowed": allowed,
                "status": "ok" if ok else "regressed",
            }
        )
    table = pd.DataFrame(rows)
    return Comparison(table, table[table["status"] != "ok"].reset_index(drop=True))


def assert_no_regression(
    experiment: str | Path,
    *,
    baselines: Path = BASELINES,
    engine: str = "serial",
    metrics: Sequence[str] | None = None,
) -> None:
    """For pytest: fail with the table of differences if a quick run strays from the baseline."""
    result = check_baseline(experiment, baselines=baselines, engine=engine, metrics=metrics)
    if not result.ok:
        raise AssertionError(result.describe())
