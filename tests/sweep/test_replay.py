"""Exact replay: a results folder stores, per run, what it takes to rerun it (scenario, seed, sim version, the
content of the files it read), and ``replay`` reruns any run from the folder alone to the same summary.

The sweep is small and quick: 2 points (without and with a crash of the middle node) x 2 replications, on a
3-node topology read from a JSON file.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import interrupt_after

import sim
import sim.sweep.runner
from sim.analysis.report import load_runs, run_ids, write_report
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.run.simulate import simulate
from sim.sweep.experiment import Experiment
from sim.sweep.replay import differences, replay, stored_run
from sim.sweep.runner import run_experiment
from sim.sweep.store import REPLAY, ResultStore, write_parquet

CRASH = {"faults": [{"at": "0.3s", "action": "crash", "target": "b", "for": "0.2s"}]}


def _topology(path: Path, latency: str = "2ms") -> Path:
    nodes = [{"id": "a", "role": "client"}, {"id": "b", "role": "router"}, {"id": "c", "role": "server"}]
    edges = [{"source": "a", "target": "b", "latency": latency}, {"source": "b", "target": "c"}]
    path.write_text(json.dumps({"nodes": nodes, "edges": edges}))
    return path


def _experiment(topology: Path) -> Experiment:
    base = Scenario(
        duration="4s",
        drain="4s",
        topology={"name": str(topology)},
        links={"latency": "2ms", "loss": 0.02},
        workload={"rate": "80/s"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "20ms"},
    )
    return Experiment(
        "replay",
        base=base,
        grid={"crash": {"off": {}, "on": CRASH}},
        replications=3,
        quick={"duration": "1s", "drain": "1s"},
        quick_replications=2,
    )


def _sweep(root: Path, **kwargs: Any) -> tuple[Path, Path, pd.DataFrame]:
    topology = _topology(root / "three.json")
    out = root / "results"
    frame = run_experiment(_experiment(topology), quick=True, out=out, engine="serial", quiet=True, **kwargs)
    return out, topology, frame


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    return _sweep(tmp_path_factory.mktemp("replay"))


@pytest.fixture
def copy(swept: tuple[Path, Path, pd.DataFrame], tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """A copy of the sweep's folder that a test may damage (its runs still name the sweep's topology file)."""
    out, topology, frame = swept
    shutil.copytree(out, tmp_path / "results")
    return tmp_path / "results", topology, frame


def _assert_same(summary: dict[str, float], row: pd.Series) -> None:
    """Every metric of the replay equals the stored row's, NaN equal to NaN, with no tolerance."""
    for key, now in summary.items():
        stored = row[key]
        assert (math.isnan(now) and math.isnan(stored)) or now == stored, (key, stored, now)


def test_every_run_replays_to_its_stored_row(swept: tuple[Path, Path, pd.DataFrame]) -> None:
    out, _, frame = swept
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}
    assert frame.groupby("crash")["retries"].mean()["on"] > 0  # the crash shows in the figures
    assert frame["delivered"].nunique() > 1  # replications and points differ: a mix-up would show
    for _, row in frame.iterrows():
        result = replay(out, row["run_id"])
        _assert_same(result.summary, row)
        assert set(result.summary) <= set(frame.columns)
        assert differences(result.summary, row.to_dict(), ["crash"]) == []
        assert result.scenario.seed == row["seed"]
        assert result.trace is None


def test_a_traced_replay_has_the_same_summary_and_a_trace(swept: tuple[Path, Path, pd.DataFrame]) -> None:
    out, _, frame = swept
    row = frame[frame["crash"] == "on"].iloc[0]
    result = replay(out, row["run_id"], trace=True)
    _assert_same(result.summary, row)
    assert result.trace and result.scenario.trace


def test_run_ids_are_stable_and_name_point_replication_and_hash(
    swept: tuple[Path, Path, pd.DataFrame],
) -> None:
    out, topology, frame = swept
    expected = [
        f"{p}-{r}-{h[:8]}"
        for p, r, h in zip(frame["point"], frame["replication"], frame["config_hash"], strict=True)
    ]
    assert list(frame["run_id"]) == expected
    specs = _experiment(topology).runs(quick=True)  # the same ids before anything runs, and on every rerun
    assert [s.run_id for s in specs] == expected
    # a run is found by its id, its config hash, or <point>-<replication>
    row = frame.iloc[3]
    for name in (row["run_id"], row["config_hash"], f"{row['point']}-{row['replication']}"):
        assert stored_run(out, name).row["config_hash"] == row["config_hash"]


