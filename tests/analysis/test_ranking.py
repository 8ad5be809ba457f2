"""The report's ranking (``Experiment(rank_by=...)``): at each condition, the lines that lose least and, of
those, the fastest, keeping together what a paired 95 % interval cannot tell apart; flagged points left out
and named. Synthetic tables: no simulation."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.analysis.findings import ranking, supports
from sim.config.scenario import Scenario
from sim.core.errors import SimError
from sim.sweep.experiment import Experiment

SEEDS = [11, 12, 13, 14, 15]


def frame(values: dict[tuple[str, str], tuple[list[float], list[float]]]) -> pd.DataFrame:
    """Runs of ``setup`` × ``fault``, five seeds each: (op_failed, op_latency_p99) per seed."""
    rows = []
    for (setup, fault), (failed, p99) in values.items():
        for seed, f, p in zip(SEEDS, failed, p99, strict=True):
            rows.append({"setup": setup, "fault": fault, "seed": seed, "op_failed": f, "op_latency_p99": p})
    return pd.DataFrame(rows)


ZERO = [0.0] * 5
FAST = [0.010, 0.011, 0.012, 0.010, 0.011]
FAST_TOO = [0.0105, 0.0110, 0.0115, 0.0105, 0.0112]  # differs from FAST by noise: not told apart
SLOW = [0.100, 0.101, 0.102, 0.100, 0.101]

TABLE = frame(
    {
        ("queue", "crash"): (ZERO, SLOW),
        ("log_acks1", "crash"): ([3.0, 2.0, 4.0, 3.0, 5.0], FAST),  # fastest, but it loses
        ("log_all", "crash"): (ZERO, FAST_TOO),
        ("queue", "loss"): (ZERO, FAST),
        ("log_acks1", "loss"): (ZERO, FAST_TOO),
        ("log_all", "loss"): (ZERO, SLOW),
    }
)
SWEPT = ["setup", "fault"]
RANK = ["op_failed", "op_latency_p99"]


def _bullet(lines: list[str], fault: str) -> str:
    return next(line for line in lines if line.startswith(f"- **fault = {fault}**"))


def test_losses_decide_first_latency_breaks_the_tie() -> None:
    lines = ranking(TABLE, SWEPT, RANK, {})
    crash = _bullet(lines, "crash")
    # log_acks1 is the fastest but loses: out at the first step, whatever its latency
    assert crash.endswith("**Best: log_all**.")
    assert "1 other(s) above 0 in some run: log_acks1 (3.4; above 0 in 5 of 5 runs)" in crash
    assert "lowest op_latency_p99: log_all (10.9 ms); 1 other(s) clearly worse, up to queue (101 ms)" in crash


def test_lines_a_paired_interval_cannot_tell_apart_are_kept_together_best_first() -> None:
    lines = ranking(TABLE, SWEPT, RANK, {})
    loss = _bullet(lines, "loss")
    assert "lowest op_latency_p99: queue (10.8 ms), log_acks1 (10.9 ms) (not told apart" in loss
    assert "though log_acks1 differs on average" in loss  # kept, but its mean is not the best's
    assert "differ" not in loss.split("; then")[0]  # every op_failed is 0: nothing to say
    assert loss.endswith("**Best: queue, log_acks1**.")
    assert (
        lines[-1]
        == "- **Among the best** (of the 2 conditions ranked): log_all at 1, queue at 1, log_acks1 at 1."
    )


def test_a_clear_difference_separates() -> None:
    """The same means with the noise gone: a difference that the paired interval excludes 0 from."""
    clear = TABLE.copy()
    clear.loc[(clear["setup"] == "log_acks1") & (clear["fault"] == "loss"), "op_latency_p99"] = [
        v + 0.0005 for v in FAST
    ]
    assert _bullet(ranking(clear, SWEPT, RANK, {}), "loss").endswith("**Best: queue**.")


def test_flagged_points_are_left_out_and_named() -> None:
    lines = ranking(TABLE, SWEPT, RANK, {("log_all", "crash"): ("unstable",)})
    crash = _bullet(lines, "crash")
    assert "log_all" not in crash.split("Left out")[0]
    assert crash.endswith("**Best: queue**. Left out, flagged: log_all.")


def test_a_line_without_a_value_drops_out_of_that_step_and_is_named() -> None:
    table = TABLE.copy()
    table.loc[table["setup"] == "queue", "op_latency_p99"] = float("nan")
    loss = _bullet(ranking(table, SWEPT, RANK, {}), "loss")
    assert "no value for queue" in loss
    assert loss.endswith("**Best: log_acks1**.")


def test_the_opening_paragraph_leads_with_the_ranking_only_when_asked() -> None:
    asked = supports(TABLE, SWEPT, RANK, {}, [], {"rank_by": RANK})
    assert asked.index("**Ranked** at each condition on op_failed, then op_latency_p99") < asked.index(
        "- **op_latency_p99**:"
    )
    assert "**Ranked**" not in supports(TABLE, SWEPT, RANK, {}, [], {})


def test_no_line_factor_no_ranking() -> None:
    numeric = TABLE.assign(
        setup=TABLE["setup"].map({"queue": 1, "log_acks1": 2, "log_all": 3}),
        fault=TABLE["fault"].map({"crash": 0.0, "loss": 0.01}),
    )
    assert ranking(numeric, SWEPT, RANK, {}) == []


def test_experiment_carries_rank_by_to_the_report_and_checks_its_names() -> None:
    base = Scenario(duration="1s")
    exp = Experiment("r", base=base, grid={"links.loss": [0.0]}, rank_by=["op_failed", "op_latency_p99"])
    assert exp.report_meta()["rank_by"] == ["op_failed", "op_latency_p99"]
    assert Experiment("r", base=base).report_meta()["rank_by"] is None
    with pytest.raises(SimError, match=r"experiment\.rank_by = 'speed'"):
        Experiment("r", base=base, rank_by=["speed"])
    with pytest.raises(SimError, match=r"experiment\.rank_by"):
        Experiment("r", base=base, rank_by=[])


def test_a_line_that_never_failed_is_told_apart_from_one_seen_to_fail() -> None:
    """Zero in every replication is a record, not a mean: a line seen to lose at all (here in 2 of 5 runs,
    too rarely for a paired interval to exclude 0) is not ranked with the lines that never lost."""
    rare = frame(
        {
            ("queue", "crash"): (ZERO, SLOW),
            ("log_acks1", "crash"): ([0.0, 2.0, 0.0, 0.0, 2.0], FAST),  # mean 0.8, the interval holds 0
            ("log_all", "crash"): (ZERO, FAST_TOO),
        }
    )
    crash = _bullet(ranking(rare, SWEPT, RANK, {}), "crash")
    assert "lowest op_failed: queue (0), log_all (0) (0 in every run);" in crash
    assert "1 other(s) above 0 in some run: log_acks1 (0.8; above 0 in 2 of 5 runs)" in crash
    assert crash.endswith("**Best: log_all**.")
    # where no line has a clean record, the paired interval decides as before
    both = rare.copy()
    both.loc[(both["setup"] == "queue"), "op_failed"] = [1.0, 0.0, 0.0, 0.0, 0.0]
    both.loc[(both["setup"] == "log_all"), "op_failed"] = [0.0, 0.0, 1.0, 0.0, 1.0]
    assert "above 0 in some run" not in _bullet(ranking(both, SWEPT, RANK, {}), "crash")
