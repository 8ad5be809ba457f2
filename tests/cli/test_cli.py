"""The ``sim`` command: simulate, list, topology show; bad input prints one line and exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = """
pattern = "point_to_point"
duration = "1s"
seed = 3
[topology]
name = "line"
params = { n = 3 }
[links]
latency = "2ms"
[workload]
rate = "50/s"
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_prints_the_summary(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "simulate", str(scenario_file))
    assert code == 0
    assert "point_to_point on line, seed 3" in out
    assert "latency_mean" in out and "0.004" in out  # two hops of 2 ms


def test_simulate_json_and_set(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "simulate",
        str(scenario_file),
        "--json",
        "--set",
        "links.latency=5ms",
        "--set",
        "topology.params.n=2",
        "--set",
        "delivery.guarantee=at_least_once",
    )
    assert code == 0
    data = json.loads(out)
    assert data["summary"]["latency_mean"] == pytest.approx(0.005)
    assert data["scenario"]["delivery"]["guarantee"] == "at_least_once"
    assert data["summary"]["control_transmissions"] > 0


def test_list_names_patterns_topologies_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    for word in (
        "point_to_point",
        "leaf_spine",
        "fat_tree",
        "leaf_spine_dc",
        "latency_p99",
        "delivery_ratio",
    ):
        assert word in out


def test_topology_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topology", "show", "line", "--param", "n=4")
    assert code == 0
    assert "4" in out and "n3" in out


def test_topology_show_named_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topology", "show", str(ROOT / "topologies" / "three_region_wan.py"))
    assert code == 0 and "gateway" in out


# bad input in every form (scenario files, --set, topology files, scripts, arguments) is tested in
# tests/config/test_bad_inputs.py


def test_a_byte_order_mark_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())  # as some editors save UTF-8
    code, out, _ = run(capsys, "simulate", str(path))
    assert code == 0 and "point_to_point on line, seed 3" in out


def test_the_installed_command_runs_and_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[links]\nloss = 2\n")
    sim = Path(sys.executable).with_name("sim")
    done = subprocess.run([str(sim), "simulate", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "sim: error: links.loss = 2: expected a probability in [0, 1]"
    assert "Traceback" not in done.stderr


# -- sim run: the results folder ----------------------------------------------------------------------
TINY = """\
from sim.sweep.experiment import Experiment
from sim.config.scenario import Scenario

EXPERIMENT = Experiment(
    "tiny", base=Scenario(duration="1s", drain="0s", topology={"name": "line", "params": {"n": 3}})
)
"""


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return path


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_fresh_removes_only_the_files_sim_wrote(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.sweep.store import ResultStore

    out = tiny.parent / "out"
    assert main(["run", str(tiny), "--engine", "serial", "--quiet", "--save-ledgers", "--out", str(out)]) == 0
    written = _files(out)
    assert {"runs.parquet", "summary.csv", "meta.json", "report.md", "report.html"} <= written
    assert any(f.startswith("runs/") for f in written) and any(f.startswith("ledgers/") for f in written)
    assert any(f.startswith("figures/") for f in written)
    foreign = {"notes.txt", "figures/mine.png", "runs/keep.json", "ledgers/readme.md", "old/runs.parquet"}
    for name in foreign:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("the user's")
    assert set(map(str, (p.relative_to(out) for p in ResultStore(out).own_files()))) == written
    again = [
        "run",
        str(tiny),
        "--engine",
        "serial",
        "--quiet",
        "--fresh",
        "--save-ledgers",
        "--out",
        str(out),
    ]
    assert main(again) == 0
    assert json.loads((out / "meta.json").read_text())["ran"] == 1  # the stored run was removed, so it ran
    assert _files(out) == written | foreign  # its ledger too, written before the old files were removed
    ResultStore(out).clear()
    assert _files(out) == foreign
    assert all((out / name).read_text() == "the user's" for name in foreign)


def test_an_unwritable_out_is_found_before_the_first_run(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sim.sweep.runner

    ran: list[object] = []
    real = sim.sweep.runner.run_all
    sim.sweep.runner.run_all = lambda *a, **k: ran.append(a)  # type: ignore[assignment]
    try:
        assert main(["run", str(tiny), "--engine", "serial", "--out", "tiny.py/results"]) == 2
    finally:
        sim.sweep.runner.run_all = real
    assert ran == []
    assert capsys.readouterr().err.startswith("sim: error: --out = 'tiny.py/results': expected a folder")


def test_an_unreachable_scheduler_leaves_nothing_behind(
    tiny: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    real = distributed.Client
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: real(*a, **{**k, "timeout": "1s"}))
    out = tiny.parent / "out"
    unreachable = [
        "run",
        str(tiny),
        "--engine",
        "dask",
        "--scheduler",
        "tcp://127.0.0.1:1",
        "--out",
        str(out),
    ]
    assert main(unreachable) == 2
    assert capsys.readouterr().err.startswith("sim: error: --scheduler = 'tcp://127.0.0.1:1'")
    assert not out.exists()
    # with --fresh too: the stored results are removed only once a new run is stored, so they survive
    assert main(["run", str(tiny), "--engine", "serial", "--quiet", "--out", str(out)]) == 0
    stored = {name: (out / name).read_bytes() for name in _files(out)}
    assert main([*unreachable, "--fresh"]) == 2
    assert {name: (out / name).read_bytes() for name in _files(out)} == stored


@pytest.mark.slow  # a LocalCluster starts and stops: about 10 s
def test_quiet_dask_run_prints_nothing(tiny: Path) -> None:
    pytest.importorskip("distributed")
    sim = Path(sys.executable).with_name("sim")
    argv = [str(sim), "run", str(tiny), "--engine", "dask", "--workers", "1", "--quiet", "--out", "out"]
    done = subprocess.run(argv, cwd=tiny.parent, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert (tiny.parent / "out" / "runs.parquet").exists()
