"""The scenario-to-TOML writer: load → write → load gives an equal scenario, and the same run."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from sim.config.scenario import Scenario
from sim.config.toml import dumps, scenario_toml
from sim.core.errors import SimError
from sim.run.simulate import simulate

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "scenarios").glob("*.toml"))


def test_there_are_shipped_scenarios() -> None:
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("full", [False, True], ids=["differences", "full"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_shipped_scenario_reads_back_equal(path: Path, full: bool, tmp_path: Path) -> None:
    scenario = Scenario.from_toml(path)
    out = tmp_path / "again.toml"
    out.write_text(scenario_toml(scenario, full=full), encoding="utf-8")
    again = Scenario.from_toml(out)
    assert again == scenario
    assert again.to_dict() == scenario.to_dict()


def test_only_settings_that_differ_from_the_defaults_are_written() -> None:
    text = scenario_toml(Scenario(seed=3, links={"loss": 0.25}))
    assert tomllib.loads(text) == {"seed": 3, "links": {"loss": 0.25}}
    assert scenario_toml(Scenario()) == "\n"  # nothing differs: an empty file is the default scenario
    full = tomllib.loads(scenario_toml(Scenario(), full=True))
    assert full["links"]["bandwidth"] == math.inf and full["delivery"]["max_timeout"] == math.inf


def test_the_written_scenario_runs_the_same(tmp_path: Path) -> None:
    scenario = Scenario(
        pattern="queue",
        duration=0.5,
        seed=11,
        topology={"name": "star", "params": {"n": 3}},
        links={"latency": {"dist": "exponential", "mean": "1ms"}, "loss": 0.05},
        workload={"rate": "50/s"},
        delivery={"guarantee": "at_least_once", "ack_timeout": 1 / 30},
        broker={"node": "hub"},
        faults=[{"at": 0.1 + 0.2, "action": "crash", "target": "h0", "for": 0.1}],
    )
    out = tmp_path / "s.toml"
    out.write_text(scenario_toml(scenario), encoding="utf-8")
    again = Scenario.from_toml(out)
    assert again.faults[0].at == 0.1 + 0.2  # 0.30000000000000004: floats are written to the last bit
    assert simulate(again).summary == simulate(scenario).summary


def test_strings_and_keys_are_escaped() -> None:
    data = {
        "name": 'a "quoted" back\\slash\ttab\nline \x01 \x7f é',
        "odd key.with dot": 1,
        "t": {"x y": [1, 2.5, "z"], "inline": [{"a": 1}, 2]},
    }
    assert tomllib.loads(dumps(data)) == data


def test_none_is_left_out_of_tables_and_refused_in_lists() -> None:
    assert tomllib.loads(dumps({"a": None, "b": {"c": None, "d": 1}})) == {"b": {"d": 1}}
    with pytest.raises(SimError, match=r"x\.y.*TOML has no null"):
        dumps({"x": {"y": [1, None]}})
    with pytest.raises(SimError, match="what TOML can hold"):
        dumps({"x": object()})
