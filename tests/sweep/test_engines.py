"""Engines and progress: serial, a process pool and a Dask cluster give identical rows; a bad engine,
worker count or scheduler is a SimError (exit 2 on the command line); progress is a bar on a terminal and
log lines elsewhere.

The process pool and the Dask LocalCluster take a few seconds to start, so the comparison runs each once.
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.cli.main import configure_logging
from sim.cli.main import main as sim_main
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.sweep.engines import ENGINES, execute, run_all
from sim.sweep.experiment import Experiment
from sim.sweep.progress import Progress
from sim.sweep.runner import run_experiment

EXPERIMENT = Experiment(
    "engines",
    base=Scenario(
        pattern="queue",  # a broker (on the middle node), so that its backlog series is compared too
        broker={"node": "n1"},
        duration="1s",
        drain="1s",
        topology={"name": "line", "params": {"n": 3}},
        links={"latency": {"dist": "exponential", "mean": "2ms"}},
        workload={"rate": "50/s"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "20ms"},
    ),
    grid={"links.loss": [0.0, 0.1]},
    replications=2,
    seed=99,
)

SCRIPT = """
from sim.sweep.experiment import Experiment
from sim.config.scenario import Scenario

EXPERIMENT = Experiment("cli", base=Scenario(duration="0.5s", drain="0.5s", topology={"name": "line"}))
"""


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["wall_time"]).sort_values(["point", "replication"]).reset_index(drop=True)


def _series(folder: Path) -> pd.DataFrame:
    path = folder / "series.parquet"
    if not path.exists():
        return pd.DataFrame()
    frame = pd.read_parquet(path)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")  # another cluster's dashboard
def test_every_engine_gives_identical_rows(tmp_path: Path) -> None:
    frames, series = {}, {}
    for engine in ENGINES:
        out = tmp_path / engine
        frame = run_experiment(
            EXPERIMENT,
            out=out,
            engine=engine,
            workers=None if engine == "serial" else 2,
            quiet=True,
        )
        frames[engine], series[engine] = _rows(frame), _series(out)
    reference = frames["serial"]
    assert len(reference) == 4 and set(reference["status"]) == {"ok"}
    assert reference["delivered"].gt(0).all()
    assert reference["retries"].gt(0).any()  # the lossy point exercises the random streams
    assert not series["serial"].empty
    for engine in ("processes", "dask"):
        pd.testing.assert_frame_equal(frames[engine], reference, check_exact=True, obj=engine)
        pd.testing.assert_frame_equal(series[engine], series["serial"], check_exact=True, obj=engine)


def test_run_all_calls_on_row_once_per_payload_in_this_process() -> None:
    seen: list[dict[str, Any]] = []
    payloads = [
        {
            "scenario": s.scenario.to_dict(),
            "params": s.params,
            "point": s.point,
            "replication": s.replication,
            "seed": s.seed,
            "config_hash": s.config_hash,
        }
        for s in EXPERIMENT.runs()
    ]
    run_all(payloads, seen.append, engine="serial")
    assert sorted(r["config_hash"] for r in seen) == sorted(p["config_hash"] for p in payloads)
    run_all([], seen.append, engine="processes")  # nothing to do: no pool is started
    assert len(seen) == 4


def test_sigterm_stops_a_sweep_like_ctrl_c_and_the_handler_is_restored() -> None:
    spec = EXPERIMENT.runs()[0]
    payload = {
        "scenario": spec.scenario.to_dict(),
        "params": spec.params,
        "point": spec.point,
        "replication": spec.replication,
        "seed": spec.seed,
        "config_hash": spec.config_hash,
    }
    before = signal.getsignal(signal.SIGTERM)
    seen: list[str] = []

    def terminated_after_the_first_row(row: dict[str, Any]) -> None:
        seen.append(row["config_hash"])
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid>` would, while runs are left

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        run_all([payload, payload, payload], terminated_after_the_first_row, engine="serial")
    assert seen == [spec.config_hash]  # stopped at once: the next runs did not start
    assert signal.getsignal(signal.SIGTERM) is before


def test_execute_turns_an_exception_into_a_failed_row() -> None:
    spec = EXPERIMENT.runs()[0]
    scenario = spec.scenario.to_dict()
    scenario["topology"] = {"name": "no_such_topology", "params": {}}
    row = execute(
        {
            "scenario": scenario,
            "params": {"links.loss": 0.0},
            "point": 0,
            "replication": 0,
            "seed": spec.seed,
            "config_hash": "f" * 16,
        }
    )
    assert row["status"] == "failed" and row["config_hash"] == "f" * 16
    assert row["error"].startswith("SimError: topology.name = 'no_such_topology'")
    assert row["links.loss"] == 0.0 and row["wall_time"] >= 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"engine": "threads"}, "--engine"),
        ({"engine": "processes", "workers": 0}, "--workers"),
        ({"engine": "serial", "workers": -3}, "--workers"),
    ],
)
def test_bad_engine_or_workers_is_a_sim_error(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SimError, match=f"^{field} = "):
        run_all([{"never": "run"}], lambda row: None, **kwargs)
    with pytest.raises(SimError, match=f"^{field} = "):
        run_all([], lambda row: None, **kwargs)  # checked even with nothing to run


def test_unreachable_dask_scheduler_is_a_sim_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    real = distributed.Client

    def impatient(*args: Any, **kwargs: Any) -> Any:  # the engine waits 10 s; 1 s shows the same
        return real(*args, **{**kwargs, "timeout": "1s"})

    monkeypatch.setattr(distributed, "Client", impatient)
    with pytest.raises(SimError, match=r"^--scheduler = 'tcp://127\.0\.0\.1:1': expected a reachable dask"):
        run_all([{"never": "run"}], lambda row: None, engine="dask", scheduler="tcp://127.0.0.1:1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--engine", "threads"], "--engine = 'threads': expected one of serial, processes, dask"),
        (["--workers", "0"], "--workers = 0: expected a whole number >= 1"),
        (["--workers", "two"], "--workers = 'two': expected a whole number"),
    ],
    ids=["engine", "workers-0", "workers-word"],
)
def test_cli_rejects_bad_engine_options_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    script = tmp_path / "cli.py"
    script.write_text(SCRIPT)
    out = tmp_path / "results"
    assert _exit_status(["run", str(script), "--quiet", "--out", str(out), *args]) == 2
    stdout, stderr = capsys.readouterr()
    assert stdout == "" and stderr.count("\n") == 1
    assert stderr.startswith("sim: error: ") and expected in stderr
    assert not (out / "runs").exists()


def _exit_status(argv: list[str]) -> int | str | None:
    try:
        return sim_main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


# -- progress --------------------------------------------------------------------------------------------


def test_progress_logs_lines_off_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sim.sweep.progress")
    progress = Progress(10, stream=io.StringIO(), tty=False)
    for i in range(10):
        progress.update(ok=i != 4)
    lines = [r.getMessage() for r in caplog.records if r.name == "sim.sweep.progress"]
    assert len(lines) == 10  # one every 10 %
    assert re.fullmatch(r"3/10 runs, ETA \d+:\d\d", lines[2])
    assert re.fullmatch(r"5/10 runs, 1 failed, ETA \d+:\d\d", lines[4])
    assert lines[-1] == "10/10 runs, 1 failed, ETA 0:00"
    assert (progress.done, progress.failed) == (10, 1)


def test_progress_logs_every_tenth_of_a_long_sweep(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sim.sweep.progress")
    progress = Progress(100, tty=False)
    for _ in range(100):
        progress.update(ok=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "sim.sweep.progress"]
    assert [line.split(" ")[0] for line in lines] == [f"{k}/100" for k in range(10, 101, 10)]


def test_progress_draws_a_bar_on_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sim.sweep.progress")
    stream = io.StringIO()
    progress = Progress(4, stream=stream, tty=True)
    assert progress.line() == "0/4 runs, ETA ?"
    progress.update(ok=True)
    progress.update(ok=False)
    text = stream.getvalue()
    assert text.startswith("\r[") and "\n" not in text
    last = text.split("\r")[-1]
    assert re.match(r"\[#{15}\.{15}\] 2/4 runs, 1 failed, ETA \d+:\d\d", last), last
    progress.update(ok=True)
    progress.update(ok=True)
    assert stream.getvalue().endswith("\n") and "4/4 runs, 1 failed, ETA 0:00" in stream.getvalue()
    assert "[" + "#" * 30 + "]" in stream.getvalue()
    assert not [r for r in caplog.records if r.name == "sim.sweep.progress"]  # a bar, not log lines


def test_quiet_progress_prints_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sim.sweep.progress")
    for tty in (True, False):
        stream = io.StringIO()
        progress = Progress(3, quiet=True, stream=stream, tty=tty)
        for _ in range(3):
            progress.update(ok=False)
        assert stream.getvalue() == "" and progress.failed == 3
    assert not caplog.records


def test_a_sweep_reports_progress(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    run_experiment(EXPERIMENT, out=tmp_path / "r", engine="serial")
    lines = [r.getMessage() for r in caplog.records if r.name == "sim.sweep.progress"]
    assert [line.split(",")[0] for line in lines] == ["1/4 runs", "2/4 runs", "3/4 runs", "4/4 runs"]
    caplog.clear()
    run_experiment(EXPERIMENT, out=tmp_path / "r", engine="serial")  # everything stored
    messages = [r.getMessage() for r in caplog.records]
    assert any("4 of 4 runs already stored" in m and "running 0" in m for m in messages)
    assert not [r for r in caplog.records if r.name == "sim.sweep.progress"]


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")  # another cluster's dashboard
def test_a_quiet_dask_sweep_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a fresh `sim run ... --quiet` process
    monkeypatch.setattr(root, "level", root.level)
    configure_logging(quiet=True)
    exp = Experiment("quiet", base=EXPERIMENT.base)
    run_experiment(exp, out=tmp_path / "r", engine="dask", workers=1, quiet=True)
    out, err = capsys.readouterr()
    assert out == "" and err == "", err[:300]  # e.g. "Scheduler at: tcp://...", "Start Nanny at: ..."
