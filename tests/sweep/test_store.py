"""The results folder: failed runs are recorded and the sweep goes on; a rerun skips stored runs and retries
failed ones; an interrupted sweep keeps every finished run and resumes; ``--fresh`` starts over; Parquet,
summary, meta data and ledgers are written atomically and read back as written.

Runs are tiny (a 3-node line, 1 simulated second at 50 messages/s) and mostly serial.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import interrupt_after

import sim.sweep.runner
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.run.simulate import simulate
from sim.sweep.experiment import Experiment
from sim.sweep.runner import run_experiment
from sim.sweep.store import BOOKKEEPING, ResultStore, atomic_write, write_parquet

BASE = Scenario(
    duration="1s",
    drain="1s",
    topology={"name": "line", "params": {"n": 3}},
    links={"latency": "2ms", "loss": 0.05},
    workload={"rate": "50/s"},
    broker={"node": "n1"},
)
GOOD = Experiment("store", base=BASE, grid={"links.loss": [0.0, 0.1], "pattern": ["point_to_point", "queue"]})
BROKEN = Experiment("store", base=BASE, grid={"topology.name": ["line", "no_such_topology"]}, replications=2)
FIXED = Experiment("store", base=BASE, grid={"topology.name": ["line", "ring"]}, replications=2)


def run(exp: Experiment, out: Path, **kwargs: Any) -> pd.DataFrame:
    kwargs.setdefault("engine", "serial")
    return run_experiment(exp, out=out, quiet=True, **kwargs)


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Config hashes handed to the engine, on any engine (records, then calls the real run_all)."""
    seen: list[str] = []
    real = sim.sweep.runner.run_all

    def spy(payloads: list[dict[str, Any]], on_row: Callable[[dict[str, Any]], None], **kw: Any) -> None:
        seen.extend(p["config_hash"] for p in payloads)
        real(payloads, on_row, **kw)

    monkeypatch.setattr(sim.sweep.runner, "run_all", spy)
    return seen


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["wall_time"]).sort_values(["point", "replication"]).reset_index(drop=True)


# -- failed runs and reruns ------------------------------------------------------------------------------


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path, executed: list[str]) -> None:
    out = tmp_path / "r"
    frame = run(BROKEN, out)
    assert len(frame) == 4 and len(executed) == 4
    failed = frame[frame["status"] == "failed"]
    ok = frame[frame["status"] == "ok"]
    assert list(failed["topology.name"]) == ["no_such_topology"] * 2
    assert list(ok["topology.name"]) == ["line"] * 2
    for error in failed["error"]:
        assert error.startswith("SimError: topology.name = 'no_such_topology': expected a builtin")
    assert set(ok["error"]) == {""}
    assert failed["delivered"].isna().all() and ok["delivered"].gt(0).all()
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["runs"], meta["ran"], meta["failed"]) == (4, 4, 2)
    assert len(list((out / "runs").glob("*.json"))) == 4


def test_a_rerun_skips_ok_runs_and_retries_failed_ones(tmp_path: Path, executed: list[str]) -> None:
    out = tmp_path / "r"
    first = run(BROKEN, out)
    executed.clear()
    again = run(BROKEN, out)
    failed_hashes = set(first.loc[first["status"] == "failed", "config_hash"])
    assert sorted(executed) == sorted(failed_hashes)  # only the failed ones ran again
    assert len(again) == 4 and not again.duplicated(["point", "replication"]).any()
    pd.testing.assert_frame_equal(_rows(again), _rows(first))
    assert len(pd.read_parquet(out / "runs.parquet")) == 4


def test_a_rerun_with_the_point_fixed_runs_only_that_point(tmp_path: Path, executed: list[str]) -> None:
    out = tmp_path / "r"
    first = run(BROKEN, out)
    executed.clear()
    fixed = run(FIXED, out)
    assert sorted(executed) == sorted(s.config_hash for s in FIXED.runs() if s.point == 1)
    assert len(fixed) == 4 and set(fixed["status"]) == {"ok"}
    assert not fixed.duplicated(["point", "replication"]).any()
    assert list(fixed["topology.name"]) == ["line", "line", "ring", "ring"]
    kept = first[first["status"] == "ok"].reset_index(drop=True)
    pd.testing.assert_frame_equal(fixed[fixed["point"] == 0].reset_index(drop=True), kept)  # not rerun
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["topology.name"]) == ["line", "ring"]


