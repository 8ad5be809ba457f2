"""Bounded exploration (``sim.sweep.explore``): every placement of up to K faults on a grid, run per pattern
and guarantee, with the broken promises and a minimal counterexample for each cell."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.run.simulate import RunResult, simulate
from sim.sweep.engines import execute
from sim.sweep.explore import FOCUS, explore, plan

# pub/sub with two subscribers on a star around the broker `hub`: a subscriber's crash loses what is published
# to it meanwhile, which at-least-once promises not to
TINY = Scenario(
    pattern="pubsub",
    duration="1s",
    drain="5s",
    seed=1,
    topology={"name": "star", "params": {"n": 3}},
    links={"latency": "1ms"},
    workload={"producers": ["h0"], "consumers": ["h1", "h2"], "rate": "100/s", "arrivals": "constant"},
    broker={"node": "hub"},
    delivery={"guarantee": "at_least_once"},
)


def _payload(scenario: Scenario, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario.to_dict(),
        "params": {},
        "point": 0,
        "replication": 0,
        "seed": scenario.seed,
        "config_hash": "0" * 16,
        **extra,
    }


def test_an_engine_counts_the_broken_promises_when_asked() -> None:
    crash = TINY.with_updates({"faults": [{"at": 0.3, "action": "crash", "target": "h1", "for": 0.25}]})
    row = execute(_payload(crash, check=True))
    assert row["status"] == "ok"
    assert row["_violations"] == {"no_loss": 26}
    assert execute(_payload(TINY, check=True))["_violations"] == {}
    assert "_violations" not in execute(_payload(crash))  # a sweep's rows are as before


def _counted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["pattern", "guarantee", "placement"]).reset_index(drop=True)


# -- placements ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("most", "grid", "targets", "count"),
    [
        # one target, 2 instants: 6 faults (crash, pause, partition x 2); of the 15 pairs, a crash and a
        # pause of h1 at one instant clash (twice): 1 + 6 + 13
        (2, 2, ["h1"], 20),
        # two targets, 1 instant: 6 faults; crash+pause of h1, of h2, and two partitions at once clash:
        # 1 + 6 + (15 - 3)
        (2, 1, ["h1", "h2"], 19),
        # two targets, 3 instants: 18 faults; 3 clashing pairs per instant: 1 + 18 + (153 - 9)
        (2, 3, ["h1", "h2"], 163),
        (1, 3, None, 10),  # the broker (hub) by default: 1 + 9
        (0, 5, ["h1"], 1),  # only the run without faults
        # up to three faults of one target on 2 instants: the 20 above, and the C(6, 3) = 20 triples less
        # those holding a clashing pair (each of the 2 pairs with any of the 4 other faults): 20 + 20 - 8
        (3, 2, ["h1"], 32),
    ],
)
def test_placements_are_counted_by_hand(most: int, grid: int, targets: list[str] | None, count: int) -> None:
    plan_ = plan(TINY, most=most, grid=grid, targets=targets)
    assert len(plan_.placements) == count
    assert plan_.runs == 3 * count  # every guarantee by default
    sets = [frozenset(p) for p in plan_.placements]
    assert len(set(sets)) == len(sets)  # the order of faults does not matter: each set once
    sizes = [len(p) for p in plan_.placements]
    assert sizes == sorted(sizes) and sizes[0] == 0  # by increasing number of faults, the empty one first


def test_placements_skip_what_the_fault_registry_refuses() -> None:
    plan_ = plan(TINY, most=2, grid=1, targets=["h1", "h2"])
    assert plan_.instants == (0.0,) and plan_.length == 0.5  # half a grid step
    chosen = {frozenset((f.action, f.target) for f in p) for p in plan_.placements}
    assert frozenset({("crash", "h1"), ("pause", "h1")}) not in chosen  # a paused node is down already
    assert frozenset({("partition", "h1"), ("partition", "h2")}) not in chosen  # one partition at a time
    assert frozenset({("crash", "h1"), ("pause", "h2")}) in chosen
    assert frozenset({("crash", "h1"), ("partition", "h1")}) in chosen


def test_faults_sit_on_the_grid_and_replace_the_scenario_s_own() -> None:
    noisy = TINY.with_updates({"faults": [{"at": 0.1, "action": "crash", "target": "h2", "for": 0.1}]})
    plan_ = plan(noisy, most=1, grid=4, targets=["consumers"], length=0.05)
    assert plan_.targets == ("h1", "h2")
    assert plan_.instants == (0.0, 0.25, 0.5, 0.75)
    assert plan_.scenario.faults == []
    one = plan_.placements[-1]
    assert [f.table() for f in one] == [
        {"at": 0.75, "action": "partition", "for": 0.05, "groups": [["h2"]], "one_way": False}
    ]
    scenario = plan_.scenario_for(("queue", "at_most_once"), one)
    assert (scenario.pattern, scenario.delivery.guarantee, len(scenario.faults)) == (
        "queue",
        "at_most_once",
        1,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"most": -1, "grid": 2}, "--faults"),
        ({"most": 1, "grid": 0}, "--grid"),
        ({"most": 1, "grid": 2, "patterns": ["gossip"]}, "--patterns"),
        ({"most": 1, "grid": 2, "guarantees": ["exactly_once"]}, "--guarantees"),
        ({"most": 1, "grid": 2, "targets": ["h9"]}, "--targets"),
        ({"most": 1, "grid": 2, "length": 0.0}, "--length"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SimError) as err:
        plan(TINY, **kwargs)
    assert err.value.field == field


# -- exploring -------------------------------------------------------------------------------------------
def test_a_broken_cell_has_a_minimal_counterexample_that_breaks_again_from_its_file(tmp_path: Path) -> None:
    drawn: list[tuple[bool, Path]] = []

    def views(result: RunResult, out: Path, *, obligations: Collection[int] | None = None) -> list[Path]:
        drawn.append((result.trace is not None, out))
        out.mkdir()
        (out / "flow.html").write_text("<html></html>")
        return [out / "flow.html"]

    plan_ = plan(TINY, most=2, grid=2, targets=["h1"], guarantees=["at_most_once", "at_least_once"])
    found = explore(plan_, tmp_path, engine="serial", quiet=True, views=views)
    safe, broken = found.table.to_dict("records")
    # at-most-once promises no duplicates: losses under a subscriber's crash are allowed
    assert (safe["guarantee"], safe["held"], safe["runs"], safe["broken"]) == ("at_most_once", True, 20, 0)
    assert safe["scenario_file"] == "" and not (tmp_path / "pubsub-at_most_once.toml").exists()
    # at-least-once breaks when h1 is down while messages are published to it: in the 5 placements
    # holding the crash at 0.5 s (at 0 s, h1 has not subscribed yet)
    assert (broken["guarantee"], broken["held"], broken["broken"], broken["rules"]) == (
        "at_least_once",
        False,
        5,
        "no_loss",
    )
    assert (broken["min_faults"], broken["counterexample"]) == (1, "crash h1 at 0.5 s for 0.25 s")
    assert not found.held
    again = Scenario.from_toml(tmp_path / broken["scenario_file"])
    assert [f.action for f in again.faults] == ["crash"]
    assert {v.rule for v in simulate(again).check()} == {"no_loss"}
    assert drawn == [(True, tmp_path / "pubsub-at_least_once_flow")]  # the diagram of a traced rerun
    assert broken["flow"] == "pubsub-at_least_once_flow"
    assert "rerun_rules" not in found.table  # the traced rerun is the counterexample: its rules are those
    assert broken["flow_shows"] == "the whole run"
    runs = pd.read_parquet(tmp_path / "explore_runs.parquet")
    assert len(runs) == 40 and set(runs["status"]) == {"ok"}
    assert pd.read_parquet(tmp_path / "explore.parquet")["broken"].tolist() == [0, 5]
    assert (
        "| pubsub | at_least_once | 20 | 5 | 0 | no | no_loss | crash h1 at 0.5 s for 0.25 s | 1 |"
        in (tmp_path / "explore.md").read_text()
    )


def test_the_counterexample_has_the_fewest_faults_even_when_one_fault_is_not_enough(tmp_path: Path) -> None:
    # point-to-point at-least-once, faults of the producer h0: a crash alone finds nothing under way, but a
    # partition first leaves sends waiting for their retry, and a crash then loses them
    p2p = TINY.with_updates({"pattern": "point_to_point", "workload.rate": "50/s"})
    found = explore(
        plan(p2p, most=2, grid=3, targets=["h0"], guarantees=["at_least_once"]),
        tmp_path,
        engine="serial",
        quiet=True,
    )
    (cell,) = found.table.to_dict("records")
    assert (cell["runs"], cell["min_faults"]) == (43, 2)
    assert found.runs[found.runs["faults"] < 2]["violations"].sum() == 0  # no single fault breaks it
    again = Scenario.from_toml(tmp_path / cell["scenario_file"])
    assert sorted(f.action for f in again.faults) == ["crash", "partition"]
    assert {v.rule for v in simulate(again).check()} == {"no_loss"}


def test_more_runs_than_allowed_are_refused_before_any_runs(tmp_path: Path) -> None:
    plan_ = plan(TINY, most=2, grid=2, targets=["h1"])
    with pytest.raises(SimError) as err:
        explore(plan_, tmp_path / "out", engine="serial", max_runs=59, quiet=True)
    assert err.value.field == "--max-runs"
    assert "at least 60" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_too_many_placements_to_count_are_refused_with_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.sweep.explore

    monkeypatch.setattr(sim.sweep.explore, "COUNTED", 19)  # the plan below has 20 placements
    with pytest.raises(SimError) as err:
        plan(TINY, most=2, grid=2, targets=["h1"])
    assert err.value.field == "--faults"
    assert "22 sets of up to 2 of 6 faults (more than 19 even without the clashing ones)" in str(err.value)
    monkeypatch.setattr(sim.sweep.explore, "COUNTED", 20)
    assert len(plan(TINY, most=2, grid=2, targets=["h1"]).placements) == 20


def test_serial_and_processes_give_the_same_tables(tmp_path: Path) -> None:
    plan_ = plan(TINY, most=1, grid=2, targets=["h1"])
    serial = explore(plan_, tmp_path / "serial", engine="serial", quiet=True)
    pooled = explore(plan_, tmp_path / "processes", engine="processes", workers=2, quiet=True)
    pd.testing.assert_frame_equal(serial.table, pooled.table)
    pd.testing.assert_frame_equal(_counted(serial.runs), _counted(pooled.runs))
    for name in ("explore.md", "pubsub-at_least_once.toml"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "processes" / name).read_bytes()


def test_a_run_too_big_to_draw_is_drawn_for_its_broken_obligations(tmp_path: Path) -> None:
    asked: list[list[int] | None] = []

    def views(result: RunResult, out: Path, *, obligations: Collection[int] | None = None) -> list[Path]:
        asked.append(None if obligations is None else list(obligations))
        if obligations is None or len(obligations) > FOCUS:
            raise SimError("obligations", obligations, "fewer arrows")
        return [out / "flow.html"]

    plan_ = plan(TINY, most=1, grid=2, targets=["h1"], guarantees=["at_least_once"])
    (cell,) = explore(plan_, tmp_path, engine="serial", quiet=True, views=views).table.to_dict("records")
    counterexample = plan_.scenario_for(("pubsub", "at_least_once"), plan_.placements[cell["placement"]])
    broken = sorted({v.obligation for v in simulate(counterexample).check()})
    assert asked == [None, broken[:FOCUS]] and len(broken) > FOCUS  # the whole run first, then the first 20
    assert cell["flow_shows"] == "broken obligations " + ", ".join(map(str, broken[:FOCUS]))
    assert (
        f"- `pubsub-at_least_once_flow/flow.html`: {cell['flow_shows']}"
        in (tmp_path / "explore.md").read_text()
    )


def test_a_new_exploration_in_the_same_folder_drops_the_old_counterexamples(tmp_path: Path) -> None:
    def views(result: RunResult, out: Path, *, obligations: Collection[int] | None = None) -> list[Path]:
        out.mkdir(exist_ok=True)
        (out / "flow.html").write_text("<html></html>")
        return [out / "flow.html"]

    broken = plan(TINY, most=1, grid=2, targets=["h1"], guarantees=["at_least_once"])
    explore(broken, tmp_path, engine="serial", quiet=True, views=views)
    (tmp_path / "notes.txt").write_text("mine")
    assert (tmp_path / "pubsub-at_least_once.toml").is_file()
    safe = plan(TINY, most=1, grid=2, targets=["h1"], guarantees=["at_most_once"])
    found = explore(safe, tmp_path, engine="serial", quiet=True, views=views)
    assert found.held
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "explore.md",
        "explore.parquet",
        "explore_runs.parquet",
        "notes.txt",
    ]


def test_a_placement_s_scenario_schedules_exactly_the_faults_the_clash_check_saw() -> None:
    """The ``[[faults]]`` tables a run gets and the schedule :func:`placements` validated are one encoding:
    the run's resolved schedule is each fault's ``scheduled()``."""
    from sim.core.context import SimContext
    from sim.model.faults.injector import expand
    from sim.run import fault_plan
    from sim.run.build import build

    plan_ = plan(TINY, most=2, grid=2, targets=["h1", "h2"])
    placement = next(p for p in plan_.placements if {f.action for f in p} == {"crash", "partition"})
    scenario = plan_.scenario_for(plan_.cells[0], placement)
    ctx = SimContext.from_seed(scenario.seed)
    world = build(ctx, scenario)
    resolved = fault_plan.plan(
        scenario,
        world.graph,
        ctx.rng,
        broker=world.default_broker,
        producers=world.workload.producers,
        consumers=world.workload.consumers,
    )

    def plain(a: Any) -> tuple[Any, ...]:
        return (a.at, a.action, a.targets, dict(a.params), a.duration)

    assert len(resolved) == 4  # each fault and its end
    assert [plain(a) for a in resolved] == [plain(a) for a in expand([f.scheduled() for f in placement])]
