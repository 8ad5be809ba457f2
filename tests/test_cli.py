"""The ``sim`` command: simulate, list, topology show; bad input prints one line and exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
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


BAD = [
    ("unknown key", "bogus = 1", "bogus"),
    ("wrong type", "duration = [1, 2]", "duration"),
    ("negative latency", '[links]\nlatency = "-1ms"', "links.latency"),
    ("loss above 1", "[links]\nloss = 1.5", "links.loss"),
    ("unparsable unit", '[workload]\nrate = "fast"', "workload.rate"),
    ("unknown topology", '[topology]\nname = "moebius"', "topology.name"),
    ("unknown node", '[workload]\nproducers = ["nowhere"]', "workload.producers"),
    ("bad generator param", '[topology]\nname = "line"\nparams = { n = 0 }', "topology.params.n"),
    ("unknown generator param", '[topology]\nname = "line"\nparams = { size = 3 }', "topology.params.size"),
    ("unknown pattern", 'pattern = "telepathy"', "pattern"),
    (
        "too many producers",
        '[topology]\nname = "line"\nparams = { n = 2 }\n[workload]\nproducers = 3',
        "workload.producers",
    ),
    ("warmup after end", 'duration = "1s"\nwarmup = "2s"', "warmup"),
    ("bad guarantee", '[delivery]\nguarantee = "exactly_once"', "delivery.guarantee"),
    ("bad distribution", '[links]\nlatency = { dist = "gamma", mean = 1 }', "links.latency.dist"),
]


@pytest.mark.parametrize(("label", "text", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_exit_2_with_one_line(
    label: str, text: str, field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    code, out, err = run(capsys, "simulate", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sim: error: ")
    assert field in err


def test_empty_graph_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    topo = tmp_path / "empty.json"
    topo.write_text(
        json.dumps({"directed": False, "multigraph": False, "graph": {}, "nodes": [], "edges": []})
    )
    path = tmp_path / "s.toml"
    path.write_text(f'[topology]\nname = "{topo}"\n')
    code, _, err = run(capsys, "simulate", str(path))
    assert code == 2 and "at least one node" in err


@pytest.mark.parametrize("content", [None, "duration = = 3", "x = [1,"])
def test_missing_or_unparsable_file(
    content: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    if content is not None:
        path.write_text(content)
    code, _, err = run(capsys, "simulate", str(path))
    assert code == 2 and str(path) in err and err.count("\n") == 1


def test_bad_set_and_bad_arguments(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "simulate", str(scenario_file), "--set", "links.nope=1")
    assert code == 2 and "links.nope" in err
    code, _, err = run(capsys, "simulate", str(scenario_file), "--set", "novalue")
    assert code == 2 and "--set" in err
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_the_installed_command_runs_and_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[links]\nloss = 2\n")
    sim = Path(sys.executable).with_name("sim")
    done = subprocess.run([str(sim), "simulate", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "sim: error: links.loss = 2: expected a probability in [0, 1]"
    assert "Traceback" not in done.stderr
