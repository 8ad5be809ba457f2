"""Experiments: many runs of one base scenario — a grid, explicit points or a space-filling sample — times
replications, each with a stored seed.

>>> from sim.config.scenario import Scenario
>>> exp = Experiment("demo", base=Scenario(duration="2s"), grid={"links.loss": [0.0, 0.1]}, replications=2)
>>> [(r.params["links.loss"], r.replication) for r in exp.runs()]
[(0.0, 0), (0.0, 1), (0.1, 0), (0.1, 1)]
>>> exp.runs()[0].seed == exp.runs()[2].seed  # replication i has the same seed at every point (paired)
True
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.run.checks import check_metrics

__all__ = [
    "FLAGS",
    "Experiment",
    "RunSpec",
    "Sample",
    "check_figures",
    "check_metrics",
    "config_hash",
    "input_files",
    "replication_seeds",
    "topology_digest",
]

FLAGS = ("unstable", "unfinished")
"""What ``Experiment(fail_on=...)`` may name: a point whose runs were not stable, or left work unfinished."""

Condition = Sequence[str] | Mapping[str, Sequence[Any]] | Callable[[Scenario], bool]
"""When a variant does not apply: pattern names, ``{swept key: [values]}`` (all keys match), or a
predicate on the scenario at the point."""


@dataclass(frozen=True, slots=True)
class Sample:
    """A space-filling sample of ``n`` points over numeric ``ranges`` (``{"links.loss": (0.0, 0.1)}``).

    ``method`` is ``"lhs"`` (Latin hypercube) or ``"sobol"`` (scrambled Sobol; ``n`` is best a power of two);
    both from ``scipy.stats.qmc``, seeded with ``seed``. A range given as two ints yields whole numbers.
    """

    n: int
    ranges: Mapping[str, tuple[float, float]]
    method: Literal["lhs", "sobol"] = "lhs"
    seed: int = 0

    def points(self) -> list[dict[str, Any]]:
        from scipy.stats import qmc

        if self.n < 1 or not self.ranges:
            raise SimError("sample", self.n, "n >= 1 points over at least one range")
        if self.method not in ("lhs", "sobol"):
            raise SimError("sample.method", self.method, "lhs or sobol")
        names = list(self.ranges)
        for name, (low, high) in self.ranges.items():
            if not low < high:
                raise SimError(f"sample.ranges.{name}", (low, high), "a range (low, high) with low < high")
        engine = qmc.LatinHypercube if self.method == "lhs" else qmc.Sobol
        unit = engine(d=len(names), seed=self.seed).random(self.n)
        out = []
        for row in unit:
            point: dict[str, Any] = {}
            for name, u in zip(names, row.tolist(), strict=True):
                low, high = self.ranges[name]
                value = low + u * (high - low)
                point[name] = round(value) if isinstance(low, int) and isinstance(high, int) else value
            out.append(point)
        return out


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run of an experiment: its parameter point, replication, seed, scenario and config hash."""

    point: int
    params: dict[str, Any]
    replication: int
    seed: int
    scenario: Scenario
    config_hash: str

    @property
    def run_id(self) -> str:
        """The run's id in results and reports (:func:`sim.sweep.store.run_id`)."""
        from sim.sweep.store import run_id

        return run_id(self.point, self.replication, self.config_hash)


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, so that points hash, compare and serialize like plain values."""
    return value.item() if isinstance(value, np.generic) else value


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Seeds of replications ``0..R-1``: ``SeedSequence(seed)`` spawned ``R`` times, one 63-bit word each."""
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def config_hash(scenario: Scenario) -> str:
    """A stable 16-hex-digit hash of everything that decides a run: the scenario (the seed included), the
    content of the topology file it reads (see :func:`topology_digest`), the code of a plug-in pattern
    (:func:`sim.patterns.registry.digest`) and the version of ``sim``.

    A stored result is reused only while all are unchanged: editing a topology or plug-in file or upgrading
    ``sim`` makes ``sim run`` compute the affected runs again.
    """
    import sim
    from sim.patterns.registry import digest

    settings = scenario.to_dict()
    key: dict[str, Any] = {
        "scenario": settings,
        "topology_file": topology_digest(scenario.topology.name),
        "sim": sim.__version__,
    }
    plugin = digest(scenario.pattern)  # a plug-in's code decides the run too; built-ins add nothing
    if plugin:
        key["pattern_file"] = plugin
        # the digest names the code; the folder the file sits in does not (a moved checkout keeps its keys)
        path, _, cls = scenario.pattern.rpartition(":")
        if path:
            settings["pattern"] = f"{Path(path).name}:{cls}"
    text = json.dumps(key, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_DIGESTS: dict[tuple[str, int, int], str] = {}
"""File digests by (path, modification time in ns, size): a file is read once, not once per run."""


def topology_digest(name: str) -> str:
    """``""`` for a builtin topology; else the SHA-256 of the bytes of the file ``name`` resolves to (a path,
    or a stem in the project's ``topologies/``), as the run will find it; ``"missing"`` if there is none.

    A ``.py`` topology is hashed as its own file: modules it imports are not followed.
    """
    import time

    from sim.run.build import topology_search_path
    from sim.topology import GENERATORS
    from sim.topology.loaders import _find

    if name in GENERATORS:
        return ""
    path = _find(name, topology_search_path())
    if path is None:
        return "missing"
    stat = path.stat()
    where = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    digest = _DIGESTS.get(where)
    if digest is None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        # a file changed in the last seconds may change again within the clock's granularity: not cached
        if time.time_ns() - stat.st_mtime_ns > 2_000_000_000:
            _DIGESTS[where] = digest
    return digest


def input_files(scenario: Scenario) -> dict[str, Path]:
    """The files a run of ``scenario`` reads, by the setting that names them (``{"topology.name": path}``,
    ``{"pattern": path}`` for a plug-in file), found as the run will find them; a builtin topology or
    pattern, an installed plug-in or a file that is missing reads nothing.

    Results folders store their content (:class:`sim.sweep.store.ResultStore`) so that ``sim replay``
    runs on the bytes the sweep read, whatever became of the files since.
    """
    from sim.run.build import topology_search_path
    from sim.topology import GENERATORS
    from sim.topology.loaders import _find

    out: dict[str, Path] = {}
    name = scenario.topology.name
    if name not in GENERATORS:
        path = _find(name, topology_search_path())
        if path is not None:
            out["topology.name"] = path
    from sim.patterns.registry import plugin_file

    plugin = plugin_file(scenario.pattern)  # its path only: the runner reads (and stores) its bytes
    if plugin:  # a plug-in file: replayed as its stored bytes, at its path
        out["pattern"] = Path(plugin)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def _whole(value: Any, field: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SimError(field, value, f"a whole number >= {minimum}")


def _keys(table: Any, field: str, allowed: str) -> None:
    """``table`` is a mapping whose keys are strings (dotted setting names or factor names)."""
    if not isinstance(table, Mapping):
        raise SimError(field, table, allowed)
    for key in table:
        if not isinstance(key, str) or not key:
            raise SimError(field, key, f"{allowed} whose keys are setting names (strings)")


def check_figures(broken: Mapping[str, int]) -> dict[str, float]:
    """A checked run's figures (:func:`check_metrics`) from its violations counted by rule."""
    from sim.run.checks import RULES

    return {
        "violations": float(sum(broken.values())),
        **{f"violations_{r}": float(broken.get(r, 0)) for r in RULES},
    }


def _check_types(exp: Experiment) -> None:
    """Every argument of the right type, so that a script's mistake is one line naming it, not a traceback."""
    if not isinstance(exp.name, str):
        raise SimError("experiment.name", exp.name, "a non-empty name usable as a folder name")
    if not isinstance(exp.base, Scenario):
        raise SimError("experiment.base", exp.base, "a Scenario, e.g. base=Scenario(duration='10s')")
    _keys(exp.grid, "experiment.grid", "a mapping of dotted keys to lists of values")
    if exp.points is not None:
        if isinstance(exp.points, str | Mapping) or not isinstance(exp.points, Sequence):
            raise SimError("experiment.points", exp.points, "a list of parameter points ({key: value})")
        for i, point in enumerate(exp.points):
            _keys(point, f"experiment.points[{i}]", "a parameter point {key: value}")
    if exp.sample is not None:
        if not isinstance(exp.sample, Sample):
            raise SimError("experiment.sample", exp.sample, "a Sample(n, ranges) or None")
        _whole(exp.sample.n, "sample.n", 1)
        _keys(exp.sample.ranges, "sample.ranges", "a mapping of dotted keys to (low, high)")
        for key, bounds in exp.sample.ranges.items():
            if (
                not isinstance(bounds, Sequence)
                or len(bounds) != 2
                or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            ):
                raise SimError(f"sample.ranges.{key}", bounds, "a range (low, high) of two numbers")
    _whole(exp.replications, "experiment.replications", 1)
    _whole(exp.seed, "experiment.seed", 0)
    _whole(exp.quick_replications, "experiment.quick_replications", 1)
    for name in ("quick", "quick_grid"):
        if getattr(exp, name) is not None:
            _keys(getattr(exp, name), f"experiment.{name}", "a mapping of dotted keys to values, or None")
    if exp.quick is not None:  # checked now, not only when --quick is asked for
        try:
            exp.base.with_updates(exp.quick)
        except SimError as error:
            raise error.at("experiment.quick") from None
    if not isinstance(exp.description, str):
        raise SimError("experiment.description", exp.description, "a string")
    if not isinstance(exp.check, bool):
        raise SimError("experiment.check", exp.check, "True or False")


@dataclass
class Experiment:
    """A set of runs sharing a base scenario.

    Parameters
    ----------
    name : str
        Results go to ``results/<name>/`` by default.
    base : Scenario
        What every run starts from.
    grid : mapping of dotted key to list of values, or of a name to labelled variants
        Full factorial over these values (``{"pattern": [...], "links.loss": [0, 0.01]}``). A value that
        is a mapping of labels to settings is a named factor: ``{"broker_crash": {"off": {}, "on":
        {"faults": [...]}}}`` sweeps the label (stored as the column ``broker_crash``) and applies its
        settings.
    points : list of mappings, optional
        Explicit parameter points (zip-style), combined with the grid as a product.
    sample : Sample, optional
        A space-filling sample, combined with grid and points as a product.
    replications : int
        Runs per parameter point; replication ``i`` uses the same seed at every point.
    seed : int
        Base seed of the replication seeds.
    quick : mapping of dotted key to value
        Overrides applied in ``--quick`` mode (default: duration, warm-up and drain divided by 10).
    quick_replications : int
        Replications in quick mode.
    quick_grid : mapping, optional
        Grid entries that replace the grid's in quick mode (for example fewer topology sizes).
    description : str
        The question the experiment answers (shown in reports).
    not_applicable : mapping, optional
        ``{factor: {value: condition}}``: the value of a grid factor does not apply where ``condition``
        holds, e.g. ``{"broker_crash": {"on": ["point_to_point"]}}``. A condition is a list of pattern
        names, a mapping ``{swept key: [values]}`` (every key matches), or a function of the point's
        :class:`Scenario` returning True. Such points are not run (they would repeat the factor's first
        value, its control, which must apply); reports show them as n/a.
    headline : list of str, optional
        The report's headline metrics (names of :data:`sim.run.metrics.METRICS`, or of the measures of
        a plug-in pattern the experiment runs); default: the operation-level set of
        :data:`sim.analysis.report.DEFAULT_HEADLINE`.
    fail_on : tuple of str
        ``"unstable"`` and/or ``"unfinished"``: ``sim run`` exits 1 when a point is flagged so.
    check : bool
        Check every run against its delivery guarantee and ordering (as ``sim simulate --check``) and
        store its broken promises: ``violations`` (all rules) and ``violations_<rule>`` per rule of
        :data:`sim.run.checks.RULES`, numbers that the headline may name.
    rank_by : list of str, optional
        Metrics the report's opening ranks the compared lines (``pattern``, or the first named factor) by
        at each condition, in turn: the first keeps the best and those a paired 95 % interval does not tell
        apart from it, the next ranks those (:func:`sim.analysis.findings.ranking`), e.g. ``["op_failed",
        "op_latency_p99"]``: fewest losses first, then the lowest tail latency.
    """

    name: str
    base: Scenario
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    points: Sequence[Mapping[str, Any]] | None = None
    sample: Sample | None = None
    replications: int = 1
    seed: int = 0
    quick: Mapping[str, Any] | None = None
    quick_replications: int = 2
    quick_grid: Mapping[str, Any] | None = None
    description: str = ""
    not_applicable: Mapping[str, Mapping[Any, Condition]] = field(default_factory=dict)
    headline: Sequence[str] | None = None
    fail_on: Sequence[str] = ()
    check: bool = False
    rank_by: Sequence[str] | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise SimError("experiment.name", self.name, "a non-empty name usable as a folder name")
        for key, values in self.grid.items():
            if isinstance(values, Mapping):
                if not values or not all(isinstance(v, Mapping) for v in values.values()):
                    raise SimError(f"grid.{key}", values, "labelled variants: {label: {setting: value}}")
            elif isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
                raise SimError(f"grid.{key}", values, "a non-empty list of values")
        if self.points is not None and len(self.points) == 0:
            raise SimError("points", self.points, "a non-empty list of parameter points (or None)")
        self._check_not_applicable()
        self._check_headline()
        if self.rank_by is not None:
            self._check_names("experiment.rank_by", self.rank_by)
        for flag in [self.fail_on] if isinstance(self.fail_on, str) else self.fail_on:
            if flag not in FLAGS:
                raise SimError("experiment.fail_on", flag, "a tuple of " + " and ".join(FLAGS))

    def _check_not_applicable(self) -> None:
        if not isinstance(self.not_applicable, Mapping):
            raise SimError("not_applicable", self.not_applicable, "{factor: {value: condition}}")
        for factor, cases in self.not_applicable.items():
            values = self.grid.get(factor)
            if values is None or not isinstance(cases, Mapping):
                allowed = "{factor: {value: condition}} with a factor of the grid: " + ", ".join(self.grid)
                raise SimError(f"not_applicable.{factor}", cases, allowed)
            first = next(iter(values))
            quick = (self.quick_grid or {}).get(factor)
            if quick is not None and next(iter(quick), None) != first:
                raise SimError(
                    f"quick_grid.{factor}",
                    quick,
                    f"values starting with {first!r}, the control of not_applicable.{factor}",
                )
            for value, condition in cases.items():
                if value not in values or value == first:
                    raise SimError(
                        f"not_applicable.{factor}",
                        value,
                        f"a value of grid.{factor} other than its first ({first!r}, the control)",
                    )
                if isinstance(condition, Mapping):
                    known = {*self.grid, *(k for p in self.points or () for k in p)}
                    unknown = [k for k in condition if k not in known]
                    if unknown:
                        raise SimError(f"not_applicable.{factor}.{value}", unknown[0], "a key of the grid")
                elif not callable(condition) and (
                    isinstance(condition, str) or not isinstance(condition, Sequence)
                ):
                    raise SimError(
                        f"not_applicable.{factor}.{value}",
                        condition,
                        "a list of patterns, {key: [values]} or a function of the scenario",
                    )

    def _check_headline(self) -> None:
        if self.headline is not None:
            self._check_names("experiment.headline", self.headline)

    def _check_names(self, where: str, names: Sequence[str]) -> None:
        from sim.run.metrics import METRICS

        if isinstance(names, str) or not names:
            raise SimError(where, names, "a non-empty list of metric names")
        own: dict[str, str] | None = None  # the plug-ins' figures, found if a name is not a built-in's
        for name in names:
            if name in METRICS or (self.check and name in check_metrics()):
                continue
            if own is None:
                own = self.plugin_units()
            if name not in own:
                raise SimError(
                    where,
                    name,
                    "a metric name (sim list metrics; a plug-in's: sim list metrics --scenario FILE; "
                    "with check=True, violations or violations_<rule>)",
                )

    def plugin_units(self) -> dict[str, str]:
        """The summary names of the measures of every plug-in pattern the experiment runs, each with its
        declared unit: the base's pattern, and those the grid, its labelled variants, the quick grid and the
        explicit points set (``{}`` when every pattern is a built-in)."""
        from sim.patterns import PATTERNS
        from sim.patterns.registry import pattern_class
        from sim.run.metrics import measure_docs

        refs = {self.base.pattern}
        for key, values in (*self.grid.items(), *(self.quick_grid or {}).items()):
            if isinstance(values, Mapping):
                refs.update(
                    v["pattern"] for v in values.values() if isinstance(v, Mapping) and "pattern" in v
                )
            elif key == "pattern":
                refs.update(values)
        refs.update(p["pattern"] for p in self.points or () if isinstance(p, Mapping) and "pattern" in p)
        units: dict[str, str] = {}
        for ref in refs:
            if isinstance(ref, str) and ref not in PATTERNS:
                units.update((n, m.unit) for m in pattern_class(ref).measures for n in measure_docs(m))
        return units

    def parameter_points(self, *, quick: bool = False) -> list[dict[str, Any]]:
        """Every parameter point: grid × points × sample (each factor optional)."""
        table = {**self.grid, **(self.quick_grid or {})} if quick else dict(self.grid)
        grid = [dict(zip(table, combo, strict=True)) for combo in itertools.product(*table.values())]
        factors = [grid or [{}]]
        if self.points is not None:
            factors.append([dict(p) for p in self.points])
        if self.sample is not None:
            drawn = self.sample.points()  # whole-number ranges may round two draws to one point: run it once
            factors.append([p for k, p in enumerate(drawn) if p not in drawn[:k]])
        out: list[dict[str, Any]] = []
        for combo in itertools.product(*factors):
            merged: dict[str, Any] = {}
            for part in combo:
                merged.update({k: _plain(v) for k, v in part.items()})
            if merged in out:  # given twice, or a later factor overrode what told two points apart
                raise SimError(
                    "points", merged, "parameter points that differ (two combinations of the factors give it)"
                )
            out.append(merged)
        return out

    def settings(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """The scenario settings a parameter point stands for (labelled variants expanded)."""
        out: dict[str, Any] = {}
        for key, value in point.items():
            variants = self.grid.get(key)
            if isinstance(variants, Mapping):
                out.update(variants[value])
            else:
                out[key] = value
        return out

    def not_applicable_at(self, point: Mapping[str, Any], scenario: Scenario) -> dict[str, Any]:
        """The factors of ``point`` whose value does not apply there, each with its control value."""
        out: dict[str, Any] = {}
        for factor, cases in self.not_applicable.items():
            value = point.get(factor)
            if factor not in point or not isinstance(value, Hashable) or value not in cases:
                continue
            condition = cases[value]
            if isinstance(condition, Mapping):
                hit = all(point.get(k) in list(v) for k, v in condition.items())
            elif callable(condition):
                hit = bool(condition(scenario))
            else:
                hit = point.get("pattern", scenario.pattern) in list(condition)
            if hit:
                out[factor] = next(iter(self.grid[factor]))
        return out

    def report_meta(self, *, quick: bool = False) -> dict[str, Any]:
        """What the report needs from the script: headline, fail_on, the points that do not apply, the
        scheduled fault windows and the units of the plug-ins' measures."""
        base = self.base.with_updates(self.quick_overrides()) if quick else self.base
        skipped, windows = [], {}
        for i, point in enumerate(self.parameter_points(quick=quick)):
            scenario = base.with_updates(self.settings(point))
            control = self.not_applicable_at(point, scenario) if self.not_applicable else {}
            if control:
                skipped.append({"point": point, "control": control})
            # scheduled fault windows, shaded in time plots: (start, end or None, "action target")
            spans = [
                (f.at, None if f.for_ is None else f.at + f.for_, f"{f.action} {f.target or ''}".strip())
                for f in scenario.faults
            ]
            if spans:
                windows[str(i)] = spans
        return {
            "headline": list(self.headline) if self.headline is not None else None,
            "rank_by": list(self.rank_by) if self.rank_by is not None else None,
            "fail_on": [self.fail_on] if isinstance(self.fail_on, str) else list(self.fail_on),
            "not_applicable": skipped,
            "fault_windows": windows,
            "units": self.plugin_units(),  # the report titles a plug-in's measures with their units
        }

    def swept(self) -> list[str]:
        """The dotted keys that vary between runs."""
        keys: dict[str, None] = {}
        for point in self.parameter_points():
            keys.update(dict.fromkeys(point))
        return list(keys)

    def quick_overrides(self) -> dict[str, Any]:
        """What ``--quick`` changes."""
        if self.quick is not None:
            return dict(self.quick)
        b = self.base
        return {"duration": b.duration / 10, "warmup": b.warmup / 10, "drain": b.drain / 10}

    def runs(self, *, quick: bool = False) -> list[RunSpec]:
        """Every run, validated up front: a bad point raises SimError naming it before anything runs."""
        base = self.base.with_updates(self.quick_overrides()) if quick else self.base
        reps = min(self.replications, self.quick_replications) if quick else self.replications
        seeds = replication_seeds(self.seed, reps)
        specs = []
        seen: dict[str, int] = {}  # config hash of a point's scenario (before seeds) -> the point
        for i, point in enumerate(self.parameter_points(quick=quick)):
            try:
                at_point = base.with_updates(self.settings(point))
            except SimError as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise SimError(f"point {i} ({shown}): {exc.field}", exc.value, exc.allowed) from None
            if self.not_applicable and self.not_applicable_at(point, at_point):
                continue  # the same runs as its control point: not run, shown as n/a
            other = seen.setdefault(config_hash(at_point), i)
            if other != i:  # its runs would share config hashes, and the journal would keep one of each
                raise SimError(f"point {i}", point, f"a scenario of its own (point {other} is the same)")
            for r, seed in enumerate(seeds):
                scenario = at_point.with_updates({"seed": seed})
                specs.append(RunSpec(i, point, r, seed, scenario, config_hash(scenario)))
        return specs