def test_the_folder_stores_scenario_seed_version_and_file_content(
    swept: tuple[Path, Path, pd.DataFrame],
) -> None:
    out, topology, frame = swept
    records = ResultStore(out).replays()
    assert set(records) == set(frame["config_hash"])
    for config, record in records.items():
        row = frame[frame["config_hash"] == config].iloc[0]
        assert record["run_id"] == row["run_id"] and record["seed"] == row["seed"]
        assert record["sim"] == sim.__version__
        scenario = Scenario.from_dict(record["scenario"])
        assert scenario.seed == row["seed"] and scenario.duration == 1.0  # as the sweep built it (quick)
        assert bool(scenario.faults) == (row["crash"] == "on")
        (file,) = record["files"].values()
        assert ResultStore(out).input_file(file["sha256"]) == topology.read_bytes()
    # the four runs read one file: its content is stored once
    assert [p.name for p in (out / "inputs").iterdir()] == [file["sha256"]]
    assert (out / "replay.parquet").is_file()


def test_a_topology_file_changed_after_the_sweep_replays_the_stored_content(tmp_path: Path) -> None:
    out, topology, frame = _sweep(tmp_path)
    row = frame.iloc[0]
    _topology(topology, latency="9ms")
    on_disk = simulate(Scenario.from_dict(stored_run(out, row["run_id"]).record["scenario"]))
    assert on_disk.summary["latency_p50"] != row["latency_p50"]  # the file as it is now gives other figures
    _assert_same(replay(out, row["run_id"]).summary, row)
    topology.unlink()
    _assert_same(replay(out, row["run_id"]).summary, row)


def test_a_damaged_stored_file_is_refused(copy: tuple[Path, Path, pd.DataFrame]) -> None:
    out, _, frame = copy
    (blob,) = (out / "inputs").iterdir()
    blob.write_text("{}")
    with pytest.raises(SimError, match=r"results file = .*inputs.*the content its name is the SHA-256 of"):
        replay(out, frame.iloc[0]["run_id"])
    blob.unlink()
    with pytest.raises(SimError, match="the stored content of a file the run read"):
        replay(out, frame.iloc[0]["run_id"])


def test_another_sim_version_is_refused(
    swept: tuple[Path, Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _, frame = swept
    monkeypatch.setattr(sim, "__version__", "99.0")
    with pytest.raises(SimError) as refused:
        replay(out, frame.iloc[0]["run_id"])
    assert refused.value.field == "sim version" and refused.value.value == "99.0"
    assert f"the version that ran {frame.iloc[0]['run_id']}" in refused.value.allowed
    assert sim.__version__ == "99.0"  # nothing ran under the wrong version's name


def test_an_unknown_run_id_is_refused_with_valid_ones(swept: tuple[Path, Path, pd.DataFrame]) -> None:
    out, _, frame = swept
    with pytest.raises(SimError) as refused:
        replay(out, "7-7-deadbeef")
    assert refused.value.field == "run id" and refused.value.value == "7-7-deadbeef"
    for valid in frame["run_id"]:
        assert valid in refused.value.allowed
    with pytest.raises(SimError, match="run id = '0': expected a run id of"):
        replay(out, "0")  # a point alone names two runs: not a shorthand


def test_an_unknown_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        SimError, match=r"results folder = .*nowhere'?: expected a folder written by 'sim run'"
    ):
        replay(tmp_path / "nowhere", "0-0-00000000")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimError, match="no runs are stored"):
        replay(tmp_path / "empty", "0-0-00000000")


