"""Experiments: how a grid, explicit points and a sample expand into runs, the paired replication seeds, the
config hash, quick mode, up-front validation, and the two ways to run an experiment script.

Every run here is tiny (a 3-node line, 1 simulated second at 50 messages/s), so the module takes a few
seconds; the two command-line tests start a fresh Python each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim.cli.run
import sim.sweep.runner
from sim.analysis.report import write_report
from sim.cli.main import main as sim_main
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.sweep.experiment import Experiment, Sample, config_hash, replication_seeds
from sim.sweep.runner import load_experiment, run_experiment

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def small(**settings: object) -> Scenario:
    """A run of about 50 messages over a 3-node line."""
    data: dict[str, object] = {
        "duration": "1s",
        "drain": "1s",
        "topology": {"name": "line", "params": {"n": 3}},
        "links": {"latency": "2ms"},
        "workload": {"rate": "50/s"},
    }
    data.update(settings)
    return Scenario.from_dict(data)


# -- expansion -------------------------------------------------------------------------------------------


def test_grid_is_a_full_factorial_with_the_first_key_slowest() -> None:
    exp = Experiment(
        "g",
        base=small(),
        grid={"links.loss": [0.0, 0.1], "pattern": ["point_to_point", "queue"], "workload.rate": [10, 20]},
    )
    points = exp.parameter_points()
    assert len(points) == 8
    assert points[0] == {"links.loss": 0.0, "pattern": "point_to_point", "workload.rate": 10}
    assert points[1] == {"links.loss": 0.0, "pattern": "point_to_point", "workload.rate": 20}
    assert points[2] == {"links.loss": 0.0, "pattern": "queue", "workload.rate": 10}
    assert points[-1] == {"links.loss": 0.1, "pattern": "queue", "workload.rate": 20}
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 8
    assert exp.swept() == ["links.loss", "pattern", "workload.rate"]


def test_runs_are_point_major_and_apply_the_point() -> None:
    exp = Experiment(
        "g", base=small(), grid={"links.loss": [0.0, 0.1], "topology.params.n": [3, 4]}, replications=3
    )
    runs = exp.runs()
    assert [(r.point, r.replication) for r in runs] == [(p, r) for p in range(4) for r in range(3)]
    for run in runs:
        assert run.params == exp.parameter_points()[run.point]
        assert run.scenario.links.loss == run.params["links.loss"]
        assert run.scenario.topology.params["n"] == run.params["topology.params.n"]
        assert run.scenario.duration == 1.0  # the rest comes from the base


def test_explicit_points_times_grid() -> None:
    exp = Experiment(
        "p",
        base=small(),
        grid={"links.loss": [0.0, 0.1]},
        points=[{"workload.rate": 10, "topology.params.n": 3}, {"workload.rate": 40, "topology.params.n": 5}],
    )
    assert exp.parameter_points() == [
        {"links.loss": 0.0, "workload.rate": 10, "topology.params.n": 3},
        {"links.loss": 0.0, "workload.rate": 40, "topology.params.n": 5},
        {"links.loss": 0.1, "workload.rate": 10, "topology.params.n": 3},
        {"links.loss": 0.1, "workload.rate": 40, "topology.params.n": 5},
    ]
    only_points = Experiment("p", base=small(), points=[{"links.loss": 0.2}, {"links.loss": 0.3}])
    assert only_points.parameter_points() == [{"links.loss": 0.2}, {"links.loss": 0.3}]
    assert Experiment("p", base=small()).parameter_points() == [{}]  # no factor: the base once


def test_labelled_variants_sweep_a_label_and_apply_its_settings() -> None:
    exp = Experiment(
        "v",
        base=small(),
        grid={
            "size": {
                "small": {"workload.size": "100B"},
                "large": {"workload.size": "10KB", "links.loss": 0.1},
            }
        },
    )
    runs = exp.runs()
    assert [r.params for r in runs] == [{"size": "small"}, {"size": "large"}]
    assert runs[0].scenario.workload.size == 100 and runs[0].scenario.links.loss == 0.0
    assert runs[1].scenario.workload.size == 10_000 and runs[1].scenario.links.loss == 0.1


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_sample_covers_its_ranges_and_is_seeded(method: str) -> None:
    ranges = {"links.loss": (0.0, 0.2), "workload.rate": (10.0, 90.0)}
    sample = Sample(8, ranges, method=method, seed=5)  # type: ignore[arg-type]
    points = sample.points()
    assert len(points) == 8
    for p in points:
        assert list(p) == list(ranges)
        for name, (low, high) in ranges.items():
            assert low <= p[name] <= high and isinstance(p[name], float)
    assert points == Sample(8, ranges, method=method, seed=5).points()  # type: ignore[arg-type]
    assert points != Sample(8, ranges, method=method, seed=6).points()  # type: ignore[arg-type]
    for name, (low, high) in ranges.items():  # both methods put exactly one point in each n-th of a range
        strata = sorted(int((p[name] - low) / (high - low) * 8) for p in points)
        assert strata == list(range(8)), (method, name, strata)


def test_lhs_and_sobol_differ() -> None:
    ranges = {"links.loss": (0.0, 0.2)}
    assert Sample(8, ranges, method="lhs").points() != Sample(8, ranges, method="sobol").points()


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_sample_int_ranges_give_ints(method: str) -> None:
    points = Sample(8, {"topology.params.n": (3, 6), "links.loss": (0, 0.1)}, method=method).points()  # type: ignore[arg-type]
    for p in points:
        n = p["topology.params.n"]
        assert type(n) is int and 3 <= n <= 6
        assert isinstance(p["links.loss"], float)  # one float end makes a float range
    exp = Experiment("s", base=small(), sample=Sample(4, {"topology.params.n": (3, 6)}, method=method))  # type: ignore[arg-type]
    for run in exp.runs():
        assert type(run.scenario.topology.params["n"]) is int


def test_sample_combines_with_the_grid() -> None:
    exp = Experiment(
        "s",
        base=small(),
        grid={"pattern": ["point_to_point", "queue"]},
        sample=Sample(4, {"links.loss": (0.0, 0.1)}),
    )
    points = exp.parameter_points()
    assert len(points) == 8
    assert [p["pattern"] for p in points] == ["point_to_point"] * 4 + ["queue"] * 4
    assert [p["links.loss"] for p in points[:4]] == [p["links.loss"] for p in points[4:]]


@pytest.mark.parametrize(
    "sample",
    [
        Sample(4, {"links.loss": (0.1, 0.1)}),
        Sample(4, {"links.loss": (0.2, 0.1)}),
        Sample(0, {"links.loss": (0.0, 0.1)}),
        Sample(4, {}),
    ],
    ids=["empty-range", "reversed-range", "no-points", "no-ranges"],
)
def test_bad_sample_is_a_sim_error(sample: Sample) -> None:
    with pytest.raises(SimError):
        sample.points()
    with pytest.raises(SimError):
        Experiment("s", base=small(), sample=sample).runs()


def test_unknown_sample_method_is_a_sim_error() -> None:
    with pytest.raises(SimError, match="method"):
        Sample(4, {"links.loss": (0.0, 0.1)}, method="halton").points()  # type: ignore[arg-type]


# -- seeds -----------------------------------------------------------------------------------------------


def test_replication_seeds_come_from_a_seed_sequence() -> None:
    children = np.random.SeedSequence(2026).spawn(4)
    expected = [int(c.generate_state(1, dtype=np.uint64)[0]) >> 1 for c in children]
    assert replication_seeds(2026, 4) == expected
    assert all(0 <= s < 2**63 for s in expected)
    assert replication_seeds(2026, 6)[:4] == expected  # more replications keep the first ones (resume)
    assert replication_seeds(2027, 4) != expected


def test_seeds_are_paired_across_points_and_distinct_across_replications() -> None:
    exp = Experiment("s", base=small(), grid={"links.loss": [0.0, 0.05, 0.1]}, replications=4, seed=11)
    runs = exp.runs()
    by_point: dict[int, list[int]] = {}
    for run in runs:
        assert run.scenario.seed == run.seed  # stored in the RunSpec and in its scenario
        by_point.setdefault(run.point, []).append(run.seed)
    assert list(by_point.values()) == [replication_seeds(11, 4)] * 3
    assert len(set(by_point[0])) == 4
    assert len({r.config_hash for r in runs}) == len(runs)


def test_rows_carry_seed_and_config_hash(tmp_path: Path) -> None:
    exp = Experiment("rows", base=small(), grid={"links.loss": [0.0, 0.1]}, replications=2, seed=3)
    frame = run_experiment(exp, out=tmp_path / "r", engine="serial", quiet=True)
    specs = {(s.point, s.replication): s for s in exp.runs()}
    assert len(frame) == len(specs)
    for row in frame.to_dict("records"):
        spec = specs[(row["point"], row["replication"])]
        assert row["seed"] == spec.seed and row["config_hash"] == spec.config_hash
        assert row["links.loss"] == spec.params["links.loss"] and row["status"] == "ok"
    assert frame.groupby("replication")["seed"].nunique().eq(1).all()


def test_negative_experiment_seed_is_a_sim_error() -> None:
    with pytest.raises(SimError):
        Experiment("s", base=small(), seed=-1).runs()


# -- config hash -----------------------------------------------------------------------------------------


def test_config_hash_is_stable() -> None:
    a, b = small(), small()
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) == config_hash(Scenario.from_dict(a.to_dict()))
    assert config_hash(a) == config_hash(small(duration=1.0, workload={"rate": 50}))  # other spellings
    assert len(config_hash(a)) == 16 and int(config_hash(a), 16) >= 0
    exp = Experiment("h", base=small(), grid={"links.loss": [0.0, 0.1]}, replications=2)
    assert [r.config_hash for r in exp.runs()] == [r.config_hash for r in exp.runs()]


def test_config_hash_is_the_same_in_another_process() -> None:
    scenario = small(links={"latency": {"dist": "exponential", "mean": "2ms"}, "loss": 0.01}, seed=42)
    code = (
        "import json, sys; from sim.sweep.experiment import config_hash; "
        "from sim.config.scenario import Scenario; "
        "print(config_hash(Scenario.from_dict(json.loads(sys.argv[1]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(scenario.to_dict())],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert done.stdout.strip() == config_hash(scenario)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"duration": "2s"},
        {"warmup": "0.1s"},
        {"drain": "2s"},
        {"pattern": "queue"},
        {"links.loss": 0.01},
        {"links.latency": "3ms"},
        {"links.bandwidth": "1Gbps"},
        {"topology.params.n": 4},
        {"workload.rate": "51/s"},
        {"workload.size": "1001B"},
        {"delivery.guarantee": "at_least_once"},
        {"broker.prefetch": 7},
        {"trace": True},
        {"queue": {"queue": "orders"}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_config_hash_changes_with_any_setting(change: dict[str, object]) -> None:
    base = small()
    assert config_hash(base.with_updates(change)) != config_hash(base)


# -- quick mode ------------------------------------------------------------------------------------------


def test_quick_mode_divides_the_times_and_caps_replications() -> None:
    exp = Experiment(
        "q",
        base=small(duration="10s", warmup="2s", drain="5s"),
        grid={"links.loss": [0.0, 0.1]},
        replications=5,
        quick_replications=2,
    )
    assert exp.quick_overrides() == {"duration": 1.0, "warmup": 0.2, "drain": 0.5}
    quick, full = exp.runs(quick=True), exp.runs()
    assert len(quick) == 4 and len(full) == 10
    for run in quick:
        s = run.scenario
        assert (s.duration, s.warmup, s.drain) == (1.0, 0.2, 0.5)
        assert s.links.loss == run.params["links.loss"]  # the point still applies
    assert [r.seed for r in quick] == [r.seed for r in full if r.replication < 2]  # the same seeds
    assert not {r.config_hash for r in quick} & {r.config_hash for r in full}


def test_quick_mode_uses_explicit_overrides() -> None:
    exp = Experiment(
        "q",
        base=small(duration="10s"),
        grid={"links.loss": [0.0, 0.1]},
        replications=1,
        quick={"duration": "0.5s", "workload.rate": "5/s"},
        quick_replications=3,
    )
    runs = exp.runs(quick=True)
    assert len(runs) == 2  # min(replications, quick_replications)
    assert all(r.scenario.duration == 0.5 and r.scenario.workload.rate == 5 for r in runs)
    assert all(r.scenario.drain == 1.0 for r in runs)  # untouched by an explicit quick mapping


def test_a_grid_value_wins_over_quick_overrides() -> None:
    exp = Experiment("q", base=small(), grid={"duration": ["2s", "3s"]}, quick={"duration": "0.5s"})
    assert [r.scenario.duration for r in exp.runs(quick=True)] == [2.0, 3.0]


# -- validation before anything runs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"grid": {"links.lossy": [0.0, 0.1]}}, r"point 0 \(links\.lossy=0\.0\): links\.lossy"),
        ({"grid": {"links.loss": [0.0, 1.5]}}, r"point 1 \(links\.loss=1\.5\): links\.loss = 1\.5"),
        (
            {"grid": {"pattern": ["queue", "carrier_pigeon"]}},
            r"point 1 \(pattern='carrier_pigeon'\): pattern",
        ),
        ({"points": [{"workload.rate": 10}, {"workload.rate": -1}]}, r"point 1 \(workload\.rate=-1\)"),
        ({"sample": Sample(2, {"links.loss": (0.5, 1.5)})}, r"point \d \(links\.loss=1\.\d+\): links\.loss"),
        ({"grid": {"nodes.nonsense.deep": [1]}}, r"point 0 \(nodes\.nonsense\.deep=1\)"),
    ],
    ids=["unknown-key", "bad-value", "bad-pattern", "bad-point", "bad-sample", "unknown-table"],
)
def test_a_bad_point_is_named_before_any_run(
    tmp_path: Path, kwargs: dict[str, object], expected: str
) -> None:
    exp = Experiment("bad", base=small(), **kwargs)  # type: ignore[arg-type]
    out = tmp_path / "results"
    with pytest.raises(SimError, match=expected):
        run_experiment(exp, out=out, engine="serial", quiet=True)
    assert not out.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grid": {"links.loss": []}},
        {"grid": {"links.loss": "0.1"}},
        {"grid": {"links.loss": 0.1}},
        {"grid": {"variant": {}}},
        {"points": []},
        {"replications": 0},
        {"name": ""},
        {"name": "a/b"},
    ],
    ids=[
        "empty-list",
        "string",
        "scalar",
        "empty-variants",
        "empty-points",
        "no-replications",
        "no-name",
        "slash",
    ],
)
def test_malformed_experiment_is_a_sim_error(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"name": "bad", "base": small()}
    args.update(kwargs)
    with pytest.raises(SimError) as info:
        Experiment(**args)  # type: ignore[arg-type]
    if "grid" in kwargs:
        assert "grid." in str(info.value)


def test_points_that_give_the_same_scenario_are_refused() -> None:
    # the explicit point overrides the grid's links.loss, so both grid points become one scenario; they
    # would share config hashes, and the journal would silently keep one of them
    exp = Experiment("dup", base=small(), grid={"links.loss": [0.0, 0.1]}, points=[{"links.loss": 0.05}])
    with pytest.raises(SimError) as info:
        exp.runs()
    assert str(info.value) == (
        "points = {'links.loss': 0.05}: expected parameter points that differ "
        "(two combinations of the factors give it)"
    )
    # two values that differ in spelling only: 100/s is 100 per second
    exp = Experiment("same", base=small(), grid={"workload.rate": ["100/s", 100]})
    with pytest.raises(SimError) as info:
        exp.runs()
    assert (
        str(info.value)
        == "point 1 = {'workload.rate': 100}: expected a scenario of its own (point 0 is the same)"
    )
    # points that differ run apart
    runs = Experiment("apart", base=small(), grid={"links.loss": [0.0, 0.1]}, replications=2).runs()
    assert len({r.config_hash for r in runs}) == len(runs) == 4


def test_numpy_values_in_a_grid_are_stored(tmp_path: Path) -> None:
    exp = Experiment("np", base=small(), grid={"topology.params.n": list(np.arange(3, 5))})
    frame = run_experiment(exp, out=tmp_path / "r", engine="serial", quiet=True)
    assert list(frame["topology.params.n"]) == [3, 4]


def test_list_valued_grid_values_are_summarized(tmp_path: Path) -> None:
    exp = Experiment("lists", base=small(), grid={"workload.producers": [["n0"], ["n1"]]})
    frame = run_experiment(exp, out=tmp_path / "r", engine="serial", quiet=True)
    assert len(frame) == 2 and (tmp_path / "r" / "summary.csv").is_file()


def test_mixed_type_grid_values_are_stored(tmp_path: Path) -> None:
    exp = Experiment("mixed", base=small(), grid={"workload.rate": ["50/s", 60]})
    frame = run_experiment(exp, out=tmp_path / "r", engine="serial", quiet=True)
    assert len(frame) == 2


# -- running a script ------------------------------------------------------------------------------------

SCRIPT = '''
"""A tiny experiment for the tests."""
import sys

from sim.analysis.report import write_report
from sim.sweep.experiment import Experiment
from sim.config.scenario import Scenario

EXPERIMENT = Experiment(
    "tiny",
    base=Scenario(
        duration="0.5s",
        drain="0.5s",
        topology={"name": "line", "params": {"n": 3}},
        workload={"rate": "50/s"},
    ),
    grid={"links.loss": [0.0, 0.1]},
    replications=2,
)

if __name__ == "__main__":
    from sim.cli.run import main

    sys.exit(main(EXPERIMENT))
'''


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def _sim() -> str:
    exe = BIN / "sim"
    assert exe.is_file(), f"no sim command next to {sys.executable}"
    return str(exe)


def test_sim_run_file(script: Path, tmp_path: Path) -> None:
    out = tmp_path / "via-sim"
    done = subprocess.run(
        [_sim(), "run", str(script), "--engine", "serial", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"4 runs in {out} (0 failed)" in done.stdout
    assert "4/4 runs" in done.stderr  # progress lines off a terminal
    frame = pd.read_parquet(out / "runs.parquet")
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}


def test_python_file_quietly(script: Path, tmp_path: Path) -> None:
    import matplotlib.font_manager  # noqa: F401  (builds matplotlib's font cache, which would log once)

    out = tmp_path / "via-python"
    done = subprocess.run(
        [sys.executable, str(script), "--engine", "serial", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""  # --quiet prints nothing
    frame = pd.read_parquet(out / "runs.parquet")
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}


def test_load_experiment_finds_it(script: Path) -> None:
    exp = load_experiment(script)
    assert exp.name == "tiny" and len(exp.runs()) == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X = 1\n", "defining EXPERIMENT"),
        ("EXPERIMENT = 42\n", "defining EXPERIMENT"),
        ("import no_such_module_here\n", "imports cleanly"),
        (None, "an existing .py file"),
    ],
    ids=["no-experiment", "not-an-experiment", "import-error", "missing-file"],
)
def test_sim_run_on_a_bad_file_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, expected: str
) -> None:
    path = tmp_path / "bad.py"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "results"
    assert sim_main(["run", str(path), "--engine", "serial", "--out", str(out)]) == 2
    stdout, stderr = capsys.readouterr()
    assert stdout == ""
    assert stderr.startswith("sim: error: experiment file") and stderr.count("\n") == 1
    assert expected in stderr
    assert not out.exists()


def _interrupted(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_sim_run_interrupted_exits_130_with_one_line(
    script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sim.cli.run, "run_experiment", _interrupted)
    assert sim_main(["run", str(script), "--engine", "serial"]) == 130
    stdout, stderr = capsys.readouterr()
    assert stdout == "" and stderr.count("\n") == 1
    assert stderr.startswith("sim: interrupted; finished runs are stored")


def test_python_file_interrupted_exits_130_like_sim_run(
    script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sim.cli.run, "run_experiment", _interrupted)
    try:
        status: object = sim.cli.run.main(load_experiment(script), ["--engine", "serial"])
    except KeyboardInterrupt:
        status = "KeyboardInterrupt escaped"
    assert status == 130


# -- points that do not apply, the headline, fail_on --------------------------------------------------------

CRASH = {"off": {}, "on": {"faults": [{"at": "0.5s", "action": "crash", "target": "n1", "for": "0.2s"}]}}


@pytest.mark.parametrize(
    "condition",
    [["point_to_point"], {"pattern": ["point_to_point"]}, lambda s: s.pattern == "point_to_point"],
    ids=["patterns", "mapping", "predicate"],
)
def test_points_that_do_not_apply_are_not_run(condition: object, tmp_path: Path) -> None:
    exp = Experiment(
        "na",
        base=small(broker={"node": "n1"}),
        grid={"pattern": ["point_to_point", "queue"], "crash": CRASH},
        not_applicable={"crash": {"on": condition}},
        replications=2,
    )
    runs = exp.runs()
    assert sorted({(r.params["pattern"], r.params["crash"]) for r in runs}) == [
        ("point_to_point", "off"),
        ("queue", "off"),
        ("queue", "on"),
    ]
    assert len(runs) == 6  # not a copy of point_to_point's "off" runs
    meta = exp.report_meta()
    assert meta["not_applicable"] == [
        {"point": {"pattern": "point_to_point", "crash": "on"}, "control": {"crash": "off"}}
    ]
    assert meta["fault_windows"] == {"1": [(0.5, 0.7, "crash n1")], "3": [(0.5, 0.7, "crash n1")]}
    frame = run_experiment(exp, engine="serial", out=tmp_path, quiet=True)
    write_report(tmp_path, quiet=True)
    assert len(frame) == 6
    md = (tmp_path / "report.md").read_text()
    assert "| point_to_point | on | n/a |" in md  # shown, as n/a
    assert "crash = on does not apply to point_to_point" in md
    assert json.loads((tmp_path / "meta.json").read_text())["not_applicable"] == meta["not_applicable"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"headline": ["speed"]}, "experiment.headline = 'speed'"),
        ({"headline": "latency_p99"}, "experiment.headline = 'latency_p99'"),
        ({"fail_on": ("slow",)}, "experiment.fail_on = 'slow'"),
        ({"not_applicable": {"nope": {"on": ["queue"]}}}, "not_applicable.nope"),
        ({"not_applicable": {"crash": {"off": ["queue"]}}}, "not_applicable.crash = 'off'"),
        ({"not_applicable": {"crash": {"on": "queue"}}}, "not_applicable.crash.on = 'queue'"),
        ({"not_applicable": {"crash": {"on": {"speed": [1]}}}}, "not_applicable.crash.on = 'speed'"),
        (
            {
                "not_applicable": {"crash": {"on": ["point_to_point"]}},
                "quick_grid": {"crash": {"on": CRASH["on"]}},
            },
            "quick_grid.crash",
        ),
    ],
    ids=[
        "unknown-metric",
        "headline-string",
        "unknown-flag",
        "no-factor",
        "control",
        "string",
        "key",
        "quick",
    ],
)
def test_headline_fail_on_and_not_applicable_are_validated(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SimError, match="^" + field.replace(".", r"\.")) as caught:
        Experiment("v", base=small(), grid={"pattern": ["point_to_point", "queue"], "crash": CRASH}, **kwargs)
    assert "\n" not in str(caught.value)


def test_a_headline_of_known_metrics_is_accepted() -> None:
    exp = Experiment("h", base=small(), headline=["latency_p99", "delivery_ratio"], fail_on=("unstable",))
    assert exp.report_meta()["headline"] == ["latency_p99", "delivery_ratio"]
    assert exp.report_meta()["fail_on"] == ["unstable"]


FAILING = """
import sys

