"""Regression baselines: tolerances by metric kind, a check that catches a real change on the figures it moves
and passes an unchanged rerun, progress while checking, a failure table that says how to accept, and the
documented pytest recipe."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.regression import (
    DEFAULT_RULES,
    Rule,
    Tolerances,
    check_baseline,
    compare,
    kind,
    update_baseline,
)
from sim.cli.main import main
from sim.core.errors import SimError

ROOT = Path(__file__).resolve().parents[2]

# A toy project: five patterns on a 2-leaf fabric, at-least-once, two replications of 2 s (about a second).
TOPOLOGY = """
from sim.topology.generators import leaf_spine

LOSSY: list[tuple[str, str]] = []


def build():
    g = leaf_spine(2, 2, 3)
    for u, v in LOSSY:
        g.edges[u, v]["loss"] = 0.01
    return g
"""
EXPERIMENT = """
from sim.sweep.experiment import Experiment
from sim.config.scenario import Scenario

EXPERIMENT = Experiment(
    name="toy",
    base=Scenario(
        duration="2s",
        warmup="0.2s",
        drain="2s",
        topology={"name": TOPOLOGY_FILE},
        links={"latency": {"dist": "exponential", "mean": "200us"}},
        nodes={"service": {"dist": "exponential", "mean": "200us"}},
        workload={"producers": 2, "consumers": 2, "rate": "200/s", "size": "1KB"},
        delivery={"guarantee": "at_least_once", "ack_timeout": "20ms", "max_attempts": 8},
        broker={"node": "h0_1", "durable": True},
    ),
    grid={"pattern": ["point_to_point", "queue", "pubsub", "request_reply", "event_driven"]},
    replications=2,
    seed=11,
    quick={"duration": "2s", "warmup": "0.2s", "drain": "2s"},
)
"""
# the access links of a producer (h0_0), a consumer (h1_2) and the broker's host (h0_1)
ACCESS = '[("leaf0", "h0_0"), ("leaf1", "h1_2"), ("leaf0", "h0_1")]'


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy project (``toy.py``, ``topologies/fabric.py``) with its baseline in ``baselines/``."""
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "fabric.py").write_text(TOPOLOGY)
    (tmp_path / "toy.py").write_text(
        EXPERIMENT.replace("TOPOLOGY_FILE", repr(str(tmp_path / "topologies" / "fabric.py")))
    )
    monkeypatch.chdir(tmp_path)
    update_baseline("toy.py", baselines=Path("baselines"), engine="serial")
    return tmp_path


def lose_one_percent_on_three_access_links(project: Path) -> None:
    path = project / "topologies" / "fabric.py"
    path.write_text(path.read_text().replace("LOSSY: list[tuple[str, str]] = []", f"LOSSY = {ACCESS}"))


# -- tolerances ---------------------------------------------------------------------------------------


def test_kinds_follow_the_metric_names() -> None:
    kinds = {
        "ratio": ["delivery_ratio", "op_success_ratio", "control_share", "broker_utilization"],
        "latency": ["latency_p99", "op_latency_p50", "rtt_p99", "chain_latency_p99", "queue_wait_mean"],
        "cost": ["msgs_per_delivery", "bytes_per_delivery", "op_msgs_per_op", "op_duplicates_per_op"],
        "rate": ["throughput"],
        "count": ["lost", "duplicates", "in_flight", "retries", "transmissions", "op_unfinished"],
        "flag": ["stable"],
    }
    assert {k: [kind(m) for m in names] for k, names in kinds.items()} == {
        k: [k] * len(names) for k, names in kinds.items()
    }
    assert sorted(DEFAULT_RULES) == sorted(kinds)


def test_rules_parse_and_bound_the_difference() -> None:
    latency = Rule.parse(DEFAULT_RULES["latency"])
    assert latency.allowed(0.073, 0.6, 0.6) == pytest.approx(0.0073)  # a CI of ±0.6 s does not widen it
    assert latency.allowed(0.001, 0.0, 0.0) == 0.0005  # the absolute floor
    assert Rule.parse("ci").allowed(1.0, 0.2, 0.3) == 0.3
    assert Rule.parse("exact").allowed(5.0, 1.0, 1.0) == 0.0
    assert str(Rule.parse("abs:0.005")) == "abs:0.005" and str(Rule.parse("exact")) == "exact"
    for bad in ("rel", "rel:x", "rel:-1", "abs:0.1 abs:0.2", "median:3", ""):
        with pytest.raises(SimError, match=r"^tolerance = "):
            Rule.parse(bad)


def frame(metric: list[str], mean: list[float], **extra: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"pattern": "queue", "metric": metric, "n": 2, "mean": mean, "ci95": 0.5, **extra})


