"""experiments/plugin_patterns.py: the three plug-in examples swept from their scenario files on the
processes engine, ``--quick``, each run checked against its guarantee; the report names each plug-in's
measures with their units. Also: an experiment's headline may name a plug-in's measures, and only those of
plug-ins it runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from sim import Experiment, Scenario, simulate
from sim.cli.main import main
from sim.core.errors import SimError
from sim.run.checks import RULES
from sim.sweep.runner import load_experiment, run_experiment
from sim.sweep.store import ResultStore

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "plugin_patterns.py"
OWN = {  # each plug-in's own counts (the headline's), with the unit its Measure declares
    "broadcast": {"broadcasts": "broadcasts"},
    "scatter_gather": {"calls": "calls", "gathered": "calls", "spare_replies": "replies"},
    "saga": {"sagas": "sagas", "committed": "sagas", "compensated": "sagas", "inconsistent": "sagas"},
}
FAULTS = ["scenario", "none", "producer_crashes"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """``sim run experiments/plugin_patterns.py --quick --engine processes``, once for the module."""
    out = tmp_path_factory.mktemp("plugin_patterns")
    argv = ["run", str(SCRIPT), "--quick", "--engine", "processes", "--workers", "2", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    return out, pd.read_parquet(out / "runs.parquet")


def test_each_plugin_runs_at_every_point_with_its_own_measures(swept: tuple[Path, pd.DataFrame]) -> None:
    _, runs = swept
    assert (runs["status"] == "ok").all(), runs.loc[runs["status"] != "ok", "error"].tolist()
    assert runs.groupby("plugin").size().to_dict() == {name: 6 for name in OWN}  # 3 fault schedules x 2
    assert sorted(runs["faults_from"].unique()) == sorted(FAULTS)
    for plugin, own in OWN.items():
        mine = runs[runs["plugin"] == plugin]
        assert (mine["op_offered"] > 0).all()
        for name in own:  # its counts in its runs, none in the others'
            assert mine[name].notna().all(), (plugin, name)
            assert runs.loc[runs["plugin"] != plugin, name].isna().all(), (plugin, name)
        first = mine.iloc[0]
        assert first["config_hash"] in {p.stem for p in (swept[0] / "runs").glob("*.json")}
    saga = runs[runs["plugin"] == "saga"]
    assert (saga["committed"] + saga["compensated"] == saga["sagas"]).all()
    assert (saga["inconsistent"] == 0).all()


def test_every_run_records_its_check(swept: tuple[Path, pd.DataFrame]) -> None:
    _, runs = swept
    per_rule = [f"violations_{rule}" for rule in RULES]
    assert runs[["violations", *per_rule]].notna().all().all()  # checked, broken or not
    assert (runs["violations"] == runs[per_rule].sum(axis=1)).all()
    crashing = runs["faults_from"] == "producer_crashes"
    held = runs[~crashing | (runs["plugin"] == "saga")]  # the saga, at most once, promises no delivery
    assert (held["violations"] == 0).all(), held[["plugin", "faults_from", "violations"]]
    broken = runs[crashing & (runs["plugin"] != "saga")]
    assert len(broken) == 4 and (broken["violations_no_loss"] > 0).all()
    assert (broken["violations"] == broken["violations_no_loss"]).all()
    # each count is that of `sim simulate --check` on the same run (stored as the sweep ran it)
    stored = ResultStore(swept[0]).replays()
    for row in broken.itertuples():
        result = simulate(Scenario.from_dict(stored[row.config_hash]["scenario"]))
        reasons = {v.evidence.split("(")[1].split(")")[0] for v in result.check()}
        assert len(result.check()) == row.violations
        assert reasons == {"broadcast": {"crash_lost"}, "scatter_gather": {"node_down"}}[row.plugin]


def test_the_report_names_each_plugins_measures_with_their_units(swept: tuple[Path, pd.DataFrame]) -> None:
    folder, _ = swept
    lines = (folder / "report.md").read_text(encoding="utf-8").splitlines()
    head = next(line for line in lines if line.startswith("| plugin"))
    titles = [cell.strip() for cell in head.strip("|").split("|")]
    for own in OWN.values():
        for name, unit in own.items():
            assert (f"{name} ({unit})" if unit != name else name) in titles, (name, titles)
    assert "violations" in titles and "op_latency_p99 (ms)" in titles
    column = titles.index("violations")
    shown = {}
    for line in lines[lines.index(head) + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        shown[cells[0], cells[1]] = cells[column]
    assert len(shown) == 9  # every plug-in x fault schedule
    for (plugin, faults), text in shown.items():
        zero = faults != "producer_crashes" or plugin == "saga"
        assert text.startswith("0.000 ±") == zero, (plugin, faults, text)


def test_serial_and_processes_give_the_same_row(swept: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    _, runs = swept
    exp = load_experiment(SCRIPT)
    one = dataclasses.replace(
        exp,
        grid={
            "plugin": {"scatter_gather": exp.grid["plugin"]["scatter_gather"]},
            "faults_from": {"scenario": {}},
        },
        quick_replications=1,
        headline=None,  # the others' measures: refused in an experiment without them
    )
    serial = run_experiment(one, quick=True, engine="serial", out=tmp_path, quiet=True)
    assert len(serial) == 1
    row = serial.iloc[0]
    other = runs[runs["config_hash"] == row["config_hash"]].iloc[0]  # the same run, on the pool
    metrics = [
        c for c in serial.columns if c not in ("wall_time", "point", "run_id", "faults_from", "plugin")
    ]
    pd.testing.assert_series_equal(row[metrics], other[metrics], check_names=False)


# -- headline names ------------------------------------------------------------------------------------------


def _experiment(**kwargs: object) -> Experiment:
    base = Scenario.from_toml(ROOT / "experiments" / "scenarios" / "scatter_gather.toml")
    return Experiment("h", base=base, **kwargs)  # type: ignore[arg-type]


def test_a_headline_may_name_the_measures_of_the_plugins_it_runs() -> None:
    exp = _experiment(headline=["op_success_ratio", "gathered", "spare_replies"])
    assert exp.report_meta()["units"] == {"calls": "calls", "gathered": "calls", "spare_replies": "replies"}
    saga = str(ROOT / "experiments" / "patterns" / "saga.py") + ":Saga"
    builtin = Experiment(
        "b", base=Scenario(duration="1s"), grid={"pattern": ["queue", saga]}, headline=["sagas"]
    )
    assert builtin.report_meta()["units"]["inconsistent"] == "sagas"  # a plug-in the grid names
    with pytest.raises(SimError, match=r"experiment.headline = 'sagas': expected a metric name"):
        _experiment(headline=["sagas"])  # the saga's, but the experiment runs no saga
    with pytest.raises(SimError, match=r"experiment.headline = 'violations'"):
        _experiment(headline=["violations"])  # only an experiment with check=True records it
    assert _experiment(headline=["violations", "violations_no_loss"], check=True).check
    assert Experiment("q", base=Scenario(duration="1s")).report_meta()["units"] == {}


def test_check_must_be_a_bool() -> None:
    with pytest.raises(SimError, match=r"experiment.check = 'yes': expected True or False"):
        _experiment(check="yes")


def test_an_experiment_without_check_stores_no_violations(tmp_path: Path) -> None:
    base = Scenario(duration="0.5s", warmup=0, topology={"name": "line", "params": {"n": 2}})
    plain = run_experiment(Experiment("plain", base=base), engine="serial", out=tmp_path / "a", quiet=True)
    assert (plain["status"] == "ok").all() and "violations" not in plain.columns
    checked = run_experiment(
        Experiment("c", base=base, check=True), engine="serial", out=tmp_path / "b", quiet=True
    )
    assert checked["violations"].tolist() == [0.0]
