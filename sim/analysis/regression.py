"""Regression checks: compare a fresh quick run of an experiment with its stored baseline.

A baseline is ``results/baselines/<experiment>.csv``: one row per parameter point and metric with the mean
over the quick run's replications, its 95 % CI half-width, the number of replications and a ``tolerance``
cell that is blank unless one figure has a rule of its own.

Runs are deterministic for a seed, so an unchanged simulator reproduces its baseline exactly. A tolerance
says how far a benign change (a refactoring, another order of float sums) may move a figure; a change in
behaviour moves it further and fails the check. A rule is text:

``exact``                  no difference (up to float rounding, 1e-9 relative)
``rel:0.1``                10 % of the baseline value
``abs:0.005``              0.005 in the metric's unit (seconds for latencies)
``rel:0.1 abs:0.0005``     the larger of the two: a relative rule with an absolute floor
``ci``                     the larger 95 % CI half-width of the two runs (the spread between replications)

A figure's rule is the first of: its own ``tolerance`` cell; the ``tolerances=`` argument (metric name or
glob → rule); the sidecar ``results/baselines/<experiment>.toml`` (``[metrics]`` by name or glob, then
``[kinds]``); the default of the metric's kind, which :func:`kind` derives from its name (:data:`KINDS`,
:data:`DEFAULT_RULES`).

>>> kind("op_latency_p99"), kind("delivery_ratio"), kind("msgs_per_delivery"), kind("lost")
('latency', 'ratio', 'cost', 'count')
>>> Rule.parse("rel:0.1 abs:0.0005").allowed(0.073, 0.0, 0.0)  # 10 % of a 73 ms p99
0.0073
"""

from __future__ import annotations

import fnmatch
import logging
import math
import shlex
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim.analysis.report import HEADLINE, _metrics, _swept, aggregate, load_runs
from sim.core.errors import SimError
from sim.sweep.experiment import Experiment
from sim.sweep.runner import load_experiment, run_experiment
from sim.sweep.store import atomic_write

__all__ = [
    "BASELINES",
    "BASELINE_METRICS",
    "DEFAULT_RULES",
    "EXCLUDED",
    "KINDS",
    "Comparison",
    "Rule",
    "Tolerances",
    "accept_command",
    "assert_no_regression",
    "check_baseline",
    "compare",
    "kind",
    "resolve",
    "stored",
    "update_baseline",
]

log = logging.getLogger("sim.analysis.regression")

BASELINES = Path("results") / "baselines"
# What a baseline stores (globs; those the runs report), after the experiment's headline and the report's.
BASELINE_METRICS = (
    "op_*",
    "delivery_ratio",
    "lost",
    "in_flight",
    "duplicates",
    "latency_mean",
    "latency_p50",
    "latency_p99",
    "msgs_per_delivery",
    "bytes_per_delivery",
    "retries",
    "redeliveries",
    "throughput",
    "transmissions",
    "broker_utilization",
    "rtt_p50",
    "rtt_p99",
    "timeouts",
    "chain_latency_p50",
    "chain_latency_p99",
    "stable",
)
# op_* breakdowns and extremes left out, as lost_<reason> and latency_max are (unless a headline names one).
EXCLUDED = ("op_failed_*", "op_latency_max", "op_latency_p999")
# A metric's kind: the first whose globs match its name.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("flag", ("stable", "unstable", "*_flag")),
    ("ratio", ("*_ratio", "*_share", "*utilization*")),
    ("latency", ("latency_*", "*_latency_*", "*_latency", "rtt_*", "*_wait_*", "*_time", "*_time_*")),
    ("cost", ("*_per_*", "*cost*")),
    ("rate", ("throughput*",)),
    ("count", ("*",)),
)
DEFAULT_RULES = {
    "flag": "exact",
    "ratio": "abs:0.005",
    "latency": "rel:0.1 abs:0.0005",
    "cost": "rel:0.02 abs:0.01",
    "rate": "rel:0.02",
    "count": "rel:0.05 abs:2",
}
_LEGACY = "ci"  # what every tolerance cell said before rules by kind; such a column is no override
_NUMBERS = ("n", "mean", "ci95", "tolerance")