def test_a_cell_beats_the_argument_which_beats_the_sidecar_which_beats_the_kind(tmp_path: Path) -> None:
    base = frame(["latency_p99", "latency_p50", "lost", "retries"], [0.1, 0.01, 0.0, 10.0])
    fresh = base.assign(mean=[0.13, 0.02, 3.0, 10.4])
    # defaults: +30 % on p99 and +100 % on p50 regress, 3 lost beyond the floor of 2, +4 % retries is fine
    assert compare(base, fresh).table["status"].tolist() == ["regressed", "regressed", "regressed", "ok"]
    side = tmp_path / "toy.toml"
    side.write_text('[metrics]\n"latency_*" = "rel:0.5"\n[kinds]\ncount = "abs:5"\n')
    rules = Tolerances.load(side)
    assert compare(base, fresh, tolerances=rules).table["status"].tolist() == ["ok", "regressed", "ok", "ok"]
    given = Tolerances.of({"latency_p50": "rel:1.5", "retries": "exact"}).over(rules)
    assert compare(base, fresh, tolerances=given).table["status"].tolist() == ["ok", "ok", "ok", "regressed"]
    same_key = Tolerances.of({"latency_*": "exact"}).over(rules)  # the argument's rule for the same glob wins
    assert compare(base, fresh, tolerances=same_key).table["status"].tolist()[:2] == [
        "regressed",
        "regressed",
    ]
    exact_side = Tolerances.of({"latency_p99": "exact"})  # a sidecar name loses to an argument glob
    glob_given = Tolerances.of({"latency_*": "rel:0.5"}).over(exact_side)
    assert compare(base, fresh, tolerances=glob_given).table["status"].tolist()[:2] == ["ok", "regressed"]
    cells = base.assign(tolerance=["exact", "", "", "rel:0.1"])
    statuses = compare(cells, fresh, tolerances=given).table["status"].tolist()
    assert statuses == ["regressed", "ok", "ok", "ok"]


def test_float_rounding_is_not_a_change_but_nan_against_a_number_is() -> None:
    base = frame(["stable", "latency_p99", "rtt_p99"], [1.0, np.nan, 0.01])
    fresh = base.assign(mean=[1.0 + 1e-15, np.nan, np.nan])
    assert compare(base, fresh).table["status"].tolist() == ["ok", "ok", "regressed"]


def test_points_gone_are_failures_new_ones_are_counted_and_a_dropped_parameter_is_an_error() -> None:
    base = pd.concat([frame(["lost"], [0.0]), frame(["lost"], [0.0]).assign(pattern="pubsub")])
    fresh = pd.concat([frame(["lost"], [0.0]), frame(["lost"], [1.0]).assign(pattern="event_driven")])
    result = compare(base, fresh, accept="sim baseline update toy")
    assert result.table["status"].tolist() == ["ok", "missing"] and result.new == 1
    assert "1 figure of the fresh run has no baseline row yet" in result.describe()
    with pytest.raises(SimError, match=r"^baseline column = 'pattern': .*accept: sim baseline update toy"):
        compare(base, fresh.drop(columns="pattern"), accept="sim baseline update toy")


def test_a_column_of_ci_everywhere_is_the_old_default_and_no_override() -> None:
    base = frame(["latency_p99", "lost"], [0.1, 0.0], tolerance=["ci", "ci"])
    fresh = base.assign(mean=[0.5, 0.4])  # within the CI half-width of 0.5, far beyond the kind defaults
    assert compare(base, fresh).table["rule"].tolist() == [DEFAULT_RULES["latency"], DEFAULT_RULES["count"]]
    assert compare(base, fresh).table["status"].tolist() == ["regressed", "ok"]


def test_bad_sidecar_files_name_the_file_and_the_entry(tmp_path: Path) -> None:
    side = tmp_path / "toy.toml"
    side.write_text('[metrics]\nlatency_p99 = "rel:lots"\n')
    with pytest.raises(SimError, match=r"toy.toml.tolerances.latency_p99 = 'rel:lots': expected exact, ci"):
        Tolerances.load(side)
    side.write_text('[kinds]\nlatencies = "rel:0.1"\n')
    with pytest.raises(SimError, match=r"tolerance kind = 'latencies': expected one of flag, ratio"):
        Tolerances.load(side)
    side.write_text('metrics = "rel:0.1"\n')
    with pytest.raises(SimError, match=r"toy.toml: metrics = 'rel:0.1': expected a table \[metrics\]"):
        Tolerances.load(side)
    side.write_text('[tolerance]\nlost = "exact"\n')
    with pytest.raises(SimError, match=r"table = 'tolerance': expected \[metrics\]"):
        Tolerances.load(side)


# -- the check on a real change -------------------------------------------------------------------------


def test_an_unchanged_rerun_reproduces_the_baseline_exactly(toy: Path) -> None:
    result = check_baseline("toy.py", baselines=Path("baselines"), engine="serial")
    assert result.ok and len(result.table) > 50
    assert (result.table["delta"] == 0).all(), result.describe()
    assert result.describe().startswith(f"{len(result.table)} figures within tolerance")


