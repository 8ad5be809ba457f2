"""The example scenarios in ``experiments/scenarios/`` stay runnable: each validates, runs at toy size,
delivers something, and reports the figures its pattern is about.

Every run is shortened to ``duration = 1s`` without warm-up (``--set duration=1s --set warmup=0`` on the
command line), so the whole module takes a few seconds.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from conftest import assert_counts_match_the_rows

from sim.config.scenario import Scenario
from sim.patterns import PATTERNS
from sim.run.build import topology_search_path
from sim.run.metrics import PATTERN_METRICS
from sim.run.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = ROOT / "experiments" / "scenarios"
FILES = sorted(SCENARIO_DIR.glob("*.toml"))
SHORT = {"duration": "1s", "warmup": 0}
PLUGINS = [p for p in FILES if ".py:" in tomllib.loads(p.read_text()).get("pattern", "")]
"""Plug-in examples: tests/experiments/test_plugin_examples.py runs them whole, with these checks."""

ALWAYS = ("delivery_ratio", "latency_mean", "latency_p50", "latency_p99", "throughput", "msgs_per_delivery")
"""Figures every run that delivers something must report."""

BROKERED = ("queue_wait_mean", "broker_utilization", "backlog_max")
"""Figures every run through a broker must report."""


def _brokered(scenario: Scenario) -> bool:
    if scenario.pattern == "request_reply":
        return bool(scenario.options.get("request_reply", {}).get("via_broker", False))
    return scenario.pattern in ("queue", "pubsub", "event_driven")


def test_there_is_an_example_for_every_pattern() -> None:
    assert FILES, f"no scenarios in {SCENARIO_DIR}"
    patterns = {tomllib.loads(p.read_text()).get("pattern", "point_to_point") for p in FILES}
    assert set(PATTERNS) <= patterns, f"patterns without an example: {sorted(set(PATTERNS) - patterns)}"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_scenario_says_what_it_models_and_how_to_run_it(path: Path) -> None:
    text = path.read_text()
    header = text.split("\n\n", 1)[0] if text.startswith("#") else ""
    assert header, f"{path.name}: start with a comment saying what the scenario models"
    command = f"sim simulate experiments/scenarios/{path.name}"
    assert command in header, f"{path.name}: the header comment should show `{command}`"


@pytest.mark.parametrize("path", [p for p in FILES if p not in PLUGINS], ids=lambda p: p.name)
def test_scenario_validates_and_runs_small(path: Path) -> None:
    scenario = Scenario.from_toml(path).with_updates(SHORT)
    result = simulate(scenario, search=topology_search_path())
    summary = result.summary
    assert summary["delivered"] > 0, f"{path.name}: nothing delivered"
    assert_counts_match_the_rows(summary, result.columns, scenario.warmup)
    wanted = [*ALWAYS, *PATTERN_METRICS[scenario.pattern]]
    if _brokered(scenario):
        wanted += BROKERED
    not_finite = {name: summary[name] for name in wanted if not math.isfinite(summary[name])}
    assert not not_finite, f"{path.name}: {scenario.pattern} should report these finite: {not_finite}"