def kind(metric: str) -> str:
    """A metric's kind, from its name: ``flag``, ``ratio``, ``latency``, ``cost``, ``rate`` or ``count``."""
    return next(name for name, globs in KINDS if any(fnmatch.fnmatchcase(metric, g) for g in globs))


@dataclass(frozen=True)
class Rule:
    """How far a fresh mean may move from the baseline: the largest of ``relative`` × |baseline|,
    ``absolute``, and (with ``ci``) the larger of the two runs' 95 % CI half-widths."""

    relative: float = 0.0
    absolute: float = 0.0
    ci: bool = False

    @classmethod
    def parse(cls, text: object, where: str = "tolerance") -> Rule:
        allowed = "exact, ci, rel:<fraction>, abs:<amount> or both ('rel:0.1 abs:0.0005')"
        words = str(text).replace(",", " ").split()
        if words == ["exact"]:
            return cls()
        if words == ["ci"]:
            return cls(ci=True)
        parts: dict[str, float] = {}
        for word in words:
            name, _, amount = word.partition(":")
            try:
                value = float(amount)
            except ValueError:
                raise SimError(where, text, allowed) from None
            if name not in ("rel", "abs") or name in parts or not value >= 0 or not math.isfinite(value):
                raise SimError(where, text, allowed)
            parts[name] = value
        if not parts:
            raise SimError(where, text, allowed)
        return cls(relative=parts.get("rel", 0.0), absolute=parts.get("abs", 0.0))

    def allowed(self, baseline: float, baseline_ci: float, fresh_ci: float) -> float:
        bounds = [self.relative * abs(baseline) if math.isfinite(baseline) else 0.0, self.absolute]
        if self.ci:
            bounds += [w for w in (baseline_ci, fresh_ci) if math.isfinite(w)]
        return max(bounds)

    def __str__(self) -> str:
        if self.ci:
            return "ci"
        words = [f"rel:{self.relative:g}"] * bool(self.relative) + [f"abs:{self.absolute:g}"] * bool(
            self.absolute
        )
        return " ".join(words) or "exact"


@dataclass(frozen=True)
class Tolerances:
    """Rules by metric (name or glob, first match wins) and by kind, over :data:`DEFAULT_RULES`."""

    metrics: Mapping[str, Rule] = field(default_factory=dict)
    kinds: Mapping[str, Rule] = field(default_factory=dict)

    @classmethod
    def of(
        cls, metrics: Mapping[str, str] | None = None, kinds: Mapping[str, str] | None = None
    ) -> Tolerances:
        """Parse rules given as text; an unknown kind is an error."""
        for name in kinds or {}:
            if name not in DEFAULT_RULES:
                raise SimError("tolerance kind", name, "one of " + ", ".join(DEFAULT_RULES))
        return cls(
            {m: Rule.parse(r, f"tolerances.{m}") for m, r in (metrics or {}).items()},
            {k: Rule.parse(r, f"kinds.{k}") for k, r in (kinds or {}).items()},
        )

    @classmethod
    def load(cls, path: Path) -> Tolerances:
        """The sidecar file ``<experiment>.toml`` next to a baseline (none: the defaults)."""
        if not path.is_file():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SimError("tolerances file", str(path), f"valid TOML ({exc})") from None
        unknown = sorted(set(data) - {"metrics", "kinds"})
        if unknown:
            raise SimError(f"{path}: table", unknown[0], "[metrics] (name or glob = rule) and [kinds]")
        for table in ("metrics", "kinds"):
            if not isinstance(data.get(table, {}), dict):
                raise SimError(f"{path}: {table}", data[table], f"a table [{table}] of name = rule")
        try:
            return cls.of(data.get("metrics"), data.get("kinds"))
        except SimError as exc:
            raise exc.at(str(path)) from None

    def over(self, base: Tolerances) -> Tolerances:
        """These rules first, then ``base``'s."""
        metrics = dict(self.metrics)  # a name or glob given here wins, and is tried first
        for key, rule in base.metrics.items():
            metrics.setdefault(key, rule)
        return Tolerances(metrics, {**base.kinds, **self.kinds})

    def rule(self, metric: str) -> Rule:
        """The first name or glob that matches, in order (``over`` puts its own first), else the kind's."""
        for glob, rule in self.metrics.items():
            if fnmatch.fnmatchcase(metric, glob):
                return rule
        name = kind(metric)
        return self.kinds.get(name) or Rule.parse(DEFAULT_RULES[name])


