"""The results key covers everything that decides a run: editing a topology file or changing the version of
``sim`` makes ``sim run`` compute the affected runs again instead of reusing stale results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
import pytest

import sim
import sim.sweep.runner
from sim.config.scenario import Scenario
from sim.sweep.experiment import Experiment, config_hash, topology_digest
from sim.sweep.runner import run_experiment

RUN_ALL = sim.sweep.runner.run_all


def line_json(path: Path, latency: str) -> None:
    """A node-link JSON line a - b - c with ``latency`` on every link."""
    nodes = [{"id": n} for n in "abc"]
    edges = [{"source": u, "target": v, "latency": latency} for u, v in ("ab", "bc")]
    path.write_text(json.dumps({"nodes": nodes, "edges": edges}), encoding="utf-8")


def line_graphml(path: Path, latency: str) -> None:
    g: nx.Graph[str] = nx.Graph()
    for u, v in ("ab", "bc"):
        g.add_edge(u, v, latency=latency)
    nx.write_graphml(g, path)


def experiment(topology: Path) -> Experiment:
    base = Scenario(
        duration="1s",
        drain="1s",
        topology={"name": str(topology)},
        workload={"producers": ["a"], "consumers": ["c"], "rate": "50/s"},
    )
    return Experiment("key", base=base, grid={"links.loss": [0.0, 0.1]}, replications=2)


def sweep(exp: Experiment, out: Path, executed: list[str], monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """Run ``exp`` serially into ``out``, noting the config hash of every run actually computed."""

    def counting(payloads: list[dict[str, Any]], on_row: Any, **kw: Any) -> None:
        executed.extend(p["config_hash"] for p in payloads)
        RUN_ALL(payloads, on_row, **kw)

    monkeypatch.setattr(sim.sweep.runner, "run_all", counting)
    return run_experiment(exp, out=out, engine="serial", quiet=True)


@pytest.mark.parametrize("write", [line_json, line_graphml], ids=["json", "graphml"])
def test_editing_the_topology_file_reruns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Any
) -> None:
    path = tmp_path / ("line.json" if write is line_json else "line.graphml")
    write(path, "2ms")
    exp = experiment(path)
    out = tmp_path / "out"
    first: list[str] = []
    before = sweep(exp, out, first, monkeypatch)
    assert len(first) == 4 and set(before["status"]) == {"ok"}
    assert before["latency_max"].max() == pytest.approx(0.004)  # two hops of 2 ms

    again: list[str] = []
    sweep(exp, out, again, monkeypatch)
    assert again == []  # nothing changed: every run is reused

    write(path, "5ms")
    edited: list[str] = []
    after = sweep(exp, out, edited, monkeypatch)
    assert len(edited) == 4 and not set(edited) & set(first)  # every run computed again
    assert len(after) == 4  # the stale rows are not part of the results
    assert sorted(after["config_hash"]) == sorted(edited)
    assert after["latency_max"].max() == pytest.approx(0.010)  # two hops of 5 ms, not the old 2 ms


def test_a_new_version_of_sim_reruns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "line.json"
    line_json(path, "2ms")
    exp = experiment(path)
    out = tmp_path / "out"
    first: list[str] = []
    sweep(exp, out, first, monkeypatch)
    monkeypatch.setattr(sim, "__version__", sim.__version__ + ".post1")
    bumped: list[str] = []
    after = sweep(exp, out, bumped, monkeypatch)
    assert len(bumped) == 4 and not set(bumped) & set(first)
    assert sorted(after["config_hash"]) == sorted(bumped)


def test_the_key_follows_file_content_not_its_name_or_time(tmp_path: Path) -> None:
    path = tmp_path / "line.json"
    line_json(path, "2ms")
    scenario = experiment(path).base
    key = config_hash(scenario)
    line_json(path, "2ms")  # rewritten with the same bytes: same key
    assert config_hash(scenario) == key
    copy = tmp_path / "copy.json"
    copy.write_bytes(path.read_bytes())
    assert topology_digest(str(copy)) == topology_digest(str(path))
    line_json(path, "3ms")
    assert config_hash(scenario) != key


def test_builtins_and_missing_files() -> None:
    assert topology_digest("line") == ""
    assert topology_digest("no_such_topology.json") == "missing"
    # a named topology of the project's topologies/ is hashed as its file
    shipped = Path(sim.__file__).resolve().parents[1] / "topologies" / "microservice_mesh.py"
    assert topology_digest("microservice_mesh") == topology_digest(str(shipped)) != ""
