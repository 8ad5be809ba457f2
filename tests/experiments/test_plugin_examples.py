"""The three plug-in examples (experiments/patterns/, written with sim/patterns/process.py) run from their
scenario files, whole: each delivers, reports sane ``op_*`` figures and its own counts, and its ``--check``
holds or fails exactly as the scenario's header comment promises (the variant it names breaks the rule it
names, for the reason it gives).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import assert_counts_match_the_rows

from sim import Scenario, simulate
from sim.cli.main import main
from sim.run.simulate import RunResult

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "experiments" / "scenarios"
ALWAYS = ("delivery_ratio", "latency_mean", "latency_p50", "latency_p99", "throughput", "msgs_per_delivery")
_RUNS: dict[tuple[str, str], RunResult] = {}


def run(name: str, **updates: Any) -> RunResult:
    """The example ``name`` with ``updates``, run once per module (the runs are a few tenths of a second)."""
    key = (name, repr(sorted(updates.items())))
    if key not in _RUNS:
        scenario = Scenario.from_toml(SCENARIOS / f"{name}.toml")
        _RUNS[key] = simulate(scenario.with_updates(updates) if updates else scenario)
    return _RUNS[key]


def rules(result: RunResult) -> Counter[tuple[str, str]]:
    """Violations by (rule, the loss reason or evidence's first word)."""
    return Counter((v.rule, v.evidence.split("(")[1].split(")")[0]) for v in result.check())


def assert_sane(result: RunResult) -> None:
    """What every run of a pattern must report, op_* figures included, and they must add up."""
    s = result.summary
    assert s["delivered"] > 0
    assert_counts_match_the_rows(s, result.columns, result.scenario.warmup)
    assert all(math.isfinite(s[name]) for name in ALWAYS), {n: s[n] for n in ALWAYS}
    assert s["op_offered"] > 100
    assert s["op_completed"] + s["op_failed"] + s["op_unfinished"] == s["op_offered"]
    assert 0 < s["op_success_ratio"] <= 1
    assert 0 < s["op_latency_p50"] <= s["op_latency_p99"] <= s["op_latency_max"] < result.end_time
    assert s["op_msgs_per_op"] >= s["op_data_msgs_per_op"] > 0
    assert s["in_flight"] == 0 and s["op_unfinished"] == 0  # the drain let every operation end


@pytest.mark.parametrize("name", ["broadcast", "scatter_gather", "saga"])
def test_example_runs_from_its_scenario_file_by_path(name: str) -> None:
    result = run(name)
    assert (
        result.scenario.pattern
        == str(ROOT / "experiments" / "patterns" / f"{name}.py")
        + ":"
        + {
            "broadcast": "Broadcast",
            "scatter_gather": "ScatterGather",
            "saga": "Saga",
        }[name]
    )
    assert_sane(result)


def test_broadcast_holds_its_promise_and_a_producer_crash_breaks_it() -> None:
    result = run("broadcast")
    s, ops = result.summary, result.operations
    assert result.check() == []
    assert s["lost"] == 0 and s["retries"] > 0  # losses and the crash were retransmitted past
    assert s["op_success_ratio"] == 1.0
    assert set(ops["rows"].tolist()) == {6}  # one copy per consumer in each broadcast
    assert s["broadcasts"] == len(ops["id"])
    crash = [{"at": "4s", "for": "500ms", "action": "crash", "target": "h0_0"}]
    broken = run("broadcast", faults=crash)
    found = rules(broken)
    assert set(found) == {("no_loss", "crash_lost")} and found[("no_loss", "crash_lost")] > 0
    assert broken.summary["op_failed"] > 0


def test_scatter_gather_supersedes_what_it_did_not_need_and_k5_breaks_it() -> None:
    result = run("scatter_gather")
    s, ops = result.summary, result.operations
    assert result.check() == []
    assert s["lost"] == 0 and s["superseded"] > 0  # requests to the crashed worker, not needed
    assert s["op_success_ratio"] == 1.0
    assert s["gathered"] == s["calls"] == len(ops["id"])
    assert set(ops["rows"].tolist()) <= set(range(5, 11))  # 5 requests and up to 5 replies per call
    assert s["spare_replies"] > 0  # the replies after the third one go to nobody
    every = run("scatter_gather", **{"scatter_gather.k": 5})
    found = rules(every)
    assert set(found) == {("no_loss", "node_down")}
    assert every.summary["op_failed"] == found[("no_loss", "node_down")]  # one lost request per call
    assert every.summary["op_failed_timeout"] == every.summary["op_failed"]


def test_saga_ends_every_saga_consistently_and_at_least_once_breaks_the_check() -> None:
    result = run("saga")
    s, ops = result.summary, result.operations
    assert result.check() == []
    assert s["inconsistent"] == 0
    assert s["committed"] + s["compensated"] == s["sagas"]  # each saga ends one way or the other
    assert s["resumed"] > 0 and s["refused_steps"] > 0  # the orchestrator's crash; the slow spell
    done = ops["outcome"] == "completed"
    assert int(done.sum()) == s["committed"] and int((~done).sum()) == s["sagas"] - s["committed"]
    failed = Counter(ops["reason"][~done].tolist())
    assert set(failed) == {"timeout", "crash_lost"}  # compensated; cut short by the orchestrator's crash
    assert failed["crash_lost"] == s["resumed"]
    strict = run("saga", **{"delivery.guarantee": "at_least_once"})
    found = rules(strict)  # steps lost to a crashed service (and a few to the links), never retried
    assert set(found) == {("no_loss", "node_down"), ("no_loss", "loss")}
    np.testing.assert_array_equal(strict.columns["outcome"], result.columns["outcome"])  # the same run
    loose = run("saga", **{"saga.tombstones": False})
    assert loose.summary["inconsistent"] == s["refused_steps"]  # each refused late step, applied instead
    assert loose.check() == []  # a half-done saga breaks no delivery rule: only the count shows it


def test_check_on_the_command_line_exits_as_promised(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(SCENARIOS / "scatter_gather.toml"), "--check"]) == 0
    assert (
        main(["simulate", str(SCENARIOS / "scatter_gather.toml"), "--set", "scatter_gather.k=5", "--check"])
        == 1
    )
    assert "no_loss" in capsys.readouterr().out