@dataclass(frozen=True)
class Comparison:
    """The outcome of a baseline check: every compared figure, and those out of tolerance.

    ``accept`` is the command that makes the fresh numbers the baseline (shown under a failure).
    """

    table: pd.DataFrame
    failures: pd.DataFrame
    new: int = 0
    accept: str = ""

    @property
    def ok(self) -> bool:
        return self.failures.empty

    def describe(self, limit: int | None = 20) -> str:
        """A summary line; on failure the table of figures out of tolerance (the first ``limit`` rows;
        0 or None: all), a count per metric and the command that accepts the new numbers."""
        total = len(self.table)
        exact = int((self.table["delta"] == 0).sum()) if total else 0
        lines = []
        if self.ok:
            lines.append(f"{total} figures within tolerance ({exact} exactly equal)")
        else:
            lines.append(f"{len(self.failures)} of {total} figures out of tolerance ({exact} exactly equal):")
            shown = self.failures.head(limit) if limit else self.failures
            lines.append(_table(shown))
            if len(shown) < len(self.failures):
                lines.append(f"... and {len(self.failures) - len(shown)} more (--limit 0 shows every row)")
            counts = self.table["metric"].value_counts(sort=False).to_dict()
            failed = self.failures["metric"].value_counts(sort=False).to_dict()
            lines.append("by metric: " + ", ".join(f"{m} {n}/{counts[m]}" for m, n in failed.items()))
        if self.new:
            some = (
                "1 figure of the fresh run has"
                if self.new == 1
                else f"{self.new} figures of the fresh run have"
            )
            lines.append(f"{some} no baseline row yet (not compared)")
        if not self.ok and self.accept:
            lines.append(f"If the change is intended, accept the new numbers with:\n  {self.accept}")
        return "\n".join(lines)


def _table(rows: pd.DataFrame) -> str:
    shown = rows.drop(columns=["status"]).copy()
    for col in ("baseline", "fresh", "delta", "allowed"):
        shown[col] = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in shown[col]]
    shown["status"] = rows["status"]
    return shown.to_string(index=False)


def resolve(experiment: str | Path) -> Path:
    """An experiment script: a path, or a name found as ``experiments/<name>.py``."""
    path = Path(experiment)
    if path.suffix == ".py":
        return path
    candidate = Path("experiments") / f"{experiment}.py"
    if candidate.is_file():
        return candidate
    raise SimError("experiment", str(experiment), "an experiment script path or a name in experiments/")


def stored(baselines: Path = BASELINES) -> list[str]:
    """The experiments that have a baseline in ``baselines``, by name."""
    return sorted(p.stem for p in Path(baselines).glob("*.csv"))


def accept_command(experiment: str | Path, baselines: Path = BASELINES) -> str:
    """The ``sim baseline update`` command that rewrites this baseline."""
    where = "" if Path(baselines) == BASELINES else f" --baselines {shlex.quote(str(baselines))}"
    return f"sim baseline update {shlex.quote(str(experiment))}{where}"