def test_a_folder_that_predates_stored_runs_is_refused_until_the_sweep_runs_again(
    copy: tuple[Path, Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, topology, frame = copy
    (out / "replay.parquet").unlink()
    one = next((out / "runs").glob("*.json"))
    row = json.loads(one.read_text())
    assert REPLAY in row
    del row[REPLAY]
    one.write_text(json.dumps(row))
    # the other runs still have their records in the journal
    with pytest.raises(SimError, match=f"run {row['run_id']} predates them: run the same sweep again"):
        replay(out, row["run_id"])
    for path in (out / "runs").glob("*.json"):
        path.unlink()
    shutil.rmtree(out / "inputs")
    with pytest.raises(SimError, match="this folder predates them"):
        replay(out, frame.iloc[0]["run_id"])  # runs.parquet alone, as an older sim wrote it
    # the same sweep again runs nothing (every run is stored) but stores what replay needs
    monkeypatch.setattr(
        sim.sweep.runner,
        "run_all",
        lambda payloads, *a, **k: pytest.fail(str(payloads)) if payloads else None,
    )
    again = run_experiment(_experiment(topology), quick=True, out=out, engine="serial", quiet=True)
    pd.testing.assert_frame_equal(again, frame)
    for _, stored in frame.iterrows():
        _assert_same(replay(out, stored["run_id"]).summary, stored)


def test_an_interrupted_sweep_resumes_with_every_run_replayable(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sim.sweep.runner, "run_all", interrupt_after(3))
        with pytest.raises(KeyboardInterrupt):
            _sweep(tmp_path)
    out = tmp_path / "results"
    assert len(ResultStore(out).replays()) == 3  # each stored run has its record
    _, _, frame = _sweep(tmp_path)  # the same command again: one run left
    assert len(frame) == 4 and set(ResultStore(out).replays()) == set(frame["config_hash"])
    for _, row in frame.iterrows():
        _assert_same(replay(out, row["run_id"]).summary, row)


def test_fresh_removes_the_stored_records_and_inputs_with_the_runs(
    copy: tuple[Path, Path, pd.DataFrame],
) -> None:
    out, _, _ = copy
    store = ResultStore(out)
    names = {p.relative_to(out).parts[0] for p in store.own_files()}
    assert {"replay.parquet", "inputs", "runs", "runs.parquet"} <= names
    store.clear()
    assert not (out / "replay.parquet").exists() and not (out / "inputs").exists()


def test_differences_are_nan_aware_and_see_missing_metrics() -> None:
    nan = float("nan")
    assert differences({"a": 1.0, "b": nan}, {"a": 1.0, "b": nan, "run_id": "0-0-x"}) == []
    ((name, stored, now),) = differences({"a": 1.0}, {"a": nan})
    assert name == "a" and math.isnan(stored) and now == 1.0
    assert differences({"a": nan}, {"a": 0.0})[0][:2] == ("a", 0.0)
    assert differences({"a": 1.0, "b": 2.0}, {"a": 1.0}) == [("b", None, 2.0)]
    assert differences({"a": 1.0}, {"a": 1.0, "c": 3.0}) == [("c", 3.0, None)]
    assert differences({"a": 1.0}, {"a": 1.0, "c": nan, "links.loss": 0.1}, ["links.loss"]) == []


def test_reports_list_each_points_run_ids(copy: tuple[Path, Path, pd.DataFrame]) -> None:
    out, _, frame = copy
    write_report(out, quiet=True, figures=False)
    md = (out / "report.md").read_text(encoding="utf-8")
    runs = md.split("## Runs", 1)[1]
    for crash in ("off", "on"):
        ids = frame[frame["crash"] == crash].sort_values("replication")["run_id"]
        assert f"| {crash} | " + " ".join(f"`{i}`" for i in ids) + " |" in runs
    page = (out / "report.html").read_text(encoding="utf-8")
    assert all(i in page.split("<details>", 1)[1] for i in frame["run_id"])
    assert "run_id" not in md.split("## Runs", 1)[0]  # not a metric of the tables above


def test_a_runs_table_without_run_ids_gets_them_in_reports(copy: tuple[Path, Path, pd.DataFrame]) -> None:
    out, _, frame = copy
    write_parquet(frame.drop(columns="run_id"), out / "runs.parquet")  # as sim wrote it before run ids
    loaded, _ = load_runs(out)
    assert list(loaded["run_id"]) == list(frame["run_id"])
    table = run_ids(loaded, ["crash"])
    assert list(table["run ids"]) == [" ".join(frame[frame["crash"] == c]["run_id"]) for c in ("off", "on")]


def test_a_shorthand_that_names_two_runs_is_refused(copy: tuple[Path, Path, pd.DataFrame]) -> None:
    out, _, frame = copy
    row = json.loads((out / "runs" / f"{frame.iloc[0]['config_hash']}.json").read_text())
    row.update(config_hash="0" * 16, run_id="0-0-00000000")  # an older run at the same point and replication
    (out / "runs" / f"{'0' * 16}.json").write_text(json.dumps(row))
    with pytest.raises(SimError, match="run id = '0-0': expected one run; it names 2, give a config hash: "):
        replay(out, "0-0")
    assert stored_run(out, frame.iloc[0]["run_id"]).row["config_hash"] == frame.iloc[0]["config_hash"]


def test_a_run_of_an_earlier_grid_in_the_same_folder_replays_equal(tmp_path: Path) -> None:
    """meta.json names the latest sweep's parameters only: an older run's own columns are settings too."""
    topology = _topology(tmp_path / "three.json")
    base = _experiment(topology).base.with_updates({"duration": "0.5s", "drain": "0.5s"})
    out = tmp_path / "results"
    first = run_experiment(
        Experiment("e", base=base, grid={"links.loss": [0.0, 0.05]}), out=out, engine="serial", quiet=True
    )
    run_experiment(
        Experiment("e", base=base, grid={"links.latency": ["1ms", "3ms"]}),
        out=out,
        engine="serial",
        quiet=True,
    )
    assert json.loads((out / "meta.json").read_text())["swept"] == ["links.latency"]
    old = first[first["links.loss"] == 0.05].iloc[0]
    stored = stored_run(out, old["config_hash"])
    assert "links.loss" in stored.swept
    assert differences(replay(out, old["config_hash"]).summary, stored.row, stored.swept) == []