from sim.analysis.report import write_report
from sim.sweep.experiment import Experiment
from sim.config.scenario import Scenario

EXPERIMENT = Experiment(
    "unfinished",
    base=Scenario.from_dict(
        {
            "duration": "1s",
            "drain": "1ms",  # messages sent in the last 20 ms are still on the wire when the run ends
            "topology": {"name": "line", "params": {"n": 3}},
            "links": {"latency": "20ms"},
            "workload": {"rate": "50/s"},
        }
    ),
    grid={"links.loss": [0.0]},
    fail_on=FAIL_ON,
)
"""


@pytest.mark.parametrize(("fail_on", "status"), [(("unfinished",), 1), (("unstable",), 0), ((), 0)])
def test_fail_on_makes_sim_run_exit_1_on_a_flagged_point(
    fail_on: tuple[str, ...], status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "unfinished.py"
    script.write_text(FAILING.replace("FAIL_ON", repr(fail_on)))
    out = tmp_path / "out"
    assert sim_main(["run", str(script), "--engine", "serial", "--quiet", "--out", str(out)]) == status
    err = capsys.readouterr().err.strip()
    if status:
        assert err.startswith("sim: 1 point(s) flagged unfinished") and "links.loss=0.0" in err
        assert len(err.splitlines()) == 1
    else:
        assert "flagged" not in err
    assert (out / "runs.parquet").is_file()  # the results are kept either way