def _fresh(
    exp: Experiment, script: Path, folder: Path, engine: str, quiet: bool, what: str
) -> tuple[str, pd.DataFrame, list[str]]:
    """Run the experiment --quick into ``folder``: its name, every metric aggregated, the stored metrics."""
    runs = len(exp.runs(quick=True))
    if not quiet:
        log.info("%s %s: %d quick runs (engine %s)", what, exp.name, runs, engine)
    run_experiment(
        exp,
        quick=True,
        out=folder,
        engine=engine,
        quiet=quiet,
        base_dir=script.resolve().parent,
    )
    frame, meta = load_runs(folder)
    swept = _swept(frame, meta)
    present = [m for m in _metrics(frame, swept) if pd.api.types.is_numeric_dtype(frame[m])]
    agg = aggregate(frame, swept, present).drop(columns=["std"])
    wanted = [*(exp.headline or ()), *HEADLINE, *BASELINE_METRICS]

    def rank(metric: str) -> int:  # the first glob it matches; len(wanted) if none
        return next((i for i, g in enumerate(wanted) if fnmatch.fnmatchcase(metric, g)), len(wanted))

    kept = [m for m in present if not any(fnmatch.fnmatchcase(m, g) for g in EXCLUDED) or m in wanted]
    stored = sorted((m for m in kept if rank(m) < len(wanted)), key=rank)
    return exp.name, agg, stored


def _overrides(previous: pd.DataFrame) -> list[str]:
    """Per-figure tolerance cells, blank where none (``ci`` in every cell, the old default, is none)."""
    if "tolerance" not in previous:
        return [""] * len(previous)
    cells = ["" if pd.isna(c) else str(c).strip() for c in previous["tolerance"]]
    return [""] * len(cells) if cells and all(c == _LEGACY for c in cells) else cells


def update_baseline(
    experiment: str | Path, *, baselines: Path = BASELINES, engine: str = "processes", quiet: bool = True
) -> Path:
    """Run the experiment in quick mode and store its figures as the new baseline; returns the file.

    Per-figure tolerance cells of the previous file are kept.
    """
    script = resolve(experiment)
    with tempfile.TemporaryDirectory() as tmp:
        name, agg, stored = _fresh(
            load_experiment(script), script, Path(tmp), engine, quiet, "baseline update"
        )
    agg = agg[agg["metric"].isin(stored)].copy()  # point by point, metrics in the order of ``stored``
    rank = agg["metric"].map({m: i for i, m in enumerate(stored)})
    point = (agg["metric"] == agg["metric"].iloc[0]).cumsum()
    agg = agg.assign(_p=point, _r=rank).sort_values(["_p", "_r"], kind="stable")
    agg = agg.drop(columns=["_p", "_r"]).reset_index(drop=True)
    agg["tolerance"] = ""
    path = Path(baselines) / f"{name}.csv"
    if path.exists():
        previous = pd.read_csv(path)
        keys = [c for c in previous.columns if c not in _NUMBERS]
        cells = _overrides(previous)
        kept = {_key(r, keys): cell for (_, r), cell in zip(previous.iterrows(), cells, strict=True) if cell}
        if kept and set(keys) <= set(agg.columns):
            agg["tolerance"] = [kept.get(_key(r, keys), "") for _, r in agg.iterrows()]
    atomic_write(path, agg.to_csv(index=False))
    return path


def _key(row: pd.Series, keys: Sequence[str]) -> tuple[str, ...]:
    out = []
    for k in keys:
        v = row[k]
        if isinstance(v, int | float) and not isinstance(v, bool):
            out.append(repr(float(v)))
        else:
            out.append(str(v))
    return tuple(out)


