"""Shrinking a failing run: which faults remain, nemeses made explicit, refusals, the bound, determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.config.scenario import Scenario
from sim.config.toml import scenario_toml
from sim.core.errors import SimError
from sim.run.checks import RULES
from sim.run.fault_plan import as_faults
from sim.run.shrink import MAX_RUNS, Step, _ddmin, _units, shrink
from sim.run.simulate import simulate

SCENARIOS = Path(__file__).resolve().parents[2] / "experiments" / "scenarios"

DOZEN = [  # twelve fault entries (eleven faults: h2's crash and recover are one) on a star, hub the broker
    {"at": 0.05, "action": "latency", "target": "h0-hub", "add": "2ms", "for": 0.1},
    {"at": 0.08, "action": "reorder", "target": "all", "jitter": "1ms", "for": 0.1},
    {"at": 0.1, "action": "pause", "target": "h3", "for": 0.05},
    {"at": 0.12, "action": "link_down", "target": "h1-hub", "for": 0.03},
    {"at": 0.15, "action": "loss", "target": "h0-hub", "p": 0.3, "for": 0.1},
    {"at": 0.18, "action": "crash", "target": "h2"},
    {"at": 0.22, "action": "recover", "target": "h2"},
    {"at": 0.25, "action": "crash", "target": "hub", "for": 0.05},
    {"at": 0.3, "action": "duplicate", "target": "h1-hub", "probability": 0.2, "for": 0.1},
    {"at": 0.35, "action": "partition", "groups": [["h0"]], "one_way": True, "for": 0.03},
    {"at": 0.4, "action": "latency", "target": "all", "factor": 3, "for": 0.05},
    {"at": 0.45, "action": "pause", "target": "hub", "for": 0.02},
]


def small(**changes: Any) -> Scenario:
    """A small brokered run on a star (hub and h0..h3): 0.6 s, two producers, two consumers."""
    data: dict[str, Any] = {
        "pattern": "pubsub",
        "duration": 0.6,
        "drain": 5,
        "seed": 3,
        "topology": {"name": "star", "params": {"n": 4}},
        "workload": {"producers": ["h0", "h1"], "consumers": ["h2", "h3"], "rate": "100/s"},
        "delivery": {"guarantee": "at_least_once", "ack_timeout": "10ms"},
        "broker": {"node": "hub"},
        "faults": DOZEN,
    }
    data.update(changes)
    return Scenario.from_dict(data)


def faults(scenario: Scenario) -> list[tuple[float, str, Any, float | None]]:
    return [(f.at, f.action, f.target, f.for_) for f in scenario.faults]


def test_at_least_once_loss_shrinks_to_the_subscriber_crash_and_its_recover() -> None:
    seen: list[Step] = []
    found = shrink(small(), progress=seen.append)
    assert found.rule == "no_loss" and found.violation.rule == "no_loss"
    assert faults(found.scenario) == [(0.18, "crash", "h2", None), (0.22, "recover", "h2", None)]
    # the workload and the duration shrank too: one producer, the crashed subscriber, a shorter run
    w = found.scenario.workload
    assert (w.producers, w.consumers) == (["h0"], ["h2"])
    assert w.rate < 100 and found.scenario.duration < 0.6
    assert found.steps == seen and [s.phase for s in seen][:3] == ["faults", "producers", "consumers"]
    assert "crash hub at 0.25 s for 0.05 s" in seen[0].change  # the broker's crash did not matter
    assert not found.bounded and seen[-1].runs < found.runs < 40  # the last runs found nothing smaller
    again = simulate(found.scenario)  # the minimal scenario, run alone, still breaks the rule
    assert [v for v in again.check() if v.rule == "no_loss"] == found.violations


def test_at_most_once_duplicates_shrink_to_the_duplicate_window() -> None:
    found = shrink(small(pattern="point_to_point", delivery={"guarantee": "at_most_once"}))
    assert found.rule == "no_duplicates"
    assert faults(found.scenario) == [(0.3, "duplicate", "h1-hub", 0.0125)]  # 1/8 of its 0.1 s window
    assert found.scenario.workload.producers == ["h1"]  # the one whose link duplicates
    assert found.violation.evidence == "delivered 2 times"


def test_a_nemesis_shrinks_to_explicit_actions() -> None:
    scenario = small(
        faults=[],
        seed=5,
        nemesis=[
            {"kind": "crash", "targets": "consumers", "mttf": "200ms", "mttr": "30ms"},
            {"kind": "flaky_links", "mttf": "100ms", "mttr": "50ms", "fraction": 0.3, "loss": 0.5},
        ],
    )
    explicit = shrink(scenario, max_runs=1)  # the bound stops it right after the nemeses became faults
    assert explicit.bounded and explicit.runs == 1
    assert explicit.steps[0].change == "2 nemeses made explicit: 11 fault(s) drawn"
    assert explicit.scenario.nemesis == [] and len(explicit.scenario.faults) == 11
    drawn = {(f.at, f.action, tuple(f.target or ())): f.for_ for f in explicit.scenario.faults}
    before, after = simulate(scenario), simulate(explicit.scenario)  # the same faults: the same run
    for name, column in before.columns.items():
        nan = column.dtype.kind == "f"  # text columns (outcome, reason ...) compare as they are
        assert np.array_equal(column, after.columns[name], equal_nan=nan), name
    assert before.fault_log == after.fault_log

    found = shrink(scenario)
    assert found.scenario.nemesis == []
    kept = {(f.at, f.action, tuple(f.target or ())): f.for_ for f in found.scenario.faults}
    assert len(kept) == 1 and set(kept) <= set(drawn)  # one of the drawn crashes, maybe shorter
    ((at, action, target), length), *_ = kept.items()
    assert (action, target) == ("crash", ("h3",)) and 0 < length <= drawn[at, action, target]
    assert found.scenario.workload.consumers == ["h3"]


def test_nemeses_stay_when_their_draws_would_not_schedule_the_same_faults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sim.run.shrink as module

    scenario = small(
        faults=[],
        seed=5,
        nemesis=[{"kind": "crash", "targets": "consumers", "mttf": "200ms", "mttr": "30ms"}],
    )
    monkeypatch.setattr(module, "as_faults", lambda actions: as_faults(actions)[1:])  # one draw lost
    found = shrink(scenario, max_runs=1)
    assert found.steps[0].change.endswith("their draws do not resolve to the same faults")
    assert found.scenario == scenario


def test_nemeses_stay_when_their_draws_clash_with_the_scheduled_faults() -> None:
    down = [{"at": 0.0, "action": "crash", "target": "h3", "for": 0.55}]  # the nemesis crashes h3 again
    nemesis = [{"kind": "crash", "targets": "h3", "mttf": "200ms", "mttr": "30ms"}]
    found = shrink(small(faults=down, seed=5, nemesis=nemesis), max_runs=1)
    assert "kept the nemeses as they are: their draws are no valid schedule" in found.steps[0].change
    assert "crash" in found.steps[0].change and found.scenario.nemesis == found.original.nemesis


def test_a_passing_run_is_refused() -> None:
    with pytest.raises(SimError, match=r"a run that fails its check \(every at_least_once promise held"):
        shrink(small(faults=[]))


def test_the_rule_is_matched_by_name() -> None:
    with pytest.raises(SimError, match="rule = 'no_such_rule': expected one of no_duplicates"):
        shrink(small(), rule="no_such_rule")
    with pytest.raises(SimError, match="rule = 'fifo': expected a rule the run breaks: no_loss"):
        shrink(small(), rule="fifo")
    assert shrink(small(), rule="no_loss", max_runs=2).rule == "no_loss"
    # per-key ordering: the run breaks no_loss (the subscriber's crash) and fifo (a lossy link's retries)
    ordered = small(delivery={"guarantee": "at_least_once", "ack_timeout": "10ms", "ordering": "per_key"})
    loss = shrink(ordered)  # by default, the first rule broken, in the order of RULES
    assert loss.rule == "no_loss" and {v.rule for v in loss.violations} == {"no_loss"}
    assert faults(loss.scenario) == [(0.18, "crash", "h2", None), (0.22, "recover", "h2", None)]
    fifo = shrink(ordered, rule="fifo")
    assert faults(fifo.scenario) == [(0.15, "loss", "h0-hub", 0.025)]
    assert {v.rule for v in fifo.violations} == {"fifo"} == {v.rule for v in fifo.result.check()}
    assert set(RULES) == {"no_duplicates", "no_loss", "no_delivery_while_down", "fifo"}


def test_the_bound_stops_the_search_and_says_so() -> None:
    found = shrink(small(), max_runs=3)
    assert found.bounded and found.runs == 3 and found.max_runs == 3
    assert found.violations and found.violation.rule == "no_loss"  # the best so far still fails
    assert MAX_RUNS == 200
    with pytest.raises(SimError, match="max_runs = 0: expected a whole number >= 1"):
        shrink(small(), max_runs=0)


def test_shrinking_is_deterministic() -> None:
    scenario = small(pattern="point_to_point", delivery={"guarantee": "at_most_once"})
    one, two = shrink(scenario), shrink(scenario)
    assert one.scenario == two.scenario and one.steps == two.steps and one.runs == two.runs
    assert scenario_toml(one.scenario) == scenario_toml(two.scenario)


def test_a_crash_and_its_recover_are_one_fault() -> None:
    entries = [
        {"at": 0.3, "action": "recover", "target": "a"},
        {"at": 0.1, "action": "crash", "target": "a"},
        {"at": 0.2, "action": "crash", "target": "b", "for": 0.5},
        {"at": 0.4, "action": "partition", "groups": [["a"]]},
        {"at": 0.5, "action": "heal"},
        {"at": 0.6, "action": "crash", "target": ["a"]},
    ]
    assert _units(entries) == [[0, 1], [2], [3, 4], [5]]


def test_ddmin_finds_a_one_minimal_subset() -> None:
    calls: list[list[int]] = []

    def breaks(sub: list[int]) -> bool:
        calls.append(sub)
        return {3, 7} <= set(sub)

    assert _ddmin(list(range(12)), breaks) == [3, 7]
    assert calls[0] == []  # nothing at all is tried first
    assert _ddmin(list(range(5)), lambda sub: True) == []


def test_the_shipped_fault_demo_shrinks_under_at_most_once() -> None:
    """faults_demo.toml holds its at-least-once promises; run at-most-once, its duplicate window breaks
    no_duplicates, and that window is all that remains (docs/shrink.md shows the command)."""
    demo = Scenario.from_toml(SCENARIOS / "faults_demo.toml")
    with pytest.raises(SimError, match="every at_least_once promise held"):
        shrink(demo, max_runs=1)
    found = shrink(demo.with_updates({"delivery.guarantee": "at_most_once"}))
    assert found.steps[0].change == "1 nemesis made explicit: 2 fault(s) drawn"
    assert faults(found.scenario) == [(0.1, "duplicate", "h0-hub", 0.375)]
    assert found.scenario.nemesis == [] and found.scenario.workload.producers == ["h0"]
