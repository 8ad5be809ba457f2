"""Reports: statistics with Student-t intervals, paired differences on shared seeds, files and figures."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.errors import SimError
from sim.experiment import Experiment
from sim.regression import compare
from sim.report import aggregate, paired_differences, write_report
from sim.scenario import Scenario
from sim.sweep import run_experiment

BASE = Scenario(
    duration="2s",
    warmup="0.2s",
    topology={"name": "star", "params": {"n": 4}},
    links={"latency": {"dist": "exponential", "mean": "1ms"}},
    workload={"producers": ["h0"], "consumers": ["h1", "h3"], "rate": "100/s"},
    broker={"node": "h2"},
)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    exp = Experiment(
        "report_test",
        base=BASE,
        grid={"pattern": ["point_to_point", "queue"], "links.loss": [0.0, 0.05]},
        replications=3,
        seed=7,
    )
    run_experiment(exp, out=folder, engine="serial", quiet=True, report=False)
    return folder


def test_aggregate_matches_student_t(results: Path) -> None:
    frame = pd.read_parquet(results / "runs.parquet")
    agg = aggregate(frame, ["pattern", "links.loss"], ["latency_mean"])
    row = agg[(agg["pattern"] == "queue") & (agg["links.loss"] == 0.05)].iloc[0]
    values = frame[(frame["pattern"] == "queue") & (frame["links.loss"] == 0.05)]["latency_mean"].to_numpy()
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(values.mean())
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3))


def test_paired_differences_use_the_same_seed(results: Path) -> None:
    frame = pd.read_parquet(results / "runs.parquet")
    diffs = paired_differences(frame, ["pattern", "links.loss"], ["latency_mean"], "point_to_point")
    row = diffs[(diffs["pattern"] == "queue") & (diffs["links.loss"] == 0.0)].iloc[0]
    a = frame[(frame["pattern"] == "queue") & (frame["links.loss"] == 0.0)].sort_values("seed")
    b = frame[(frame["pattern"] == "point_to_point") & (frame["links.loss"] == 0.0)].sort_values("seed")
    per_seed = a["latency_mean"].to_numpy() - b["latency_mean"].to_numpy()
    assert row["n"] == 3 and row["difference"] == pytest.approx(per_seed.mean())
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / math.sqrt(3))
    # the queue's detour through the broker on h2 adds two hops: it is slower, and the interval says so
    assert row["difference"] - row["ci95"] > 0


def test_write_report_files(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write_report(results)
    out = capsys.readouterr().out
    assert "mean ± 95 % CI" in out and "queue" in out
    md = report.markdown.read_text()
    for name in re.findall(r"\(figures/([^)]+)\)", md):
        assert (results / "figures" / name).stat().st_size > 1000
    assert {p.name for p in report.figures} >= {"latency_percentiles.png", "cost.png", "reliability.png"}
    assert "Paired differences against point_to_point" in md
    html = report.html.read_text()
    assert html.count("data:image/png;base64,") == len(report.figures)
    assert "<table" in html and 'src="figures/' not in html  # self-contained
    stats_csv = pd.read_csv(results / "statistics.csv")
    assert {"metric", "n", "mean", "std", "ci95"} <= set(stats_csv.columns)


def test_report_bad_input(results: Path, tmp_path: Path) -> None:
    with pytest.raises(SimError, match=r"runs\.parquet is missing"):
        write_report(tmp_path)
    with pytest.raises(SimError, match=r"^--reference = 'pubsub'"):
        write_report(results, reference="pubsub", quiet=True)
    with pytest.raises(SimError, match=r"^--metric = 'speed'"):
        write_report(results, metrics=["speed"], quiet=True)


def test_compare_tolerances_and_vanished_metrics() -> None:
    base = pd.DataFrame(
        {
            "pattern": ["q", "q", "q"],
            "metric": ["a", "b", "c"],
            "n": 3,
            "mean": [1.0, 2.0, 3.0],
            "ci95": [0.1, 0.1, 0.1],
            "tolerance": ["ci", "rel:0.5", "abs:0.01"],
        }
    )
    fresh = base.drop(columns="tolerance").assign(mean=[1.05, 2.9, 3.02], ci95=[0.01, 0.01, 0.01])
    result = compare(base, fresh)
    assert result.table["status"].tolist() == ["ok", "ok", "regressed"]
    assert not result.ok and "1 of 3 figures out of tolerance" in result.describe()
    assert compare(base, base.drop(columns="tolerance")).ok
    with pytest.raises(SimError, match=r"^baseline metric = 'c'"):
        compare(base, fresh[fresh["metric"] != "c"])
    nan = base.assign(mean=np.nan)
    assert compare(nan, nan.drop(columns="tolerance")).ok  # "not applicable" on both sides is no regression