def check_baseline(
    experiment: str | Path,
    *,
    baselines: Path = BASELINES,
    engine: str = "processes",
    metrics: Sequence[str] | None = None,
    tolerances: Mapping[str, str] | None = None,
    quiet: bool = True,
) -> Comparison:
    """Run the experiment in quick mode and compare it with its baseline.

    ``tolerances`` (metric name or glob → rule) come before the sidecar file's and the kind defaults.
    """
    script = resolve(experiment)
    exp = load_experiment(script)
    path = Path(baselines) / f"{exp.name}.csv"
    accept = accept_command(experiment, Path(baselines))
    if not path.exists():
        raise SimError("baseline", str(path), f"an existing baseline (create it: {accept})")
    base = pd.read_csv(path)
    rules = Tolerances.of(tolerances).over(Tolerances.load(path.with_suffix(".toml")))
    with tempfile.TemporaryDirectory() as tmp:
        _, fresh, _ = _fresh(exp, script, Path(tmp), engine, quiet, "baseline check")
    return compare(base, fresh, metrics, rules, accept=accept)


def compare(
    base: pd.DataFrame,
    fresh: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    tolerances: Tolerances | None = None,
    *,
    accept: str = "",
) -> Comparison:
    """Compare two aggregated tables (columns: parameters..., metric, n, mean, ci95[, tolerance])."""
    gone = sorted(set(base["metric"]) - set(fresh["metric"]))
    if gone:
        hint = f" (or accept: {accept})" if accept else " (or update the baseline)"
        raise SimError("baseline metric", gone[0], "a metric the simulator still reports" + hint)
    if metrics is not None:
        base = base[base["metric"].isin(metrics)]
    rules = tolerances or Tolerances()
    keys = [c for c in base.columns if c not in _NUMBERS]
    lacking = [k for k in keys if k not in fresh.columns]
    if lacking:
        hint = f" (or accept: {accept})" if accept else ""
        raise SimError("baseline column", lacking[0], "a parameter the experiment still sweeps" + hint)
    cells = _overrides(base)
    fresh_index = {_key(r, keys): r for _, r in fresh.iterrows()}
    seen: set[tuple[str, ...]] = set()
    rows = []
    for (_, b), cell in zip(base.iterrows(), cells, strict=True):
        key = _key(b, keys)
        seen.add(key)
        f = fresh_index.get(key)
        rule = Rule.parse(cell, f"tolerance of {b['metric']}") if cell else rules.rule(str(b["metric"]))
        row = {**{k: b[k] for k in keys}, "baseline": float(b["mean"]), "rule": str(rule)}
        if f is None:
            rows.append(
                {**row, "fresh": math.nan, "delta": math.nan, "allowed": math.nan, "status": "missing"}
            )
            continue
        was, now = float(b["mean"]), float(f["mean"])
        allowed = rule.allowed(was, float(b["ci95"]), float(f["ci95"]))
        if not (math.isfinite(was) and math.isfinite(now)):
            same = (math.isnan(was) and math.isnan(now)) or was == now  # "not applicable" on both sides
            delta, ok = (0.0 if same else math.nan), same
        else:
            delta = now - was
            ok = abs(delta) <= allowed or math.isclose(now, was, rel_tol=1e-9, abs_tol=1e-12)
        rows.append(
            {**row, "fresh": now, "delta": delta, "allowed": allowed, "status": "ok" if ok else "regressed"}
        )
    order = [*keys, "baseline", "fresh", "delta", "allowed", "rule", "status"]
    table = pd.DataFrame(rows, columns=order)
    compared = set(base["metric"])
    new = sum(1 for k, r in fresh_index.items() if k not in seen and r["metric"] in compared)
    return Comparison(table, table[table["status"] != "ok"].reset_index(drop=True), new=new, accept=accept)


def assert_no_regression(
    experiment: str | Path,
    *,
    baselines: Path = BASELINES,
    engine: str = "serial",
    metrics: Sequence[str] | None = None,
    tolerances: Mapping[str, str] | None = None,
) -> None:
    """For pytest: fail with the table of differences if a quick run strays from the baseline."""
    result = check_baseline(
        experiment, baselines=baselines, engine=engine, metrics=metrics, tolerances=tolerances
    )
    if not result.ok:
        raise AssertionError(result.describe())