@pytest.mark.parametrize("second", ["fixed-point", "quick"])
def test_runs_parquet_holds_only_this_experiments_runs(tmp_path: Path, second: str) -> None:
    out = tmp_path / "r"
    if second == "fixed-point":
        run(BROKEN, out)
        frame = run(FIXED, out)
    else:
        run(FIXED, out, quick=True)
        frame = run(FIXED, out)
    stored = pd.read_parquet(out / "runs.parquet")
    assert len(stored) == len(frame) and not stored.duplicated(["point", "replication"]).any()


# -- interruption ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "k"), [("serial", 3), ("processes", 2)])
def test_an_interrupted_sweep_keeps_its_rows_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, k: int
) -> None:
    exp = Experiment("kill", base=BASE, grid={"links.loss": [0.0, 0.05, 0.1]}, replications=2, seed=5)
    out = tmp_path / "r"
    with monkeypatch.context() as m:
        m.setattr(sim.sweep.runner, "run_all", interrupt_after(k))
        with pytest.raises(KeyboardInterrupt):
            run(exp, out, engine=engine, workers=2)
    journal = sorted(p.stem for p in (out / "runs").glob("*.json"))
    assert len(journal) == k
    stored = pd.read_parquet(out / "runs.parquet")  # consolidated on the way out
    assert sorted(stored["config_hash"]) == journal and set(stored["status"]) == {"ok"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["ran"] == k and meta["runs"] == 6
    assert not _temporaries(out)

    seen: list[str] = []
    real = sim.sweep.runner.run_all

    def spy(payloads: list[dict[str, Any]], on_row: Callable[..., None], **kw: Any) -> None:
        seen.extend(p["config_hash"] for p in payloads)
        real(payloads, on_row, **kw)

    monkeypatch.setattr(sim.sweep.runner, "run_all", spy)
    resumed = run(exp, out)  # on serial: engines are interchangeable, and a pool costs seconds to start
    assert len(seen) == 6 - k and not set(seen) & set(journal)  # only the rest
    assert len(resumed) == 6 and not resumed.duplicated("config_hash").any()
    clean = run(exp, tmp_path / "clean")  # the same sweep, never interrupted
    pd.testing.assert_frame_equal(_rows(resumed), _rows(clean))


def test_fresh_starts_over(tmp_path: Path, executed: list[str]) -> None:
    out = tmp_path / "r"
    run(BROKEN, out, save_ledgers=True)
    assert any((out / "ledgers").iterdir())
    executed.clear()
    frame = run(FIXED, out, fresh=True)
    assert len(executed) == 4  # nothing reused
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == sorted(frame["config_hash"])
    assert not (out / "ledgers").exists()
    assert len(pd.read_parquet(out / "runs.parquet")) == 4


def test_fresh_with_a_bad_engine_option_keeps_the_stored_runs(tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(FIXED, out)
    with pytest.raises(SimError, match="--workers"):
        run(FIXED, out, fresh=True, workers=0)
    assert len(list((out / "runs").glob("*.json"))) == 4


# -- files -----------------------------------------------------------------------------------------------


def test_runs_parquet_round_trip_keeps_dtypes(tmp_path: Path) -> None:
    out = tmp_path / "r"
    frame = run(GOOD, out)
    back = pd.read_parquet(out / "runs.parquet")
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert dict(back.dtypes) == dict(frame.dtypes)
    assert list(frame.columns[:2]) == ["links.loss", "pattern"]  # swept parameters first
    assert list(frame.columns[2:10]) == list(BOOKKEEPING)
    for col in ("point", "replication", "seed"):
        assert frame[col].dtype == "int64"
    assert frame["links.loss"].dtype == "float64" and frame["wall_time"].dtype == "float64"
    metrics = frame.columns[10:]
    assert {"delivered", "delivery_ratio", "latency_p99", "msgs_per_delivery"} <= set(metrics)
    assert all(frame[m].dtype == "float64" for m in metrics)
    assert pd.api.types.is_string_dtype(frame["pattern"])
    assert pd.api.types.is_string_dtype(frame["config_hash"])
    assert list(frame["run_id"]) == [
        f"{p}-0-{h[:8]}" for p, h in zip(frame["point"], frame["config_hash"], strict=True)
    ]
    assert list(frame["pattern"]) == ["point_to_point", "queue"] * 2
    assert set(frame["status"]) == {"ok"}


def test_summary_has_one_row_per_point_with_mean_and_std(tmp_path: Path) -> None:
    exp = Experiment(
        "summary", base=BASE, grid={"links.loss": [0.0, 0.1], "topology.params.n": [3, 4]}, replications=3
    )
    out = tmp_path / "r"
    frame = run(exp, out)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4
    assert list(summary.columns[:3]) == ["links.loss", "topology.params.n", "replications"]
    assert set(summary["replications"]) == {3}
    metrics = [c for c in frame.columns if c not in ("links.loss", "topology.params.n", *BOOKKEEPING)]
    for m in metrics:
        assert f"{m}_mean" in summary.columns and f"{m}_std" in summary.columns
    expected = frame.groupby(["links.loss", "topology.params.n"], sort=False)["delivered"].agg(
        ["mean", "std"]
    )
    assert list(summary["delivered_mean"]) == pytest.approx(list(expected["mean"]))
    assert list(summary["delivered_std"]) == pytest.approx(list(expected["std"]))


def test_summary_without_swept_parameters_has_std(tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(Experiment("single", base=BASE, replications=2), out)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 1 and "delivered_mean" in summary.columns and "delivered_std" in summary.columns


def test_meta_json(tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(GOOD, out)
    meta = json.loads((out / "meta.json").read_text())
    for key in (
        "versions",
        "git_sha",
        "engine",
        "started",
        "finished",
        "experiment",
        "swept",
        "runs",
        "quick",
    ):
        assert key in meta, key
    assert meta["engine"] == "serial" and meta["experiment"] == "store" and meta["quick"] is False
    assert meta["swept"] == ["links.loss", "pattern"] and meta["runs"] == 4
    assert isinstance(meta["git_sha"], str)
    for package in ("python", "sim", "numpy", "pandas", "simpy", "pyarrow"):
        assert meta["versions"][package], package
    assert datetime.fromisoformat(meta["started"]) <= datetime.fromisoformat(meta["finished"])


def test_saved_ledgers_read_back_as_the_ledger(tmp_path: Path) -> None:
    exp = Experiment("ledgers", base=BASE, grid={"links.loss": [0.0, 0.1]})
    out = tmp_path / "r"
    run(exp, out, save_ledgers=True)
    specs = exp.runs()
    assert sorted(p.stem for p in (out / "ledgers").glob("*.parquet")) == sorted(s.config_hash for s in specs)
    for spec in specs:
        stored = pd.read_parquet(out / "ledgers" / f"{spec.config_hash}.parquet")
        pd.testing.assert_frame_equal(stored, simulate(spec.scenario).ledger, check_exact=True)


def test_no_ledgers_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(GOOD, out)
    assert not (out / "ledgers").exists()
    assert {p.name for p in out.iterdir()} >= {"runs", "runs.parquet", "summary.csv", "meta.json"}


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(BROKEN, out, save_ledgers=True)
    run(FIXED, out, save_ledgers=True)
    assert not _temporaries(out)
    assert not [p for p in out.rglob(".*") if p.is_file()]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f" / "data.json"
    atomic_write(path, "old")
    with pytest.raises(TypeError):
        atomic_write(path, 12345)  # type: ignore[arg-type]
    assert path.read_text() == "old" and not _temporaries(tmp_path)
    table = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"x": [1.0, 2.0]}), table)
    with pytest.raises(Exception):  # noqa: B017  (pyarrow's own error type)
        write_parquet(pd.DataFrame({"x": ["a", 1]}), table)
    assert list(pd.read_parquet(table)["x"]) == [1.0, 2.0] and not _temporaries(tmp_path)


def test_the_journal_skips_foreign_files_and_keeps_non_finite_values(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r")
    row = {"config_hash": "a" * 16, "point": 0, "replication": 0, "seed": 1, "status": "ok", "error": ""}
    store.record({**row, "wall_time": 0.1, "latency_p99": float("nan"), "max": float("inf")})
    (store.journal / "notes.json").write_text("{not json")
    (rows,) = store.rows()
    assert rows["latency_p99"] != rows["latency_p99"] and rows["max"] == float("inf")
    assert store.done() == {"a" * 16}
