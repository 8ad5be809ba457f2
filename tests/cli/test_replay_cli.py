"""``sim replay RESULTS RUN_ID``: the summary of the rerun, a verdict against the stored row (exit 0 when
equal, 1 when a metric differs), ``--json`` as ``sim simulate --json`` plus the verdict, and one-line errors
(exit 2) for an unknown run id, another sim version and options that do not go together."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.cli.main import _finite, main
from sim.config.scenario import Scenario
from sim.sweep.experiment import Experiment
from sim.sweep.runner import run_experiment
from sim.sweep.store import ResultStore

BASE = Scenario(
    duration="1s",
    drain="1s",
    topology={"name": "line", "params": {"n": 3}},
    links={"latency": "2ms", "loss": 0.05},
    workload={"rate": "50/s"},
    delivery={"guarantee": "at_least_once", "ack_timeout": "20ms"},
    broker={"node": "n1"},
)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("replay-cli") / "results"
    exp = Experiment("replay_cli", base=BASE, grid={"pattern": ["point_to_point", "queue"]}, replications=2)
    frame = run_experiment(exp, out=out, engine="serial", quiet=True)
    assert set(frame["status"]) == {"ok"}
    return out, frame


def _row(frame: pd.DataFrame, pattern: str) -> pd.Series:
    return frame[frame["pattern"] == pattern].iloc[1]


def test_replay_prints_the_summary_and_that_it_equals_the_stored_row(
    swept: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    out, frame = swept
    row = _row(frame, "queue")
    assert main(["replay", str(out), row["run_id"]]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"run {row['run_id']} of {out}: queue on line, seed {row['seed']}, 1 s")
    delivered = next(line for line in printed if line.split()[:1] == ["delivered"])
    assert delivered.split()[1] == str(int(row["delivered"]))
    assert printed[-1] == "replay: equal to the stored row (every metric)"


def test_replay_json_has_scenario_summary_and_verdict(
    swept: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    out, frame = swept
    row = _row(frame, "point_to_point")
    assert main(["replay", str(out), row["run_id"], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    stored = ResultStore(out).replays()[row["config_hash"]]["scenario"]
    assert data["scenario"] == _finite(stored)  # inf as null, as sim simulate --json writes it
    assert data["summary"]["delivered"] == row["delivered"]
    assert data["summary"]["latency_p99"] == row["latency_p99"]
    assert data["replay"] == {"run_id": row["run_id"], "results": str(out), "equal": True, "differences": []}


def test_a_stored_row_that_differs_exits_1_and_names_the_metric(
    swept: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, frame = swept
    copy = tmp_path / "results"
    shutil.copytree(out, copy)
    row = _row(frame, "queue")
    journal = copy / "runs" / f"{row['config_hash']}.json"
    stored = json.loads(journal.read_text())
    stored["delivered"] += 1
    journal.write_text(json.dumps(stored))
    assert main(["replay", str(copy), row["run_id"]]) == 1
    now = int(row["delivered"])
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"replay: 1 metric differs from the stored row: delivered (stored {now + 1}, now {now})"
    )
    assert main(["replay", str(copy), row["run_id"], "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)["replay"]
    assert verdict["equal"] is False
    assert verdict["differences"] == [{"metric": "delivered", "stored": now + 1, "now": now}]


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_an_unknown_run_id_is_one_line_with_valid_ids(
    swept: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    out, frame = swept
    assert main(["replay", str(out), "9-9-00000000"]) == 2
    line = _error(capsys)
    assert line.startswith("sim: error: run id = '9-9-00000000': expected a run id of")
    assert frame["run_id"].iloc[0] in line


def test_another_sim_version_is_refused(
    swept: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, frame = swept
    ran, run_id = sim.__version__, frame["run_id"].iloc[0]
    monkeypatch.setattr(sim, "__version__", "0.0.1")
    assert main(["replay", str(out), run_id]) == 2
    assert _error(capsys).startswith(
        f"sim: error: sim version = '0.0.1': expected {ran}, the version that ran {run_id}"
    )


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--trace"], "sim: error: --trace = 'without --out': expected --trace --out DIR"),
        (["--out", "views"], "sim: error: --out = 'views': expected only with --trace"),
    ],
)
def test_trace_and_out_go_together(
    swept: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str], extra: list[str], said: str
) -> None:
    out, frame = swept
    assert main(["replay", str(out), frame["run_id"].iloc[0], *extra]) == 2
    assert _error(capsys).startswith(said)


def test_trace_writes_the_flow_views_of_the_replayed_run(
    swept: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, frame = swept
    row = _row(frame, "queue")
    views = tmp_path / "views"
    assert main(["replay", str(out), row["run_id"], "--trace", "--out", str(views)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3:] == [
        f"wrote {views / 'flow.html'}",
        f"wrote {views / 'trace.json'}",
        "replay: equal to the stored row (every metric)",  # tracing changes no figure
    ]
    page = (views / "flow.html").read_text(encoding="utf-8")
    lanes = re.search(r'id="flow" data-lanes="(\d+)" data-arrows="(\d+)"', page)
    assert lanes and int(lanes[1]) == 3 and int(lanes[2]) >= row["transmissions"] > 0
    assert json.loads((views / "trace.json").read_text())["traceEvents"]
    # the filters of sim trace narrow the drawing, not the run
    narrow = tmp_path / "narrow"
    argv = [
        "replay",
        str(out),
        row["run_id"],
        "--trace",
        "--out",
        str(narrow),
        "--obligations",
        "0",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["replay"]["equal"] and data["replay"]["views"] == [
        str(narrow / "flow.html"),
        str(narrow / "trace.json"),
    ]
    arrows = re.search(r'data-arrows="(\d+)"', (narrow / "flow.html").read_text(encoding="utf-8"))
    assert arrows and 0 < int(arrows[1]) < int(lanes[2])


def test_view_filters_need_trace(
    swept: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    out, frame = swept
    assert main(["replay", str(out), frame["run_id"].iloc[0], "--nodes", "n0"]) == 2
    assert _error(capsys) == "sim: error: --nodes = 'n0': expected only with --trace --out DIR"


def test_replay_reads_the_results_folder_once(
    swept: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs table and journal are read once; the journal entry's own replay record is used, so the
    table of records is not read at all."""
    out, frame = swept
    calls: list[str] = []
    for name in ("rows", "replays"):
        real = getattr(ResultStore, name)
        monkeypatch.setattr(ResultStore, name, lambda self, _r=real, _n=name: calls.append(_n) or _r(self))
    assert main(["replay", str(out), _row(frame, "queue")["run_id"]]) == 0
    assert calls == ["rows"]
    assert capsys.readouterr().out.splitlines()[-1] == "replay: equal to the stored row (every metric)"


def test_a_run_of_an_earlier_grid_in_the_same_folder_replays_equal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    base = BASE.with_updates({"duration": "0.5s", "drain": "0.5s"})
    first = run_experiment(
        Experiment("grids", base=base, grid={"links.loss": [0.0, 0.1]}), out=out, engine="serial", quiet=True
    )
    run_experiment(
        Experiment("grids", base=base, grid={"links.latency": ["1ms", "4ms"]}),
        out=out,
        engine="serial",
        quiet=True,
    )
    old = first[first["links.loss"] == 0.1].iloc[0]
    assert main(["replay", str(out), old["run_id"]]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "replay: equal to the stored row (every metric)"