def test_one_percent_loss_on_three_access_links_fails_on_the_figures_it_moves(toy: Path) -> None:
    lose_one_percent_on_three_access_links(toy)
    result = check_baseline("toy.py", baselines=Path("baselines"), engine="serial")
    assert not result.ok
    failed = result.failures
    moved = set(failed["metric"])
    # every pattern retries and shows the retransmission timeout in its tail; the cost per delivery grows
    assert set(failed.loc[failed["metric"] == "retries", "pattern"]) == set(result.table["pattern"])
    assert {"latency_p99", "duplicates", "bytes_per_delivery"} <= moved
    assert {"latency", "cost", "count"} <= {kind(m) for m in moved}
    # what did not move stays quiet: a median is not a tail
    assert "latency_p50" not in moved
    text = result.describe()
    assert text.endswith("accept the new numbers with:\n  sim baseline update toy.py --baselines baselines")
    assert re.search(r"by metric: .*retries 5/5", text)
    # the old default (the CI of two replications) misses most of them
    loose = check_baseline("toy.py", baselines=Path("baselines"), engine="serial", tolerances={"*": "ci"})
    assert len(loose.failures) < len(failed)


def test_the_command_shows_progress_and_how_to_accept(
    toy: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert main(["baseline", "check", "toy.py", "--baselines", "baselines", "--engine", "serial"]) == 0
    assert re.fullmatch(
        r"toy.py: (\d+) figures within tolerance \(\1 exactly equal\)\n", capsys.readouterr().out
    )
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "baseline check toy: 10 quick runs (engine serial)" and "10/10 runs, ETA 0:00" in lines

    caplog.clear()
    lose_one_percent_on_three_access_links(toy)
    argv = ["baseline", "check", "toy.py", "--baselines", "baselines", "--engine", "serial", "--quiet"]
    assert main([*argv, "--limit", "3"]) == 1
    out = capsys.readouterr().out
    assert not caplog.records  # --quiet: no progress
    assert re.search(r"more \(--limit 0 shows every row\)", out)
    assert out.rstrip().splitlines()[-1] == "  sim baseline update toy.py --baselines baselines"

    assert (
        main(["baseline", "update", "--all", "--baselines", "baselines", "--quiet", "--engine", "serial"])
        == 2
    )
    assert "experiments/" in capsys.readouterr().err  # --all finds experiments by name in experiments/
    assert (
        main(["baseline", "update", "toy.py", "--baselines", "baselines", "--quiet", "--engine", "serial"])
        == 0
    )
    assert main(argv) == 0  # accepted


def test_update_keeps_per_figure_tolerances(toy: Path) -> None:
    path = toy / "baselines" / "toy.csv"
    table = pd.read_csv(path, keep_default_na=False)
    table.loc[table["metric"] == "latency_p99", "tolerance"] = "rel:0.5"
    table.to_csv(path, index=False)
    lose_one_percent_on_three_access_links(toy)
    update_baseline("toy.py", baselines=Path("baselines"), engine="serial")
    kept = pd.read_csv(path, keep_default_na=False)
    assert set(kept.loc[kept["metric"] == "latency_p99", "tolerance"]) == {"rel:0.5"}
    assert set(kept.loc[kept["metric"] != "latency_p99", "tolerance"]) == {""}


def test_the_cli_refuses_what_it_cannot_check(toy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "check", "toy.py", "--baselines", "elsewhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sim: error: baseline = 'elsewhere/toy.csv'")
    assert "sim baseline update toy.py --baselines elsewhere" in err
    assert main(["baseline", "check"]) == 2
    assert main(["baseline", "check", "toy.py", "--limit", "-1", "--baselines", "baselines"]) == 2


# -- the documented pytest recipe ----------------------------------------------------------------------


def _block(text: str, lang: str, after: str) -> str:
    start = text.index(after)
    match = re.compile(rf"^```{lang}\n(.*?)^```", re.M | re.S).search(text, start)
    assert match, f"no ```{lang} block after {after!r}"
    return match.group(1)


def test_the_documented_pytest_recipe_runs_as_written(tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "regression.md").read_text()
    recipe = _block(docs, "python", "## In pytest and CI")
    config = _block(docs, "toml", "## In pytest and CI")
    # a copy of the project's layout: the recipe under tests/, the experiment, its baseline, the markers
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_baselines.py").write_text(recipe)
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "experiments").mkdir()
    shutil.copy(ROOT / "experiments" / "tiny_sweep.py", tmp_path / "experiments")
    update_baseline(
        tmp_path / "experiments" / "tiny_sweep.py",
        baselines=tmp_path / "results" / "baselines",
        engine="serial",
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b1 passed\b", done.stdout) and "warning" not in done.stdout.lower(), done.stdout
