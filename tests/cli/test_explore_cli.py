"""``sim explore``: the number of placements first, a line per cell, the results folder; a refusal above
``--max-runs`` (or any bad input) is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.cli.main import main
from sim.config.scenario import Scenario
from sim.run.simulate import simulate

# pub/sub on a star around the broker `hub`: a subscriber's crash loses what is published to it meanwhile
TINY = """
pattern = "pubsub"
duration = "1s"
drain = "5s"
seed = 1
[topology]
name = "star"
params = { n = 3 }
[links]
latency = "1ms"
[workload]
producers = ["h0"]
consumers = ["h1", "h2"]
rate = "100/s"
arrivals = "constant"
[broker]
node = "hub"
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_explore_prints_the_placements_then_each_cell(
    capsys: pytest.CaptureFixture[str], scenario_file: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    argv = [
        "explore",
        str(scenario_file),
        "--faults",
        "1",
        "--grid",
        "2",
        "--targets",
        "h1",
        "--out",
        str(out_dir),
        "--engine",
        "serial",
        "--quiet",
    ]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    lines = out.splitlines()
    # 1 + 2 instants x (crash, pause, partition) of h1; x 3 guarantees
    assert lines[0].startswith("explore: 7 placements of up to 1 fault(s) (crash, pause, partition of h1;")
    assert lines[0].endswith("= 21 runs")
    assert lines[1] == "  pubsub/at_most_once: 7 runs, every promise held"
    assert lines[2] == (
        "  pubsub/at_least_once: 7 runs, broken (no_loss); minimal: crash h1 at 0.5 s for 0.25 s "
        "-> pubsub-at_least_once.toml"
    )
    assert lines[-1] == f"written: {out_dir / 'explore.md'}"
    table = pd.read_parquet(out_dir / "explore.parquet")
    assert table["held"].tolist() == [True, False, False]
    # each counterexample's flow diagram, from a traced rerun of it (no column repeats its rules)
    assert table["counterexample_rules"].tolist() == ["", "no_loss", "no_loss"]
    assert "rerun_rules" not in table.columns
    for name in ("flow.html", "trace.json"):
        assert (out_dir / "pubsub-at_least_once_flow" / name).is_file()
    # the counterexample is a scenario file `sim simulate --check` reruns, and it breaks the same rule
    again = out_dir / "pubsub-at_least_once.toml"
    assert {v.rule for v in simulate(Scenario.from_toml(again)).check()} == {"no_loss"}
    code, out, _ = run(capsys, "simulate", str(again), "--check")
    assert code == 1 and "no_loss" in out
    # --check: a broken promise is exit 1; every promise held is exit 0
    assert run(capsys, *argv, "--check", "--out", str(tmp_path / "again"))[0] == 1
    safe = [*argv, "--check", "--guarantees", "at_most_once", "--out", str(tmp_path / "safe")]
    code, out, _ = run(capsys, *safe)
    assert code == 0 and "= 7 runs" in out and "every promise held" in out


def test_set_patterns_and_guarantees_choose_the_cells(
    capsys: pytest.CaptureFixture[str], scenario_file: Path, tmp_path: Path
) -> None:
    code, out, err = run(
        capsys,
        "explore",
        str(scenario_file),
        "--set",
        "workload.rate=50/s",
        "--faults=0",
        "--grid=1",
        "--patterns",
        "pubsub,queue",
        "--guarantees",
        "at_least_once",
        "--out",
        str(tmp_path / "out"),
        "--engine",
        "serial",
        "--quiet",
    )
    assert code == 0, err
    assert "1 placements of up to 0 fault(s)" in out
    assert "x 2 cell(s) (pubsub/at_least_once, queue/at_least_once) = 2 runs" in out
    runs = pd.read_parquet(tmp_path / "out" / "explore_runs.parquet")
    assert runs["offered"].tolist() == [100, 50]  # two subscribers, one queue, at 50/s for 1 s


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--max-runs", "20"],
            "sim: error: --max-runs = 20: expected at least 21 to run every placement (7 placements x 3 "
            "cell(s)); raise --max-runs, or lower --faults or --grid",
        ),
        (["--patterns", "gossip"], "sim: error: --patterns = 'gossip': expected a built-in pattern"),
        (["--targets", "h9"], "sim: error: --targets = 'h9': expected a node id, broker, producers"),
        (["--length", "soon"], "sim: error: --length = 'soon': expected a duration"),
        (
            ["--scheduler", "tcp://host:1"],
            "sim: error: --scheduler = 'tcp://host:1': expected no scheduler unless --engine dask",
        ),
    ],
)
def test_a_refusal_is_one_line_and_nothing_runs(
    capsys: pytest.CaptureFixture[str], scenario_file: Path, tmp_path: Path, extra: list[str], expected: str
) -> None:
    argv = ["explore", str(scenario_file), "--faults", "1", "--grid", "2", "--targets", "h1"]
    code, out, err = run(capsys, *argv, "--out", str(tmp_path / "out"), "--engine", "serial", *extra)
    assert code == 2
    assert err.startswith(expected) and err.count("\n") == 1
    if "--max-runs" in extra:  # the count comes first, then the refusal
        assert out.startswith("explore: 7 placements")
    assert not (tmp_path / "out").exists()


def test_the_required_options_are_named(capsys: pytest.CaptureFixture[str], scenario_file: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["explore", str(scenario_file), "--grid", "2", "--out", "x"])
    assert exit_.value.code == 2
    assert "--faults" in capsys.readouterr().err


def test_an_interrupted_exploration_says_so_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], scenario_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sim.sweep.explore

    def stop(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.sweep.explore, "run_all", stop)
    argv = ["explore", str(scenario_file), "--faults", "1", "--grid", "2", "--out", str(tmp_path / "out")]
    code, out, err = run(capsys, *argv, "--engine", "serial", "--quiet")
    assert code == 130
    assert out.startswith("explore: 7 placements")
    assert err == "sim: interrupted; nothing written (the tables come when every run is done)\n"
    assert not (tmp_path / "out").exists()
